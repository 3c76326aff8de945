//! The coordinator role: accepts workers over QUIC, drives the scheduler, and serves the
//! control API on a Unix socket.
//!
//! # Layout
//! - [`cluster`]: the shared state (registry, jobs, scheduler) and the one place events apply.
//! - [`admission`]: how many connections may be unauthenticated at once.
//! - [`session`]: an incoming connection, from handshake to the worker leaving.
//! - [`chunk`]: the streams the coordinator opens: chunks and pings.
//! - [`jobs`]: job records, result reduction and result documents.
//! - [`control`]: the HTTP control API; [`socket`]: its Unix socket.
//! - [`rollout`]: `marmotctl update`: stored binaries rolled over the workers, then the
//!   coordinator itself.
//! - [`renewal`]: members' certificates renewed over their own connection.
//! - [`scores`]: bench scores kept in the state dir across restarts.
//!
//! Shutdown order (on SIGTERM/SIGINT or when the caller cancels): stop accepting, close worker
//! connections with a "shutting down" code (their running chunks are dropped with them), stop
//! the control API, wait briefly for the endpoint to go idle, remove the socket file.

pub mod admission;
pub mod chunk;
pub mod cluster;
pub mod control;
pub mod jobs;
pub mod renewal;
pub mod rollout;
pub mod scores;
pub mod session;
pub mod socket;

pub use cluster::Cluster;

use crate::{scheduler, transport, update};
use anyhow::{Context, Result};
use certs::Authority;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
}

/// A started coordinator.
pub struct Running {
    pub cluster: Arc<Cluster>,
    /// The UDP address actually bound (the OS picks the port for `:0`).
    pub local_addr: SocketAddr,
    pub socket: PathBuf,
    task: JoinHandle<()>,
}

/// How a coordinator stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    Shutdown,
    /// Its binary was replaced by `marmotctl update --coordinator`: re-execute it.
    Restart,
}

impl Running {
    /// Waits until the coordinator has shut down (after its token was cancelled).
    pub async fn stopped(self) -> Stopped {
        let _ = self.task.await;
        if self.cluster.restart_requested() {
            Stopped::Restart
        } else {
            Stopped::Shutdown
        }
    }
}

/// Loads trust state, binds the QUIC endpoint and the control socket, and starts serving.
pub async fn start(config: CoordinatorConfig, shutdown: CancellationToken) -> Result<Running> {
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
    let listener = socket::bind(&config.socket, config.socket_group.as_deref())?;
    let scheduler_config =
        scheduler::Config { straggler_factor: config.straggler_factor, ..Default::default() };
    let binary_sha256 = update::binary::own_sha256().await?;
    let identity = cluster::Identity {
        authority,
        listen: local_addr,
        binary_sha256,
        state_dir: config.state_dir.clone(),
    };
    let cluster = Cluster::new(
        identity,
        scheduler_config,
        config.max_running_jobs,
        config.verify,
        shutdown.clone(),
    );
    tracing::info!(
        "coordinator listening on UDP {local_addr}, control socket {}",
        config.socket.display()
    );

    let api = {
        let router = control::router(cluster.clone());
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!("control API stopped: {e}");
            }
        })
    };
    let ticker = {
        let (cluster, shutdown) = (cluster.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            while shutdown.run_until_cancelled(every.tick()).await.is_some() {
                cluster.tick();
            }
        })
    };
    let socket_path = config.socket.clone();
    let task = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            while let Some(Some(incoming)) = shutdown.run_until_cancelled(endpoint.accept()).await {
                let Some(ticket) = cluster.admission.admit(incoming.remote_address().ip()) else {
                    // Before its handshake, so a flood costs a packet each, not a connection.
                    if let Some(held_back) = cluster.refusals_to_log() {
                        tracing::warn!(
                            "refused a connection from {}: too many unauthenticated connections{}",
                            incoming.remote_address(),
                            session::held_back_note(held_back)
                        );
                    }
                    incoming.refuse();
                    continue;
                };
                tokio::spawn(session::handle(cluster.clone(), incoming, ticket, shutdown.clone()));
            }
            endpoint.close(transport::codes::DONE, b"coordinator shutting down");
            let _ = api.await;
            let _ = ticker.await;
            let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
            let _ = std::fs::remove_file(&socket_path);
            tracing::info!("coordinator stopped");
        })
    };
    Ok(Running { cluster, local_addr, socket: config.socket, task })
}
