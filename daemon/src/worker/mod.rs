//! The worker role: join once with a token, then stay connected to the coordinator forever.
//!
//! # Layout
//! - [`identity`]: what the worker says about itself (name, slots, version, binary hash).
//! - [`join`]: first contact, trading the token's secret for a client certificate.
//! - [`session`]: one live connection, serving ping and chunk streams.
//! - [`pool`]: the slot threads that run kernels, away from the async runtime.
//! - [`held`]: chunk results held through a lost connection, delivered on the next session.
//! - [`laptop`]: the slots given now, from the laptop's power, heat and hours.
//! - [`update`]: receiving a new binary, its trial start, and the swap.
//!
//! Users' commands run in [`crate::exec`]; a new binary's probation is
//! [`crate::update::probation`]'s.
//!
//! The connect loop below never gives up on network trouble: it retries with exponential
//! backoff and jitter (1 s growing to 30 s); after a welcomed session ends, the first retry
//! comes within 0.1–0.4 s and the backoff starts again from 1 s. A coordinator name that does
//! not resolve is retried the same way (DNS is often not up yet at boot). It stops only on
//! shutdown, on an `exit` from the coordinator, or on errors retrying cannot fix (a refused
//! token, another cluster's CA, an incompatible version): those are
//! [`ConfigError`](crate::fatal::ConfigError)s, and `marmotd` exits with status 78, which
//! the unit does not restart.

pub mod held;
pub mod identity;
pub mod join;
pub mod laptop;
pub mod pool;
pub mod session;
pub mod update;

use crate::exec::units::Units;
use crate::fatal::ConfigError;
use crate::transport;
use crate::update::pending::Boot;
use crate::update::probation::{self, Probation};
use crate::update::Invocation;
use anyhow::{Context, Result};
use backon::BackoffBuilder;
use certs::Membership;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything a worker needs, resolved from flags.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// `HOST:PORT` of the coordinator, resolved again at every attempt.
    pub coordinator: String,
    pub token: Option<String>,
    pub name: String,
    pub slots: u32,
    pub state_dir: PathBuf,
    pub dead_after: Duration,
    /// How long a chunk keeps running, and its result is held, without the coordinator.
    pub lease: Duration,
    /// Whether this worker is its own process and may replace its binary (not so for
    /// `marmotd local`'s in-process workers).
    pub updatable: bool,
    /// Whether it runs users' commands (`--no-exec` says no).
    pub exec: bool,
    /// The bound of its file cache, in bytes.
    pub file_cache: u64,
    /// Whether its process's log lines go to the coordinator (not so for `marmotd local`'s
    /// in-process workers: the coordinator beside them keeps the process's lines itself).
    pub send_logs: bool,
    /// Its laptop's rules (`None`: all its slots always, as `marmotd local`'s in-process
    /// workers, which someone started to use now).
    pub policy: Option<proto::policy::Policy>,
}

/// How a worker's run ended, when it ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Shutdown,
    /// The coordinator told this worker to exit.
    Told,
    /// A new binary was installed (or the old one put back): re-execute it.
    Restart,
}

impl std::fmt::Display for Exit {
    /// In words, for the log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exit::Shutdown => "shut down",
            Exit::Told => "told to exit by the coordinator",
            Exit::Restart => "restarting on its new binary",
        })
    }
}

/// How long a chunk outlives the coordinator's connection unless told otherwise (`--lease`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How one connection attempt ended.
pub(crate) enum Attempt {
    /// A welcomed session ended (the connection was lost): reconnect from the shortest wait.
    SessionEnded,
    /// The session was closed because the machine is going to sleep: reconnect when it wakes.
    Asleep,
    /// No session came up; wait longer before the next try.
    Failed(anyhow::Error),
    Exit(Exit),
}

