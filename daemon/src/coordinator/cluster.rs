//! The coordinator's shared state: the worker registry, the jobs, and the scheduler that ties
//! them together.
//!
//! Every change goes through [`Cluster::apply`]: feed the scheduler one event, then carry out
//! its actions in order (start a chunk stream, cancel one, fold a result in, end a job). It runs
//! under one std mutex that is never held across an `.await`; anything slow (network I/O) is
//! spawned, and reports back through `apply` again.

use super::chunk;
use super::jobs::{JobRecord, TakenChunk, ABANDONED_AFTER};
use crate::kernels::freefall;
use crate::scheduler::{
    self, Action, AssignmentId, ChunkIndex, Event, JobId, Outcome, Scheduler, WorkerId,
};
use crate::transport::codes;
use certs::Authority;
use proto::api::{BenchResult, JobView, PingResult, RevokeReply, Status, WorkerView};
use proto::task::{ChunkOutput, CountSource, Fall, TaskSpec};
use proto::wire::{ChunkRequest, Control, Hello};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How many ended jobs are kept for `jobs` and `wait`.
const KEEP_ENDED_JOBS: usize = 100;

/// Why a control request cannot be served; the control API maps these to HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// A connected worker.
pub struct WorkerEntry {
    pub hello: Hello,
    pub conn: quinn::Connection,
    since: SystemTime,
    control: mpsc::UnboundedSender<Control>,
    /// Datagrams received at the last check, and when that count last moved.
    last_rx: (u64, Instant),
}

struct Inner {
    scheduler: Scheduler<ChunkOutput>,
    workers: BTreeMap<WorkerId, WorkerEntry>,
    jobs: BTreeMap<JobId, JobRecord>,
    ended: VecDeque<JobId>,
    /// Jobs waiting or running at once, at most: each holds its spec and inputs.
    max_running_jobs: usize,
    /// Cancel handles of the chunk streams in flight.
    assignments: HashMap<AssignmentId, CancellationToken>,
    /// The last benchmark of each worker by name (kept across reconnections): pi samples per
    /// second of each slot.
    slot_rates: HashMap<String, Vec<f64>>,
    next_worker: WorkerId,
    next_job: JobId,
    /// Workers (by name) whose results two others contradicted: no chunks until cleared.
    quarantined: BTreeSet<String>,
    /// The share of chunks verified unless a job says otherwise.
    verify: f64,
}

/// The coordinator's state, shared by the QUIC side and the control API.
/// Refusals of peers logged per [`REFUSAL_WINDOW`]; more are counted, not logged.
const REFUSALS_LOGGED: u32 = 10;
const REFUSAL_WINDOW: Duration = Duration::from_secs(10);

pub struct Cluster {
    inner: Mutex<Inner>,
    epoch: Instant,
    pub authority: Authority,
    pub listen: SocketAddr,
    /// SHA-256 of the coordinator's own binary.
    pub binary_sha256: String,
    /// Where the coordinator keeps its state (CA, keys, uploaded binaries).
    pub state_dir: PathBuf,
    /// Bumped after every change of workers, jobs or assignments, for those waiting on one.
    changes: watch::Sender<u64>,
    shutdown: CancellationToken,
    restart: AtomicBool,
    /// Held while an update rolls out: one at a time.
    pub rollout_lock: tokio::sync::Mutex<()>,
    /// Refusals of peers (joins, hellos) logged: at most a burst per window.
    refusal_log: Mutex<crate::logging::Throttle>,
    /// Connections not yet authenticated: bounded in all and per source address.
    pub admission: super::admission::Admission,
}

/// What the coordinator is, for [`Cluster::new`].
pub struct Identity {
    pub authority: Authority,
    pub listen: SocketAddr,
    pub binary_sha256: String,
    pub state_dir: PathBuf,
}

