//! The scheduler: which chunk of which job runs on which worker slot, as a sans-IO state
//! machine.
//!
//! It holds no sockets, tasks or clocks. The coordinator feeds it [`Event`]s with the current
//! time and carries out the [`Action`]s it returns, in order; property tests feed it random
//! interleavings instead (see `tests.rs`). This is the shape of quinn-proto under quinn.
//!
//! Policies, each in one place:
//! - *Self-scheduling*: a chunk goes to a slot when the slot frees up, so faster or bigger
//!   machines simply come back for more; there is no static split.
//! - *Fair sharing*: free slots go round-robin over the jobs with work left.
//! - *Exactly once*: a chunk's result is reduced the first time it arrives; late copies,
//!   duplicates and results of cancelled assignments are dropped.
//! - *Lost workers*: their running chunks go back to the front of their job's queue.
//! - *Deadlines*: once a job's queue is empty, a chunk running far past its expected time gets
//!   a backup copy on an idle slot; the first result wins. The expected time is the job's
//!   median chunk time, or before any chunk finished, the plan's. A worker whose chunks keep
//!   missing their deadlines (one that hoards slots and never answers) is sent fewer: its
//!   usable slots halve with every miss in a row, and recover when it finishes a chunk in
//!   time.
//! - *Verification*: a share of each job's chunks (chosen by a keyed hash of job and chunk
//!   that members cannot compute, [`VerifyKey`]) also
//!   runs on a second worker, and the two results must be equal; on a mismatch a third worker
//!   decides, the odd one out is quarantined (no more chunks until cleared), and only an
//!   agreeing result is reduced. A chunk nobody else could check is taken as it is.
//! - *Lazy chunks*: a job holds state only for chunks started and not yet done, so its memory
//!   does not grow with its size.
//! - *Failures*: a failed chunk is retried on a worker it has not failed on while any other
//!   worker takes chunks (the one it waits in included), and is never checked by one; the job
//!   fails after [`Config::max_failures`] failures of one chunk (plus the job's own
//!   [`JobShape::retries`]).
//! - *Side effects*: a job whose chunks must not run twice while once would do (users'
//!   commands) gets no backups ([`JobShape::backups`]); it runs only on workers that take
//!   such work ([`JobShape::exec`]); its chunks may take several slots each.
//! - *Closing*: a job told to start no more chunks ([`Event::JobClosing`]) ends once its
//!   running chunks have. One whose results are judged by a rule that may close it
//!   ([`JobShape::judged`]: `--halt`) starts nothing between a result and its judgement
//!   ([`Event::JobJudged`]), so the slot the deciding result freed starts nothing.
//! - *Bounded jobs*: a job holds at most [`JobShape::max_slots`] slots at once (`-j`).
//! - *Spaced jobs*: a job's chunks start [`JobShape::spacing`] apart at least (`--delay`).
//! - *Locality*: a free slot takes first a chunk whose input files its worker already holds,
//!   as the job's [`Homes`] say (see `fresh.rs`); a job with homes, whose units take long
//!   enough that a chunk each costs nothing, gets a chunk per unit, so each goes where its
//!   file is.
//! - *Sent ahead*: for a job whose units have input files, each chunk given to a worker
//!   makes the first chunk no worker holds the files of that worker's next, and its files go
//!   there ahead ([`Action::SendAhead`]), while the chunk before runs.
//! - *Prefetch*: a far worker (one whose round trip is a noticeable share of a chunk's time,
//!   [`Event::WorkerRtt`]) is sent chunks beyond its slots, to wait in its queue, so a slot
//!   that ends a chunk starts the next at once instead of idling for a round trip. Such a
//!   chunk counts as assigned: it runs elsewhere if its worker is lost, is cancelled with its
//!   job, and is taken back for a slot that is free elsewhere (an idle worker never waits
//!   while a chunk waits in another's queue). The worker runs its queue in the order it was
//!   sent, so the scheduler knows when each one starts: when a chunk before it ends. Users'
//!   commands are never prefetched (a worker starts them as they arrive).

mod awaited;
mod chunking;
mod fresh;
#[cfg(test)]
mod tests;

use awaited::Awaited;
pub use awaited::AWAIT_MEMBER;
pub use chunking::{plan_chunks, ChunkPlan, ChunkTargets};
use fresh::Fresh;
pub use fresh::Homes;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

pub type WorkerId = u64;
pub type JobId = u64;
pub type AssignmentId = u64;
pub type ChunkIndex = u32;

/// How many recent chunk times the straggler threshold's median is taken over.
const RECENT_DURATIONS: usize = 256;

/// Chunks a worker may hold beyond its slots, at most (it accepts `2 × slots + 16` streams).
pub const MAX_PREFETCH: u32 = 16;

/// How many round trips of work a far worker holds ahead: one for a result's way back and the
/// next chunk's way out, one to spare for a packet lost on either (its resend takes about a
/// round trip more): with one, a lossy far link showed in a job's time, with two it did not
/// (`tests/bench/wan.sh BIN 3 pi`; the figures are in the README).
const PREFETCH_ROUND_TRIPS: f64 = 2.0;

/// A worker gets chunks ahead once a round trip costs its slots this share of a chunk's time
/// (below it, on a LAN, nothing waits in its queue: a cancel or a lost worker costs less).
const PREFETCH_FROM: f64 = 0.02;

/// Tunables.
#[derive(Clone, Debug)]
pub struct Config {
    /// A chunk is a straggler when it has run this many times the job's median chunk time.
    pub straggler_factor: f64,
    /// A job fails when one of its chunks failed this many times.
    pub max_failures: u32,
    /// Chunk sizing: see [`plan_chunks`].
    pub chunking: chunking::ChunkTargets,
    /// Keys the choice of chunks verified ([`VerifyKey::is_verified`]).
    pub verify_key: VerifyKey,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            straggler_factor: 3.0,
            max_failures: 3,
            chunking: Default::default(),
            verify_key: VerifyKey::random(),
        }
    }
}

/// The secret behind which chunks are verified. Members know a chunk's job and index, so a
/// choice they could compute (a fixed hash of the two) would tell a liar where it is safe to
/// lie; keyed by a secret only the coordinator holds, the choice is a coin it cannot see. A
/// verified chunk looks like any other on the wire: its check is sent to another member only
/// after the first result is in.
#[derive(Clone)]
pub struct VerifyKey(ring::hmac::Key);

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyKey(..)")
    }
}

impl VerifyKey {
    /// The key derived from a secret the coordinator keeps across restarts (so a restarted
    /// coordinator verifies the same chunks).
    pub fn derived(secret: &[u8]) -> Self {
        let root = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let derived = ring::hmac::sign(&root, b"marmot: which chunks are verified");
        VerifyKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()))
    }

    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
        Self::derived(&secret)
    }

    /// Whether chunk `chunk` of `job` is among the share `fraction` that is verified: a
    /// pseudo-random choice fixed by the key, so the same chunks are checked however the job
    /// is scheduled.
    pub fn is_verified(&self, job: JobId, chunk: ChunkIndex, fraction: f64) -> bool {
        let mut message = [0u8; 12];
        message[..8].copy_from_slice(&job.to_le_bytes());
        message[8..].copy_from_slice(&chunk.to_le_bytes());
        let tag = ring::hmac::sign(&self.0, &message);
        let x = u64::from_le_bytes(tag.as_ref()[..8].try_into().expect("a SHA-256 tag"));
        (x >> 11) as f64 / (1u64 << 53) as f64 <= fraction && fraction > 0.0
    }
}

