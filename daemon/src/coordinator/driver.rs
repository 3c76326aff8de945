//! The one owner of the coordinator's state: a task that holds the worker registry and the job
//! table (with the scheduler), and changes them only as it receives calls on its channel.
//!
//! Everything else holds a [`Cluster`]: a cheap handle with the coordinator's fixed facts
//! (its CA, address, binary) and the sending end of that channel. Sessions, chunk streams, the
//! control API and the fleet operations *call* the driver with a closure over the [`State`]
//! and get its answer on a oneshot channel; nobody else ever touches the state, so there is no
//! lock, and no call cycle: a chunk stream reports its end as one more message.
//!
//! After each call and each tick the driver carries out the job table's orders: it opens a
//! chunk stream as a task it tracks, with a token that is a child of the worker's session
//! token, or cancels one. On shutdown it cancels its chunk streams and waits for them.

use super::error::ClusterError;
use super::jobs::{Jobs, Order};
use super::registry::{Joining, Registry};
use super::{chunk, Stopped};
use crate::cache::FileCache;
use crate::journal::Journal;
use crate::scheduler::{AssignmentId, WorkerId};
use certs::Authority;
use proto::api::{JobView, Status};
use proto::wire::ChunkOutput;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Refusals of peers logged per [`REFUSAL_WINDOW`]; more are counted, not logged.
const REFUSALS_LOGGED: u32 = 10;
const REFUSAL_WINDOW: Duration = Duration::from_secs(10);
/// Calls waiting for the driver, at most; callers wait for room beyond.
const QUEUE: usize = 1024;
/// Lines of the coordinator's log the dashboard shows.
const EVENTS: usize = 50;
/// How often time passes for the scheduler (stragglers, abandoned series).
const TICK: Duration = Duration::from_millis(100);

/// The coordinator's state, as the driver owns it.
pub struct State {
    pub jobs: Jobs,
    pub registry: Registry,
    /// Where the job table's records go.
    pub journal: Journal,
}

impl State {
    /// Adds a welcomed worker (replacing a live session of the same name).
    pub fn register(&mut self, now: Instant, joining: Joining) -> WorkerId {
        let (name, slots) = (joining.hello.name.clone(), joining.hello.slots);
        let (exec, rtt) = (joining.abilities.exec, joining.conn.rtt());
        let (id, stale) = self.registry.add(now, joining);
        for old in stale {
            self.jobs.worker_lost(now, old);
        }
        self.jobs.worker_joined(now, id, &name, slots, exec);
        self.jobs.worker_rtt(now, id, rtt);
        self.jobs.set_speed(self.registry.speed());
        id
    }

    /// Notes what a worker's connection measured: datagrams received (for "last seen") and,
    /// when it changed, its round trip (for prefetch).
    pub fn link_measured(
        &mut self,
        now: Instant,
        id: WorkerId,
        datagrams: u64,
        rtt: Option<Duration>,
    ) {
        self.registry.touch(now, id, datagrams);
        if let Some(rtt) = rtt {
            self.jobs.worker_rtt(now, id, rtt);
        }
    }

    /// Hands the job table's records to the journal; returns their batch's number.
    pub fn journal_records(&mut self) -> u64 {
        self.journal.append(self.jobs.take_records())
    }

    /// Removes a worker whose connection ended; its chunks run elsewhere.
    pub fn unregister(&mut self, now: Instant, id: WorkerId) {
        if self.registry.remove(id).is_some() {
            self.jobs.worker_lost(now, id);
            self.jobs.set_speed(self.registry.speed());
        }
    }

    /// Tells the named workers (all when `names` is empty) to hand back their chunks and exit.
    /// They take no new chunks from now on; their running chunks are queued again when their
    /// connections close. Returns the names told.
    pub fn tell_exit(
        &mut self,
        now: Instant,
        names: &[String],
    ) -> Result<Vec<String>, ClusterError> {
        let mut told = vec![];
        for id in self.registry.select(names)? {
            if self.registry.tell(id, proto::wire::Control::Exit) {
                told.extend(self.registry.get(id).map(|w| w.hello.name.clone()));
                self.jobs.set_draining(now, id, true);
            }
        }
        Ok(told)
    }