impl Cluster {
    pub fn new(
        identity: Identity,
        config: scheduler::Config,
        max_running_jobs: usize,
        verify: f64,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let Identity { authority, listen, binary_sha256, state_dir } = identity;
        Arc::new(Cluster {
            inner: Mutex::new(Inner {
                scheduler: Scheduler::new(config),
                workers: BTreeMap::new(),
                jobs: BTreeMap::new(),
                ended: VecDeque::new(),
                max_running_jobs,
                quarantined: BTreeSet::new(),
                verify,
                assignments: HashMap::new(),
                slot_rates: super::scores::load(&state_dir),
                next_worker: 1,
                next_job: 1,
            }),
            epoch: Instant::now(),
            authority,
            listen,
            binary_sha256,
            state_dir,
            changes: watch::channel(0).0,
            shutdown,
            restart: AtomicBool::new(false),
            rollout_lock: tokio::sync::Mutex::new(()),
            refusal_log: Mutex::new(crate::logging::Throttle::new(REFUSALS_LOGGED, REFUSAL_WINDOW)),
            admission: Default::default(),
        })
    }

    /// Whether a refusal of a peer may be logged now: `Some(n)` with the refusals held back
    /// before it, `None` to stay silent (see [`crate::logging::Throttle`]).
    pub fn refusals_to_log(&self) -> Option<u64> {
        let mut throttle = self.refusal_log.lock().unwrap_or_else(|p| p.into_inner());
        throttle.allow(Instant::now())
    }

    /// A receiver that changes after any change of workers, jobs or assignments.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Stops the coordinator so that `marmotd` re-executes its (new) binary.
    pub fn request_restart(&self) {
        self.restart.store(true, Ordering::SeqCst);
        self.shutdown.cancel();
    }

    pub fn restart_requested(&self) -> bool {
        self.restart.load(Ordering::SeqCst)
    }

    /// The connected workers' hellos, by id.
    pub fn hellos(&self) -> Vec<(WorkerId, Hello)> {
        self.lock().workers.iter().map(|(&id, w)| (id, w.hello.clone())).collect()
    }

    /// A connected worker's connection.
    pub fn connection(&self, id: WorkerId) -> Option<quinn::Connection> {
        self.lock().workers.get(&id).map(|w| w.conn.clone())
    }

    /// Chunks running on a worker; `None` once it is gone.
    pub fn busy_slots(&self, id: WorkerId) -> Option<u32> {
        let inner = self.lock();
        inner.workers.contains_key(&id).then(|| inner.scheduler.busy_slots(id))
    }

