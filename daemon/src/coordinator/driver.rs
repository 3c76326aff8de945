//! The one owner of the coordinator's state: a task that holds the worker registry and the job
//! table (with the scheduler), and changes them only as it receives calls on its channel.
//!
//! Everything else holds a [`Cluster`]: a cheap handle with the coordinator's fixed
//! [`Facts`] (its CA, address, binary), the [`Stores`] chunks' conversations use, and the
//! sending end of that channel. Sessions, the control API and the fleet operations *call* the
//! driver with a closure over the [`State`] and get its answer on a oneshot channel; nobody
//! else ever touches the state (the jobs, the workers, the journal, the log book and the
//! counts), so there is no lock on it, and no call cycle: a chunk stream reports its end as one
//! more message on the same channel ([`chunk::Ended`]).
//!
//! After each call and each tick the driver carries out the job table's orders: it opens a
//! chunk stream as a task it tracks, with a token that is a child of the worker's session
//! token, or cancels one. On shutdown it cancels its chunk streams and waits for them.

use super::error::ClusterError;
use super::jobs::{Jobs, Order};
use super::registry::{Joining, NotConnected, Registry};
use super::{chunk, Stopped};
use crate::exec::ahead;
use crate::exec::cache::{FileCache, Pinned};
use crate::journal::Journal;
use crate::logbook::LogBook;
use crate::scheduler::{AssignmentId, JobId, WorkerId};
use crate::tasks::Stores;
use crate::throttle::Throttle;
use certs::Authority;
use proto::api::{JobState, JobView, Leaving, Status};
use proto::job::JobSpec;
use proto::logs::LogLine;
use proto::wire::ChunkOutput;
use std::collections::{BTreeMap, HashMap};
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
    /// Where the job table's records go, and ended jobs are read from.
    pub journal: Journal,
    /// Log lines from the workers, and the coordinator's own.
    pub logs: LogBook,
    /// Counts of what happened beside the jobs: log lines, updates.
    pub counts: SideCounts,
    /// The files in the store each queued or running command job needs, pinned until it ends.
    pub pinned: HashMap<JobId, Vec<Pinned>>,
}

impl State {
    /// A new state around the job table, the registry and the journal.
    pub fn new(jobs: Jobs, registry: Registry, journal: Journal) -> Self {
        let logs = LogBook::with_own(crate::logbook::outbox());
        let pinned = HashMap::new();
        State { jobs, registry, journal, logs, counts: SideCounts::default(), pinned }
    }
}

impl State {
    /// Pins the files of the command jobs resumed on start, as their submission did.
    pub fn pin_resumed(&mut self, now: Instant, files: &FileCache) {
        for view in self.jobs.list(now) {
            let (JobState::Running, JobSpec::Cmd(spec)) = (view.state, &view.spec) else {
                continue;
            };
            match crate::tasks::cmd::pin_files(files, spec) {
                Ok(pins) => drop(self.pinned.insert(view.id, pins)),
                Err(e) => tracing::warn!("job {}: {e}; units that need those files fail", view.id),
            }
        }
    }

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
        self.jobs.set_claimed_speeds(self.registry.claimed_speeds());
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
            self.jobs.set_claimed_speeds(self.registry.claimed_speeds());
        }
    }

    /// Tells the named workers (all when `names` is empty) to hand back their chunks and exit.
    /// They take no new chunks from now on; their running chunks are queued again when their
    /// connections close. Returns the names told.
    pub fn tell_exit(
        &mut self,
        now: Instant,
        names: &[String],
    ) -> Result<Vec<String>, NotConnected> {
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

/// What never changes while the coordinator runs.
pub struct Facts {
    /// The cluster CA (which keeps its join secret behind its own lock).
    pub authority: Authority,
    pub listen: SocketAddr,
    /// SHA-256 of the coordinator's own binary.
    pub binary_sha256: String,
    /// Where the coordinator keeps its state (CA, keys, uploaded binaries).
    pub state_dir: PathBuf,
    pub started: Instant,
    /// Places of the connections not authenticated yet (the accept loop's).
    pub admission: super::admission::Admission,
}

/// Counts kept beside the job table, for `/metrics` and the dashboard.
#[derive(Default)]
pub struct SideCounts {
    pub log_lines_received: u64,
    pub log_lines_refused: u64,
    /// Machines' update outcomes, by status.
    pub updates: BTreeMap<String, u64>,
}

impl SideCounts {
    /// Adds these counts to `counters`.
    pub fn fill(&self, counters: &mut proto::api::Counters) {
        counters.log_lines_received = self.log_lines_received;
        counters.log_lines_refused = self.log_lines_refused;
        counters.updates = self.updates.clone();
    }

    /// Counts one machine's update outcome.
    pub fn update_ended(&mut self, status: proto::api::UpdateStatus) {
        let word = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        *self.updates.entry(word).or_default() += 1;
    }
}

impl State {
    /// Keeps a worker's batch of log lines, already checked, or counts it refused.
    pub fn take_logs(&mut self, worker: &str, lines: Vec<LogLine>, refused: bool) {
        let n = lines.len() as u64;
        if refused {
            self.counts.log_lines_refused += n;
        } else {
            self.counts.log_lines_received += n;
            self.logs.add(Some(worker), lines);
        }
    }
}

/// Refusals of peers (joins, hellos, connections past the admission's bound) logged: at most
/// a burst per window, shared by every session.
pub struct Refusals(Mutex<Throttle>);

impl Default for Refusals {
    fn default() -> Self {
        Refusals(Mutex::new(Throttle::new(REFUSALS_LOGGED, REFUSAL_WINDOW)))
    }
}

impl Refusals {
    /// Whether a refusal of a peer may be logged now: `Some(n)` with the refusals held back
    /// before it, `None` to stay silent (see [`Throttle`]).
    pub fn to_log(&self) -> Option<u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).allow(Instant::now())
    }
}

