//! The coordinator's work, sans-IO: the job table and the scheduler, with every task's phases.
//!
//! [`Jobs`] takes what happens (workers joining and leaving, jobs submitted and cancelled,
//! chunk results, time) and answers with [`Order`]s for the driver to carry out (open a chunk
//! stream, stop one). It holds no sockets or tasks and reads no clock: the time comes in with
//! each call, so tests drive it as the driver does, without a network.
//!
//! The scheduler decides *whether* a result counts (exactly once per chunk); the job's task
//! (`crate::tasks`) decides *what* it adds up to and whether another phase follows.
//!
//! What must outlive the coordinator comes out as [`Record`]s ([`Jobs::take_records`]) for
//! the journal, and goes back in on start with [`Jobs::resume`]: every job that was running
//! goes on from the chunks it had counted, cut into chunks as it was; a command job's
//! deliveries of output are numbered as before, so its client goes on where it was, and
//! output an ended command job's client had not taken still waits for it.

use super::error::ClusterError;
use super::holdings::Holdings;
use crate::exec::outbox::{Delivery, Outbox, Take};
use crate::exec::spool::Spool;
use crate::journal::{Leftover, Record, Recovered, RecoveredJob, Spooled};
use crate::scheduler::{
    Action, AssignmentId, ChunkIndex, ChunkPlan, Event, Homes, JobId, JobShape, Load, Outcome,
    Progress, Scheduler, WorkerId,
};
use crate::tasks::{self, Fold, Job, Run, TakenChunk, Talk};
use proto::api::{Counters, JobState, JobView};
use proto::job::JobSpec;
use proto::result::{JobResult, WorkerShare};
use proto::wire::{ChunkKey, ChunkOutput, ChunkRequest};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How many ended jobs are kept in memory for `jobs` and `wait`; older ones are read from the
/// journal.
pub const KEEP_ENDED_JOBS: usize = 100;

/// Job ids are reserved in the journal this many at a time (see [`Record::Reserved`]).
const ID_BLOCK: JobId = 1024;

/// A series job whose client has not asked for a chunk for this long, while results wait for
/// it, is cancelled: the client is gone (killed, or its machine asleep) and would hold the job
/// and its window of results forever. Longer than the longest long poll (60 s).
pub const ABANDONED_AFTER: Duration = Duration::from_secs(180);

/// What the driver must do for the work to go on.
pub enum Order {
    /// Open a stream to `worker` for a chunk: send the request (and its input), report the
    /// reply with [`Jobs::chunk_finished`] or [`Jobs::chunk_failed`].
    Run { assignment: AssignmentId, worker: WorkerId, request: ChunkRequest, talk: Talk },
    /// Stop that stream (its result, if one still comes, would be dropped anyway).
    Stop { assignment: AssignmentId },
    /// Forget a job whose record is gone and whose units printed: what waits for its
    /// client is let go.
    Forget { job: JobId },
    /// A job ended: what it held while it might run (its files in the store) is let go.
    Ended { job: JobId },
    /// Send these input files to `worker`'s cache ahead of the units that need them
    /// ([`crate::exec::ahead`]).
    SendAhead { worker: WorkerId, files: Vec<proto::command::FileRef> },
}

/// The answer for a job that is not in memory.
fn no_job(id: JobId) -> ClusterError {
    ClusterError::NotFound(format!("no job {id}: `marmotctl jobs --all` lists every job kept"))
}

/// A delivery of job `job`'s output as the journal keeps it.
fn delivery(spool: &Spool, job: JobId, spooled: &Spooled) -> Delivery {
    let Spooled { ref file, first_unit, units, .. } = *spooled;
    // (Its size counts only for running jobs' bound: the job has ended.)
    Delivery { spool: spool.file(job, file), first_unit, units, bytes: 0 }
}

/// What asking for a delivery of a command job's output gave.
pub struct TakenOutput {
    pub take: Take,
    /// For `NotYet`: changes when it may be ready.
    pub changed: Option<watch::Receiver<()>>,
    /// Spool files the client is done with, for the caller to remove.
    pub let_go: Vec<PathBuf>,
}

/// Chunks that ran shorter than this say little of their worker's speed: not counted.
const MIN_TIMED_CHUNK: Duration = Duration::from_millis(20);

/// A chunk of a built-in task sent to a worker, for timing it.
struct Sent {
    at: Instant,
    worker: WorkerId,
    units: u64,
    /// Its task's units per second on the nominal slot.
    nominal: f64,
}

/// Tunables of the job table.
pub struct JobsConfig {
    pub scheduler: crate::scheduler::Config,
    /// Jobs waiting or running at once, at most: each holds its spec and inputs.
    pub max_running: usize,
    /// The share of chunks verified unless a job says otherwise.
    pub verify: f64,
    pub spool: SpoolBounds,
}

/// How much command jobs' output may wait in the spool for their clients: past a bound, a
/// job's chunks wait (those running finish) until its client takes some.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpoolBounds {
    /// Bytes one job's output may hold (`--spool-per-job`).
    pub per_job: u64,
    /// Bytes all jobs' output may hold together (`--spool`).
    pub total: u64,
}

impl Default for SpoolBounds {
    /// Sized for a laptop's disk: 1 GiB a job, 4 GiB in all.
    fn default() -> Self {
        SpoolBounds { per_job: 1 << 30, total: 4 << 30 }
    }
}

/// The jobs, the scheduler that runs them, and what it knows of workers.
pub struct Jobs {
    scheduler: Scheduler<ChunkOutput>,
    records: BTreeMap<JobId, JobRecord>,
    ended: VecDeque<JobId>,
    /// Jobs that ended before the coordinator started, as the journal keeps them, oldest
    /// first: with `ended`, the recent jobs, at most [`KEEP_ENDED_JOBS`].
    earlier: VecDeque<JobView>,
    /// Output of command jobs that ended before the coordinator started, still waiting for
    /// their clients.
    leftovers: BTreeMap<JobId, Outbox>,
    max_running: usize,
    verify: f64,
    spool: SpoolBounds,
    /// Output was spooled or let go since [`Jobs::hold_spooled`] last looked.
    spool_changed: bool,
    next_job: JobId,
    /// Ids up to this one are reserved in the journal.
    reserved: JobId,
    /// A reservation was made since [`Jobs::take_reservation`]: it must be kept before the id
    /// is given.
    reserving: bool,
    /// Connected workers' names, for shares and quarantine.
    names: HashMap<WorkerId, String>,
    /// Workers (by name) whose results two others contradicted: no chunks until cleared.
    quarantined: BTreeSet<String>,
    /// How each connected worker's slots compare with the tasks' nominal slot: as seen, from
    /// the chunks it finished ([`Jobs::chunk_finished`]), and as it claims (its bench scores,
    /// used until work was seen).
    observed_speeds: HashMap<String, f64>,
    claimed_speeds: HashMap<String, f64>,
    /// When each running chunk of a built-in task was sent, to whom, its units and its task's
    /// nominal rate: what [`Jobs::chunk_finished`] times.
    sent: HashMap<AssignmentId, Sent>,
    /// The input files each member's cache holds, as far as this coordinator sent them: a
    /// job's units go where their files are.
    holdings: Holdings,
    /// A speed fixed by a test.
    #[cfg(test)]
    pinned_speed: Option<f64>,
    /// The scheduler's clock starts here.
    epoch: Instant,
    orders: Vec<Order>,
    /// What happened that the journal must keep, since the last [`Jobs::take_records`].
    journal: Vec<Record>,
    /// Announces every change, for those waiting on one.
    changes: watch::Sender<()>,
    /// Counts since the coordinator started, for `/metrics` and the dashboard.
    counters: Counters,
    /// Chunks and units counted per worker name since the coordinator started.
    done_by_worker: HashMap<String, (u64, u64)>,
    /// The Unix time of `epoch` in milliseconds, once [`Jobs::resume`] told it.
    epoch_unix_ms: Option<u64>,
}