    pub fn workers(&self, now: Instant) -> Vec<proto::api::WorkerView> {
        let mut views = self.registry.views(
            now,
            |id| self.jobs.busy_slots(id),
            |name| self.jobs.is_quarantined(name),
        );
        for view in &mut views {
            (view.chunks_done, view.units_done) = self.jobs.done_by(&view.name);
        }
        views
    }

    /// The job table's and the registry's counts since the coordinator started.
    pub fn counters(&self) -> proto::api::Counters {
        let traffic = self.registry.traffic();
        proto::api::Counters {
            workers_joined: self.registry.joined,
            workers_lost: self.registry.left,
            bytes_sent: traffic.sent,
            bytes_received: traffic.received,
            ..self.jobs.counters()
        }
    }

    /// Chunks running on a worker; `None` once it is gone.
    pub fn busy_slots(&self, id: WorkerId) -> Option<u32> {
        self.registry.get(id).map(|_| self.jobs.busy_slots(id))
    }
}

/// What never changes while the coordinator runs, and what is shared without the driver.
pub struct Shared {
    pub authority: Authority,
    pub listen: SocketAddr,
    /// SHA-256 of the coordinator's own binary.
    pub binary_sha256: String,
    /// Where the coordinator keeps its state (CA, keys, uploaded binaries).
    pub state_dir: PathBuf,
    /// Files uploaded for users' commands, by SHA-256.
    pub files: Arc<FileCache>,
    /// Where command units' output waits for its client, a dir per job.
    pub spool_dir: PathBuf,
    /// The jobs kept on disk: ended ones are read from it once out of memory.
    pub journal: Journal,
    /// Connections not yet authenticated: bounded in all and per source address.
    pub admission: super::admission::Admission,
    /// Held while an update rolls out: one at a time.
    pub rollout_lock: tokio::sync::Mutex<()>,
    /// Refusals of peers (joins, hellos) logged: at most a burst per window.
    refusal_log: Mutex<crate::logging::Throttle>,
    /// The `--http` dashboard's token (its hash).
    pub dashboard_token: super::dashboard::access::TokenStore,
    /// Log lines from the workers, and the coordinator's own.
    pub logs: Mutex<crate::logbook::LogBook>,
    /// Counts kept outside the driver, by sessions and rollouts.
    pub side_counts: SideCounts,
    started: Instant,
    /// Set when the coordinator must stop, with how.
    stop: watch::Sender<Option<Stopped>>,
}

/// Counts kept outside the driver, for `/metrics` and the dashboard.
#[derive(Default)]
pub struct SideCounts {
    pub log_lines_received: std::sync::atomic::AtomicU64,
    pub log_lines_refused: std::sync::atomic::AtomicU64,
    /// Machines' update outcomes, by status.
    pub updates: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl SideCounts {
    /// Adds these counts to `counters`.
    pub fn fill(&self, counters: &mut proto::api::Counters) {
        use std::sync::atomic::Ordering::Relaxed;
        counters.log_lines_received = self.log_lines_received.load(Relaxed);
        counters.log_lines_refused = self.log_lines_refused.load(Relaxed);
        counters.updates = self.updates.lock().unwrap_or_else(|p| p.into_inner()).clone();
    }

    /// Counts one machine's update outcome.
    pub fn update_ended(&self, status: proto::api::UpdateStatus) {
        let word = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        *self.updates.lock().unwrap_or_else(|p| p.into_inner()).entry(word).or_default() += 1;
    }
}

/// What the coordinator is, for [`spawn`].
pub struct Identity {
    pub authority: Authority,
    pub listen: SocketAddr,
    pub binary_sha256: String,
    pub state_dir: PathBuf,
    pub files: Arc<FileCache>,
    pub spool_dir: PathBuf,
}

/// A closure over the state, run by the driver at the time it is given.
type Call = Box<dyn FnOnce(&mut State, Instant) + Send>;

enum Command {
    Call(Call),
    /// A chunk stream ended, with the worker's output or why not (`None`: nothing to report,
    /// the stream was cancelled or its connection lost).
    ChunkEnded {
        assignment: AssignmentId,
        outcome: Option<Result<ChunkOutput, String>>,
    },
}

/// A handle on the coordinator: its fixed facts, and calls to its driver.
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
}

