//! The coordinator role: accepts workers over QUIC, drives the scheduler, and serves the
//! control API on a Unix socket.
//!
//! # Layout
//! - [`driver`]: the one task that owns the state (registry, jobs and scheduler, journal, log
//!   book, counts), and [`Cluster`], the handle everything else calls it through, with the
//!   coordinator's fixed facts and its stores.
//! - [`jobs`]: the job table and the scheduler, sans-IO: events in, chunk orders and journal
//!   records out.
//! - [`registry`]: the connected workers and their bench scores.
//! - [`admission`]: places for connections not authenticated yet, strangers apart from members.
//! - [`session`]: an incoming connection, from handshake to the worker leaving.
//! - [`chunk`]: a chunk's stream to a worker (or the conversation its task leads).
//! - [`fleet`]: ping, bench, exit, revoke, clear: operations on workers, not jobs.
//! - [`control`]: the HTTP control API; [`socket`]: its Unix socket; [`http`]: what it
//!   shares with the dashboard (JSON errors and bodies).
//! - [`dashboard`]: the web page, its live feed, the logs and `/metrics`, on the socket and
//!   on `--http`.
//! - [`rollout`]: `marmotctl update`: stored binaries rolled over the workers, then the
//!   coordinator itself.
//! - [`renewal`]: members' certificates renewed over their own connection.
//! - [`scores`]: bench scores kept in the state dir across restarts.
//! - [`error`]: why a request cannot be served.
//!
//! # Lifetimes
//! Every task has an owner that waits for it. The coordinator's token (a child of the
//! process's) has three children, one per layer: *sessions* (each session's own token is a
//! child, and each of its chunk streams' a grandchild), the *API*, and the *driver*. A stop,
//! from the process (SIGTERM, Ctrl-C) or from inside (a restart after `update --coordinator`),
//! is taken down in this order, each layer waited for before the next:
//! 0. tell the control API's clients how it leaves (restarting, stopping, or gone for good
//!    with a `marmotd local`): new requests and reads in flight are answered so at once;
//! 1. stop accepting connections;
//! 2. cancel the sessions: each closes its worker's connection with a "shutting down" code and
//!    reports the worker gone to the driver (its chunk streams are cancelled with it);
//! 3. stop the control API and the `--http` dashboard: no new requests, live feeds end,
//!    those in flight (and a rollout) finish;
//! 4. stop the driver: it cancels what chunk streams are left and waits for them, then hands
//!    the journal its last records and waits for them to be committed;
//! 5. close the endpoint and wait for its connections to finish closing (quinn bounds that
//!    by a few round trips); remove the socket file.
//!
//! The coordinator's task then returns how it stopped ([`Stopped`]).

pub mod admission;
pub mod chunk;
pub mod control;
pub mod dashboard;
pub mod driver;
pub mod error;
pub mod fleet;
pub mod holdings;
pub mod http;
pub mod http_server;
pub mod jobs;
pub mod registry;
pub mod renewal;
pub mod rollout;
pub mod scores;
pub mod session;
pub mod socket;

pub use driver::Cluster;

use crate::exec::cache::FileCache;
use crate::exec::spool::Spool;
use crate::fatal::ConfigError;
use crate::journal::{self, Journal, JournalError};
use crate::tasks::Stores;
use crate::{scheduler, transport, update};
use anyhow::{Context, Result};
use certs::Authority;
use proto::api::Leaving;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The share of chunks verified unless told otherwise (`--verify`).
pub const DEFAULT_VERIFY: f64 = 0.02;

/// Jobs waiting or running at once unless told otherwise (`--max-jobs`).
pub const DEFAULT_MAX_RUNNING_JOBS: u32 = 10_000;

/// Everything a coordinator needs, resolved from flags.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub socket_group: Option<String>,
    /// Extra names and IPs for the coordinator's certificate.
    pub sans: Vec<String>,
    pub dead_after: Duration,
    pub straggler_factor: f64,
    /// How long a worker certificate issued now is valid.
    pub worker_cert_life: Duration,
    /// Jobs waiting or running at once, at most; more are refused.
    pub max_running_jobs: usize,
    /// The share of chunks also run on a second worker and compared, unless a job says.
    pub verify: f64,
    /// How long ended jobs' results are kept in the journal.
    pub retention: journal::Retention,
    /// Move the journal aside and start an empty one (`--journal-reset`).
    pub journal_reset: bool,
    /// The bounds of the store of files uploaded for commands, in bytes and in files.
    pub file_store: u64,
    pub files_max: usize,
    /// How much command jobs' output may wait for their clients.
    pub spool: jobs::SpoolBounds,
    /// Where the dashboard is served over TCP (`--http`), if anywhere.
    pub http: Option<SocketAddr>,
    /// The cluster lives only as long as this process (`marmotd local`, `demo`): its stop is
    /// for good, and its clients are told so.
    pub temporary: bool,
}