impl Jobs {
    pub fn new(config: JobsConfig, epoch: Instant) -> Self {
        Jobs {
            scheduler: Scheduler::new(config.scheduler),
            records: BTreeMap::new(),
            ended: VecDeque::new(),
            earlier: VecDeque::new(),
            leftovers: BTreeMap::new(),
            max_running: config.max_running,
            verify: config.verify,
            spool: config.spool,
            spool_changed: false,
            next_job: 1,
            reserved: 0,
            reserving: false,
            names: HashMap::new(),
            quarantined: BTreeSet::new(),
            observed_speeds: HashMap::new(),
            claimed_speeds: HashMap::new(),
            sent: HashMap::new(),
            holdings: Holdings::of_default_caches(),
            #[cfg(test)]
            pinned_speed: None,
            epoch,
            orders: vec![],
            journal: vec![],
            changes: watch::channel(()).0,
            counters: Counters::default(),
            done_by_worker: HashMap::new(),
            epoch_unix_ms: None,
        }
    }

    /// Counts since the coordinator started (those of chunks and jobs; the caller adds the
    /// rest).
    pub fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// Chunks and units counted from worker `name` since the coordinator started.
    pub fn done_by(&self, name: &str) -> (u64, u64) {
        self.done_by_worker.get(name).copied().unwrap_or_default()
    }

    /// Whether the records taken since the last call reserve ids: if so, the job just
    /// submitted may be answered only once they are kept.
    pub fn take_reservation(&mut self) -> bool {
        std::mem::take(&mut self.reserving)
    }

    /// At a clean stop, after every other record: gives back the ids reserved but not given,
    /// so the next start goes on from the last one given.
    pub fn release_ids(&mut self) {
        let last = self.next_job - 1;
        if self.reserved > last {
            self.reserved = last;
            self.journal.push(Record::Released { last });
        }
    }