    /// Stops giving a worker new chunks (`resume: false`), or starts again.
    pub fn set_draining(self: &Arc<Self>, id: WorkerId, draining: bool) {
        let mut inner = self.lock();
        if inner.workers.contains_key(&id) {
            let event = if draining {
                Event::WorkerDraining { worker: id }
            } else {
                Event::WorkerResumed { worker: id }
            };
            self.apply(&mut inner, event);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves state that is still consistent enough to
        // serve (every mutation is a single scheduler step), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ----- workers -----

    /// Adds a worker whose session was welcomed. A live session of the same name is taken to
    /// be this worker's previous connection (a reconnect beat the idle timeout) and replaced.
    pub fn register(
        self: &Arc<Self>,
        hello: Hello,
        conn: quinn::Connection,
        control: mpsc::UnboundedSender<Control>,
    ) -> WorkerId {
        let mut inner = self.lock();
        let stale: Vec<WorkerId> = inner
            .workers
            .iter()
            .filter(|(_, w)| w.hello.name == hello.name)
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            if let Some(old) = inner.workers.remove(&id) {
                old.conn.close(crate::transport::codes::REPLACED, b"replaced by a new connection");
            }
            self.apply(&mut inner, Event::WorkerLost { worker: id });
        }
        let id = inner.next_worker;
        inner.next_worker += 1;
        let slots = hello.slots;
        let entry = WorkerEntry {
            hello,
            conn,
            since: SystemTime::now(),
            control,
            last_rx: (0, Instant::now()),
        };
        let quarantined = inner.quarantined.contains(&entry.hello.name);
        inner.workers.insert(id, entry);
        self.apply(&mut inner, Event::WorkerJoined { worker: id, slots, quarantined });
        id
    }

    /// Removes a worker whose connection ended; its chunks run elsewhere.
    pub fn unregister(self: &Arc<Self>, id: WorkerId) {
        let mut inner = self.lock();
        if inner.workers.remove(&id).is_some() {
            self.apply(&mut inner, Event::WorkerLost { worker: id });
        }
    }

    /// Notes how many datagrams a worker's connection has received, for "last seen".
    pub fn touch(&self, id: WorkerId, datagrams: u64) {
        let mut inner = self.lock();
        if let Some(w) = inner.workers.get_mut(&id) {
            if w.last_rx.0 != datagrams {
                w.last_rx = (datagrams, Instant::now());
            }
        }
    }

    /// The connected workers, by name.
    pub fn workers(&self) -> Vec<WorkerView> {
        let inner = self.lock();
        let mut list = inner
            .workers
            .iter()
            .map(|(&id, w)| {
                (id, w, inner.slot_rates.get(&w.hello.name).cloned().unwrap_or_default())
            })
            .map(|(id, w, rates)| WorkerView {
                name: w.hello.name.clone(),
                address: w.conn.remote_address().to_string(),
                slots: w.hello.slots,
                slots_busy: inner.scheduler.busy_slots(id),
                version: w.hello.version.clone(),
                binary_sha256: w.hello.binary_sha256.clone(),
                arch: w.hello.arch.clone(),
                os: w.hello.os.clone(),
                connected_since: w.since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                last_seen_ms: w.last_rx.1.elapsed().as_millis() as u64,
                rtt_ms: w.conn.rtt().as_secs_f64() * 1e3,
                score: (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / 1e9),
                slot_scores: rates.iter().map(|r| r / 1e9).collect(),
                quarantined: inner.quarantined.contains(&w.hello.name),
            })
            .collect::<Vec<_>>();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Tells the named workers (all when `names` is empty) to hand back their chunks and exit.
    /// They take no new chunks from now on; their running chunks are queued again when their
    /// connections close. Returns the names told.
    pub fn tell_exit(self: &Arc<Self>, names: &[String]) -> Result<Vec<String>, ClusterError> {
        let mut inner = self.lock();
        let targets: Vec<WorkerId> =
            select_workers(&inner, names)?.into_iter().map(|(id, _)| id).collect();
        let mut told = vec![];
        for id in targets {
            let Some(w) = inner.workers.get(&id) else { continue };
            if w.control.send(Control::Exit).is_ok() {
                told.push(w.hello.name.clone());
                self.apply(&mut inner, Event::WorkerDraining { worker: id });
            }
        }
        Ok(told)
    }

    /// Lets a quarantined worker take chunks again.
    pub fn clear(self: &Arc<Self>, name: &str) -> Result<(), ClusterError> {
        let mut inner = self.lock();
        if !inner.quarantined.remove(name) {
            return Err(ClusterError::NotFound(format!("worker '{name}' is not quarantined")));
        }
        let ids: Vec<WorkerId> =
            inner.workers.iter().filter(|(_, w)| w.hello.name == name).map(|(&id, _)| id).collect();
        for worker in ids {
            self.apply(&mut inner, Event::WorkerCleared { worker });
        }
        tracing::info!("cleared worker '{name}': it takes chunks again");
        Ok(())
    }

    /// Revokes the certificate of the worker `name` and closes its live session, if any.
    pub fn revoke(&self, name: &str) -> Result<RevokeReply, ClusterError> {
        let revoked = self
            .authority
            .revoke_worker(name)
            .map_err(|e| ClusterError::Internal(format!("cannot record the revocation: {e}")))?
            .ok_or_else(|| {
                ClusterError::NotFound(format!(
                    "no worker named '{name}' holds a certificate of this cluster"
                ))
            })?;
        let inner = self.lock();
        let live: Vec<&WorkerEntry> =
            inner.workers.values().filter(|w| w.hello.name == name).collect();
        for w in &live {
            w.conn.close(codes::REFUSED, b"certificate revoked");
        }
        tracing::warn!("revoked the certificate of worker '{name}'");
        Ok(RevokeReply {
            worker: name.to_string(),
            key_sha256: revoked.key_sha256,
            disconnected: !live.is_empty(),
        })
    }

    /// Pings the named workers (all when `names` is empty), each bounded by `timeout`.
    pub async fn ping(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<Vec<PingResult>, ClusterError> {
        let targets: Vec<(String, quinn::Connection)> = {
            let inner = self.lock();
            select_workers(&inner, names)?
                .into_iter()
                .map(|(_, w)| (w.hello.name.clone(), w.conn.clone()))
                .collect()
        };
        let pings = targets.into_iter().map(|(name, conn)| async move {
            match tokio::time::timeout(timeout, chunk::ping(&conn)).await {
                Ok(Ok(rtt)) => {
                    PingResult { worker: name, rtt_ms: Some(rtt.as_secs_f64() * 1e3), error: None }
                }
                Ok(Err(e)) => PingResult { worker: name, rtt_ms: None, error: Some(e.to_string()) },
                Err(_) => PingResult { worker: name, rtt_ms: None, error: Some("timeout".into()) },
            }
        });
        let mut results = futures_util::future::join_all(pings).await;
        results.sort_by(|a, b| a.worker.cmp(&b.worker));
        Ok(results)
    }

    /// Runs the benchmark on every slot of every worker at once for `length`, and keeps the
    /// scores for chunk sizing.
    pub async fn bench(&self, length: Duration) -> Vec<BenchResult> {
        let targets: Vec<(String, quinn::Connection, u32)> = {
            let inner = self.lock();
            let target = |w: &WorkerEntry| (w.hello.name.clone(), w.conn.clone(), w.hello.slots);
            inner.workers.values().map(target).collect()
        };
        let limit = length + Duration::from_secs(10);
        let runs = targets.into_iter().map(|(name, conn, slots)| async move {
            let outcome = tokio::time::timeout(limit, chunk::bench(&conn, length, slots)).await;
            (name, outcome.map_err(|_| anyhow::anyhow!("no answer in time")).and_then(|r| r))
        });
        let outcomes = futures_util::future::join_all(runs).await;
        let mut inner = self.lock();
        let mut results: Vec<BenchResult> = outcomes
            .into_iter()
            .map(|(worker, outcome)| match outcome {
                Ok(rates) => {
                    inner.slot_rates.insert(worker.clone(), rates.clone());
                    BenchResult {
                        worker,
                        score: Some(rates.iter().sum::<f64>() / 1e9),
                        slot_scores: rates.iter().map(|r| r / 1e9).collect(),
                        error: None,
                    }
                }
                Err(e) => BenchResult {
                    worker,
                    score: None,
                    slot_scores: vec![],
                    error: Some(format!("{e:#}")),
                },
            })
            .collect();
        let scores = inner.slot_rates.clone();
        drop(inner);
        super::scores::save(&self.state_dir, &scores);
        results.sort_by(|a, b| a.worker.cmp(&b.worker));
        results
    }

    // ----- jobs -----

    /// Queues a job.
    pub fn submit(
        self: &Arc<Self>,
        spec: TaskSpec,
        verify: Option<f64>,
    ) -> Result<JobView, ClusterError> {
        let spec = prepare(spec)?;
        if let Some(v) = verify.filter(|v| !(0.0..=1.0).contains(v)) {
            return Err(ClusterError::Invalid(format!(
                "--verify takes a share of chunks from 0 to 1 (e.g. 0.05), not {v}"
            )));
        }
        let mut inner = self.lock();
        if inner.workers.is_empty() {
            return Err(ClusterError::Unavailable(
                "no workers are connected: start one with `marmotd worker --coordinator HOST:PORT --token TOKEN`".into(),
            ));
        }
        let running = inner.jobs.len() - inner.ended.len();
        if running >= inner.max_running_jobs {
            return Err(ClusterError::Unavailable(format!(
                "{} are already waiting or running: wait for some to end, or cancel some \
                 (`marmotctl jobs`)",
                proto::human::count(running as u64, "job", "jobs")
            )));
        }
        let id = inner.next_job;
        inner.next_job += 1;
        let mut record = JobRecord::new(id, spec);
        record.verify = verify.unwrap_or(inner.verify);
        let shape = record.shape(speed_factor(&inner));
        inner.jobs.insert(id, record);
        self.apply(&mut inner, Event::JobSubmitted { job: id, shape });
        job_view(&inner, id)
    }

    /// Takes chunk `chunk` of a series job's results if it is ready, else returns a receiver
    /// that changes when it may be. Also returns the job's view, for its chunk and unit totals.
    pub fn take_chunk(
        self: &Arc<Self>,
        id: JobId,
        chunk: ChunkIndex,
    ) -> Result<(Result<TakenChunk, watch::Receiver<u64>>, JobView), ClusterError> {
        let mut inner = self.lock();
        let view = job_view(&inner, id)?;
        let record = inner.jobs.get_mut(&id).expect("job_view found it");
        let Some(taken) = record.take_chunk(chunk)? else {
            return Ok((Err(record.subscribe_series()), view));
        };
        if let Some(upto) = record.window() {
            self.apply(&mut inner, Event::JobWindow { job: id, upto });
        }
        Ok((Ok(taken), view))
    }

    /// Cancels a running job (a no-op on an ended one).
    pub fn cancel(self: &Arc<Self>, id: JobId) -> Result<JobView, ClusterError> {
        let mut inner = self.lock();
        job_view(&inner, id)?;
        self.apply(&mut inner, Event::JobCancelled { job: id });
        job_view(&inner, id)
    }

    pub fn job(&self, id: JobId) -> Result<(JobView, watch::Receiver<bool>), ClusterError> {
        let inner = self.lock();
        let view = job_view(&inner, id)?;
        Ok((view, inner.jobs[&id].subscribe()))
    }

    pub fn jobs(&self) -> Vec<JobView> {
        let inner = self.lock();
        inner.jobs.keys().filter_map(|&id| job_view(&inner, id).ok()).collect()
    }

    pub fn status(&self) -> Status {
        let inner = self.lock();
        let load = inner.scheduler.load();
        Status {
            version: crate::update::version::current().to_string(),
            binary_sha256: self.binary_sha256.clone(),
            listen: self.listen.to_string(),
            uptime_seconds: self.epoch.elapsed().as_secs_f64(),
            workers: inner.workers.len(),
            slots: load.slots,
            slots_busy: load.slots_busy,
            chunks_queued: load.chunks_queued,
            jobs_running: inner.jobs.values().filter(|j| !j.state.is_finished()).count(),
        }
    }

    // ----- events from chunk streams and timers -----

    pub fn chunk_finished(self: &Arc<Self>, assignment: AssignmentId, result: ChunkOutput) {
        let mut inner = self.lock();
        inner.assignments.remove(&assignment);
        self.apply(&mut inner, Event::ChunkFinished { assignment, result });
    }

    pub fn chunk_failed(self: &Arc<Self>, assignment: AssignmentId, error: String) {
        let mut inner = self.lock();
        inner.assignments.remove(&assignment);
        self.apply(&mut inner, Event::ChunkFailed { assignment, error });
    }

    pub fn tick(self: &Arc<Self>) {
        let mut inner = self.lock();
        self.apply(&mut inner, Event::Tick);
        let now = Instant::now();
        let abandoned: Vec<JobId> = inner
            .jobs
            .iter_mut()
            .filter_map(|(&id, record)| record.abandoned(now, ABANDONED_AFTER).then_some(id))
            .collect();
        for job in abandoned {
            tracing::warn!("job {job}: its client stopped taking results; cancelling it");
            self.apply(&mut inner, Event::JobCancelled { job });
        }
    }

    /// Feeds one event to the scheduler and carries out its actions.
    fn apply(self: &Arc<Self>, inner: &mut Inner, event: Event<ChunkOutput>) {
        self.changes.send_modify(|n| *n += 1);
        let now = self.epoch.elapsed();
        let mut actions: VecDeque<_> = inner.scheduler.handle(now, event).into();
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Assign { assignment, worker, job, chunk, start, end } => {
                    let (Some(w), Some(record)) =
                        (inner.workers.get(&worker), inner.jobs.get(&job))
                    else {
                        // The scheduler only knows registered workers and running jobs.
                        continue;
                    };
                    let request =
                        ChunkRequest { job, chunk, task: record.chunk_spec(start), start, end };
                    let input = record.chunk_input(start, end);
                    let (conn, cancel) = (w.conn.clone(), CancellationToken::new());
                    inner.assignments.insert(assignment, cancel.clone());
                    tokio::spawn(chunk::run(
                        self.clone(),
                        conn,
                        assignment,
                        request,
                        input,
                        cancel,
                    ));
                }
                Action::Cancel { assignment, .. } => {
                    if let Some(cancel) = inner.assignments.remove(&assignment) {
                        cancel.cancel();
                    }
                }
                Action::Reduce { job, chunk, worker, start, end, result } => {
                    let name = inner
                        .workers
                        .get(&worker)
                        .map_or_else(|| format!("worker-{worker}"), |w| w.hello.name.clone());
                    let answered = inner
                        .jobs
                        .get_mut(&job)
                        .is_some_and(|record| record.reduce(&name, (chunk, start, end), result));
                    if answered {
                        actions.extend(inner.scheduler.handle(now, Event::JobAnswered { job }));
                    }
                }
                Action::Quarantine { worker, job, chunk } => {
                    let Some(w) = inner.workers.get(&worker) else { continue };
                    let name = w.hello.name.clone();
                    tracing::warn!(
                        "worker '{name}' returned a result for chunk {chunk} of job {job} that \
                         two other workers contradicted: quarantined (no more chunks) until \
                         `marmotctl clear {name}`"
                    );
                    inner.quarantined.insert(name);
                }
                Action::JobEnded { job, outcome, progress } => {
                    let speed = speed_factor(inner);
                    let next = match (&outcome, inner.jobs.get_mut(&job)) {
                        (Outcome::Done, Some(record)) => record.next_phase(speed),
                        _ => None,
                    };
                    if let Some(shape) = next {
                        let event = Event::JobSubmitted { job, shape };
                        actions.extend(inner.scheduler.handle(now, event));
                        continue;
                    }
                    if let Some(record) = inner.jobs.get_mut(&job) {
                        if let Outcome::Failed(message) = &outcome {
                            tracing::warn!("job {job} failed: {message}");
                        }
                        record.end(outcome, progress);
                    }
                    inner.ended.push_back(job);
                    while inner.ended.len() > KEEP_ENDED_JOBS {
                        if let Some(old) = inner.ended.pop_front() {
                            inner.jobs.remove(&old);
                        }
                    }
                }
            }
        }
    }
}

/// How the benchmarked slots compare with the slot the tasks' nominal rates assume (one that
/// does [`crate::kernels::NOMINAL_PI_RATE`] pi samples per second); 1 before any benchmark.
fn speed_factor(inner: &Inner) -> f64 {
    let rates: Vec<f64> = inner
        .workers
        .values()
        .filter_map(|w| inner.slot_rates.get(&w.hello.name))
        .flatten()
        .copied()
        .collect();
    if rates.is_empty() {
        return 1.0;
    }
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    (mean / crate::kernels::NOMINAL_PI_RATE).clamp(0.01, 100.0)
}

fn job_view(inner: &Inner, id: JobId) -> Result<JobView, ClusterError> {
    let record = inner.jobs.get(&id).ok_or_else(|| {
        ClusterError::NotFound(format!("no job {id}: `marmotctl jobs` lists the recent ones"))
    })?;
    Ok(record.view(inner.scheduler.progress(id)))
}

/// The named workers, or all of them when `names` is empty.
fn select_workers<'a>(
    inner: &'a Inner,
    names: &[String],
) -> Result<Vec<(WorkerId, &'a WorkerEntry)>, ClusterError> {
    if names.is_empty() {
        return Ok(inner.workers.iter().map(|(&id, w)| (id, w)).collect());
    }
    names
        .iter()
        .map(|name| {
            inner
                .workers
                .iter()
                .find(|(_, w)| &w.hello.name == name)
                .map(|(&id, w)| (id, w))
                .ok_or_else(|| {
                    ClusterError::NotFound(format!(
                        "unknown worker '{name}': `marmotctl workers` lists the connected ones"
                    ))
                })
        })
        .collect()
}