/// A started coordinator.
pub struct Running {
    pub cluster: Cluster,
    /// The UDP address actually bound (the OS picks the port for `:0`).
    pub local_addr: SocketAddr,
    pub socket: PathBuf,
    task: JoinHandle<Stopped>,
}

/// How a coordinator stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stopped {
    Shutdown,
    /// Its binary was replaced by `marmotctl update --coordinator`: re-execute it.
    Restart,
}

impl Running {
    /// Waits until the coordinator has stopped (after its token was cancelled, or a restart
    /// was requested), and says how.
    pub async fn stopped(self) -> Stopped {
        self.task.await.unwrap_or(Stopped::Shutdown)
    }
}

/// Loads trust state, binds the QUIC endpoint and the control socket, and starts serving
/// until `process` is cancelled or the coordinator asks to restart.
pub async fn start(config: CoordinatorConfig, process: CancellationToken) -> Result<Running> {
    let authority =
        Authority::load_or_create(&config.state_dir, proto::COORDINATOR_SERVER_NAME, &config.sans)
            .with_context(|| {
                format!("cannot set up the cluster CA in {}", config.state_dir.display())
            })?
            .with_worker_cert_life(config.worker_cert_life);
    // The join secret exists from the first start, so `marmotd install coordinator` can
    // print the join command without a control-API call.
    authority.join_token().context("cannot set up the join token")?;
    let tls = certs::tls::server(&authority, proto::ALPN)?;
    let reset_key = authority.reset_key()?;
    let endpoint = transport::server_endpoint(config.listen, tls, config.dead_after, &reset_key)?;
    let local_addr = endpoint.local_addr()?;
    // Before the socket: a port that is taken leaves no socket file behind.
    let http = match config.http {
        Some(addr) => Some(dashboard::bind(addr).await?),
        None => None,
    };
    if let Some(limit) = crate::descriptors::raise() {
        tracing::debug!("open files: up to {limit}");
    }
    let listener = socket::bind(&config.socket, config.socket_group.as_deref())?;
    let scheduler = scheduler::Config {
        straggler_factor: config.straggler_factor,
        verify_key: scheduler::VerifyKey::derived(&reset_key),
        ..Default::default()
    };
    let binary_sha256 = update::binary::own_sha256().await?;
    let (journal, recovered) =
        Journal::open(&config.state_dir, config.journal_reset, config.retention).map_err(|e| {
            match e {
                // The same on every start: not for systemd to retry.
                JournalError::Damaged { .. } | JournalError::Newer { .. } => {
                    ConfigError::error(e.to_string())
                }
                e => anyhow::Error::new(e),
            }
        })?;
    let mut jobs = jobs::Jobs::new(
        jobs::JobsConfig {
            scheduler,
            max_running: config.max_running_jobs,
            verify: config.verify,
            spool: config.spool,
        },
        std::time::Instant::now(),
    );
    let stores = stores(&config)?;
    let recovered = spool_checked(recovered, &stores.spool);
    jobs.resume(std::time::Instant::now(), journal::unix_ms(), recovered, &stores.spool);
    let spool = stores.spool.clone();
    let keep = jobs.spooled_files();
    let swept = tokio::task::spawn_blocking(move || spool.sweep(&keep)).await?;
    swept.context("cannot clear the spool of output nobody will take")?;
    let recent = journal.ended_jobs(jobs::KEEP_ENDED_JOBS as u64).await;
    jobs.remember_ended(recent.context("cannot read the recent jobs from the journal")?);
    let registry = registry::Registry::new(scores::load(&config.state_dir));
    let facts = driver::Facts {
        authority,
        listen: local_addr,
        binary_sha256,
        state_dir: config.state_dir.clone(),
        started: std::time::Instant::now(),
        admission: admission::Admission::default(),
    };
    let tokens = Arc::new(dashboard::access::TokenStore::open(&config.state_dir));
    // The token tree and the task trackers, one per layer.
    let role = process.child_token();
    let (sessions, api, driving) = (role.child_token(), role.child_token(), role.child_token());
    let (session_tasks, api_tasks, driver_tasks) =
        (TaskTracker::new(), TaskTracker::new(), TaskTracker::new());
    let mut state = driver::State::new(jobs, registry, journal);
    state.pin_resumed(std::time::Instant::now(), &stores.files);
    let cluster = driver::spawn(facts, stores, state, &driver_tasks, driving.clone());
    tracing::info!(
        "coordinator listening on UDP {local_addr}, control socket {}",
        config.socket.display()
    );
    {
        let feed =
            dashboard::Feed { cluster: cluster.clone(), stop: api.clone(), tokens: tokens.clone() };
        let router = control::router(feed, api_tasks.clone());
        let api = api.clone();
        api_tasks.spawn(async move {
            let router = router.into_make_service_with_connect_info::<control::Peer>();
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { api.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!("control API stopped: {e}");
            }
        });
    }
    if let Some(listener) = http {
        let addr = listener.local_addr()?;
        let loopback = addr.ip().is_loopback();
        let feed = dashboard::Feed { cluster: cluster.clone(), stop: api.clone(), tokens };
        let router = dashboard::http_router(feed, loopback);
        tracing::info!(
            "dashboard on http://{addr}/{}",
            if loopback { "" } else { " (it asks for the token: `marmotctl dashboard-token`)" }
        );
        api_tasks.spawn(http_server::serve(listener, router, api.clone()));
    }
    let socket_path = config.socket.clone();
    let temporary = config.temporary;
    let task = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let stopped = tokio::select! {
                _ = accept(&cluster, &endpoint, &sessions, &session_tasks) => Stopped::Shutdown,
                _ = role.cancelled() => Stopped::Shutdown,
                how = cluster.stop_requested() => how,
            };
            // 0: the clients are told how it leaves, their long polls too.
            cluster.leave(match (&stopped, temporary) {
                (Stopped::Restart, _) => Leaving::Restarting,
                (Stopped::Shutdown, true) => Leaving::Gone,
                (Stopped::Shutdown, false) => Leaving::Stopping,
            });
            // 1-2: no new connections; every session closes its worker's and ends.
            sessions.cancel();
            session_tasks.close();
            session_tasks.wait().await;
            // 3: the control API finishes what is in flight.
            api.cancel();
            api_tasks.close();
            api_tasks.wait().await;
            // 4: the driver stops its chunk streams and ends.
            driving.cancel();
            driver_tasks.close();
            driver_tasks.wait().await;
            // 5: connections finish closing; the socket goes.
            endpoint.close(transport::codes::DONE, b"coordinator shutting down");
            endpoint.wait_idle().await;
            let _ = std::fs::remove_file(&socket_path);
            role.cancel();
            tracing::info!("coordinator stopped");
            stopped
        })
    };
    Ok(Running { cluster, local_addr, socket: config.socket, task })
}