/// Runs the worker until shutdown or an unrecoverable error.
pub async fn run(config: WorkerConfig, shutdown: CancellationToken) -> Result<Exit> {
    certs::files::create_private_dir(&config.state_dir)
        .with_context(|| "cannot create the worker's state dir")?;
    let info = identity::WorkerInfo::detect(&config).await?;
    let restart = CancellationToken::new();
    // The worker's own token (under the process's) and its tasks: a probation timer and the
    // streams the coordinator opens, which may outlive the session they came on (an update
    // finishing its trial start). All are waited for before `run` returns.
    let role = shutdown.child_token();
    let tasks = TaskTracker::new();
    let mut probation = None;
    if let (true, Some(invocation)) = (config.updatable, Invocation::get()) {
        let (own, dir) = (info.hello.binary_sha256.clone(), config.state_dir.clone());
        let started = Arc::new(Probation::start(dir, invocation.exe.clone(), own).await?);
        if started.boot() == Boot::RolledBack {
            return Ok(Exit::Restart);
        }
        let watch = started.clone().watch(probation::DEADLINE, restart.clone());
        let role = role.clone();
        tasks.spawn(async move { role.run_until_cancelled(watch).await });
        probation = Some(started);
    }
    let exit = serve(config, info, probation, restart, &role, &tasks).await;
    role.cancel();
    tasks.close();
    tasks.wait().await;
    exit
}

/// Joins if needed, then connects and reconnects until the worker must stop.
async fn serve(
    config: WorkerConfig,
    info: identity::WorkerInfo,
    probation: Option<Arc<Probation>>,
    restart: CancellationToken,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
) -> Result<Exit> {
    let mut membership = Membership::load(&config.state_dir)?;
    if membership.is_none() && config.token.is_none() {
        return Err(ConfigError::error(
            "this worker has not joined a cluster yet: set MARMOT_TOKEN (or pass --token) to \
             a token from `marmotctl join-token` on the coordinator",
        ));
    }
    if let Some(token) = &config.token {
        token.parse::<certs::JoinToken>().map_err(|e| ConfigError::error(e.to_string()))?;
    }
    // The coordinator's name is not resolved here: at boot DNS may not be up yet, so a name
    // that does not resolve is retried with the backoff, like an unreachable coordinator.
    let pool = pool::SlotPool::new(config.slots)?;
    let updater = Arc::new(update::Updater::new(info.clone(), config.clone(), restart.clone()));
    tracing::info!(name = %info.hello.name, slots = config.slots, "worker starting");
    // Loaded and about to connect: ready, for systemd (a coordinator that is not there yet is
    // waited for, not a failure).
    crate::systemd::notify_ready();
    let held = Arc::new(held::Held::default());
    let given = match config.policy.clone() {
        Some(policy) => laptop::watch::start(policy, config.slots, tasks, shutdown.clone()).await,
        None => laptop::watch::Given::all(config.slots),
    };
    let mut units =
        Units::open(&config.state_dir, &info.hello.name, config.exec, config.file_cache)?;
    units.lease = config.lease;
    units.connected = held.connected.subscribe();
    units.stopping = shutdown.clone();
    units.paused = given.paused.clone();
    let mut backoff = new_backoff();
    let mut sleeping = given.sleep.sleeping.clone();
    loop {
        // Asleep (or about to be): no session until the machine wakes, then one at once.
        if *sleeping.borrow_and_update() {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(Exit::Shutdown),
                _ = restart.cancelled() => return Ok(Exit::Restart),
                _ = sleeping.wait_for(|sleeping| !sleeping) => {}
            }
            backoff = new_backoff();
        }
        let session = Session {
            config: &config,
            info: &info,
            pool: &pool,
            updater: &updater,
            held: &held,
            tasks,
            units: &units,
            probation: probation.as_deref(),
            standing: &given.standing,
            sleep: &given.sleep,
        };
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return Ok(Exit::Shutdown),
            _ = restart.cancelled() => return Ok(Exit::Restart),
            attempt = connect_once(&session, &mut membership, shutdown) => attempt?,
        };
        let wait = match attempt {
            Attempt::Exit(exit) => return Ok(exit),
            Attempt::Asleep => continue,
            Attempt::SessionEnded => {
                // The first try after a lost session comes quickly (a restarted or updated
                // coordinator is back within a fraction of a second); if that fails, the
                // backoff takes over from 1 s. The jitter spreads a cluster's reconnects.
                backoff = new_backoff();
                Duration::from_millis(rand::random_range(100..400))
            }
            Attempt::Failed(e) => {
                let wait = backoff.next().unwrap_or(Duration::from_secs(30));
                tracing::warn!("cannot reach the coordinator at {}: {e:#}", config.coordinator);
                wait
            }
        };
        tracing::info!("reconnecting in {:.1} s", wait.as_secs_f64());
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(Exit::Shutdown),
            _ = restart.cancelled() => return Ok(Exit::Restart),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// What one session needs from the worker.