impl std::ops::Deref for Cluster {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// Starts the driver as a task of `tasks`, stopping when `token` is cancelled; returns its
/// handle.
pub fn spawn(
    identity: Identity,
    state: State,
    tasks: &TaskTracker,
    token: CancellationToken,
) -> Cluster {
    let Identity { authority, listen, binary_sha256, state_dir, files, spool_dir } = identity;
    let dashboard_token = super::dashboard::access::TokenStore::open(&state_dir);
    let shared = Arc::new(Shared {
        authority,
        listen,
        binary_sha256,
        state_dir,
        files,
        spool_dir,
        journal: state.journal.clone(),
        admission: Default::default(),
        rollout_lock: tokio::sync::Mutex::new(()),
        refusal_log: Mutex::new(crate::logging::Throttle::new(REFUSALS_LOGGED, REFUSAL_WINDOW)),
        dashboard_token,
        logs: Mutex::new(crate::logbook::LogBook::with_own(crate::logbook::outbox())),
        side_counts: SideCounts::default(),
        started: Instant::now(),
        stop: watch::channel(None).0,
    });
    let (tx, rx) = mpsc::channel(QUEUE);
    let cluster = Cluster { shared, commands: tx };
    let driver = Driver {
        state,
        commands: rx,
        streams: HashMap::new(),
        chunks: TaskTracker::new(),
        cluster: cluster.clone(),
        token,
    };
    tasks.spawn(driver.run());
    cluster
}

impl Shared {
    /// Whether a refusal of a peer may be logged now: `Some(n)` with the refusals held back
    /// before it, `None` to stay silent (see [`crate::logging::Throttle`]).
    pub fn refusals_to_log(&self) -> Option<u64> {
        let mut throttle = self.refusal_log.lock().unwrap_or_else(|p| p.into_inner());
        throttle.allow(Instant::now())
    }

    /// Stops the coordinator so that `marmotd` re-executes its (new) binary.
    pub fn request_restart(&self) {
        self.stop.send_replace(Some(Stopped::Restart));
    }

    /// Resolves when a stop was requested from inside (a restart), with how.
    pub async fn stop_requested(&self) -> Stopped {
        let mut rx = self.stop.subscribe();
        let stop = rx.wait_for(Option::is_some).await.map(|stop| stop.clone()).ok().flatten();
        stop.unwrap_or(Stopped::Shutdown)
    }
}

impl Cluster {
    /// Runs `f` on the driver's state and returns its answer.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State, Instant) -> R + Send + 'static,
    ) -> Result<R, ClusterError> {
        let (tx, rx) = oneshot::channel();
        let call = Command::Call(Box::new(move |state, now| {
            let _ = tx.send(f(state, now));
        }));
        self.commands.send(call).await.map_err(|_| ClusterError::stopping())?;
        rx.await.map_err(|_| ClusterError::stopping())
    }

    /// Runs a fallible `f` on the driver's state.
    pub async fn try_call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State, Instant) -> Result<R, ClusterError> + Send + 'static,
    ) -> Result<R, ClusterError> {
        self.call(f).await?
    }

    /// Reports how a chunk stream ended.
    pub async fn chunk_ended(
        &self,
        assignment: AssignmentId,
        outcome: Option<Result<ChunkOutput, String>>,
    ) {
        let _ = self.commands.send(Command::ChunkEnded { assignment, outcome }).await;
    }

    /// Queues a job from `client`. Answered before the journal commits it (within a fraction
    /// of a millisecond), except when its id opens a new block of reserved ids: that waits for
    /// the reservation, so no id is ever given twice.
    pub async fn submit(
        &self,
        spec: proto::job::JobSpec,
        verify: Option<f64>,
        client: String,
    ) -> Result<JobView, ClusterError> {
        let (view, reservation) = self
            .try_call(move |s, now| {
                let workers = s.registry.len();
                let view = s.jobs.submit(now, spec, verify, workers, &client)?;
                let reservation = s.jobs.take_reservation().then(|| s.journal_records());
                Ok((view, reservation))
            })
            .await?;
        if let Some(kept) = reservation {
            self.journal.synced(kept).await;
        }
        Ok(view)
    }

    pub async fn workers(&self) -> Result<Vec<proto::api::WorkerView>, ClusterError> {
        self.call(|s, now| s.workers(now)).await
    }

    pub async fn status(&self) -> Result<Status, ClusterError> {
        let status = self.status_maker();
        self.call(move |s, _| status(s)).await
    }

    /// Makes the status, in the driver, from what only this handle knows.
    fn status_maker(&self) -> impl FnOnce(&State) -> Status + Send + 'static {
        let (binary_sha256, listen, uptime) =
            (self.binary_sha256.clone(), self.listen.to_string(), self.started.elapsed());
        move |s| {
            let load = s.jobs.load();
            Status {
                version: crate::update::version::current().to_string(),
                binary_sha256,
                listen,
                uptime_seconds: uptime.as_secs_f64(),
                workers: s.registry.len(),
                slots: load.slots,
                slots_busy: load.slots_busy,
                chunks_queued: load.chunks_queued,
                jobs_running: s.jobs.running(),
            }
        }
    }

    /// Everything the dashboard shows: the jobs [`super::dashboard::shown_jobs`] picks, and the
    /// last [`EVENTS`] lines of the coordinator's log.
    pub async fn overview(&self) -> Result<proto::api::Overview, ClusterError> {
        let status = self.status_maker();
        let (status, workers, jobs, mut counters) = self
            .call(move |s, now| (status(s), s.workers(now), s.jobs.list(now), s.counters()))
            .await?;
        let jobs = super::dashboard::shown_jobs(jobs);
        self.side_counts.fill(&mut counters);
        let events = self.logs.lock().unwrap_or_else(|p| p.into_inner()).events(EVENTS);
        Ok(proto::api::Overview { status, workers, jobs, counters, events })
    }
}