    /// What the journal must keep since the last call, in order.
    pub fn take_records(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.journal)
    }

    /// Takes back what the journal kept: ids go on after the last one given, and every job
    /// that was running runs on from the chunks it had counted (at `now`, `now_ms` in Unix
    /// milliseconds, for how long ago each was submitted); output of command jobs waits in
    /// `spool` for their clients.
    pub fn resume(&mut self, now: Instant, now_ms: i64, recovered: Recovered, spool: &Spool) {
        let since_epoch = now.saturating_duration_since(self.epoch).as_millis() as u64;
        self.epoch_unix_ms = u64::try_from(now_ms).ok().map(|ms| ms.saturating_sub(since_epoch));
        self.next_job = self.next_job.max(recovered.last_job + 1);
        self.reserved = self.reserved.max(recovered.last_job);
        for job in recovered.running {
            let id = job.id;
            self.next_job = self.next_job.max(id + 1);
            if let Err(why) = self.resume_job(now, now_ms, job, spool) {
                tracing::warn!("job {id} cannot be resumed: {why}");
                self.journal.push(Record::Abandoned { job: id, error: why });
                self.journal.push(Record::Forgotten { job: id });
            }
        }
        for leftover in recovered.leftovers {
            self.keep_leftover(now, leftover, spool);
        }
    }

    /// Keeps the output an ended command job's client had not taken, as it was numbered.
    fn keep_leftover(&mut self, now: Instant, leftover: Leftover, spool: &Spool) {
        let id = leftover.id;
        let Ok(JobSpec::Cmd(spec)) = leftover.request else {
            self.journal.push(Record::Forgotten { job: id });
            return;
        };
        let mut outbox = Outbox::new(spec.keep_order);
        for spooled in &leftover.deliveries {
            outbox.add(0, delivery(spool, id, spooled));
        }
        outbox.flush();
        let taken = u64::from(leftover.taken);
        if outbox.count() <= taken {
            self.journal.push(Record::Forgotten { job: id });
            return;
        }
        outbox.take(taken, now);
        self.leftovers.insert(id, outbox);
    }

    /// The spool files of every job's output still waiting for its client, by job: what a
    /// start keeps of the spool.
    pub fn spooled_files(&mut self) -> HashMap<JobId, HashSet<String>> {
        let mut files = HashMap::new();
        let leftovers = self.leftovers.iter_mut();
        let records = self.records.iter_mut().filter_map(|(&id, r)| Some((id, r.job.outbox()?)));
        for (id, outbox) in leftovers.map(|(&id, o)| (id, o)).chain(records) {
            let names = outbox.files().filter_map(|path| path.file_name()?.to_str());
            files.insert(id, names.map(str::to_string).collect());
        }
        files
    }

    fn resume_job(
        &mut self,
        now: Instant,
        now_ms: i64,
        kept: RecoveredJob,
        spool: &Spool,
    ) -> Result<(), String> {
        let id = kept.id;
        let spec = kept.request?;
        let job = tasks::job(spec).map_err(|e| e.0)?;
        let ago = Duration::from_millis(now_ms.saturating_sub(kept.submitted_ms).max(0) as u64);
        let mut record = JobRecord::new(id, job, kept.verify, now.checked_sub(ago).unwrap_or(now));
        record.client = kept.client;
        let last = kept.phases.last().map(|p| p.phase);
        let mut resumed = None;
        let mut folded = Fold::Added;
        let prints = record.job.outbox().is_some();
        for phase in &kept.phases {
            if phase.phase != record.phase {
                break;
            }
            let shape = record.job.shape();
            let streamed = shape.window.is_some() && !prints;
            let plan = ChunkPlan { units: phase.units, chunk_units: phase.chunk_units.max(1) };
            if plan.units != shape.units {
                // Not this phase as the task cuts it now: it runs again whole.
                break;
            }
            let mut done = BTreeMap::new();
            let mut rows: Vec<_> = kept.chunks.iter().filter(|c| c.phase == phase.phase).collect();
            // A command's deliveries are numbered in the order its chunks were counted.
            rows.sort_by_key(|row| row.spooled.as_ref().map(|s| s.seq));
            for row in rows {
                let fits = u64::from(row.chunk) < plan.len() as u64
                    && plan.range(row.chunk) == (row.start, row.end);
                if !fits {
                    continue;
                }
                if streamed {
                    // Taken by the client: done. Held for it when the coordinator stopped:
                    // gone with it, so run again.
                    if row.chunk < kept.taken {
                        done.insert(row.chunk, row.worker.clone());
                        record.count_share(&row.worker, row.end - row.start);
                    }
                    continue;
                }
                let Some(mut output) = row.output.clone() else { continue };
                if prints {
                    // Counted only with the output it printed.
                    let (ChunkOutput::Cmd { spool: file, .. }, Some(spooled)) =
                        (&mut output, &row.spooled)
                    else {
                        continue;
                    };
                    *file = Some(spool.file(id, &spooled.file));
                    record.spooled = record.spooled.max(spooled.seq + 1);
                }
                let task = record.job.chunk(row.start, row.end, 0).task;
                if tasks::check_output(&task, row.start, row.end, &output).is_err() {
                    continue;
                }
                done.insert(row.chunk, row.worker.clone());
                if shape.revocable {
                    record.outputs.insert(row.chunk, output.clone());
                }
                match record.reduce(&row.worker, (row.chunk, row.start, row.end), output) {
                    Fold::Added => {}
                    Fold::Answered => folded = Fold::Answered,
                    Fold::Closing if folded == Fold::Added => folded = Fold::Closing,
                    Fold::Closing => {}
                }
            }
            if Some(phase.phase) != last && done.len() == plan.len() && record.job.next_phase() {
                record.phase += 1;
                continue;
            }
            if streamed {
                if let Some(series) = record.job.series() {
                    series.resume_at(kept.taken);
                }
            }
            let given = kept.given.iter().filter(|g| g.phase == phase.phase);
            let given = given.map(|g| (g.chunk, g.member.clone())).collect::<Vec<_>>();
            resumed = Some((plan, done, given));
            break;
        }
        if let Some(outbox) = record.job.outbox() {
            // What the client took before is gone; it goes on from the next delivery.
            outbox.take(u64::from(kept.taken), now);
        }
        let shape = record.shape(self.speed());
        let window = record.window();
        self.records.insert(id, record);
        match resumed {
            Some((plan, done, given)) => {
                tracing::info!(
                    "job {id} resumed: {} of its {} chunks were counted before the restart",
                    done.len(),
                    plan.len()
                );
                self.apply(now, Event::JobResumed { job: id, shape, plan, done, given });
                match folded {
                    Fold::Added => {}
                    Fold::Answered => self.apply(now, Event::JobAnswered { job: id }),
                    Fold::Closing => self.apply(now, Event::JobClosing { job: id }),
                }
            }
            None => {
                tracing::info!("job {id}: its current phase starts again from its beginning");
                self.start_phase(now, id, shape);
            }
        }
        if let Some(upto) = window {
            self.apply(now, Event::JobWindow { job: id, upto });
        }
        Ok(())
    }

    /// Hands job `id`'s current phase to the scheduler, journals how it was cut, and carries
    /// out what follows.
    fn start_phase(&mut self, now: Instant, id: JobId, shape: JobShape) {
        let at = now.saturating_duration_since(self.epoch);
        let homes = self.homes(id, shape.units);
        let actions = self.scheduler.handle(at, Event::JobSubmitted { job: id, shape, homes });
        self.phase_started(id);
        self.changes.send_replace(());
        self.carry_out(at, now, actions.into());
    }

    /// Where the files of the `units` units of job `id`'s current phase are, as far as this
    /// coordinator sent them ([`Holdings`]): none for a job whose units have no files.
    fn homes(&self, id: JobId, units: u64) -> Homes {
        let mut homes = Homes::none();
        let Some(job) = self.records.get(&id).map(|r| &r.job) else { return homes };
        if self.holdings.is_empty() || job.unit_file(0).is_none() {
            return homes;
        }
        for unit in 0..units {
            let Some(file) = job.unit_file(unit) else { continue };
            if let Some(member) = self.holdings.holder(&file.sha256) {
                homes.0.entry(member.to_string()).or_default().push(unit);
            }
        }
        homes
    }

    /// The input files of units `start..end` of job `id`'s current phase, once each: they go
    /// to `worker` now, whose cache holds them then ([`Holdings`]).
    fn took_files(
        &mut self,
        worker: WorkerId,
        id: JobId,
        (start, end): (u64, u64),
    ) -> Vec<proto::command::FileRef> {
        let (Some(record), Some(member)) = (self.records.get(&id), self.names.get(&worker)) else {
            return vec![];
        };
        let mut files: Vec<proto::command::FileRef> = vec![];
        for file in (start..end).filter_map(|unit| record.job.unit_file(unit)) {
            if !files.iter().any(|f| f.sha256 == file.sha256) {
                self.holdings.took(member, &file.sha256, file.size);
                files.push(file.clone());
            }
        }
        files
    }

    /// Journals how the current phase of job `id` was cut, if it runs.
    /// `name` was caught lying: every job with results of its, running or ended, says so.
    /// (A running revocable job takes them back next, [`Action::Revoked`], and stops saying so.)
    fn caught_lying(&mut self, now: Instant, name: &str) {
        let mut reviewed = vec![];
        for (&id, record) in &mut self.records {
            if record.shares.contains_key(name) && record.caught_lying.insert(name.to_string()) {
                reviewed.push(id);
            }
        }
        for id in reviewed {
            let ended = self.records.get(&id).is_some_and(|r| r.ended.is_some());
            if let (true, Ok(view)) = (ended, self.view(now, id)) {
                self.journal.push(Record::Reviewed { job: id, view: Box::new(view) });
            }
        }
        for view in &mut self.earlier {
            let had = view.workers.iter().any(|w| w.name == name);
            if had && !view.caught_lying.iter().any(|n| n == name) {
                view.caught_lying.push(name.to_string());
                self.journal.push(Record::Reviewed { job: view.id, view: Box::new(view.clone()) });
            }
        }
    }

    fn phase_started(&mut self, id: JobId) {
        let (Some(plan), Some(record)) = (self.scheduler.plan(id), self.records.get(&id)) else {
            return;
        };
        self.journal.push(Record::Phase {
            job: id,
            phase: record.phase,
            units: plan.units,
            chunk_units: plan.chunk_units,
        });
    }

    /// The orders given since the last call, in the order to carry them out.
    pub fn take_orders(&mut self) -> Vec<Order> {
        std::mem::take(&mut self.orders)
    }

    /// A receiver that changes after any change of workers, jobs or assignments.
    pub fn subscribe_changes(&self) -> watch::Receiver<()> {
        self.changes.subscribe()
    }

    /// Sets how fast each connected worker claims its slots are against the nominal one.
    pub fn set_claimed_speeds(&mut self, claimed: HashMap<String, f64>) {
        self.claimed_speeds = claimed;
    }

    /// How fast the cluster's slots are against the nominal one, which sizes new jobs' chunks:
    /// the lower median over connected workers (one vote each, whatever slots it claims) of
    /// the speed seen in its work, or before any, of its bench claim (the nominal slot's
    /// without either). A member claiming
    /// thousands of impossibly fast slots moves nothing while others outnumber it, and its
    /// claim stands only until it has done some work.
    fn speed(&self) -> f64 {
        #[cfg(test)]
        if let Some(pinned) = self.pinned_speed {
            return pinned;
        }
        let members: BTreeSet<&String> = self.names.values().collect();
        let mut speeds: Vec<f64> = members
            .into_iter()
            .map(|name| {
                let seen = self.observed_speeds.get(name);
                seen.or_else(|| self.claimed_speeds.get(name)).copied().unwrap_or(1.0)
            })
            .filter(|s| s.is_finite() && *s > 0.0)
            .collect();
        if speeds.is_empty() {
            return 1.0;
        }
        speeds.sort_by(f64::total_cmp);
        speeds[(speeds.len() - 1) / 2].clamp(0.01, 100.0)
    }

    // ----- workers -----

    /// A worker connected with `slots` slots; `exec` if it runs users' commands.
    pub fn worker_joined(
        &mut self,
        now: Instant,
        worker: WorkerId,
        name: &str,
        slots: u32,
        exec: bool,
    ) {
        let quarantined = self.quarantined.contains(name);
        self.names.insert(worker, name.to_string());
        let member = name.to_string();
        self.apply(now, Event::WorkerJoined { worker, member, slots, quarantined, exec });
    }

    /// The round trip to a worker, as its connection measures it: sizes its prefetch.
    pub fn worker_rtt(&mut self, now: Instant, worker: WorkerId, rtt: Duration) {
        if self.names.contains_key(&worker) {
            self.apply(now, Event::WorkerRtt { worker, rtt });
        }
    }

    /// A worker's connection ended: its chunks run elsewhere.
    pub fn worker_lost(&mut self, now: Instant, worker: WorkerId) {
        if self.names.remove(&worker).is_some() {
            self.apply(now, Event::WorkerLost { worker });
        }
    }

    /// Stops giving a worker new chunks (`draining`), or starts again.
    pub fn set_draining(&mut self, now: Instant, worker: WorkerId, draining: bool) {
        if self.names.contains_key(&worker) {
            let event = if draining {
                Event::WorkerDraining { worker }
            } else {
                Event::WorkerResumed { worker }
            };
            self.apply(now, event);
        }
    }

    /// Gives a worker chunks for `slots` of its slots from now on (0: none).
    pub fn set_slots_now(&mut self, now: Instant, worker: WorkerId, slots: u32) {
        if self.names.contains_key(&worker) {
            self.apply(now, Event::WorkerStanding { worker, slots });
        }
    }

    pub fn is_quarantined(&self, name: &str) -> bool {
        self.quarantined.contains(name)
    }

    /// Lets a quarantined worker take chunks again.
    pub fn clear(&mut self, now: Instant, name: &str) -> Result<(), ClusterError> {
        if !self.quarantined.remove(name) {
            return Err(ClusterError::NotFound(format!("worker '{name}' is not quarantined")));
        }
        let ids: Vec<WorkerId> =
            self.names.iter().filter(|(_, n)| *n == name).map(|(&id, _)| id).collect();
        for worker in ids {
            self.apply(now, Event::WorkerCleared { worker });
        }
        Ok(())
    }

    /// Chunks running on a worker.
    pub fn busy_slots(&self, worker: WorkerId) -> u32 {
        self.scheduler.busy_slots(worker)
    }

    pub fn load(&self) -> Load {
        self.scheduler.load()
    }

    // ----- jobs -----

    /// Queues a job (it waits for workers if none is connected); `client` says who submitted
    /// it, for the journal.
    pub fn submit(
        &mut self,
        now: Instant,
        spec: JobSpec,
        verify: Option<f64>,
        client: &str,
    ) -> Result<JobView, ClusterError> {
        let request = spec.clone();
        let job = tasks::job(spec).map_err(|e| ClusterError::Invalid(e.0))?;
        if let Some(v) = verify.filter(|v| !(0.0..=1.0).contains(v)) {
            return Err(ClusterError::Invalid(format!(
                "--verify takes a share of chunks from 0 to 1 (e.g. 0.05), not {v}"
            )));
        }
        let running = self.running();
        if running >= self.max_running {
            return Err(ClusterError::Unavailable(format!(
                "{} are already waiting or running: wait for some to end, or cancel some \
                 (`marmotctl jobs`)",
                proto::human::count(running as u64, "job", "jobs")
            )));
        }
        let id = self.next_job;
        self.next_job += 1;
        if id > self.reserved {
            self.reserved = id + ID_BLOCK - 1;
            self.reserving = true;
            self.journal.push(Record::Reserved { upto: self.reserved });
        }
        let verify = verify.unwrap_or(self.verify);
        let mut record = JobRecord::new(id, job, verify, now);
        record.client = client.to_string();
        let shape = record.shape(self.speed());
        self.records.insert(id, record);
        self.journal.push(Record::Submitted {
            job: id,
            request,
            verify,
            client: client.to_string(),
        });
        self.start_phase(now, id, shape);
        self.counters.jobs_submitted += 1;
        self.view(now, id)
    }

    /// A job's view, and a receiver that turns `true` when it ends. An ended job's result
    /// counts as read from now on.
    pub fn job(
        &mut self,
        now: Instant,
        id: JobId,
    ) -> Result<(JobView, watch::Receiver<bool>), ClusterError> {
        let view = self.view(now, id)?;
        let record = self.records.get_mut(&id).expect("view found it");
        if view.state.is_finished() && !record.read {
            record.read = true;
            self.journal.push(Record::Read { job: id });
        }
        Ok((view, record.ended_tx.subscribe()))
    }

    /// Running and recent jobs, by id.
    pub fn list(&self, now: Instant) -> Vec<JobView> {
        let mut views: Vec<JobView> = self.earlier.iter().cloned().collect();
        views.extend(self.records.keys().filter_map(|&id| self.view(now, id).ok()));
        views.sort_by_key(|v| v.id);
        views
    }

    /// Takes in the jobs that ended before this start, the last to end first as the journal
    /// lists them, so the recent jobs are the same after a restart as before it.
    pub fn remember_ended(&mut self, last_first: Vec<JobView>) {
        let room = KEEP_ENDED_JOBS.saturating_sub(self.ended.len());
        let recent = last_first.into_iter().filter(|v| !self.records.contains_key(&v.id));
        self.earlier = recent.take(room).collect();
        self.earlier.make_contiguous().reverse();
    }

    /// Jobs waiting or running: every record is one, or has ended and is in `ended`.
    pub fn running(&self) -> usize {
        self.records.len() - self.ended.len()
    }

    /// Cancels a running job (a no-op on an ended one).
    pub fn cancel(&mut self, now: Instant, id: JobId) -> Result<JobView, ClusterError> {
        self.view(now, id)?;
        self.apply(now, Event::JobCancelled { job: id });
        self.view(now, id)
    }

    /// Delivery `n` of a command job's output: `Ready`, `NotYet` (with a receiver that
    /// changes when it may be), or `Gone` (asked for before, or the job ended without it);
    /// with the spool files the client is done with, for the caller to remove.
    pub fn take_output(
        &mut self,
        now: Instant,
        id: JobId,
        n: u64,
    ) -> Result<TakenOutput, ClusterError> {
        let Some(record) = self.records.get_mut(&id) else {
            return self.take_leftover(now, id, n);
        };
        let (take, let_go) = record.take_output(now, n)?;
        let changed = (take == Take::NotYet).then(|| record.series_tx.subscribe());
        if !let_go.is_empty() {
            self.journal
                .push(Record::Taken { job: id, upto: u32::try_from(n).unwrap_or(u32::MAX) });
            self.spool_changed = true;
            self.hold_spooled(now);
        }
        Ok(TakenOutput { take, changed, let_go })
    }

    /// Delivery `n` of an ended command job's output kept through a restart; once the client
    /// has taken the last, the output is let go.
    fn take_leftover(
        &mut self,
        now: Instant,
        id: JobId,
        n: u64,
    ) -> Result<TakenOutput, ClusterError> {
        let outbox = self.leftovers.get_mut(&id).ok_or_else(|| no_job(id))?;
        let (mut take, let_go) = outbox.take(n, now);
        if take == Take::NotYet {
            take = Take::Gone;
            self.leftovers.remove(&id);
            self.forget(id);
        } else if !let_go.is_empty() {
            self.journal
                .push(Record::Taken { job: id, upto: u32::try_from(n).unwrap_or(u32::MAX) });
        }
        Ok(TakenOutput { take, changed: None, let_go })
    }

    /// Lets go of job `id`'s spooled output, in the spool and in the journal.
    fn forget(&mut self, id: JobId) {
        self.orders.push(Order::Forget { job: id });
        self.journal.push(Record::Forgotten { job: id });
    }

    /// Takes chunk `chunk` of a series job's results if it is ready, else returns a receiver
    /// that changes when it may be. Also returns the job's view, for its chunk and unit totals.
    pub fn take_chunk(
        &mut self,
        now: Instant,
        id: JobId,
        chunk: ChunkIndex,
    ) -> Result<(Result<TakenChunk, watch::Receiver<()>>, JobView), ClusterError> {
        let view = self.view(now, id)?;
        let record = self.records.get_mut(&id).expect("view found it");
        let Some(taken) = record.take_chunk(now, chunk)? else {
            return Ok((Err(record.series_tx.subscribe()), view));
        };
        self.journal.push(Record::Taken { job: id, upto: chunk.saturating_add(1) });
        if let Some(upto) = record.window() {
            self.apply(now, Event::JobWindow { job: id, upto });
        }
        Ok((Ok(taken), view))
    }

    // ----- chunk streams and time -----

    pub fn chunk_finished(&mut self, now: Instant, assignment: AssignmentId, result: ChunkOutput) {
        if let Some(sent) = self.sent.remove(&assignment) {
            self.observe(now, sent);
        }
        self.apply(now, Event::ChunkFinished { assignment, result });
        self.hold_spooled(now);
    }

    /// Holds the running command jobs whose output waiting for its client reached the
    /// spool's bounds (the job's own, or all jobs' together, for a job that holds some), and
    /// lets them go on once their clients have taken enough.
    ///
    /// Looks only when output was spooled or let go since it last did: it runs after every
    /// chunk of every task.
    fn hold_spooled(&mut self, now: Instant) {
        if !std::mem::take(&mut self.spool_changed) {
            return;
        }
        let outboxes = self.records.values_mut().filter_map(|r| r.job.outbox());
        let total: u64 = outboxes.map(|outbox| outbox.bytes()).sum();
        let mut changed = vec![];
        for (&id, record) in &mut self.records {
            let running = record.state == JobState::Running;
            let Some(bytes) = record.job.outbox().map(|outbox| outbox.bytes()).filter(|_| running)
            else {
                continue;
            };
            let held = bytes >= self.spool.per_job || (bytes > 0 && total >= self.spool.total);
            if held != record.held {
                record.held = held;
                changed.push((id, held, bytes));
            }
        }
        for (job, held, bytes) in changed {
            match held {
                true => tracing::info!(
                    "job {job}: {bytes} bytes of output wait for its client (the spool's bounds \
                     are {} a job, {} in all): its units wait until the client takes some",
                    self.spool.per_job,
                    self.spool.total
                ),
                false => tracing::info!("job {job}: its client took output; its units go on"),
            }
            self.apply(now, Event::JobHeld { job, held });
        }
    }

    /// Counts how fast a finished chunk ran on its worker's slot, against its task's nominal
    /// rate (a moving average per worker). Chunks too short to time well are left out.
    fn observe(&mut self, now: Instant, sent: Sent) {
        let took = now.saturating_duration_since(sent.at).as_secs_f64();
        let Some(name) = self.names.get(&sent.worker) else { return };
        if took < MIN_TIMED_CHUNK.as_secs_f64() || sent.nominal <= 0.0 {
            return;
        }
        let seen = sent.units as f64 / took / sent.nominal;
        let speed = self.observed_speeds.entry(name.clone()).or_insert(seen);
        *speed = 0.7 * *speed + 0.3 * seen;
    }

    pub fn chunk_failed(&mut self, now: Instant, assignment: AssignmentId, error: String) {
        self.sent.remove(&assignment);
        self.counters.chunks_failed += 1;
        self.apply(now, Event::ChunkFailed { assignment, error });
    }

    /// A chunk failed in a way that running it again cannot mend: its job fails, saying
    /// `error`.
    pub fn chunk_failed_for_good(&mut self, now: Instant, assignment: AssignmentId, error: String) {
        self.sent.remove(&assignment);
        self.counters.chunks_failed += 1;
        self.apply(now, Event::ChunkFailedForGood { assignment, error });
    }

    /// `worker` delivered a chunk's result held through a lost connection: counted if the
    /// chunk is one the job still runs, as it would be cut now, was given to the same member
    /// and still waits for a result (across a restart too: the journal keeps whom it gave
    /// what); dropped otherwise. Returns whether it completed its chunk (a verified chunk's
    /// first result waits for its check).
    pub fn chunk_delivered(
        &mut self,
        now: Instant,
        worker: WorkerId,
        request: &ChunkRequest,
        output: ChunkOutput,
    ) -> bool {
        let ChunkRequest { job, chunk, ref task, start, end } = *request;
        let Some(record) = self.records.get(&job) else { return false };
        let cut = self.scheduler.plan(job).filter(|plan| u64::from(chunk) < plan.len() as u64);
        let same = cut.is_some_and(|plan| plan.range(chunk) == (start, end))
            && record.job.chunk(start, end, 0).task == task.without_job_slot()
            && tasks::check_output(task, start, end, &output).is_ok();
        if !same {
            return false;
        }
        let before = self.scheduler.progress(job).map(|p| p.chunks_done);
        self.apply(now, Event::ChunkDelivered { worker, job, chunk, result: output });
        let after = self.scheduler.progress(job).map(|p| p.chunks_done);
        after != before
    }

    /// The command chunk `request` names, cut as its job cuts it now, if `worker` may deliver
    /// its units (it was given the chunk, which still waits for them): what takes them.
    pub fn units_wanted(&self, worker: WorkerId, request: &ChunkRequest) -> Option<tasks::Chunk> {
        let ChunkRequest { job, chunk, ref task, start, end } = *request;
        let record = self.records.get(&job)?;
        let plan = self.scheduler.plan(job)?;
        // Checked before it is cut: a member names any range it likes.
        let fits = u64::from(chunk) < plan.len() as u64 && plan.range(chunk) == (start, end);
        if !fits || task.cmd().is_none() {
            return None;
        }
        let cut = record.job.chunk(start, end, 0);
        let same = cut.task == task.without_job_slot();
        (same && self.scheduler.deliverable(worker, job, chunk) == Some(true)).then_some(cut)
    }

    /// `worker` runs or holds these chunks, from connections lost before its session: the
    /// command chunks given to its member before a restart wait for them.
    pub fn member_holds(&mut self, now: Instant, worker: WorkerId, held: &[ChunkKey]) {
        let held = held.iter().map(|k| (k.job, k.chunk)).collect();
        self.apply(now, Event::MemberHolds { worker, held });
    }

    /// Time passed: stragglers get backups, abandoned series are cancelled.
    pub fn tick(&mut self, now: Instant) {
        self.apply(now, Event::Tick);
        let abandoned: Vec<JobId> = self
            .records
            .iter_mut()
            .filter_map(|(&id, record)| record.abandoned(now, ABANDONED_AFTER).then_some(id))
            .collect();
        for job in abandoned {
            tracing::warn!("job {job}: its client stopped taking results; cancelling it");
            self.apply(now, Event::JobCancelled { job });
        }
        let epoch = self.epoch;
        let gone: Vec<JobId> = self
            .leftovers
            .iter()
            .filter(|(_, outbox)| outbox.abandoned(epoch, now, ABANDONED_AFTER))
            .map(|(&id, _)| id)
            .collect();
        for job in gone {
            tracing::warn!("job {job}: its client did not come back for its output; let go");
            self.leftovers.remove(&job);
            self.forget(job);
        }
    }

    fn view(&self, now: Instant, id: JobId) -> Result<JobView, ClusterError> {
        let record = self.records.get(&id).ok_or_else(|| no_job(id))?;
        let mut view = record.view(now, self.scheduler.progress(id));
        view.ended_unix_ms = record.ended.and_then(|ended| {
            let since_epoch = ended.saturating_duration_since(self.epoch).as_millis() as u64;
            self.epoch_unix_ms.map(|ms| ms + since_epoch)
        });
        Ok(view)
    }

    /// Feeds one event to the scheduler and carries out its actions.
    fn apply(&mut self, now: Instant, event: Event<ChunkOutput>) {
        let at = now.saturating_duration_since(self.epoch);
        // Time passing, or a round trip moving, that changed nothing else is no news: those
        // waiting on a change (the dashboard's feed, a rollout) are not woken for it ten times
        // a second.
        let quiet = matches!(event, Event::Tick | Event::WorkerRtt { .. });
        let actions = self.scheduler.handle(at, event);
        if !(quiet && actions.is_empty()) {
            self.changes.send_replace(());
        }
        self.carry_out(at, now, actions.into());
    }

    /// The job slot (GNU parallel's `{%}`) `assignment` of `job` holds: the lowest that none
    /// of the job's running chunks holds, so from 1 to the most chunks it runs at once.
    fn job_slot(&mut self, job: JobId, assignment: AssignmentId) -> u32 {
        let Some(record) = self.records.get_mut(&job) else { return 1 };
        let scheduler = &self.scheduler;
        record.job_slots.retain(|&held, _| held != assignment && scheduler.is_assigned(held));
        let taken: BTreeSet<u32> = record.job_slots.values().copied().collect();
        let slot = (1..).find(|n| !taken.contains(n)).unwrap_or(1);
        record.job_slots.insert(assignment, slot);
        slot
    }

    /// Carries out the scheduler's actions (and those they lead to): orders for the driver,
    /// reductions, phases and ends for the jobs, records for the journal.
    fn carry_out(
        &mut self,
        at: Duration,
        now: Instant,
        mut actions: VecDeque<Action<ChunkOutput>>,
    ) {
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Assign { assignment, worker, job, chunk, start, end, attempt } => {
                    // The scheduler only knows running jobs.
                    let Some(record) = self.records.get(&job) else { continue };
                    self.counters.chunks_started += 1;
                    self.counters.chunks_retried += u64::from(attempt > 0);
                    let shape = record.job.shape();
                    // Kept, so a result held through a restart is known for one given.
                    if let Some(member) = self.names.get(&worker) {
                        let (phase, member) = (record.phase, member.clone());
                        self.journal.push(Record::Given { job, phase, chunk, member });
                    }
                    let slot = shape.exec.then(|| self.job_slot(job, assignment));
                    if shape.exec {
                        self.took_files(worker, job, (start, end));
                    } else {
                        let nominal = shape.units_per_second;
                        let units = end - start;
                        self.sent.insert(assignment, Sent { at: now, worker, units, nominal });
                    }
                    let Some(record) = self.records.get(&job) else { continue };
                    let tasks::Chunk { mut task, talk } = record.job.chunk(start, end, attempt);
                    if let Some(slot) = slot {
                        task = task.in_job_slot(slot);
                    }
                    let request = ChunkRequest { job, chunk, task, start, end };
                    self.orders.push(Order::Run { assignment, worker, request, talk });
                }
                Action::Cancel { assignment, .. } => {
                    self.sent.remove(&assignment);
                    self.counters.chunks_stopped += 1;
                    self.orders.push(Order::Stop { assignment })
                }
                Action::Reduce { job, chunk, worker, start, end, result } => {
                    let name = self
                        .names
                        .get(&worker)
                        .cloned()
                        .unwrap_or_else(|| format!("worker-{worker}"));
                    let Some(record) = self.records.get_mut(&job) else { continue };
                    self.counters.chunks_done += 1;
                    let done = self.done_by_worker.entry(name.clone()).or_default();
                    *done = (done.0 + 1, done.1 + (end - start));
                    // Streamed results go to the client, not the journal: a resumed job runs
                    // again those it had not taken. A command's units' reports are kept, with
                    // where their output waits in the spool for its client.
                    let shape = record.job.shape();
                    let kept = (shape.window.is_none() || shape.exec).then(|| result.clone());
                    if shape.revocable {
                        record.outputs.insert(chunk, result.clone());
                    }
                    let added = record.job.outbox().map(|outbox| outbox.added().0);
                    let fold = record.reduce(&name, (chunk, start, end), result);
                    let spooled = record.spooled(added);
                    self.spool_changed |= spooled.is_some();
                    self.journal.push(Record::Chunk {
                        job,
                        phase: record.phase,
                        chunk,
                        start,
                        end,
                        worker: name.clone(),
                        output: kept,
                        spooled,
                    });
                    match fold {
                        Fold::Added => {}
                        Fold::Answered => {
                            actions.extend(self.scheduler.handle(at, Event::JobAnswered { job }))
                        }
                        Fold::Closing => {
                            actions.extend(self.scheduler.handle(at, Event::JobClosing { job }))
                        }
                    }
                    if shape.judged {
                        actions.extend(self.scheduler.handle(at, Event::JobJudged { job }));
                    }
                    // A command's window in input order moves as its chunks are counted (a
                    // series' only as its client takes them).
                    if let Some(upto) = record.job.outbox().and_then(|outbox| outbox.window()) {
                        actions.extend(self.scheduler.handle(at, Event::JobWindow { job, upto }));
                    }
                }
                Action::Quarantine { worker, job, chunk } => {
                    let Some(name) = self.names.get(&worker).cloned() else { continue };
                    tracing::warn!(
                        "worker '{name}' returned a result for chunk {chunk} of job {job} that \
                         two other workers contradicted: quarantined (no more chunks) until \
                         `marmotctl clear {name}`"
                    );
                    self.caught_lying(now, &name);
                    self.quarantined.insert(name);
                    self.counters.quarantines += 1;
                }
                Action::UnitsLost { job, chunk, member } => {
                    let Some((start, end)) = self.scheduler.plan(job).map(|p| p.range(chunk))
                    else {
                        continue;
                    };
                    let at_ms = crate::journal::unix_ms().max(0) as u64;
                    if let Some(record) = self.records.get_mut(&job) {
                        record.job.units_lost(start, end, &member, at_ms);
                    }
                }
                Action::SendAhead { worker, job, start, end, .. } => {
                    let files = self.took_files(worker, job, (start, end));
                    if !files.is_empty() {
                        self.orders.push(Order::SendAhead { worker, files });
                    }
                }
                Action::Revoked { job, member, chunks } => {
                    let Some(record) = self.records.get_mut(&job) else { continue };
                    let indices: Vec<ChunkIndex> =
                        chunks.iter().map(|&(chunk, ..)| chunk).collect();
                    for (chunk, start, end) in chunks {
                        if let Some(output) = record.outputs.remove(&chunk) {
                            record.job.revoke(&output);
                        }
                        record.uncount_share(&member, end - start);
                    }
                    if !record.shares.contains_key(&member) {
                        record.caught_lying.remove(&member);
                    }
                    tracing::warn!(
                        "job {job}: the results of {} from '{member}' were taken back; they run \
                         again elsewhere",
                        proto::human::count(indices.len() as u64, "chunk", "chunks")
                    );
                    let phase = record.phase;
                    self.journal.push(Record::Revoked { job, phase, chunks: indices });
                }
                Action::NotGiven { worker, job, chunk } => {
                    let name = self.names.get(&worker).map_or("?", String::as_str);
                    tracing::warn!(
                        "dropped a result from worker '{name}' for chunk {chunk} of job {job}: \
                         this coordinator never gave it that chunk"
                    );
                }
                Action::JobEnded { job, outcome, progress } => {
                    let speed = self.speed();
                    let Some(record) = self.records.get_mut(&job) else { continue };
                    if outcome == Outcome::Done && record.job.next_phase() {
                        record.phase += 1;
                        let shape = record.shape(speed);
                        let homes = self.homes(job, shape.units);
                        let submitted = Event::JobSubmitted { job, shape, homes };
                        actions.extend(self.scheduler.handle(at, submitted));
                        self.phase_started(job);
                        continue;
                    }
                    if let Outcome::Failed(message) = &outcome {
                        tracing::warn!("job {job} failed: {message}");
                    }
                    record.end(now, outcome, progress);
                    self.orders.push(Order::Ended { job });
                    match record.state {
                        JobState::Done => self.counters.jobs_done += 1,
                        JobState::Failed => self.counters.jobs_failed += 1,
                        JobState::Cancelled => self.counters.jobs_cancelled += 1,
                        JobState::Running => {}
                    }
                    let view = Box::new(record.view(now, None));
                    self.journal.push(Record::Ended { job, view });
                    self.ended.push_back(job);
                    if self.ended.len() + self.earlier.len() > KEEP_ENDED_JOBS {
                        self.earlier.pop_front();
                    }
                    while self.ended.len() > KEEP_ENDED_JOBS {
                        if let Some(old) = self.ended.pop_front() {
                            if let Some(mut gone) = self.records.remove(&old) {
                                if gone.job.outbox().is_some() {
                                    self.forget(old);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One job, running or ended: its task, and what every job has (state, times, who computed
/// what, the result once done).
struct JobRecord {
    id: JobId,
    job: Box<dyn Job>,
    /// The job's current phase, counted from 0.
    phase: u32,
    /// Who submitted it.
    client: String,
    /// Whether a client has fetched it since it ended.
    read: bool,
    state: JobState,
    submitted: Instant,
    ended: Option<Instant>,
    /// Final progress once ended (the scheduler's while running).
    progress: Progress,
    /// The share of chunks also run on a second worker and compared.
    verify: f64,
    shares: BTreeMap<String, WorkerShare>,
    /// For a revocable job, its current phase's outputs folded in, by chunk.
    outputs: BTreeMap<ChunkIndex, ChunkOutput>,
    /// Members later caught lying whose results it holds.
    caught_lying: BTreeSet<String>,
    /// A command job's chunks counted with spooled output so far: the next one's `seq`.
    spooled: u64,
    /// Its chunks wait: its output reached the spool's bounds.
    held: bool,
    /// A command job's job slots (`{%}`), by the assignment holding each.
    job_slots: BTreeMap<AssignmentId, u32>,
    result: Option<JobResult>,
    error: Option<String>,
    ended_tx: watch::Sender<bool>,
    /// Announces every series chunk held, and the job's end.
    series_tx: watch::Sender<()>,
}

impl JobRecord {
    fn new(id: JobId, job: Box<dyn Job>, verify: f64, now: Instant) -> Self {
        JobRecord {
            id,
            job,
            phase: 0,
            client: String::new(),
            read: false,
            state: JobState::Running,
            submitted: now,
            ended: None,
            progress: Progress::default(),
            verify,
            shares: BTreeMap::new(),
            outputs: BTreeMap::new(),
            caught_lying: BTreeSet::new(),
            spooled: 0,
            held: false,
            job_slots: BTreeMap::new(),
            result: None,
            error: None,
            ended_tx: watch::channel(false).0,
            series_tx: watch::channel(()).0,
        }
    }

    /// How the scheduler should run the job's current phase, on slots `speed` times the
    /// nominal one.
    fn shape(&self, speed: f64) -> JobShape {
        let mut shape = self.job.shape();
        // Commands run as fast as they run: slots' pi rates say nothing of them, and a
        // command run twice to compare is a side effect twice.
        if !shape.exec {
            shape.units_per_second *= speed;
            shape.verify = self.verify;
        }
        shape
    }

    /// Folds in chunk `chunk` (units `start..end`) that `worker` computed.
    fn reduce(
        &mut self,
        worker: &str,
        (chunk, start, end): (ChunkIndex, u64, u64),
        output: ChunkOutput,
    ) -> Fold {
        self.count_share(worker, end - start);
        let fold = self.job.reduce(chunk, start, output);
        self.series_tx.send_replace(());
        fold
    }

    /// The delivery a chunk just reduced made, numbered in counting order, for the journal:
    /// `None` if it made none (`before`: how many its outbox had before it, if any).
    fn spooled(&mut self, before: Option<u64>) -> Option<Spooled> {
        let (added, delivery) = self.job.outbox()?.added();
        let delivery = delivery.filter(|_| Some(added) > before)?;
        let file = delivery.spool.file_name()?.to_str()?.to_string();
        let (first_unit, units) = (delivery.first_unit, delivery.units);
        let seq = self.spooled;
        self.spooled += 1;
        Some(Spooled { seq, file, first_unit, units })
    }

    /// Takes a chunk of `units` units out of `worker`'s share (its result was taken back).
    fn uncount_share(&mut self, worker: &str, units: u64) {
        let Some(share) = self.shares.get_mut(worker) else { return };
        share.chunks = share.chunks.saturating_sub(1);
        share.units = share.units.saturating_sub(units);
        if share.chunks == 0 {
            self.shares.remove(worker);
        }
    }

    /// Counts a chunk of `units` units to `worker`'s share.
    fn count_share(&mut self, worker: &str, units: u64) {
        let share = self.shares.entry(worker.to_string()).or_insert_with(|| WorkerShare {
            name: worker.to_string(),
            chunks: 0,
            units: 0,
        });
        share.chunks += 1;
        share.units += units;
    }

    /// Takes chunk `chunk` of a series job's results, if it is ready.
    fn take_chunk(
        &mut self,
        now: Instant,
        chunk: ChunkIndex,
    ) -> Result<Option<TakenChunk>, ClusterError> {
        let (id, state) = (self.id, self.state);
        let Some(series) = self.job.series() else {
            let task = self.job.spec().name();
            return Err(ClusterError::Invalid(format!("job {id} ({task}) has no chunks")));
        };
        match series.take(chunk, now) {
            Ok(Some(taken)) => Ok(Some(taken)),
            Err(tasks::series::TakeError::AlreadyTaken) => Err(ClusterError::Invalid(format!(
                "chunk {chunk} of job {id} was already taken: a job's results go to one client"
            ))),
            Ok(None) => match state {
                JobState::Running => Ok(None),
                // Every chunk was reduced: this one was taken, or never existed.
                JobState::Done => Err(ClusterError::NotFound(format!(
                    "job {id} has no chunk {chunk} left to take"
                ))),
                JobState::Cancelled | JobState::Failed => {
                    let why = self.error.clone().unwrap_or_else(|| "it was cancelled".into());
                    Err(ClusterError::Unavailable(format!("job {id} ended early: {why}")))
                }
            },
        }
    }

    /// Whether this running series job's client has stopped asking for its results. Records
    /// why, for the job's error.
    fn abandoned(&mut self, now: Instant, limit: Duration) -> bool {
        let (running, submitted) = (self.state == JobState::Running, self.submitted);
        let gone = running
            && (self.job.series().is_some_and(|series| series.abandoned(submitted, now, limit))
                || self.job.outbox().is_some_and(|o| o.abandoned(submitted, now, limit)));
        if gone {
            self.error = Some(format!(
                "its client asked for no results for {} s: cancelled",
                limit.as_secs()
            ));
        }
        gone
    }

    /// Where the scheduler's window of a series job (or of a command's in input order)
    /// stands.
    fn window(&mut self) -> Option<ChunkIndex> {
        if let Some(series) = self.job.series() {
            return Some(series.window());
        }
        self.job.outbox().and_then(|outbox| outbox.window())
    }

    /// Delivery `n` of a command job's output, if it is ready, and the spool files the client
    /// is done with.
    fn take_output(&mut self, now: Instant, n: u64) -> Result<(Take, Vec<PathBuf>), ClusterError> {
        let (id, running) = (self.id, self.state == JobState::Running);
        let Some(outbox) = self.job.outbox() else {
            let task = self.job.spec().name();
            return Err(ClusterError::Invalid(format!("job {id} ({task}) prints no output")));
        };
        let (take, let_go) = outbox.take(n, now);
        if take == Take::NotYet && !running && outbox.count() <= n {
            return Ok((Take::Gone, let_go));
        }
        Ok((take, let_go))
    }

    /// Records the end of the job and wakes everyone waiting for it.
    fn end(&mut self, now: Instant, outcome: Outcome, progress: Progress) {
        self.ended = Some(now);
        self.progress = progress;
        let seconds = now.duration_since(self.submitted).as_secs_f64();
        match outcome {
            Outcome::Done | Outcome::Answered => {
                self.state = JobState::Done;
                let workers = self.shares.values().cloned().collect();
                self.result = Some(self.job.result(Run { seconds, workers }));
            }
            Outcome::Cancelled => self.state = JobState::Cancelled,
            Outcome::Failed(message) => {
                self.state = JobState::Failed;
                self.error = Some(message);
            }
        }
        self.job.ended();
        if self.state != JobState::Done {
            // Nobody will take what was held.
            if let Some(series) = self.job.series() {
                series.clear();
            }
        }
        self.ended_tx.send_replace(true);
        self.series_tx.send_replace(());
    }

    fn view(&self, now: Instant, live: Option<Progress>) -> JobView {
        let p = live.unwrap_or(self.progress);
        let elapsed = self.ended.unwrap_or(now).saturating_duration_since(self.submitted);
        let spec = self.job.spec();
        JobView {
            id: self.id,
            task: spec.name().to_string(),
            spec,
            state: self.state,
            chunks_done: p.chunks_done,
            chunks_total: p.chunks_total,
            units_done: p.units_done,
            units_total: p.units_total,
            elapsed_seconds: elapsed.as_secs_f64(),
            chunks_rerun: p.chunks_rerun,
            chunks_verified: p.chunks_verified,
            result: self.result.clone(),
            error: self.error.clone(),
            workers: self.shares.values().cloned().collect(),
            ended_unix_ms: None,
            summary: self.result.as_ref().map(ToString::to_string),
            caught_lying: self.caught_lying.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests;