/// A closure over the state, run by the driver at the time it is given.
type Call = Box<dyn FnOnce(&mut State, Instant) + Send>;

enum Command {
    Call(Call),
    /// A chunk stream ended.
    ChunkEnded(chunk::Ended),
}

impl From<chunk::Ended> for Command {
    fn from(ended: chunk::Ended) -> Self {
        Command::ChunkEnded(ended)
    }
}

/// A handle on the coordinator: its fixed facts, its stores, the refusals' log throttle,
/// its stop signal, and calls to its driver.
#[derive(Clone)]
pub struct Cluster {
    facts: Arc<Facts>,
    stores: Arc<Stores>,
    refusals: Arc<Refusals>,
    /// Set when the coordinator must stop from inside, with how.
    stop: Arc<watch::Sender<Option<Stopped>>>,
    /// Set when the coordinator begins to stop, with what its clients are told.
    leaving: Arc<watch::Sender<Option<Leaving>>>,
    commands: mpsc::Sender<Command>,
}

/// Starts the driver as a task of `tasks`, stopping when `token` is cancelled; returns its
/// handle.
pub fn spawn(
    facts: Facts,
    stores: Stores,
    state: State,
    tasks: &TaskTracker,
    token: CancellationToken,
) -> Cluster {
    let (tx, rx) = mpsc::channel(QUEUE);
    let stores = Arc::new(stores);
    let cluster = Cluster {
        facts: Arc::new(facts),
        stores: stores.clone(),
        refusals: Arc::default(),
        stop: Arc::new(watch::channel(None).0),
        leaving: Arc::new(watch::channel(None).0),
        commands: tx.clone(),
    };
    let driver = Driver {
        state,
        stores,
        commands: rx,
        reports: tx,
        streams: HashMap::new(),
        chunks: TaskTracker::new(),
        token,
    };
    tasks.spawn(driver.run());
    cluster
}