/// The store of files uploaded for commands (`STATE_DIR/files/`), and the spool where units'
/// output waits for its client (`STATE_DIR/spool/`, kept across restarts).
fn stores(config: &CoordinatorConfig) -> Result<Stores> {
    let files = config.state_dir.join("files");
    std::fs::create_dir_all(&files)
        .with_context(|| format!("cannot create {}", files.display()))?;
    let store = FileCache::open(&files, config.file_store).context("cannot open the file store")?;
    let store = store.as_store(config.files_max);
    let run = u64::try_from(journal::unix_ms()).unwrap_or_default();
    Ok(Stores { files: Arc::new(store), spool: Spool::open(&config.state_dir, run)? })
}

/// The recovered jobs with the command chunks whose spool file was lost or cut short (a
/// power cut: spool files are not synced) taken out: those run again.
/// (The deliveries the client had taken are let go, not lost: in input order, the first in
/// unit order; else the first counted.)
fn spool_checked(mut recovered: journal::Recovered, spool: &Spool) -> journal::Recovered {
    for job in &mut recovered.running {
        let id = job.id;
        let keep_order =
            matches!(&job.request, Ok(proto::job::JobSpec::Cmd(spec)) if spec.keep_order);
        let mut spooled: Vec<&journal::Spooled> =
            job.chunks.iter().filter_map(|c| c.spooled.as_ref()).collect();
        spooled.sort_by_key(|s| if keep_order { s.first_unit } else { s.seq });
        let taken: std::collections::HashSet<u64> =
            spooled.iter().take(job.taken as usize).map(|s| s.seq).collect();
        job.chunks.retain(|chunk| match (&chunk.spooled, &chunk.output) {
            (Some(spooled), _) if taken.contains(&spooled.seq) => true,
            (Some(spooled), Some(proto::wire::ChunkOutput::Cmd { units, .. })) => {
                let whole = spool.holds(id, &spooled.file, units);
                if !whole {
                    tracing::warn!(
                        "job {id}: chunk {} lost its output: it runs again",
                        chunk.chunk
                    );
                }
                whole
            }
            _ => true,
        });
    }
    recovered
}