struct Driver {
    state: State,
    commands: mpsc::Receiver<Command>,
    /// Cancel handles of the chunk streams in flight.
    streams: HashMap<AssignmentId, CancellationToken>,
    /// The chunk streams' tasks: waited for on shutdown.
    chunks: TaskTracker,
    /// A handle for the chunk streams to report on.
    cluster: Cluster,
    token: CancellationToken,
}

impl Driver {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = self.token.cancelled() => break,
                command = self.commands.recv() => match command {
                    Some(Command::Call(f)) => f(&mut self.state, Instant::now()),
                    Some(Command::ChunkEnded { assignment, outcome }) => {
                        self.chunk_ended(assignment, outcome)
                    }
                    None => break,
                },
                _ = tick.tick() => self.state.jobs.tick(Instant::now()),
            }
            self.carry_out();
        }
        // Teardown: no more calls (a caller waiting for room is answered at once, so a chunk
        // stream reporting its end cannot wait forever), every chunk stream is stopped, and
        // waited for.
        self.commands.close();
        for (_, stream) in self.streams.drain() {
            stream.cancel();
        }
        self.chunks.close();
        self.chunks.wait().await;
        // Last, the journal commits what it was given and closes.
        self.state.journal_records();
        let journal = self.state.journal.clone();
        let _ = tokio::task::spawn_blocking(move || journal.close()).await;
    }

    fn chunk_ended(
        &mut self,
        assignment: AssignmentId,
        outcome: Option<Result<ChunkOutput, String>>,
    ) {
        if self.streams.remove(&assignment).is_none() {
            return; // stopped by an order: the scheduler has forgotten it
        }
        let now = Instant::now();
        match outcome {
            Some(Ok(output)) => self.state.jobs.chunk_finished(now, assignment, output),
            Some(Err(error)) => self.state.jobs.chunk_failed(now, assignment, error),
            // A lost connection is its session's to report (as a lost worker, not a failure).
            None => {}
        }
    }

    /// Opens and stops chunk streams as the job table ordered, and journals what happened.
    fn carry_out(&mut self) {
        self.state.journal_records();
        for order in self.state.jobs.take_orders() {
            match order {
                Order::Run { assignment, worker, request, input } => {
                    // The scheduler only knows registered workers.
                    let Some(w) = self.state.registry.get(worker) else { continue };
                    let cancel = w.session.child_token();
                    self.streams.insert(assignment, cancel.clone());
                    let worker = w.hello.name.clone();
                    let conn = w.conn.clone();
                    let stream = chunk::Stream { conn, worker, assignment, request, input };
                    self.chunks.spawn(chunk::run(self.cluster.clone(), stream, cancel));
                }
                Order::Stop { assignment } => {
                    if let Some(cancel) = self.streams.remove(&assignment) {
                        cancel.cancel();
                    }
                }
                Order::DropSpool { job } => {
                    let dir = crate::tasks::cmd::spool_dir(&self.cluster.spool_dir, job);
                    self.chunks.spawn_blocking(move || {
                        let _ = std::fs::remove_dir_all(dir);
                    });
                }
            }
        }
    }
}