/// Something that happened, fed to [`Scheduler::handle`].
#[derive(Clone, Debug)]
pub enum Event<R> {
    WorkerJoined {
        worker: WorkerId,
        /// Who it is, the same on every connection: a result held through a lost one is
        /// taken only for a chunk given to this member.
        member: String,
        slots: u32,
        /// Quarantined before it (re)connected: it gets no chunks until cleared.
        quarantined: bool,
        /// It runs users' commands (it was not started with `--no-exec`).
        exec: bool,
    },
    /// The worker's connection closed or timed out: its chunks must run elsewhere.
    WorkerLost {
        worker: WorkerId,
    },
    /// The worker takes no new chunks (it is about to update or exit).
    WorkerDraining {
        worker: WorkerId,
    },
    /// A draining worker takes chunks again (its update was declined or failed).
    WorkerResumed {
        worker: WorkerId,
    },
    /// The worker takes chunks for `slots` of its slots from now on (0: none), as its
    /// laptop's rules allow; what runs there runs on.
    WorkerStanding {
        worker: WorkerId,
        slots: u32,
    },
    /// An operator cleared a quarantined worker.
    WorkerCleared {
        worker: WorkerId,
    },
    /// The round trip to the worker, as its connection measures it: sizes its prefetch.
    WorkerRtt {
        worker: WorkerId,
        rtt: Duration,
    },
    JobSubmitted {
        job: JobId,
        shape: JobShape,
        /// Where its units' files already are (usually none).
        homes: Homes,
    },
    /// A job the coordinator ran before a restart: cut as `plan` was then, with the chunks in
    /// `done` already counted (by member), and the chunks in `given` given to these members
    /// and not counted (a result one of them held through the restart is taken). The rest run
    /// as any job's.
    JobResumed {
        job: JobId,
        shape: JobShape,
        plan: ChunkPlan,
        done: BTreeMap<ChunkIndex, String>,
        given: Vec<(ChunkIndex, String)>,
    },
    /// The job's client has taken its results up to chunk `upto − window`: chunks before
    /// `upto` may run. Windows only move forward.
    JobWindow {
        job: JobId,
        upto: ChunkIndex,
    },
    /// Start none of the job's chunks while `held` (what it printed waits for its client,
    /// and the spool is at its bound); those running finish.
    JobHeld {
        job: JobId,
        held: bool,
    },
    JobCancelled {
        job: JobId,
    },
    /// The job's task found its answer in a chunk already reduced: stop the rest.
    JobAnswered {
        job: JobId,
    },
    /// Start no more of the job's chunks; it ends (answered) when those running have.
    JobClosing {
        job: JobId,
    },
    /// A result of a job whose results are judged ([`JobShape::judged`]) was: its chunks may
    /// start again (unless it was told to close).
    JobJudged {
        job: JobId,
    },
    ChunkFinished {
        assignment: AssignmentId,
        result: R,
    },
    ChunkFailed {
        assignment: AssignmentId,
        error: String,
    },
    /// A chunk failed for a reason running it again cannot mend (the coordinator's disk is
    /// full): its job fails now, with `error`.
    ChunkFailedForGood {
        assignment: AssignmentId,
        error: String,
    },
    /// A connected worker delivered the result of a chunk it ran for an assignment this
    /// scheduler no longer knows (given before its connection, or the coordinator, was lost).
    /// Counted like any result if the chunk still waits for one; dropped otherwise.
    ChunkDelivered {
        worker: WorkerId,
        job: JobId,
        chunk: ChunkIndex,
        result: R,
    },
    /// A member's worker, as its session starts, runs or holds these chunks (of
    /// connections lost before): the command chunks given to that member before a restart
    /// wait for them; the others run again now.
    MemberHolds {
        worker: WorkerId,
        held: Vec<(JobId, ChunkIndex)>,
    },
    /// Time passed (stragglers are looked for).
    Tick,
}

/// What the scheduler needs to know of a new job.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JobShape {
    pub units: u64,
    /// Expected units per second on one slot: sizes the chunks.
    pub units_per_second: f64,
    /// No chunk holds more units than this: a bound on one chunk's result, for tasks whose
    /// results grow with their units.
    pub max_chunk_units: u64,
    /// Only chunks before this index run until [`Event::JobWindow`] moves it: for results a
    /// client takes in order, so what waits for it is bounded. `None`: no window.
    pub window: Option<ChunkIndex>,
    /// The share of chunks (0 to 1) also run on a second worker and compared.
    pub verify: f64,
    /// Whether a straggler may get a backup copy: not for chunks with side effects.
    pub backups: bool,
    /// Failures of one chunk the job takes on top of [`Config::max_failures`]: its chunks
    /// fail on purpose to be run again elsewhere.
    pub retries: u32,
    /// Slots one chunk takes on its worker (all of a worker that has fewer).
    pub slots_per_chunk: u32,
    /// Whether its chunks run users' commands: only workers that take them get its chunks.
    pub exec: bool,
    /// Whether a reduced result can be taken back ([`Action::Revoked`]): the job keeps whose
    /// result each chunk was, and when a member is caught lying, its chunks run again.
    pub revocable: bool,
    /// Whether its units have input files of their own, sent ahead to the worker whose slot
    /// takes them next ([`Action::SendAhead`]).
    pub send_ahead: bool,
    /// Whether each of its results is judged by a rule that may stop it (`--halt`): none of
    /// its chunks starts between a result ([`Action::Reduce`]) and the word that it was
    /// judged ([`Event::JobJudged`], after [`Event::JobClosing`] if the rule was met), so a
    /// slot freed by the result that meets the rule starts nothing.
    pub judged: bool,
    /// The most slots its chunks may hold at once (GNU parallel's `-j`); `None`: all free.
    pub max_slots: Option<u32>,
    /// A chunk of it starts no sooner than this after the one before (GNU parallel's
    /// `--delay`), on a tick if not at once.
    pub spacing: Option<Duration>,
}

impl JobShape {
    /// A job of `units` units expected to run at `units_per_second` on one slot.
    pub fn new(units: u64, units_per_second: f64) -> Self {
        JobShape {
            units,
            units_per_second,
            max_chunk_units: u64::MAX,
            window: None,
            verify: 0.0,
            backups: true,
            retries: 0,
            slots_per_chunk: 1,
            exec: false,
            revocable: false,
            send_ahead: false,
            judged: false,
            max_slots: None,
            spacing: None,
        }
    }
}

/// Something the driver must do, returned by [`Scheduler::handle`] in the order to do it.
#[derive(Clone, Debug, PartialEq)]
pub enum Action<R> {
    /// Run units `start..end` of `job` on `worker`.
    Assign {
        assignment: AssignmentId,
        worker: WorkerId,
        job: JobId,
        chunk: ChunkIndex,
        start: u64,
        end: u64,
        /// How often the chunk failed before (0 on its first run).
        attempt: u32,
    },
    /// Stop an assignment (or forget it, when its worker was lost); its slot is already
    /// counted as free.
    Cancel { assignment: AssignmentId, worker: WorkerId },
    /// Fold this result into the job: the first and only time for this chunk.
    Reduce { job: JobId, chunk: ChunkIndex, worker: WorkerId, start: u64, end: u64, result: R },
    /// The job is over, with its final progress; the scheduler has forgotten it.
    JobEnded { job: JobId, outcome: Outcome, progress: Progress },
    /// `worker` returned a result for `chunk` of `job` that two other workers contradicted:
    /// it gets no more chunks until cleared.
    Quarantine { worker: WorkerId, job: JobId, chunk: ChunkIndex },
    /// The worker delivered a result for a chunk this scheduler never gave its member (a
    /// forgery, or given before the coordinator restarted): dropped, the chunk runs here.
    NotGiven { worker: WorkerId, job: JobId, chunk: ChunkIndex },
    /// `member`, just caught lying, had given the results of these chunks (index, units) of
    /// a revocable job: take them out of the job; the chunks run again.
    Revoked { job: JobId, member: String, chunks: Vec<(ChunkIndex, u64, u64)> },
    /// `member` was lost (or did not come back after a restart) while it ran `chunk` of a
    /// command job: how its units ended is unknown, and they run again.
    UnitsLost { job: JobId, chunk: ChunkIndex, member: String },
    /// Send `worker` the input files of units `start..end` of `job`, whose chunk it will take
    /// next (the chunk's home is that worker's now).
    SendAhead { worker: WorkerId, job: JobId, chunk: ChunkIndex, start: u64, end: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every chunk was reduced.
    Done,
    /// A chunk's result answered the job early.
    Answered,
    Cancelled,
    Failed(String),
}

/// How far a job has got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub chunks_done: u64,
    pub chunks_total: u64,
    pub units_done: u64,
    pub units_total: u64,
    /// Chunks run again: after a lost worker, a failure, or as a straggler's backup.
    pub chunks_rerun: u64,
    /// Chunks done whose result was checked against another worker's (counted when done).
    pub chunks_verified: u64,
}