impl Cluster {
    /// What never changes while the coordinator runs.
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// The files users uploaded, and where output waits.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// Whether a refusal of a peer may be logged now (see [`Refusals::to_log`]).
    pub fn refusals_to_log(&self) -> Option<u64> {
        self.refusals.to_log()
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

    /// The coordinator begins to stop: its clients are told `how` from now on.
    pub fn leave(&self, how: Leaving) {
        self.leaving.send_replace(Some(how));
    }

    /// How the coordinator leaves, once it has begun to.
    pub fn leaving_now(&self) -> Option<Leaving> {
        *self.leaving.borrow()
    }

    /// Resolves when the coordinator begins to stop, with how it leaves.
    pub async fn leaving(&self) -> Leaving {
        let mut rx = self.leaving.subscribe();
        let how = rx.wait_for(Option::is_some).await.ok().and_then(|how| *how);
        how.unwrap_or(Leaving::Stopping)
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

    /// Queues a job from `client` (refused when no worker is connected and `wait_for_workers`
    /// is false). Answered before the journal commits it (within a fraction of a millisecond),
    /// except when its id opens a new block of reserved ids: that waits for the reservation,
    /// so no id is ever given twice.
    pub async fn submit(
        &self,
        spec: proto::job::JobSpec,
        verify: Option<f64>,
        wait_for_workers: bool,
        client: String,
    ) -> Result<JobView, ClusterError> {
        let spec = match spec {
            proto::job::JobSpec::Cmd(mut cmd) if cmd.inputs_file.is_some() => {
                let files = self.stores.files.clone();
                let read = tokio::task::spawn_blocking(move || {
                    crate::tasks::cmd::read_inputs_file(&files, &mut cmd).map(|()| cmd)
                });
                let cmd = read.await.map_err(|e| ClusterError::Internal(e.to_string()))?;
                proto::job::JobSpec::Cmd(cmd.map_err(|e| ClusterError::Invalid(e.0))?)
            }
            spec => spec,
        };
        // Space just freed is found now, not at the journal's next retry.
        let journal = self.journal().await?;
        if journal.failing().is_some() {
            journal.retry_now().await;
        }
        let files = self.stores.files.clone();
        let (view, reservation) = self
            .try_call(move |s, now| {
                // An accepted job is a journaled job: none is taken that a restart would lose.
                if let Some(reason) = s.journal.failing() {
                    return Err(ClusterError::Unavailable(format!(
                        "the coordinator cannot write its journal {} ({reason}), so it takes no \
                         new job: free space there (it tries again every second), then submit \
                         again",
                        s.journal.path().display()
                    )));
                }
                if !wait_for_workers && s.registry.is_empty() {
                    return Err(ClusterError::Unavailable(
                        "no workers are connected (and --no-wait-for-workers was given): start \
                         one with `marmotd worker --coordinator HOST:PORT --token TOKEN`"
                            .into(),
                    ));
                }
                let pins = match &spec {
                    proto::job::JobSpec::Cmd(cmd) => crate::tasks::cmd::pin_files(&files, cmd)
                        .map_err(|e| ClusterError::Invalid(e.0))?,
                    _ => vec![],
                };
                let view = s.jobs.submit(now, spec, verify, &client);
                let view = match view {
                    Ok(view) => view,
                    Err(e) => {
                        pins.into_iter().for_each(|pin| files.release(pin));
                        return Err(e);
                    }
                };
                if !pins.is_empty() {
                    s.pinned.insert(view.id, pins);
                }
                let reservation =
                    s.jobs.take_reservation().then(|| (s.journal.clone(), s.journal_records()));
                Ok((view, reservation))
            })
            .await?;
        if let Some((journal, kept)) = reservation {
            journal.synced(kept).await;
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
        let facts = &self.facts;
        let (binary_sha256, listen, uptime) =
            (facts.binary_sha256.clone(), facts.listen.to_string(), facts.started.elapsed());
        let members = facts.authority.member_count();
        let waiting = facts.admission.waiting();
        move |s| {
            let load = s.jobs.load();
            Status {
                version: crate::update::version::current().to_string(),
                binary_sha256,
                listen,
                uptime_seconds: uptime.as_secs_f64(),
                workers: s.registry.len(),
                members,
                slots: load.slots,
                slots_busy: load.slots_busy,
                chunks_queued: load.chunks_queued,
                jobs_running: s.jobs.running(),
                waiting,
                journal_failing: s.journal.failing(),
            }
        }
    }

    /// Everything the dashboard shows, with every job in memory (the dashboard picks which
    /// to show), and the last [`EVENTS`] lines of the coordinator's log.
    pub async fn overview(&self) -> Result<proto::api::Overview, ClusterError> {
        let status = self.status_maker();
        self.call(move |s, now| {
            let mut counters = s.counters();
            s.counts.fill(&mut counters);
            proto::api::Overview {
                status: status(s),
                workers: s.workers(now),
                jobs: s.jobs.list(now),
                counters,
                events: s.logs.events(EVENTS),
            }
        })
        .await
    }

    /// The journal, for reading ended jobs from it.
    pub async fn journal(&self) -> Result<Journal, ClusterError> {
        self.call(|s, _| s.journal.clone()).await
    }
}

struct Driver {
    state: State,
    /// What chunks' conversations use.
    stores: Arc<Stores>,
    commands: mpsc::Receiver<Command>,
    /// Where chunk streams report how they ended: the same channel as calls.
    reports: mpsc::Sender<Command>,
    /// Cancel handles of the chunk streams in flight.
    streams: HashMap<AssignmentId, CancellationToken>,
    /// The chunk streams' tasks: waited for on shutdown.
    chunks: TaskTracker,
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
                    Some(Command::ChunkEnded(chunk::Ended { assignment, outcome, kept })) => {
                        self.chunk_ended(assignment, outcome, kept)
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
        // Last, the journal commits what it was given, and gives back the ids reserved but
        // not given, and closes.
        self.state.jobs.release_ids();
        self.state.journal_records();
        let journal = self.state.journal.clone();
        let _ = tokio::task::spawn_blocking(move || journal.close()).await;
    }

    /// Hands a chunk's end to the job table; once what that made is in the journal, tells
    /// its stream (`kept`), which then ends and lets the worker drop the chunk.
    fn chunk_ended(
        &mut self,
        assignment: AssignmentId,
        outcome: Option<Result<ChunkOutput, chunk::Failure>>,
        kept: tokio::sync::oneshot::Sender<()>,
    ) {
        if self.streams.remove(&assignment).is_none() {
            return; // stopped by an order: the scheduler has forgotten it
        }
        let now = Instant::now();
        match outcome {
            Some(Ok(output)) => {
                self.state.jobs.chunk_finished(now, assignment, output);
                let (journal, batch) = (self.state.journal.clone(), self.state.journal_records());
                // Not past the driver's end: a journal that cannot write (a full disk) would
                // hold the teardown, which closes it after the chunk streams.
                let token = self.token.clone();
                self.chunks.spawn(async move {
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = journal.synced(batch) => { let _ = kept.send(()); }
                    }
                });
            }
            Some(Err(chunk::Failure::Chunk(error))) => {
                self.state.jobs.chunk_failed(now, assignment, error)
            }
            Some(Err(chunk::Failure::DiskFull(error))) => {
                self.state.jobs.chunk_failed_for_good(now, assignment, error)
            }
            // A lost connection is its session's to report (as a lost worker, not a failure).
            None => {}
        }
    }

    /// Opens and stops chunk streams as the job table ordered, and journals what happened.
    fn carry_out(&mut self) {
        let batch = self.state.journal_records();
        for order in self.state.jobs.take_orders() {
            match order {
                Order::Run { assignment, worker, request, talk } => {
                    // The scheduler only knows registered workers.
                    let Some(w) = self.state.registry.get(worker) else { continue };
                    let cancel = w.session.child_token();
                    self.streams.insert(assignment, cancel.clone());
                    let worker = w.hello.name.clone();
                    let conn = w.conn.clone();
                    // A command's units act on the world: they are sent only once the journal
                    // says they were given, so a coordinator killed in between awaits them from
                    // their worker rather than run them again elsewhere. (A built-in chunk run
                    // twice costs only time: it goes at once.)
                    let given = request.task.cmd().is_some().then(|| self.state.journal.clone());
                    let stream = chunk::Stream { conn, worker, assignment, request, talk };
                    let (reports, stores) = (self.reports.clone(), self.stores.clone());
                    self.chunks.spawn(async move {
                        if let Some(journal) = given {
                            // Cancelled meanwhile, the stream says so at once.
                            tokio::select! {
                                _ = cancel.cancelled() => {}
                                _ = journal.synced(batch) => {}
                            }
                        }
                        chunk::run(reports, stream, stores, cancel).await
                    });
                }
                Order::Stop { assignment } => {
                    if let Some(cancel) = self.streams.remove(&assignment) {
                        cancel.cancel();
                    }
                }
                Order::SendAhead { worker, files } => {
                    let Some(w) = self.state.registry.get(worker) else { continue };
                    let (conn, cancel) = (w.conn.clone(), w.session.child_token());
                    let store = self.stores.files.clone();
                    self.chunks.spawn(async move {
                        let sent = cancel.run_until_cancelled(ahead::send(&conn, files, &store));
                        if let Some(Err(e)) = sent.await {
                            tracing::debug!("files sent ahead did not all arrive: {e:#}");
                        }
                    });
                }
                Order::Forget { job } => {
                    self.chunks.spawn_blocking(self.stores.forget(job));
                }
                Order::Ended { job } => {
                    if let Some(pins) = self.state.pinned.remove(&job) {
                        let files = self.stores.files.clone();
                        self.chunks.spawn_blocking(move || {
                            pins.into_iter().for_each(|pin| files.release(pin));
                        });
                    }
                }
            }
        }
    }
}