pub(crate) struct Session<'a> {
    pub config: &'a WorkerConfig,
    pub info: &'a identity::WorkerInfo,
    pub pool: &'a pool::SlotPool,
    pub updater: &'a Arc<update::Updater>,
    /// Results of chunks that outlived their connection, for the next session to deliver.
    pub held: &'a Arc<held::Held>,
    /// Where the streams the coordinator opens run, owned by the worker.
    pub tasks: &'a TaskTracker,
    /// What command chunks need.
    pub units: &'a Units,
    /// A new binary's probation, which a welcome passes.
    pub probation: Option<&'a Probation>,
    /// The slots this worker gives now, told to the coordinator as they change.
    pub standing: &'a tokio::sync::watch::Receiver<proto::policy::Standing>,
    /// Sleep as logind announces it: the session closes before, and comes back after.
    pub sleep: &'a laptop::bus::Sleep,
}

/// `marmotd worker ... --update-trial`: the trial start of a new binary. Loads the worker's
/// state, connects and shakes hands with the coordinator, and returns; an error is a failed
/// trial.
pub async fn trial(config: WorkerConfig) -> Result<()> {
    let info = identity::WorkerInfo::detect(&config).await?;
    let membership = Membership::load(&config.state_dir)?
        .context("this worker has not joined a cluster: nothing to try")?;
    let addr = resolve(&config.coordinator).await?;
    let endpoint = transport::client_endpoint(addr)?;
    let result = session::trial(&endpoint, addr, &membership, &info, &config).await;
    endpoint.close(transport::codes::DONE, b"trial done");
    let _ = tokio::time::timeout(Duration::from_millis(200), endpoint.wait_idle()).await;
    result
}

fn new_backoff() -> impl Iterator<Item = Duration> {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(30))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// One attempt: resolve, join if needed, connect with mutual TLS and serve the session.
/// `Err` only for what retrying cannot fix.
async fn connect_once(
    session: &Session<'_>,
    membership: &mut Option<Membership>,
    shutdown: &CancellationToken,
) -> Result<Attempt> {
    let config = session.config;
    let addr = match resolve(&config.coordinator).await {
        Ok(addr) => addr,
        Err(e) => return Ok(Attempt::Failed(e)),
    };
    let endpoint = match transport::client_endpoint(addr) {
        Ok(endpoint) => endpoint,
        Err(e) => return Ok(Attempt::Failed(e)),
    };
    let current = match membership {
        Some(m) => {
            // A renewed certificate may have been stored during the last session.
            if let Ok(Some(stored)) = Membership::load(&config.state_dir) {
                *m = stored;
            }
            m.clone()
        }
        None => {
            let token = config.token.as_deref().context("no join token")?;
            match join::join(&endpoint, addr, token, config).await? {
                Ok(joined) => {
                    tracing::info!(
                        "joined the cluster; certificate stored in {}",
                        config.state_dir.display()
                    );
                    *membership = Some(joined.clone());
                    joined
                }
                Err(e) => return Ok(Attempt::Failed(e)),
            }
        }
    };
    let attempt = session::run(&endpoint, addr, &current, session, shutdown).await;
    endpoint.close(transport::codes::DONE, b"bye");
    // Give the close a moment to reach the coordinator, so it sees us leave at once.
    let _ = tokio::time::timeout(Duration::from_millis(200), endpoint.wait_idle()).await;
    attempt
}

async fn resolve(host_port: &str) -> Result<SocketAddr> {
    let mut addrs = tokio::net::lookup_host(host_port)
        .await
        .with_context(|| format!("cannot resolve the coordinator address {host_port}"))?;
    addrs.next().with_context(|| format!("{host_port} resolves to no address"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn exits_in_words() {
        use super::Exit;
        let words: Vec<String> =
            [Exit::Shutdown, Exit::Told, Exit::Restart].iter().map(ToString::to_string).collect();
        assert_eq!(
            words,
            ["shut down", "told to exit by the coordinator", "restarting on its new binary"]
        );
    }
}