/// Cluster-wide load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    pub slots: u32,
    pub slots_busy: u32,
    pub chunks_queued: u64,
}

struct Worker {
    /// Its member's name.
    member: String,
    slots: u32,
    /// Running assignments, with the slots each takes.
    running: BTreeMap<AssignmentId, u32>,
    /// Assignments sent ahead, waiting in its queue in this order for slots to free up, with
    /// the slots each will take.
    prefetched: VecDeque<(AssignmentId, u32)>,
    /// The round trip to it.
    rtt: Duration,
    exec: bool,
    draining: bool,
    /// The slots it gives now ([`Event::WorkerStanding`]): all of them unless its laptop's
    /// rules hold some back; 0 while paused.
    slots_now: u32,
    /// Deadlines missed in a row: each halves the slots it is sent chunks for.
    missed: u32,
    /// Contradicted by two other workers: no chunks until cleared.
    quarantined: bool,
}

impl Worker {
    /// The slots it may be sent chunks for: those it gives now, halved per deadline missed
    /// in a row (at least one while it gives any).
    fn usable_slots(&self) -> u32 {
        (self.slots >> self.missed.min(31)).max(1).min(self.slots_now)
    }

    fn takes_chunks(&self) -> bool {
        !self.draining && !self.quarantined && self.slots_now > 0
    }

    fn free_slots(&self) -> u32 {
        if !self.takes_chunks() {
            return 0;
        }
        self.usable_slots().saturating_sub(self.busy())
    }

    /// Slots its running assignments take.
    fn busy(&self) -> u32 {
        self.running.values().sum()
    }

    /// Whether it takes a chunk of `job` now: a worker that runs its kind of work, with the
    /// slots one of its chunks takes free.
    fn fits<R>(&self, job: &Job<R>) -> bool {
        (self.exec || !job.exec) && self.takes_chunks() && self.free_slots() >= self.slots_for(job)
    }

    /// The slots a chunk of `job` takes here.
    fn slots_for<R>(&self, job: &Job<R>) -> u32 {
        job.slots_per_chunk.min(self.usable_slots())
    }

    /// How many more chunks of `job` it should hold ahead: enough for its slots to run on
    /// through [`PREFETCH_ROUND_TRIPS`] round trips (a chunk ends every `typical / slots`);
    /// none for commands, when the round trip is a small share of a chunk, while it misses
    /// deadlines, or while it gives fewer than all its slots (a chunk it holds ahead would
    /// start on a slot it does not give).
    fn prefetch_room<R>(&self, job: &Job<R>) -> u32 {
        // (Whether it takes chunks at all is the caller's to ask.)
        if job.exec || self.missed > 0 || self.slots_now < self.slots {
            return 0;
        }
        let chunk = job.typical().as_secs_f64().max(1e-6);
        let share = self.rtt.as_secs_f64() * f64::from(self.slots) / chunk;
        let depth = match share >= PREFETCH_FROM {
            true => (share * PREFETCH_ROUND_TRIPS).ceil().min(f64::from(MAX_PREFETCH)) as u32,
            false => 0,
        };
        depth.saturating_sub(self.prefetched.len() as u32)
    }

    fn is_prefetched(&self, id: AssignmentId) -> bool {
        self.prefetched.iter().any(|&(p, _)| p == id)
    }

    /// Whether a chunk taking `slots` would start on arrival (else it waits in its queue).
    fn starts_at_once(&self, slots: u32) -> bool {
        self.busy() + slots <= self.slots
    }

    /// Forgets an assignment, running or prefetched.
    fn forget(&mut self, id: AssignmentId) {
        self.running.remove(&id);
        self.prefetched.retain(|&(p, _)| p != id);
    }

    /// Its assignments, running and prefetched.
    fn assignments(&self) -> impl Iterator<Item = AssignmentId> + '_ {
        self.running.keys().copied().chain(self.prefetched.iter().map(|&(id, _)| id))
    }
}

/// A chunk started and not yet done.
struct Chunk<R> {
    running: Vec<AssignmentId>,
    failures: u32,
    /// The members it failed on (by member, not connection: a reconnected member is the same).
    failed_on: Vec<String>,
    /// The members whose results are in `results`.
    answered: Vec<String>,
    /// The members it was given to that have not answered or failed it yet: a result one of
    /// them held through a lost connection may be delivered later.
    given: Vec<String>,
    /// Results not yet reduced, with their workers: a verified chunk's first, then its check.
    results: Vec<(WorkerId, R)>,
    /// Given before a restart, it waits for its member rather than running again.
    awaited: Option<Awaited>,
    /// How many results it needs before one is reduced: 1, 2 when verified, 3 to decide a
    /// mismatch.
    wanted: usize,
}

impl<R> Default for Chunk<R> {
    fn default() -> Self {
        Chunk {
            running: vec![],
            failures: 0,
            failed_on: vec![],
            answered: vec![],
            given: vec![],
            results: vec![],
            awaited: None,
            wanted: 1,
        }
    }
}

impl<R> Chunk<R> {
    fn answered_by(&self, member: &str) -> bool {
        self.answered.iter().any(|m| m == member)
    }

    /// Whether `member` may give this chunk's result a check: it has neither answered nor
    /// failed it.
    fn may_check(&self, member: &str) -> bool {
        !self.answered_by(member) && !self.failed_on.iter().any(|m| m == member)
    }

    /// Takes one of `member`'s unanswered givings of the chunk; whether there was one.
    fn take_given(&mut self, member: &str) -> bool {
        let at = self.given.iter().position(|m| m == member);
        at.map(|at| self.given.swap_remove(at)).is_some()
    }
}

struct Job<R> {
    plan: ChunkPlan,
    window: Option<ChunkIndex>,
    /// No chunk starts ([`Event::JobHeld`]).
    held: bool,
    /// Chunks started and not done (running, or waiting to run again). A chunk neither here
    /// nor in `fresh` is done.
    started: BTreeMap<ChunkIndex, Chunk<R>>,
    /// Chunks to run again (after a lost worker or a failure), before any fresh one.
    retry: VecDeque<ChunkIndex>,
    /// The chunks never started.
    fresh: Fresh,
    verify: f64,
    backups: bool,
    /// Failures a chunk may have before the job fails.
    max_failures: u32,
    slots_per_chunk: u32,
    exec: bool,
    send_ahead: bool,
    /// Told to start no more chunks: it ends when none runs.
    closing: bool,
    /// Whether its results are judged ([`JobShape::judged`]), and how many are being.
    judged: bool,
    judging: u32,
    max_slots: Option<u32>,
    /// [`JobShape::spacing`], and when its next chunk may start.
    spacing: Option<Duration>,
    next_start: Duration,
    /// Wall time of the most recently reduced chunks, for the deadline.
    durations: VecDeque<Duration>,
    /// A chunk's expected time from the plan, until `durations` has one.
    planned: Duration,
    progress: Progress,
    /// For a revocable job: the chunks reduced from each member's result.
    done_by: Option<HashMap<String, Vec<ChunkIndex>>>,
}

impl<R> Job<R> {
    /// Whether it starts no chunk now (closing, held, or a result of it is being judged).
    fn stopped(&self) -> bool {
        self.closing || self.held || self.judging > 0
    }

    /// The first chunk of the window's end: fresh chunks before it may run.
    fn window_end(&self) -> ChunkIndex {
        self.window.unwrap_or(ChunkIndex::MAX)
    }

    /// Chunks waiting to run again (they ran before, so they are inside the window).
    fn retried(&self) -> impl Iterator<Item = ChunkIndex> + '_ {
        self.retry.iter().copied().filter(|_| !self.stopped())
    }

    /// Whether a chunk waits to run inside the window.
    fn has_runnable(&self) -> bool {
        let fresh = self.fresh.first().is_some_and(|c| c < self.window_end());
        !self.stopped() && (!self.retry.is_empty() || fresh)
    }

    /// Chunks waiting to run, inside the window or not.
    fn queued(&self) -> u64 {
        self.retry.len() as u64 + self.fresh.len()
    }

    /// A chunk's typical time: the median of recent chunk times, or before any finished,
    /// the planned time.
    fn typical(&self) -> Duration {
        if self.durations.is_empty() {
            return self.planned;
        }
        let mut recent: Vec<Duration> = self.durations.iter().copied().collect();
        recent.sort_unstable();
        recent[recent.len() / 2]
    }

    /// What a chunk may take before it gets a backup: `factor` times its typical time (at
    /// least a second before any chunk finished, so a rough plan does not copy every chunk).
    fn deadline(&self, factor: f64) -> Duration {
        let least = match self.durations.is_empty() {
            true => Duration::from_secs(1),
            false => Duration::from_millis(1),
        };
        self.typical().mul_f64(factor).max(least)
    }
}