/// Accepts connections until the endpoint closes, each served by a session task with a token
/// of its own under `sessions`.
async fn accept(
    cluster: &Cluster,
    endpoint: &quinn::Endpoint,
    sessions: &CancellationToken,
    tasks: &TaskTracker,
) {
    // Places for connections not yet authenticated: bounded in all and per source address.
    let admission = &cluster.facts().admission;
    while let Some(incoming) = endpoint.accept().await {
        let address = incoming.remote_address();
        let ticket = match admission.first_packet(address.ip(), incoming.remote_address_validated())
        {
            admission::Decision::Admit(ticket) => ticket,
            // Stateless: the peer comes back with a token proving its address, or never.
            admission::Decision::Retry if incoming.may_retry() => {
                if let Err(e) = incoming.retry() {
                    e.into_incoming().refuse();
                }
                continue;
            }
            admission::Decision::Retry | admission::Decision::Refuse => {
                // Before its handshake, so a flood costs a packet each, not a connection.
                if let Some(held_back) = cluster.refusals_to_log() {
                    tracing::warn!(
                        "refused a connection from {address}: too many unauthenticated \
                         connections from that address{}",
                        session::held_back_note(held_back)
                    );
                }
                incoming.refuse();
                continue;
            }
        };
        tasks.spawn(session::handle(cluster.clone(), incoming, ticket, sessions.child_token()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journal::{RecoveredChunk, RecoveredJob, Spooled};
    use proto::command::UnitEnding;
    use proto::wire::ChunkOutput;

    #[test]
    fn chunks_whose_spool_file_a_power_cut_lost_run_again_unless_their_client_had_them() {
        let state = tempfile::tempdir().unwrap();
        let spool = Spool::open(state.path(), 1).unwrap();
        std::fs::create_dir_all(spool.job_dir(7)).unwrap();
        let chunk = |chunk: u32, file: &str| {
            let units = crate::tasks::cmd::reports(
                u64::from(chunk)..u64::from(chunk) + 1,
                UnitEnding::Exited(0),
            );
            let header = proto::command::spool::header(&units[0]).unwrap();
            if file.starts_with("kept") {
                std::fs::write(spool.file(7, file), header).unwrap();
            }
            let (first_unit, seq) = (u64::from(chunk), u64::from(chunk));
            RecoveredChunk {
                phase: 0,
                chunk,
                start: first_unit,
                end: first_unit + 1,
                worker: "w".into(),
                output: Some(ChunkOutput::Cmd { units, spool: None }),
                spooled: Some(Spooled { seq, file: file.into(), first_unit, units: 1 }),
            }
        };
        let spec = proto::command::CmdSpec::new(
            proto::command::Template::new(vec!["echo".into()]).unwrap(),
            (0..4).map(|i| i.to_string()).collect(),
        );
        let job = RecoveredJob {
            id: 7,
            request: Ok(proto::job::JobSpec::Cmd(Box::new(spec))),
            verify: 0.0,
            client: String::new(),
            submitted_ms: 0,
            taken: 1,
            phases: vec![],
            chunks: vec![chunk(0, "taken"), chunk(1, "kept"), chunk(2, "lost"), chunk(3, "kept2")],
            given: vec![],
        };
        let recovered = journal::Recovered { last_job: 7, running: vec![job], leftovers: vec![] };
        let checked = spool_checked(recovered, &spool);
        let left: Vec<u32> = checked.running[0].chunks.iter().map(|c| c.chunk).collect();
        assert_eq!(left, [0, 1, 3], "the lost one runs again; the client had the first");
    }
}