/// Refuses specs no kernel can run, and fills in what the coordinator knows (a file's size).
pub fn prepare(spec: TaskSpec) -> Result<TaskSpec, ClusterError> {
    let invalid = |m: String| Err(ClusterError::Invalid(m));
    match spec {
        TaskSpec::Pi { samples: 0, .. } => invalid("pi needs at least 1 sample".into()),
        TaskSpec::Count { ref letter, .. } if crate::kernels::one_char(letter).is_err() => {
            invalid(format!("count needs exactly one character to count, not '{letter}'"))
        }
        TaskSpec::Count { source: CountSource::Streamed, .. } => {
            invalid("count needs --random, --text or --file".into())
        }
        TaskSpec::Count { letter, ignore_case, source: CountSource::File { path, .. } } => {
            // Opened now, with the coordinator's own rights, so a file it cannot read is
            // refused at once instead of failing on every worker in turn.
            let unreadable = |e: std::io::Error| {
                ClusterError::Invalid(format!(
                    "the coordinator cannot read {path}: {e}. It reads files with its own \
                     rights (under systemd: user marmot, with /home, /root and /tmp hidden): \
                     put the file where that user can read it, e.g. under /srv/marmot"
                ))
            };
            // Checked before opening: opening a FIFO would block until a writer came.
            if !std::fs::metadata(&path).map_err(unreadable)?.is_file() {
                return invalid(format!("{path} is not a regular file: count reads files"));
            }
            let meta = std::fs::File::open(&path).and_then(|f| f.metadata()).map_err(unreadable)?;
            let source = CountSource::File { path, bytes: meta.len() };
            Ok(TaskSpec::Count { letter, ignore_case, source })
        }
        TaskSpec::Freefall { fall, .. } => {
            freefall::validate(&fall).map_err(ClusterError::Invalid)?;
            // Without drag the points are known now; with drag, once the survey has run.
            let points = if fall.drag == 0.0 {
                freefall::vacuum_points(&fall).map_err(|e| ClusterError::Invalid(e.to_string()))?
            } else {
                0
            };
            Ok(TaskSpec::Freefall { fall, points })
        }
        TaskSpec::Sweep { fall, from, to, steps } => {
            let fall = Fall { drag: from.max(to), ..fall };
            freefall::validate(&fall).map_err(ClusterError::Invalid)?;
            if !(from >= 0.0 && to >= 0.0) {
                return invalid(format!("drag values must be zero or positive, not {from}:{to}"));
            }
            if !(1..=freefall::MAX_SWEEP_STEPS).contains(&steps) {
                return invalid(format!(
                    "a sweep takes 1 to {} drag values, not {steps}",
                    freefall::MAX_SWEEP_STEPS
                ));
            }
            Ok(TaskSpec::Sweep { fall: Fall { drag: 0.0, ..fall }, from, to, steps })
        }
        TaskSpec::FreefallFrom { .. } | TaskSpec::Survey { .. } => {
            invalid("this task is a freefall's inner step: submit a freefall".into())
        }
        spec => Ok(spec),
    }
}