struct Assignment {
    job: JobId,
    chunk: ChunkIndex,
    worker: WorkerId,
    /// When it was sent, or for a prefetched one, when a slot was free for it.
    started: Duration,
}

/// Where the next chunk goes.
struct Placement {
    job: JobId,
    chunk: ChunkIndex,
    worker: WorkerId,
    /// A prefetched assignment of the chunk, taken back from the worker it waits on.
    taken_back: Option<AssignmentId>,
}

/// The scheduler's whole state. `R` is a chunk's result, opaque here.
pub struct Scheduler<R> {
    config: Config,
    workers: BTreeMap<WorkerId, Worker>,
    jobs: BTreeMap<JobId, Job<R>>,
    assignments: BTreeMap<AssignmentId, Assignment>,
    next_assignment: AssignmentId,
    /// The job after which the next round-robin turn starts.
    last_served: Option<JobId>,
    _result: std::marker::PhantomData<R>,
}

impl<R: PartialEq> Scheduler<R> {
    pub fn new(config: Config) -> Self {
        Scheduler {
            config,
            workers: BTreeMap::new(),
            jobs: BTreeMap::new(),
            assignments: BTreeMap::new(),
            next_assignment: 1,
            last_served: None,
            _result: std::marker::PhantomData,
        }
    }

    /// Applies one event at time `now` (any monotonic origin) and returns what to do.
    pub fn handle(&mut self, now: Duration, event: Event<R>) -> Vec<Action<R>> {
        let mut out = Vec::new();
        match event {
            Event::WorkerJoined { worker, member, slots, quarantined, exec } => {
                // A reused id means the old connection is gone: treat it as lost first.
                self.lose_worker(worker, &mut out);
                let w = Worker {
                    member,
                    slots,
                    running: BTreeMap::new(),
                    prefetched: VecDeque::new(),
                    rtt: Duration::ZERO,
                    exec,
                    draining: false,
                    slots_now: slots,
                    missed: 0,
                    quarantined,
                };
                self.workers.insert(worker, w);
            }
            Event::WorkerLost { worker } => {
                if let Some(member) = self.member(worker) {
                    self.lose_worker(worker, &mut out);
                    self.member_gone(&member, now);
                }
            }
            Event::WorkerDraining { worker } | Event::WorkerResumed { worker } => {
                let draining = matches!(event, Event::WorkerDraining { .. });
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.draining = draining;
                }
            }
            Event::WorkerStanding { worker, slots } => {
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.slots_now = slots.min(w.slots);
                }
            }
            Event::WorkerCleared { worker } => {
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.quarantined = false;
                }
            }
            Event::WorkerRtt { worker, rtt } => {
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.rtt = rtt;
                }
            }
            Event::JobSubmitted { job, shape, homes } => self.submit(job, shape, &homes, &mut out),
            Event::JobResumed { job, shape, plan, done, given } => {
                self.resume(job, shape, plan, (&done, &given), &Homes::none(), &mut out);
                self.await_given(job, now);
            }
            Event::JobWindow { job, upto } => {
                if let Some(job) = self.jobs.get_mut(&job) {
                    job.window = job.window.map(|w| w.max(upto));
                }
            }
            Event::JobHeld { job, held } => {
                if let Some(job) = self.jobs.get_mut(&job) {
                    job.held = held;
                }
            }
            Event::JobCancelled { job } => self.end_job(job, Outcome::Cancelled, &mut out),
            Event::JobAnswered { job } => self.end_job(job, Outcome::Answered, &mut out),
            Event::JobClosing { job } => {
                if let Some(job) = self.jobs.get_mut(&job) {
                    job.closing = true;
                }
            }
            Event::JobJudged { job } => {
                if let Some(job) = self.jobs.get_mut(&job) {
                    job.judging = job.judging.saturating_sub(1);
                }
            }
            Event::ChunkFinished { assignment, result } => {
                self.finish_chunk(now, assignment, result, &mut out)
            }
            Event::ChunkFailed { assignment, error } => {
                self.fail_chunk(assignment, error, &mut out)
            }
            Event::ChunkFailedForGood { assignment, error } => {
                if let Some(job) = self.release(assignment).map(|a| a.job) {
                    self.end_job(job, Outcome::Failed(error), &mut out);
                }
            }
            Event::ChunkDelivered { worker, job, chunk, result } => {
                self.deliver(worker, job, chunk, result, &mut out)
            }
            Event::MemberHolds { worker, held } => self.member_holds(worker, &held, &mut out),
            Event::Tick => self.lapse_awaited(now, &mut out),
        }
        self.settle_unverifiable(now, &mut out);
        self.end_closed(&mut out);
        self.dispatch(now, &mut out);
        out
    }

    /// Ends the closing jobs none of whose chunks runs any more.
    fn end_closed(&mut self, out: &mut Vec<Action<R>>) {
        let closed: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, job)| job.closing && job.started.values().all(|c| c.running.is_empty()))
            .map(|(&id, _)| id)
            .collect();
        for job in closed {
            self.end_job(job, Outcome::Answered, out);
        }
    }

    /// Progress of a job the scheduler still runs.
    pub fn progress(&self, job: JobId) -> Option<Progress> {
        self.jobs.get(&job).map(|j| j.progress)
    }

    /// Slots in use and chunks waiting, over the whole cluster.
    pub fn load(&self) -> Load {
        let mut load = Load::default();
        for w in self.workers.values() {
            load.slots += w.slots;
            load.slots_busy += w.busy();
        }
        load.chunks_queued = self.jobs.values().map(Job::<R>::queued).sum();
        load
    }

    /// Whether `assignment` runs (or waits on its worker): it has not ended.
    pub fn is_assigned(&self, assignment: AssignmentId) -> bool {
        self.assignments.contains_key(&assignment)
    }

    /// Chunks running on one worker.
    pub fn busy_slots(&self, worker: WorkerId) -> u32 {
        self.workers.get(&worker).map_or(0, Worker::busy)
    }

    /// Chunks sent ahead to one worker, waiting for its slots.
    pub fn prefetched(&self, worker: WorkerId) -> u32 {
        self.workers.get(&worker).map_or(0, |w| w.prefetched.len() as u32)
    }

    /// How a running job's current phase is cut into chunks.
    pub fn plan(&self, job: JobId) -> Option<ChunkPlan> {
        self.jobs.get(&job).map(|j| j.plan)
    }

    /// Deadlines a worker has missed in a row (0 for an unknown worker).
    pub fn missed_deadlines(&self, worker: WorkerId) -> u32 {
        self.workers.get(&worker).map_or(0, |w| w.missed)
    }

    fn submit(&mut self, job: JobId, shape: JobShape, homes: &Homes, out: &mut Vec<Action<R>>) {
        if shape.exec && !self.workers.is_empty() && !self.workers.values().any(|w| w.exec) {
            let message = "no connected worker runs commands: every one was started with \
                           --no-exec; start a worker without it"
                .to_string();
            out.push(Action::JobEnded {
                job,
                outcome: Outcome::Failed(message),
                progress: Progress::default(),
            });
            return;
        }
        let slots = self.workers.values().map(|w| w.slots).sum::<u32>().max(1);
        let mut targets = self.config.chunking.clone();
        targets.max_units = shape.max_chunk_units;
        if !homes.is_empty() && shape.units_per_second <= LOCAL_UNITS_PER_SECOND {
            targets.max_units = 1;
        }
        let plan = plan_chunks(shape.units, shape.units_per_second, slots, &targets);
        self.resume(job, shape, plan, (&BTreeMap::new(), &[]), homes, out);
    }

    /// Starts a job cut as `plan`, with the chunks in `done` already counted: those before
    /// the last one done (or given) that are not are queued to run again, the given ones
    /// remembering whom they were given to. A job started afresh places its chunks by
    /// `homes`; a resumed one runs the rest in order.
    fn resume(
        &mut self,
        job: JobId,
        shape: JobShape,
        plan: ChunkPlan,
        (done, given): (&BTreeMap<ChunkIndex, String>, &[(ChunkIndex, String)]),
        homes: &Homes,
        out: &mut Vec<Action<R>>,
    ) {
        let n = plan.len();
        let rate = if shape.units_per_second > 0.0 { shape.units_per_second } else { 1.0 };
        let planned =
            Duration::try_from_secs_f64(plan.chunk_units as f64 / rate).unwrap_or(Duration::MAX);
        let progress =
            Progress { chunks_total: n as u64, units_total: plan.units, ..Default::default() };
        let mut job_state = Job {
            window: shape.window,
            held: false,
            started: BTreeMap::new(),
            retry: VecDeque::new(),
            fresh: Fresh::in_order(0, 0),
            verify: shape.verify,
            backups: shape.backups,
            max_failures: self.config.max_failures.saturating_add(shape.retries),
            slots_per_chunk: shape.slots_per_chunk.max(1),
            exec: shape.exec,
            send_ahead: shape.send_ahead,
            closing: false,
            judged: shape.judged,
            judging: 0,
            max_slots: shape.max_slots,
            spacing: shape.spacing,
            next_start: Duration::ZERO,
            durations: VecDeque::new(),
            planned,
            progress,
            plan,
            done_by: shape.revocable.then(HashMap::new),
        };
        let last = n.min(ChunkIndex::MAX as usize) as ChunkIndex;
        let mut next = 0;
        for (&chunk, member) in done.range(..last) {
            for missing in next..chunk {
                job_state.started.insert(missing, Chunk::default());
                job_state.retry.push_back(missing);
            }
            let (start, end) = plan.range(chunk);
            job_state.progress.chunks_done += 1;
            job_state.progress.units_done += end - start;
            next = chunk + 1;
            if let Some(done_by) = &mut job_state.done_by {
                done_by.entry(member.clone()).or_default().push(chunk);
            }
        }
        for (chunk, member) in given {
            if *chunk >= last || done.contains_key(chunk) {
                continue;
            }
            for missing in next..=*chunk {
                job_state.started.insert(missing, Chunk::default());
                job_state.retry.push_back(missing);
            }
            next = next.max(chunk + 1);
            if let Some(state) = job_state.started.get_mut(chunk) {
                state.given.push(member.clone());
            }
        }
        job_state.fresh = match next {
            0 => Fresh::placed(last, plan.chunk_units, homes),
            next => Fresh::in_order(next, last),
        };
        if job_state.progress.chunks_done == n as u64 {
            let progress = job_state.progress;
            out.push(Action::JobEnded { job, outcome: Outcome::Done, progress });
            return;
        }
        self.jobs.insert(job, job_state);
    }

    /// Forgets a worker. Its assignments are cancelled (so the driver can drop what it holds
    /// for them) and their chunks queued again at the front.
    fn lose_worker(&mut self, worker: WorkerId, out: &mut Vec<Action<R>>) {
        let Some(w) = self.workers.remove(&worker) else { return };
        for id in w.assignments() {
            let Some(a) = self.assignments.remove(&id) else { continue };
            out.push(Action::Cancel { assignment: id, worker });
            let Some(job) = self.jobs.get_mut(&a.job) else { continue };
            if job.exec && w.running.contains_key(&id) {
                let (chunk, member) = (a.chunk, w.member.clone());
                out.push(Action::UnitsLost { job: a.job, chunk, member });
            }
            let Some(chunk) = job.started.get_mut(&a.chunk) else { continue };
            chunk.running.retain(|&r| r != id);
            // (It may be queued already: a check queued while only late copies ran it.)
            if chunk.running.is_empty() && !job.retry.contains(&a.chunk) {
                job.retry.push_front(a.chunk);
                job.progress.chunks_rerun += 1;
            }
        }
    }

    /// Forgets an assignment that reported (its slot is free again). Returns it only if its
    /// chunk still waits for a result: unknown assignments (cancelled, from a lost worker,
    /// duplicates) and chunks already done are dropped here.
    fn release(&mut self, assignment: AssignmentId) -> Option<Assignment> {
        let a = self.assignments.remove(&assignment)?;
        let w = self.workers.get_mut(&a.worker)?;
        w.forget(assignment);
        let job = self.jobs.get_mut(&a.job)?;
        // A chunk no longer started is done.
        let chunk = job.started.get_mut(&a.chunk)?;
        chunk.running.retain(|&r| r != assignment);
        chunk.take_given(&w.member);
        Some(a)
    }

    /// Its member's name, for a connected worker.
    fn member(&self, worker: WorkerId) -> Option<String> {
        self.workers.get(&worker).map(|w| w.member.clone())
    }

    fn finish_chunk(
        &mut self,
        now: Duration,
        assignment: AssignmentId,
        result: R,
        out: &mut Vec<Action<R>>,
    ) {
        let Some(a) = self.release(assignment) else { return };
        if self.workers.get(&a.worker).is_some_and(|w| w.quarantined) {
            // Caught lying while it ran: its result is not taken; the chunk runs elsewhere.
            let Some(job) = self.jobs.get_mut(&a.job) else { return };
            let idle = job.started.get(&a.chunk).is_some_and(|c| c.running.is_empty());
            if idle && !job.retry.contains(&a.chunk) {
                job.retry.push_front(a.chunk);
            }
            return;
        }
        let factor = self.config.straggler_factor;
        let Some(job) = self.jobs.get_mut(&a.job) else { return };
        let took = now.saturating_sub(a.started);
        if took <= job.deadline(factor) {
            if let Some(w) = self.workers.get_mut(&a.worker) {
                w.missed = 0;
            }
        }
        if job.durations.len() == RECENT_DURATIONS {
            job.durations.pop_front();
        }
        job.durations.push_back(took);
        self.add_result(a.job, a.chunk, a.worker, result, out);
    }

    /// A result held through a lost connection, delivered on a new one: counted as any other
    /// if its chunk was given to the same member, which has not answered it since, and still
    /// waits for a result; a chunk never given to it (or not yet given to anyone) is a forgery,
    /// told as [`Action::NotGiven`]. Results for chunks done since, for jobs that ended, or from
    /// a quarantined worker are dropped without a word.
    fn deliver(
        &mut self,
        worker: WorkerId,
        job_id: JobId,
        chunk: ChunkIndex,
        result: R,
        out: &mut Vec<Action<R>>,
    ) {
        match self.deliverable(worker, job_id, chunk) {
            None => {}
            Some(false) => out.push(Action::NotGiven { worker, job: job_id, chunk }),
            Some(true) => {
                let Some(member) = self.member(worker) else { return };
                let Some(state) =
                    self.jobs.get_mut(&job_id).and_then(|j| j.started.get_mut(&chunk))
                else {
                    return;
                };
                state.awaited = None;
                state.take_given(&member);
                self.add_result(job_id, chunk, worker, result, out);
            }
        }
    }

    /// Whether a result `worker` held through a lost connection would count for `chunk` of
    /// `job_id`: `Some(true)` if so, `Some(false)` if the chunk was never given to its member
    /// (a forgery), `None` if it is not needed (done since, answered, the job ended, or the
    /// worker is quarantined).
    pub fn deliverable(&self, worker: WorkerId, job_id: JobId, chunk: ChunkIndex) -> Option<bool> {
        let w = self.workers.get(&worker).filter(|w| !w.quarantined)?;
        let job = self.jobs.get(&job_id)?;
        // A result held through a lost connection is for an assignment lost with it: the
        // member must have been given the chunk more times than it holds it now (a chunk it
        // holds, running or in its queue, answers on that assignment's own stream).
        let held_now = |state: &Chunk<R>| {
            let member_of = |id: &AssignmentId| {
                let a = self.assignments.get(id)?;
                self.workers.get(&a.worker).map(|w| w.member.as_str())
            };
            state.running.iter().filter(|id| member_of(id) == Some(w.member.as_str())).count()
        };
        match job.started.get(&chunk) {
            Some(state) if state.answered_by(&w.member) => None, // its answer is in
            Some(state) => {
                let given = state.given.iter().filter(|m| **m == w.member).count();
                Some(given > held_now(state))
            }
            None if job.fresh.contains(chunk) || u64::from(chunk) >= job.plan.len() as u64 => {
                Some(false) // never started
            }
            None => None, // done since
        }
    }

    /// Adds `worker`'s result to a started chunk: reduced once it has the results it needs
    /// (one, or agreeing ones when it is verified), queued again for a check otherwise.
    fn add_result(
        &mut self,
        job_id: JobId,
        chunk_index: ChunkIndex,
        worker: WorkerId,
        result: R,
        out: &mut Vec<Action<R>>,
    ) {
        let Some(member) = self.member(worker) else { return };
        let checkers = self.checkers(job_id, chunk_index, &member);
        let Some(job) = self.jobs.get_mut(&job_id) else { return };
        let verified = self.config.verify_key.is_verified(job_id, chunk_index, job.verify);
        let Some(chunk) = job.started.get_mut(&chunk_index) else { return };
        chunk.results.push((worker, result));
        chunk.answered.push(member);
        if chunk.results.len() == 1 && verified && checkers > 0 {
            chunk.wanted = 2;
        }
        if chunk.results.len() < chunk.wanted {
            // Checked by a copy still running elsewhere, or by one queued now.
            if chunk.running.is_empty() && !job.retry.contains(&chunk_index) {
                job.retry.push_front(chunk_index);
            }
            return;
        }
        match agreement(&chunk.results) {
            Agreement::Agreed { index, odd } => {
                if let Some(odd) = odd {
                    let at = chunk.results.iter().position(|(w, _)| *w == odd);
                    let liar = at.and_then(|at| chunk.answered.get(at)).cloned();
                    if let Some(w) = self.workers.get_mut(&odd) {
                        w.quarantined = true;
                    }
                    out.push(Action::Quarantine { worker: odd, job: job_id, chunk: chunk_index });
                    if let Some(liar) = liar {
                        self.revoke(&liar, (job_id, chunk_index), out);
                    }
                }
                self.reduce(job_id, chunk_index, index, out);
            }
            Agreement::Undecided => {
                chunk.wanted = 3;
                if chunk.running.is_empty() && !job.retry.contains(&chunk_index) {
                    job.retry.push_front(chunk_index);
                }
            }
            Agreement::Split => {
                let message = format!(
                    "chunk {chunk_index} gave three different results on three workers: a \
                     fault or a lie on more than one of them"
                );
                self.end_job(job_id, Outcome::Failed(message), out);
            }
        }
    }

    /// Takes back what `member`, caught lying, gave running jobs (but `deciding`, the chunk
    /// that caught it, which is reduced from the agreeing results): its results waiting for a
    /// check are dropped, and the chunks of revocable jobs reduced from its results run again
    /// ([`Action::Revoked`]).
    fn revoke(&mut self, member: &str, deciding: (JobId, ChunkIndex), out: &mut Vec<Action<R>>) {
        for (&job_id, job) in &mut self.jobs {
            for (&index, chunk) in &mut job.started {
                if (job_id, index) == deciding {
                    continue;
                }
                while let Some(at) = chunk.answered.iter().position(|m| m == member) {
                    chunk.answered.swap_remove(at);
                    chunk.results.swap_remove(at);
                    // A mismatch it made needs no third result to decide any more.
                    chunk.wanted = chunk.wanted.min(2);
                }
                let short = chunk.results.len() < chunk.wanted;
                if short && chunk.running.is_empty() && !job.retry.contains(&index) {
                    job.retry.push_back(index);
                }
            }
            let Some(chunks) = job.done_by.as_mut().and_then(|d| d.remove(member)) else {
                continue;
            };
            let mut revoked = Vec::with_capacity(chunks.len());
            for index in chunks {
                let (start, end) = job.plan.range(index);
                job.started.insert(index, Chunk::default());
                job.retry.push_back(index);
                job.progress.chunks_done -= 1;
                job.progress.units_done -= end - start;
                job.progress.chunks_rerun += 1;
                revoked.push((index, start, end));
            }
            out.push(Action::Revoked { job: job_id, member: member.to_string(), chunks: revoked });
        }
    }

    /// Reduces result `index` of a chunk whose results agree: the chunk is done.
    fn reduce(&mut self, job_id: JobId, chunk: ChunkIndex, index: usize, out: &mut Vec<Action<R>>) {
        let Some(job) = self.jobs.get_mut(&job_id) else { return };
        let Some(mut state) = job.started.remove(&chunk) else { return };
        if let Some(position) = job.retry.iter().position(|&c| c == chunk) {
            job.retry.remove(position);
        }
        if state.results.len() > 1 {
            job.progress.chunks_verified += 1;
        }
        let (worker, result) = state.results.swap_remove(index);
        if let (Some(done_by), Some(member)) = (&mut job.done_by, state.answered.get(index)) {
            done_by.entry(member.clone()).or_default().push(chunk);
        }
        let (start, end) = job.plan.range(chunk);
        job.progress.chunks_done += 1;
        job.progress.units_done += end - start;
        let finished = job.progress.chunks_done == job.progress.chunks_total;
        if job.judged {
            job.judging += 1;
        }
        out.push(Action::Reduce { job: job_id, chunk, worker, start, end, result });
        for other in state.running {
            self.cancel_assignment(other, out);
        }
        if finished {
            if let Some(job) = self.jobs.remove(&job_id) {
                let progress = job.progress;
                out.push(Action::JobEnded { job: job_id, outcome: Outcome::Done, progress });
            }
        }
    }

    /// Connected workers that take chunks and have not answered `chunk` of `job` (besides
    /// `answering`, which is answering now): those that could check it.
    fn checkers(&self, job: JobId, chunk: ChunkIndex, answering: &str) -> usize {
        let state = self.jobs.get(&job).and_then(|j| j.started.get(&chunk));
        self.workers
            .values()
            .filter(|w| {
                w.takes_chunks()
                    && w.member != answering
                    && state.is_none_or(|c| c.may_check(&w.member))
            })
            .count()
    }

    /// Chunks waiting for a check that no connected worker can give: a single result is
    /// taken as it is; a mismatch no third worker can decide fails the job. A copy running
    /// past its deadline and [`CHECK_GIVEN_UP_AFTER`] (a straggler, or a member that hoards)
    /// is no check to wait for: the check goes to another worker that can give it, or, if none
    /// can, the chunk settles so.
    fn settle_unverifiable(&mut self, now: Duration, out: &mut Vec<Action<R>>) {
        for (job_id, chunk, settle) in self.unverifiable(now) {
            match settle {
                Settle::Queue => {
                    if let Some(job) = self.jobs.get_mut(&job_id) {
                        job.retry.push_front(chunk);
                    }
                }
                Settle::TakeIt => self.reduce(job_id, chunk, 0, out),
                Settle::Fail => {
                    let message = format!(
                        "chunk {chunk}: two workers gave different results and no third worker \
                         is connected to decide"
                    );
                    self.end_job(job_id, Outcome::Failed(message), out);
                }
            }
        }
    }

    /// The chunks waiting for a check that only late copies run, or none, and what to do with
    /// each ([`Scheduler::settle_unverifiable`]).
    fn unverifiable(&self, now: Duration) -> Vec<(JobId, ChunkIndex, Settle)> {
        let factor = self.config.straggler_factor;
        // Past the job's deadline, and at least CHECK_GIVEN_UP_AFTER: the deadline follows the
        // job's recent chunk times, which a liar's instant answers make short.
        let late = |id: &AssignmentId| {
            let Some(a) = self.assignments.get(id) else { return true };
            let job = self.jobs.get(&a.job);
            let limit = |job: &Job<R>| job.deadline(factor).max(CHECK_GIVEN_UP_AFTER);
            job.is_none_or(|job| now.saturating_sub(a.started) > limit(job))
        };
        // A worker whose slots are all held by late copies (a hoarder) checks nothing soon.
        let stuck = |w: &Worker| w.free_slots() == 0 && w.running.keys().all(late);
        let mut found = vec![];
        for (&job_id, job) in &self.jobs {
            for (&chunk, state) in &job.started {
                if state.results.is_empty() || !state.running.iter().all(late) {
                    continue;
                }
                let running_it = |id: &WorkerId| {
                    let on = |a: &AssignmentId| self.assignments.get(a).map(|a| a.worker);
                    state.running.iter().any(|a| on(a) == Some(*id))
                };
                let any_checker = self.workers.iter().any(|(id, w)| {
                    w.takes_chunks() && state.may_check(&w.member) && !running_it(id) && !stuck(w)
                });
                let settle = match (any_checker, state.results.len()) {
                    // Queued, if only late copies run it: a free checker takes it.
                    (true, _) if state.running.is_empty() || job.retry.contains(&chunk) => continue,
                    (true, _) => Settle::Queue,
                    (false, 1) => Settle::TakeIt,
                    (false, _) => Settle::Fail,
                };
                found.push((job_id, chunk, settle));
            }
        }
        found
    }

    fn fail_chunk(&mut self, assignment: AssignmentId, error: String, out: &mut Vec<Action<R>>) {
        let member = self.assignments.get(&assignment).and_then(|a| self.member(a.worker));
        let Some(a) = self.release(assignment) else { return };
        let Some(job) = self.jobs.get_mut(&a.job) else { return };
        let Some(chunk) = job.started.get_mut(&a.chunk) else { return };
        chunk.failures += 1;
        chunk.failed_on.extend(member);
        if chunk.failures >= job.max_failures {
            let message = format!(
                "chunk {} failed {} times, last on worker {}: {error}",
                a.chunk, chunk.failures, a.worker
            );
            self.end_job(a.job, Outcome::Failed(message), out);
            return;
        }
        if chunk.running.is_empty() && !job.retry.contains(&a.chunk) {
            job.retry.push_front(a.chunk);
            job.progress.chunks_rerun += 1;
        }
    }

    fn end_job(&mut self, job: JobId, outcome: Outcome, out: &mut Vec<Action<R>>) {
        let Some(state) = self.jobs.remove(&job) else { return };
        for chunk in state.started.into_values() {
            for id in chunk.running {
                self.cancel_assignment(id, out);
            }
        }
        out.push(Action::JobEnded { job, outcome, progress: state.progress });
    }

    fn cancel_assignment(&mut self, id: AssignmentId, out: &mut Vec<Action<R>>) {
        let Some(a) = self.assignments.remove(&id) else { return };
        if let Some(w) = self.workers.get_mut(&a.worker) {
            w.forget(id);
        }
        out.push(Action::Cancel { assignment: id, worker: a.worker });
    }

    /// Starts prefetched chunks on the slots that freed up, fills free slots one chunk at a
    /// time round-robin over jobs, then the far workers' queues.
    fn dispatch(&mut self, now: Duration, out: &mut Vec<Action<R>>) {
        self.start_prefetched(now);
        while self.workers.values().any(|w| w.free_slots() > 0) {
            let Some(placement) = self.next_placement(now, Slot::Free) else { break };
            if let Some(id) = placement.taken_back {
                self.take_back(id, out);
            }
            self.assign(now, placement.job, placement.chunk, placement.worker, out);
        }
        while let Some(placement) = self.next_placement(now, Slot::Ahead) {
            self.assign(now, placement.job, placement.chunk, placement.worker, out);
        }
    }

    /// A worker runs the chunks in its queue in the order they were sent, as its slots free
    /// up: so do they start here.
    fn start_prefetched(&mut self, now: Duration) {
        for w in self.workers.values_mut() {
            while let Some(&(id, slots)) = w.prefetched.front() {
                if !w.starts_at_once(slots) {
                    break;
                }
                w.prefetched.pop_front();
                w.running.insert(id, slots);
                if let Some(a) = self.assignments.get_mut(&id) {
                    a.started = now;
                }
            }
        }
    }

    /// Cancels a prefetched assignment to run its chunk on a free slot instead: the chunk
    /// goes to the front of its job's queue (not counted as a re-run: it had not started).
    fn take_back(&mut self, id: AssignmentId, out: &mut Vec<Action<R>>) {
        let Some(a) = self.assignments.get(&id) else { return };
        let (job_id, chunk) = (a.job, a.chunk);
        let member = self.member(a.worker);
        self.cancel_assignment(id, out);
        let Some(job) = self.jobs.get_mut(&job_id) else { return };
        let Some(state) = job.started.get_mut(&chunk) else { return };
        state.running.retain(|&r| r != id);
        if let Some(member) = member {
            state.take_given(&member);
        }
        if state.running.is_empty() && !job.retry.contains(&chunk) {
            job.retry.push_front(chunk);
        }
    }

    /// The next chunk to send, taking jobs in turn after the last one served: to a free slot
    /// (a queued chunk, one waiting in another worker's queue, or a straggler's backup), or
    /// ahead to a far worker's queue (a queued chunk).
    fn next_placement(&self, now: Duration, slot: Slot) -> Option<Placement> {
        let after = self.last_served.unwrap_or(0);
        let order = self.jobs.range(after + 1..).chain(self.jobs.range(..=after));
        for (&job_id, job) in order {
            if self.at_most(job_id, job) || now < job.next_start {
                continue;
            }
            let placed =
                |(chunk, worker)| Placement { job: job_id, chunk, worker, taken_back: None };
            if let Some(placement) = self.place_queued(job, slot) {
                return Some(placed(placement));
            }
            if slot == Slot::Ahead {
                continue;
            }
            if let Some((chunk, worker, id)) = self.place_prefetched(job_id, job) {
                return Some(Placement { job: job_id, chunk, worker, taken_back: Some(id) });
            }
            if let Some(placement) = self.place_backup(now, job_id, job) {
                return Some(placed(placement));
            }
        }
        None
    }

    /// Whether `job` holds as many slots as it may ([`JobShape::max_slots`]).
    fn at_most(&self, job_id: JobId, job: &Job<R>) -> bool {
        let Some(max) = job.max_slots else { return false };
        let held = self.assignments.values().filter(|a| a.job == job_id).count() as u64;
        held * u64::from(job.slots_per_chunk) >= u64::from(max)
    }

    /// The first queued chunk of `job` that a free slot (or a queue) may take, and its
    /// worker: a chunk to run again, else a fresh one.
    fn place_queued(&self, job: &Job<R>, slot: Slot) -> Option<(ChunkIndex, WorkerId)> {
        // Only retried chunks can refuse a free slot (they avoid workers they failed on).
        let fresh = Chunk::default();
        let retried = job.retried().find_map(|chunk| {
            let state = job.started.get(&chunk).unwrap_or(&fresh);
            Some((chunk, self.pick_worker(job, state, &[], slot)?))
        });
        retried.or_else(|| self.place_fresh(job, slot))
    }

    /// A fresh chunk of `job` and its worker: the next one in order, or for a job with homes,
    /// one whose files a worker with room holds, else one no worker here holds for the
    /// worker with the most room (`fresh.rs`).
    fn place_fresh(&self, job: &Job<R>, slot: Slot) -> Option<(ChunkIndex, WorkerId)> {
        if job.stopped() {
            return None;
        }
        let below = job.window_end();
        let fresh = Chunk::default();
        if !job.fresh.has_homes() {
            let chunk = job.fresh.first().filter(|&c| c < below)?;
            return Some((chunk, self.pick_worker(job, &fresh, &[], slot)?));
        }
        let candidates = self.candidates(job, &fresh, slot);
        for &id in &candidates {
            let member = &self.workers.get(&id)?.member;
            if let Some(chunk) = job.fresh.first_at(member, below) {
                return Some((chunk, id));
            }
        }
        let present = |member: &str| {
            let able = |w: &Worker| w.member == member && w.takes_chunks() && (w.exec || !job.exec);
            self.workers.values().any(able)
        };
        Some((job.fresh.first_elsewhere(present, below)?, *candidates.first()?))
    }

    /// A chunk of `job` waiting in a worker's queue that a free slot elsewhere may take now:
    /// the one sent last (it would wait longest), its new worker and its assignment.
    fn place_prefetched(
        &self,
        job_id: JobId,
        job: &Job<R>,
    ) -> Option<(ChunkIndex, WorkerId, AssignmentId)> {
        self.assignments.iter().rev().filter(|(_, a)| a.job == job_id).find_map(|(&id, a)| {
            if !self.workers.get(&a.worker)?.is_prefetched(id) {
                return None;
            }
            let chunk = job.started.get(&a.chunk)?;
            Some((a.chunk, self.pick_worker(job, chunk, &[a.worker], Slot::Free)?, id))
        })
    }

    /// A straggler of `job` that deserves a backup copy, and where to run it.
    fn place_backup(
        &self,
        now: Duration,
        job_id: JobId,
        job: &Job<R>,
    ) -> Option<(ChunkIndex, WorkerId)> {
        if !job.backups || job.has_runnable() {
            return None;
        }
        let threshold = job.deadline(self.config.straggler_factor);
        // Running assignments are at most the cluster's slots: cheaper to scan than chunks.
        self.assignments.iter().filter(|(_, a)| a.job == job_id).find_map(|(&id, a)| {
            let chunk = job.started.get(&a.chunk)?;
            let alone = chunk.running == [id];
            if !alone || now.saturating_sub(a.started) <= threshold {
                return None;
            }
            if self.workers.get(&a.worker).is_some_and(|w| w.is_prefetched(id)) {
                return None; // not started: taken back instead, when a slot is free
            }
            Some((a.chunk, self.pick_worker(job, chunk, &[a.worker], Slot::Free)?))
        })
    }

    /// The worker with the most room for `chunk` ([`Scheduler::rooms`]).
    fn pick_worker(
        &self,
        job: &Job<R>,
        chunk: &Chunk<R>,
        exclude: &[WorkerId],
        slot: Slot,
    ) -> Option<WorkerId> {
        let rooms = self.rooms(job, chunk, exclude, slot);
        rooms.max_by_key(|&(id, room)| (room, std::cmp::Reverse(id))).map(|(id, _)| id)
    }

    /// The workers with room for `chunk` ([`Scheduler::rooms`]), the most room first.
    fn candidates(&self, job: &Job<R>, chunk: &Chunk<R>, slot: Slot) -> Vec<WorkerId> {
        let mut found: Vec<(WorkerId, u32)> = self.rooms(job, chunk, &[], slot).collect();
        found.sort_by_key(|&(id, room)| (std::cmp::Reverse(room), id));
        found.into_iter().map(|(id, _)| id).collect()
    }

    /// The workers with room (free slots, or room in their queue) for `chunk`, and how much:
    /// avoiding `exclude` and the workers that answered the chunk always, and the chunk's
    /// failed workers unless no other worker (`exclude` included) takes chunks of the job and
    /// the chunk needs no check.
    fn rooms<'a>(
        &'a self,
        job: &'a Job<R>,
        chunk: &'a Chunk<R>,
        exclude: &'a [WorkerId],
        slot: Slot,
    ) -> impl Iterator<Item = (WorkerId, u32)> + 'a {
        let able = move |w: &Worker| {
            w.takes_chunks() && (w.exec || !job.exec) && !chunk.answered_by(&w.member)
        };
        let untried = |w: &Worker| !chunk.failed_on.contains(&w.member);
        let only_untried =
            !chunk.results.is_empty() || self.workers.values().any(|w| able(w) && untried(w));
        let room = move |w: &Worker| match slot {
            Slot::Free => w.fits(job).then(|| w.free_slots()),
            Slot::Ahead => Some(w.prefetch_room(job)).filter(|&room| room > 0),
        };
        self.workers
            .iter()
            .filter(move |&(id, w)| able(w) && !exclude.contains(id))
            .filter(move |&(_, w)| !only_untried || untried(w))
            .filter_map(move |(&id, w)| Some((id, room(w)?)))
    }

    fn assign(
        &mut self,
        now: Duration,
        job_id: JobId,
        chunk: ChunkIndex,
        worker: WorkerId,
        out: &mut Vec<Action<R>>,
    ) {
        let id = self.next_assignment;
        self.next_assignment += 1;
        let Some(job) = self.jobs.get_mut(&job_id) else { return };
        if job.fresh.contains(chunk) && !job.started.contains_key(&chunk) {
            job.fresh.take(chunk);
        } else if let Some(position) = job.retry.iter().position(|&c| c == chunk) {
            job.retry.remove(position);
        } else {
            // A backup: the worker running the chunk missed its deadline.
            job.progress.chunks_rerun += 1;
            let late = job.started.get(&chunk).into_iter().flat_map(|c| &c.running);
            for a in late.filter_map(|id| self.assignments.get(id)) {
                if let Some(w) = self.workers.get_mut(&a.worker) {
                    w.missed = w.missed.saturating_add(1);
                }
            }
        }
        if let Some(spacing) = job.spacing {
            job.next_start = now + spacing;
        }
        let state = job.started.entry(chunk).or_default();
        state.running.push(id);
        if let Some(w) = self.workers.get(&worker) {
            state.given.push(w.member.clone());
        }
        let attempt = state.failures;
        let (start, end) = job.plan.range(chunk);
        if let Some(w) = self.workers.get_mut(&worker) {
            let slots = w.slots_for(job);
            match w.starts_at_once(slots) {
                true => _ = w.running.insert(id, slots),
                false => w.prefetched.push_back((id, slots)),
            }
        }
        self.assignments.insert(id, Assignment { job: job_id, chunk, worker, started: now });
        self.last_served = Some(job_id);
        out.push(Action::Assign {
            assignment: id,
            worker,
            job: job_id,
            chunk,
            start,
            end,
            attempt,
        });
        self.send_ahead(job_id, worker, out);
    }

    /// For a job whose units have files: gives `worker`, if no fresh chunk of the job has a
    /// home there, the first one without a home, and sends its files ahead.
    fn send_ahead(&mut self, job_id: JobId, worker: WorkerId, out: &mut Vec<Action<R>>) {
        let Some(member) = self.member(worker) else { return };
        let present: Vec<&str> = self
            .workers
            .values()
            .filter(|w| w.takes_chunks() && w.exec)
            .map(|w| w.member.as_str())
            .collect();
        let Some(job) = self.jobs.get(&job_id).filter(|job| job.send_ahead && !job.stopped())
        else {
            return;
        };
        let below = job.window_end();
        if job.fresh.first_at(&member, below).is_some() {
            return;
        }
        let Some(chunk) = job.fresh.first_unhomed(|m| present.contains(&m), below) else {
            return;
        };
        let Some(job) = self.jobs.get_mut(&job_id) else { return };
        job.fresh.home(chunk, &member);
        let (start, end) = job.plan.range(chunk);
        out.push(Action::SendAhead { worker, job: job_id, chunk, start, end });
    }
}

/// Units expected to run at most this many times a second on a slot take a chunk each when
/// their job has [`Homes`] (a unit of 20 ms or more: a chunk's round trip does not show), so
/// that each goes where its file is.
pub const LOCAL_UNITS_PER_SECOND: f64 = 50.0;

/// How long a copy of a chunk may run before it no longer counts as a check to wait for.
pub const CHECK_GIVEN_UP_AFTER: Duration = Duration::from_secs(5);

/// What becomes of a chunk that waits for a check no one may give soon.
enum Settle {
    /// Queue it for a free checker.
    Queue,
    /// Take its one result as it is.
    TakeIt,
    /// Its two results differ and no third worker can decide.
    Fail,
}

/// Which room a placement looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// A free slot: the chunk starts on arrival.
    Free,
    /// Room in a far worker's queue: the chunk starts when a slot frees up there.
    Ahead,
}

/// What a verified chunk's results say.
#[derive(Debug, PartialEq, Eq)]
enum Agreement {
    /// Result `index` stands; `odd` is the worker two others contradicted, if any.
    Agreed { index: usize, odd: Option<WorkerId> },
    /// Two results differ: a third must decide.
    Undecided,
    /// Three results, all different.
    Split,
}

fn agreement<R: PartialEq>(results: &[(WorkerId, R)]) -> Agreement {
    match results {
        [_] => Agreement::Agreed { index: 0, odd: None },
        [(_, a), (_, b)] if a == b => Agreement::Agreed { index: 0, odd: None },
        [_, _] => Agreement::Undecided,
        [(w0, a), (w1, b), (w2, c)] => {
            if a == b {
                Agreement::Agreed { index: 0, odd: (a != c).then_some(*w2) }
            } else if a == c {
                Agreement::Agreed { index: 0, odd: Some(*w1) }
            } else if b == c {
                Agreement::Agreed { index: 1, odd: Some(*w0) }
            } else {
                Agreement::Split
            }
        }
        _ => Agreement::Split,
    }
}
