//! The scheduler alone, under random interleavings of everything that can happen to it.
//!
//! A [`Harness`] plays the cluster: it keeps the assignments the scheduler handed out, checks
//! every action against the invariants as it arrives, and at the end finishes whatever is left
//! so every job must end.

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};

/// A chunk result: the assignment that produced it (so double counting is visible) and its
/// value, which is all verification compares.
#[derive(Clone, Copy, Debug)]
struct Output {
    assignment: AssignmentId,
    value: u64,
}

impl PartialEq for Output {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

type Result = Output;

/// The right value of a chunk.
fn right(job: JobId, chunk: ChunkIndex) -> u64 {
    job * 1_000_003 + u64::from(chunk)
}

#[derive(Clone, Debug)]
enum Op {
    Join {
        slots: u32,
    },
    Lose {
        pick: usize,
    },
    Drain {
        pick: usize,
    },
    Resume {
        pick: usize,
    },
    /// The worker gives `slots` of its slots now (its laptop's rules).
    Stand {
        pick: usize,
        slots: u32,
    },
    Submit {
        units: u64,
        max_chunk_units: u64,
        window: Option<ChunkIndex>,
        verify: f64,
        /// Unit `u`'s file is at member `u % homes` (1 to the workers that ever joined), or
        /// nowhere when that is 0.
        homes: u64,
    },
    /// The client of a windowed job takes results: its window moves forward.
    Window {
        pick: usize,
        by: ChunkIndex,
    },
    Cancel {
        pick: usize,
    },
    Answer {
        pick: usize,
    },
    Finish {
        pick: usize,
    },
    /// Deliver a result again (or for an assignment that was cancelled or lost).
    Duplicate {
        pick: usize,
    },
    Fail {
        pick: usize,
    },
    /// A well-formed wrong result, different from every other.
    Lie {
        pick: usize,
    },
    Advance {
        millis: u64,
    },
    /// A worker's round trip is measured: far ones get chunks ahead.
    Rtt {
        pick: usize,
        millis: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1u32..4).prop_map(|slots| Op::Join { slots }),
        1 => any::<usize>().prop_map(|pick| Op::Lose { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Drain { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Resume { pick }),
        1 => (any::<usize>(), 0u32..4).prop_map(|(pick, slots)| Op::Stand { pick, slots }),
        2 => (0u64..5_000, 1u64..2_000, proptest::option::of(1u32..6), 0..3, 0u64..5).prop_map(
            |(units, max_chunk_units, window, v, homes)| {
                let verify = [0.0, 0.5, 1.0][v as usize];
                Op::Submit { units, max_chunk_units, window, verify, homes }
            }
        ),
        1 => (any::<usize>(), 1u32..4).prop_map(|(pick, by)| Op::Window { pick, by }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Answer { pick }),
        8 => any::<usize>().prop_map(|pick| Op::Finish { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Duplicate { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Fail { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Lie { pick }),
        3 => (0u64..2_000).prop_map(|millis| Op::Advance { millis }),
        1 => (any::<usize>(), 0..4).prop_map(|(pick, r)| {
            Op::Rtt { pick, millis: [0, 1, 100, 2_000][r as usize] }
        }),
    ]
}

#[derive(Default)]
struct Harness {
    now: Duration,
    next_worker: WorkerId,
    next_job: JobId,
    /// Connected workers and their slots.
    workers: BTreeMap<WorkerId, u32>,
    /// Assignments the scheduler believes are running or waiting in a worker's queue:
    /// id → (worker, job, chunk).
    running: BTreeMap<AssignmentId, (WorkerId, JobId, ChunkIndex)>,
    /// Workers with a round trip measured above zero: only they may get chunks ahead.
    far: std::collections::BTreeSet<WorkerId>,
    /// Every assignment ever made, for duplicate deliveries.
    issued: Vec<AssignmentId>,
    /// Jobs not yet ended, with their chunk count and units.
    open_jobs: BTreeMap<JobId, (u64, u64)>,
    /// Reductions per (job, chunk).
    reduced: HashMap<(JobId, ChunkIndex), u32>,
    /// Units reduced per job.
    units_reduced: HashMap<JobId, u64>,
    ended: HashMap<JobId, Outcome>,
    /// Workers told to drain (and not resumed): they must get no new chunks.
    draining: std::collections::BTreeSet<WorkerId>,
    /// Workers that give fewer than all their slots: by how many they give.
    standing: HashMap<WorkerId, u32>,
    /// Windows of windowed jobs: chunks from this index on must not run.
    windows: HashMap<JobId, ChunkIndex>,
    /// Quarantined workers: they must get no new chunks.
    quarantined: std::collections::BTreeSet<WorkerId>,
    /// Workers that lied at least once: only they may be quarantined.
    liars: std::collections::BTreeSet<WorkerId>,
}

impl Harness {
    fn feed(&mut self, s: &mut Scheduler<Result>, event: Event<Result>) {
        let before: HashMap<WorkerId, (u32, u32)> =
            self.standing.keys().map(|&w| (w, (s.busy_slots(w), s.prefetched(w)))).collect();
        for action in s.handle(self.now, event) {
            self.check(action);
        }
        for (&w, &now) in &self.standing {
            // A worker that gives `now` slots starts nothing beyond them.
            let (busy, ahead) = (s.busy_slots(w), s.prefetched(w));
            let (had, had_ahead) = before.get(&w).copied().unwrap_or((0, 0));
            assert!(busy <= had.max(now), "worker {w} runs {busy} chunks, giving {now} slots");
            assert!(ahead <= had_ahead, "worker {w} got chunks ahead, giving {now} slots");
        }
        for (&w, &slots) in &self.workers {
            let sent = self.running.values().filter(|r| r.0 == w).count() as u32;
            let (busy, ahead) = (s.busy_slots(w), s.prefetched(w));
            assert!(busy <= slots, "worker {w} runs {busy} chunks on {slots} slots");
            assert_eq!(busy + ahead, sent, "worker {w}: running and prefetched are all sent");
            assert!(ahead <= MAX_PREFETCH);
            assert!(ahead == 0 || self.far.contains(&w), "a near worker {w} got chunks ahead");
            assert!(ahead == 0 || busy == slots, "worker {w} holds chunks with a slot free");
        }
        self.check_no_idle_slot_waits(s);
    }

    /// No worker with a free slot sits idle while a chunk it could run (one it neither
    /// answered nor failed) waits in another worker's queue.
    fn check_no_idle_slot_waits(&self, s: &Scheduler<Result>) {
        for (&victim, v) in &s.workers {
            for &(id, _) in &v.prefetched {
                let a = &s.assignments[&id];
                let Some(chunk) = s.jobs.get(&a.job).and_then(|j| j.started.get(&a.chunk)) else {
                    continue;
                };
                let idle = s.workers.iter().find(|(&w, other)| {
                    w != victim && other.free_slots() > 0 && chunk.may_check(&other.member)
                });
                let idle = idle.map(|(&w, _)| w);
                assert!(idle.is_none(), "chunk {} waits on {victim}; {idle:?} is idle", a.chunk);
            }
        }
    }

    /// A chunk placed on `worker` (`what`: assigned or sent ahead): a connected worker that
    /// takes chunks, a job still open, units inside its window.
    fn check_placed(
        &self,
        what: &str,
        worker: WorkerId,
        (job, chunk): (JobId, ChunkIndex),
        (start, end): (u64, u64),
    ) {
        assert!(self.workers.contains_key(&worker), "{what} to lost worker {worker}");
        assert!(!self.draining.contains(&worker), "{what} to draining worker {worker}");
        assert!(!self.quarantined.contains(&worker), "{what} to quarantined {worker}");
        assert_ne!(self.standing.get(&worker), Some(&0), "{what} to paused worker {worker}");
        assert!(self.open_jobs.contains_key(&job), "{what} a chunk of ended job {job}");
        assert!(start < end);
        if let Some(&window) = self.windows.get(&job) {
            assert!(chunk < window, "chunk {chunk} of job {job} outside window {window}");
        }
    }

    fn check(&mut self, action: Action<Result>) {
        match action {
            Action::Assign { assignment, worker, job, chunk, start, end, .. } => {
                self.check_placed("assigned", worker, (job, chunk), (start, end));
                assert!(!self.running.contains_key(&assignment));
                self.running.insert(assignment, (worker, job, chunk));
                self.issued.push(assignment);
            }
            Action::Cancel { assignment, worker } => {
                if self.workers.contains_key(&worker) {
                    let (w, _, _) = self.running.remove(&assignment).expect("cancel of unknown");
                    assert_eq!(w, worker);
                }
            }
            Action::Reduce { job, chunk, start, end, result, .. } => {
                assert!(self.open_jobs.contains_key(&job), "reduce into ended job {job}");
                let count = self.reduced.entry((job, chunk)).or_default();
                *count += 1;
                assert_eq!(*count, 1, "chunk {chunk} of job {job} reduced twice");
                *self.units_reduced.entry(job).or_default() += end - start;
                assert!(self.issued.contains(&result.assignment));
            }
            Action::SendAhead { worker, job, chunk, start, end } => {
                self.check_placed("sent ahead", worker, (job, chunk), (start, end));
                assert!(!self.reduced.contains_key(&(job, chunk)), "sent ahead a chunk done");
                let running = self.running.values().any(|&(_, j, c)| (j, c) == (job, chunk));
                assert!(!running, "sent ahead chunk {chunk} of job {job}, which runs");
            }
            Action::NotGiven { worker, .. } => panic!("worker {worker} delivered nothing here"),
            // Told of a lost worker's running command chunk: it is queued again (checked
            // when it is reduced, once).
            Action::UnitsLost { .. } => {}
            Action::Revoked { job, member, chunks } => {
                let liar: WorkerId = member.parse().unwrap();
                assert!(self.liars.contains(&liar), "honest worker {member}'s results taken back");
                assert!(self.open_jobs.contains_key(&job), "taken back from ended job {job}");
                for (chunk, start, end) in chunks {
                    let count = self.reduced.remove(&(job, chunk));
                    assert_eq!(
                        count,
                        Some(1),
                        "chunk {chunk} of job {job} taken back, not reduced"
                    );
                    *self.units_reduced.get_mut(&job).unwrap() -= end - start;
                }
            }
            Action::Quarantine { worker, .. } => {
                assert!(self.liars.contains(&worker), "honest worker {worker} quarantined");
                self.quarantined.insert(worker);
            }
            Action::JobEnded { job, outcome, progress } => {
                let (chunks, units) = self.open_jobs.remove(&job).expect("job ended twice");
                if outcome == Outcome::Done {
                    let reduced =
                        (0..chunks as u32).filter(|c| self.reduced.contains_key(&(job, *c)));
                    assert_eq!(reduced.count() as u64, chunks, "job {job} done with chunks left");
                    assert_eq!(self.units_reduced.get(&job).copied().unwrap_or(0), units);
                    assert_eq!(progress.units_done, units);
                    assert_eq!(progress.chunks_done, chunks);
                }
                assert!(!self.running.values().any(|r| r.1 == job), "ended job {job} still runs");
                self.ended.insert(job, outcome);
            }
        }
    }

    fn pick<T: Copy>(items: impl Iterator<Item = T>, pick: usize) -> Option<T> {
        let items: Vec<T> = items.collect();
        (!items.is_empty()).then(|| items[pick % items.len()])
    }

    fn apply(&mut self, s: &mut Scheduler<Result>, op: Op) {
        match op {
            Op::Join { slots } => {
                self.next_worker += 1;
                self.workers.insert(self.next_worker, slots);
                self.feed(
                    s,
                    Event::WorkerJoined {
                        worker: self.next_worker,
                        member: self.next_worker.to_string(),
                        slots,
                        quarantined: false,
                        exec: true,
                    },
                );
            }
            Op::Lose { pick } => {
                if let Some(worker) = Self::pick(self.workers.keys().copied(), pick) {
                    self.workers.remove(&worker);
                    self.standing.remove(&worker);
                    self.running.retain(|_, r| r.0 != worker);
                    self.feed(s, Event::WorkerLost { worker });
                }
            }
            Op::Drain { pick } => {
                if let Some(worker) = Self::pick(self.workers.keys().copied(), pick) {
                    self.draining.insert(worker);
                    self.feed(s, Event::WorkerDraining { worker });
                }
            }
            Op::Resume { pick } => {
                if let Some(worker) = Self::pick(self.workers.keys().copied(), pick) {
                    self.draining.remove(&worker);
                    self.feed(s, Event::WorkerResumed { worker });
                }
            }
            Op::Stand { pick, slots } => {
                if let Some(worker) = Self::pick(self.workers.keys().copied(), pick) {
                    let full = self.workers[&worker];
                    match slots < full {
                        true => self.standing.insert(worker, slots),
                        false => self.standing.remove(&worker),
                    };
                    self.feed(s, Event::WorkerStanding { worker, slots });
                }
            }
            Op::Submit { units, max_chunk_units, window, verify, homes } => {
                self.next_job += 1;
                let slots = s.load().slots.max(1);
                let targets = ChunkTargets { max_units: max_chunk_units, ..Default::default() };
                let plan = plan_chunks(units, 1e5, slots, &targets);
                assert!(plan.chunk_units <= max_chunk_units);
                self.open_jobs.insert(self.next_job, (plan.len() as u64, units));
                if let Some(window) = window {
                    self.windows.insert(self.next_job, window);
                }
                // Results a client takes as they come cannot be taken back; the others can.
                let revocable = window.is_none();
                let shape = JobShape {
                    max_chunk_units,
                    window,
                    verify,
                    revocable,
                    // Its units have files: chunks without a home go ahead.
                    send_ahead: homes % 2 == 1,
                    ..JobShape::new(units, 1e5)
                };
                // Members that joined, gone or not (a gone one's chunks are anybody's).
                let mut placed = Homes::none();
                for unit in (0..units).filter(|_| homes > 0) {
                    let member = unit % homes;
                    if member > 0 && member <= self.next_worker {
                        placed.0.entry(member.to_string()).or_default().push(unit);
                    }
                }
                self.feed(s, Event::JobSubmitted { job: self.next_job, shape, homes: placed });
            }
            Op::Window { pick, by } => {
                let open = self.windows.keys().copied().filter(|j| self.open_jobs.contains_key(j));
                if let Some(job) = Self::pick(open, pick) {
                    let upto = self.windows[&job] + by;
                    self.windows.insert(job, upto);
                    self.feed(s, Event::JobWindow { job, upto });
                }
            }
            Op::Cancel { pick } => {
                if let Some(job) = Self::pick(self.open_jobs.keys().copied(), pick) {
                    self.feed(s, Event::JobCancelled { job });
                    assert_eq!(self.ended.get(&job), Some(&Outcome::Cancelled));
                }
            }
            Op::Answer { pick } => {
                if let Some(job) = Self::pick(self.open_jobs.keys().copied(), pick) {
                    self.feed(s, Event::JobAnswered { job });
                    assert_eq!(self.ended.get(&job), Some(&Outcome::Answered));
                }
            }
            Op::Finish { pick } => {
                if let Some(assignment) = Self::pick(self.running.keys().copied(), pick) {
                    self.finish(s, assignment);
                }
            }
            Op::Duplicate { pick } => {
                if let Some(assignment) = Self::pick(self.issued.iter().copied(), pick) {
                    if !self.running.contains_key(&assignment) {
                        let result = Output { assignment, value: 0 };
                        self.feed(s, Event::ChunkFinished { assignment, result });
                    }
                }
            }
            Op::Lie { pick } => {
                if let Some(assignment) = Self::pick(self.running.keys().copied(), pick) {
                    let (worker, _, _) = self.running.remove(&assignment).unwrap();
                    self.liars.insert(worker);
                    let result = Output { assignment, value: u64::MAX - assignment };
                    self.feed(s, Event::ChunkFinished { assignment, result });
                }
            }
            Op::Fail { pick } => {
                if let Some(assignment) = Self::pick(self.running.keys().copied(), pick) {
                    self.running.remove(&assignment);
                    self.feed(s, Event::ChunkFailed { assignment, error: "boom".into() });
                }
            }
            Op::Advance { millis } => {
                self.now += Duration::from_millis(millis);
                self.feed(s, Event::Tick);
            }
            Op::Rtt { pick, millis } => {
                if let Some(worker) = Self::pick(self.workers.keys().copied(), pick) {
                    if millis > 0 {
                        self.far.insert(worker);
                    }
                    let rtt = Duration::from_millis(millis);
                    self.feed(s, Event::WorkerRtt { worker, rtt });
                }
            }
        }
    }

    /// Finishes everything: every open job must then end.
    fn settle(&mut self, s: &mut Scheduler<Result>) {
        self.apply(s, Op::Join { slots: 2 });
        for _ in 0..100_000 {
            let windowed: Vec<JobId> =
                self.windows.keys().copied().filter(|j| self.open_jobs.contains_key(j)).collect();
            for job in windowed {
                let upto = self.windows[&job] + 1;
                self.windows.insert(job, upto);
                self.feed(s, Event::JobWindow { job, upto });
            }
            let Some(&assignment) = self.running.keys().next() else {
                if self.open_jobs.is_empty() {
                    break;
                }
                continue;
            };
            self.finish(s, assignment);
        }
        assert!(self.open_jobs.is_empty(), "jobs never ended: {:?}", self.open_jobs);
    }

    /// Delivers a running assignment's right result.
    fn finish(&mut self, s: &mut Scheduler<Result>, assignment: AssignmentId) {
        let (_, job, chunk) = self.running.remove(&assignment).expect("running");
        let result = Output { assignment, value: right(job, chunk) };
        self.feed(s, Event::ChunkFinished { assignment, result });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_random_interleavings(ops in proptest::collection::vec(op(), 1..120)) {
        let mut s = Scheduler::new(Config::default());
        let mut h = Harness::default();
        for op in ops {
            h.apply(&mut s, op);
        }
        h.settle(&mut s);
        prop_assert_eq!(s.load().slots_busy, 0);
    }
}

fn finish(s: &mut Scheduler<u64>, now: Duration, a: AssignmentId) -> Vec<Action<u64>> {
    // Every result differs from every other: only unverified jobs use this.
    s.handle(now, Event::ChunkFinished { assignment: a, result: a })
}

fn assigned(actions: &[Action<u64>]) -> Vec<(AssignmentId, WorkerId, JobId)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Assign { assignment, worker, job, .. } => Some((*assignment, *worker, *job)),
            _ => None,
        })
        .collect()
}

#[test]
fn jobs_share_slots_round_robin() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    s.handle(t, joined(1, 1));
    // A long job takes the only slot; a short job arrives.
    let a = s.handle(
        t,
        Event::JobSubmitted { job: 1, shape: JobShape::new(1_000_000, 1e3), homes: Homes::none() },
    );
    let first = assigned(&a)[0].0;
    s.handle(
        t,
        Event::JobSubmitted { job: 2, shape: JobShape::new(10, 1e3), homes: Homes::none() },
    );
    // When the slot frees, the short job gets it, not the long one's next chunk.
    let next = assigned(&finish(&mut s, t, first));
    assert_eq!(next[0].2, 2);
}

#[test]
fn a_straggler_gets_a_backup_and_the_first_result_wins() {
    let mut s = Scheduler::new(Config::default());
    let ms = Duration::from_millis;
    s.handle(ms(0), joined(1, 1));
    s.handle(ms(0), joined(2, 1));
    // 2 s of work on 2 slots: 8 chunks of 0.25 s.
    let a = s.handle(
        ms(0),
        Event::JobSubmitted { job: 1, shape: JobShape::new(2_000, 1e3), homes: Homes::none() },
    );
    let (straggler, mut fast) = (assigned(&a)[0], assigned(&a)[1]);
    assert_eq!(straggler.1, 1);
    // Worker 2 runs chunk after chunk in 100 ms while worker 1 sits on chunk 0. No backup is
    // made while the queue has work; once it is empty, chunk 0 (past 3× the 100 ms median)
    // is copied to worker 2.
    let mut now = ms(0);
    let backup = loop {
        now += ms(100);
        let actions = finish(&mut s, now, fast.0);
        let assign = actions.iter().find(|a| matches!(a, Action::Assign { .. }));
        let Some(&Action::Assign { assignment, worker, chunk, .. }) = assign else {
            panic!("worker 2 went idle with a straggler running: {actions:?}");
        };
        assert_eq!(worker, 2);
        if chunk == 0 {
            break assignment;
        }
        fast = (assignment, worker, 1);
    };
    assert_eq!(now, ms(700), "the backup starts as soon as the queue is empty");
    assert_eq!(s.progress(1).map(|p| p.chunks_rerun), Some(1), "a backup is a re-run");
    let actions = finish(&mut s, now + ms(100), backup);
    assert!(actions.contains(&Action::Cancel { assignment: straggler.0, worker: 1 }));
    assert!(matches!(actions.last(), Some(Action::JobEnded { outcome: Outcome::Done, .. })));
    // The straggler's own result, arriving late, is dropped.
    assert!(finish(&mut s, now + ms(200), straggler.0).is_empty());
}

#[test]
fn a_chunk_failing_three_times_fails_the_job() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    for w in 1..=3 {
        s.handle(t, joined(w, 1));
    }
    let mut actions = s.handle(
        t,
        Event::JobSubmitted { job: 1, shape: JobShape::new(5, 1e3), homes: Homes::none() },
    );
    let mut tried = vec![];
    for _ in 0..3 {
        let (id, worker, _) = assigned(&actions)[0];
        tried.push(worker);
        actions = s.handle(t, Event::ChunkFailed { assignment: id, error: "disk on fire".into() });
    }
    tried.sort();
    assert_eq!(tried, vec![1, 2, 3], "each retry went to a worker that had not failed it");
    let Some(Action::JobEnded { outcome: Outcome::Failed(message), .. }) = actions.last() else {
        panic!("{actions:?}")
    };
    assert!(message.contains("disk on fire"), "{message}");
}

#[test]
fn a_lost_workers_chunks_run_elsewhere_and_a_new_worker_gets_work() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    s.handle(t, joined(1, 2));
    let a = s.handle(
        t,
        Event::JobSubmitted { job: 1, shape: JobShape::new(100_000, 1e3), homes: Homes::none() },
    );
    assert_eq!(assigned(&a).len(), 2);
    // A worker joining mid-job is put to work at once.
    let put_to_work = s.handle(t, joined(2, 1));
    assert_eq!(assigned(&put_to_work).len(), 1);
    assert_eq!(assigned(&put_to_work)[0].1, 2);
    // Losing worker 1 frees its chunks; they wait at the head of the queue for a slot.
    s.handle(t, Event::WorkerLost { worker: 1 });
    assert_eq!(s.progress(1).map(|p| p.chunks_rerun), Some(2));
    let back = s.handle(t, joined(3, 2));
    let ranges: Vec<_> = back
        .iter()
        .filter_map(|a| match a {
            Action::Assign { start, .. } => Some(*start),
            _ => None,
        })
        .collect();
    assert_eq!(ranges.len(), 2);
    assert!(ranges.contains(&0), "the lost first chunk runs again first: {ranges:?}");
}

#[test]
fn a_window_holds_chunks_back_until_it_moves_and_stragglers_inside_get_backups() {
    let mut s = Scheduler::new(Config::default());
    let ms = Duration::from_millis;
    s.handle(ms(0), joined(1, 4));
    s.handle(ms(0), joined(2, 1));
    let shape = JobShape { max_chunk_units: 10, window: Some(2), ..JobShape::new(100, 1e3) };
    let a = s.handle(ms(0), Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    let chunks: Vec<ChunkIndex> = a
        .iter()
        .filter_map(|a| if let Action::Assign { chunk, .. } = a { Some(*chunk) } else { None })
        .collect();
    assert_eq!(chunks, vec![0, 1], "5 free slots, but only the window's 2 chunks run");
    assert_eq!(s.progress(1).map(|p| p.chunks_total), Some(10), "chunks of at most 10 units");
    // Chunk 1 finishes fast; chunk 0 straggles. Chunk 2 is outside the window, so the
    // straggler gets a backup although the queue is not empty.
    let first = assigned(&a)[0];
    let done = finish(&mut s, ms(10), assigned(&a)[1].0);
    assert!(assigned(&done).is_empty());
    let later = s.handle(ms(100), Event::Tick);
    assert_eq!(assigned(&later).len(), 1, "a backup of chunk 0: {later:?}");
    assert_ne!(assigned(&later)[0].1, first.1, "the backup runs on another worker");
    // Moving the window lets the next chunks run, but worker 1 missed a deadline: it is sent
    // chunks for 2 of its 4 slots now, one of them busy with chunk 0.
    assert_eq!(s.missed_deadlines(first.1), 1);
    let moved = s.handle(ms(100), Event::JobWindow { job: 1, upto: 4 });
    assert_eq!(assigned(&moved).len(), 1);
}

/// A member that claims many slots, takes every chunk and never answers: backups start from
/// the plan's expected time (no chunk has finished, so there is no median), it is sent fewer
/// chunks with every deadline it misses, and the job completes on the honest worker.
#[test]
fn a_hoarder_cannot_wedge_a_job() {
    let mut s = Scheduler::new(Config::default());
    let ms = Duration::from_millis;
    s.handle(ms(0), joined(1, 4096));
    // 100 chunks of 10 ms planned (1,000 units a second, 10 units each).
    let shape = JobShape::new(1_000, 1e3);
    let a = s.handle(ms(0), Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    assert_eq!(assigned(&a).len(), 100, "the hoarder takes every chunk");
    s.handle(ms(0), joined(2, 1));
    // Nothing before the deadline: 3 × 10 ms, but at least a second.
    assert!(assigned(&s.handle(ms(1_000), Event::Tick)).is_empty());
    let mut now = ms(1_001);
    let mut backup = assigned(&s.handle(now, Event::Tick));
    assert_eq!(backup.len(), 1, "one backup for the one honest slot");
    assert_eq!(s.missed_deadlines(1), 1);
    let mut done = 0;
    while let Some(&(id, worker, _)) = backup.first() {
        assert_eq!(worker, 2);
        now += ms(10);
        let actions = finish(&mut s, now, id);
        done += 1;
        if matches!(actions.last(), Some(Action::JobEnded { .. })) {
            break;
        }
        backup = assigned(&actions);
    }
    assert_eq!(done, 100, "every chunk ran on the honest worker");
    // The hoarder's slots shrank to one with its misses in a row.
    assert!(s.missed_deadlines(1) >= 12, "{}", s.missed_deadlines(1));
    // A new job: the hoarder gets one chunk, not thousands.
    let b = s.handle(now, Event::JobSubmitted { job: 2, shape, homes: Homes::none() });
    let to_hoarder = assigned(&b).iter().filter(|a| a.1 == 1).count();
    assert_eq!(to_hoarder, 1);
}

/// Memory follows the chunks in flight, not the job's size: a job of u64::MAX units starts.
#[test]
fn a_huge_job_holds_only_the_chunks_in_flight() {
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(1, 2));
    let a = s.handle(
        Duration::ZERO,
        Event::JobSubmitted { job: 1, shape: JobShape::new(u64::MAX, 1e8), homes: Homes::none() },
    );
    assert_eq!(assigned(&a).len(), 2);
    let job = &s.jobs[&1];
    assert_eq!(job.started.len(), 2);
    assert_eq!(job.fresh.first(), Some(2));
    assert_eq!(job.plan.len() as u64, u64::from(u32::MAX), "as many chunks as can be indexed");
    assert_eq!(s.load().chunks_queued, job.plan.len() as u64 - 2);
}

fn answer(s: &mut Scheduler<u64>, a: AssignmentId, value: u64) -> Vec<Action<u64>> {
    s.handle(Duration::ZERO, Event::ChunkFinished { assignment: a, result: value })
}

fn joined(worker: WorkerId, slots: u32) -> Event<u64> {
    Event::WorkerJoined {
        worker,
        member: worker.to_string(),
        slots,
        quarantined: false,
        exec: true,
    }
}

/// With every chunk verified, each runs on two workers and is reduced once, after both agree.
#[test]
fn a_verified_chunk_is_reduced_once_two_workers_agree() {
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(1, 1));
    s.handle(Duration::ZERO, joined(2, 1));
    let shape = JobShape { verify: 1.0, ..JobShape::new(5, 1e3) };
    let a = s.handle(Duration::ZERO, Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    let (first, worker, _) = assigned(&a)[0];
    // The first result waits; the same chunk goes to the other worker.
    let wait = answer(&mut s, first, 42);
    assert!(!wait.iter().any(|a| matches!(a, Action::Reduce { .. })), "{wait:?}");
    let (check, other, _) = assigned(&wait)[0];
    assert_ne!(other, worker);
    let done = answer(&mut s, check, 42);
    let reduced: Vec<_> = done
        .iter()
        .filter_map(|a| {
            if let Action::Reduce { result, worker, .. } = a {
                Some((*result, *worker))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(reduced, [(42, worker)], "reduced once, credited to the first");
    let Some(Action::JobEnded { outcome: Outcome::Done, progress, .. }) = done.last() else {
        panic!("{done:?}")
    };
    assert_eq!((progress.chunks_verified, progress.chunks_done), (1, 1));
}

/// A worker whose result two others contradict is quarantined; the job uses the agreeing one.
#[test]
fn a_contradicted_worker_is_quarantined_and_its_result_dropped() {
    let mut s = Scheduler::new(Config::default());
    for w in 1..=3 {
        s.handle(Duration::ZERO, joined(w, 1));
    }
    let shape = JobShape { verify: 1.0, ..JobShape::new(5, 1e3) };
    let a = s.handle(Duration::ZERO, Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    let (lie, liar, _) = assigned(&a)[0];
    let check = assigned(&answer(&mut s, lie, 0))[0];
    let third = assigned(&answer(&mut s, check.0, 7))[0];
    assert!(third.1 != liar && third.1 != check.1, "a third worker decides");
    let decided = answer(&mut s, third.0, 7);
    assert!(
        decided.contains(&Action::Quarantine { worker: liar, job: 1, chunk: 0 }),
        "{decided:?}"
    );
    assert!(decided.iter().any(|a| matches!(a, Action::Reduce { result: 7, .. })), "{decided:?}");
    // No more chunks for the liar, until cleared.
    let shape = JobShape::new(100_000, 1e3);
    let next =
        s.handle(Duration::ZERO, Event::JobSubmitted { job: 2, shape, homes: Homes::none() });
    assert!(assigned(&next).iter().all(|a| a.1 != liar), "{next:?}");
    let cleared = s.handle(Duration::ZERO, Event::WorkerCleared { worker: liar });
    assert_eq!(assigned(&cleared).iter().filter(|a| a.1 == liar).count(), 1);
    // A quarantined worker that reconnects stays quarantined.
    s.handle(Duration::ZERO, Event::WorkerLost { worker: 3 });
    let back = s.handle(
        Duration::ZERO,
        Event::WorkerJoined {
            worker: 4,
            member: 4.to_string(),
            slots: 1,
            quarantined: true,
            exec: true,
        },
    );
    assert!(assigned(&back).iter().all(|a| a.1 != 4), "{back:?}");
}

/// Three different results: no majority, the job fails rather than guess. With nobody to
/// check a result, it is taken as it is.
#[test]
fn three_different_results_fail_the_job_and_a_lone_worker_is_not_checked() {
    let mut s = Scheduler::new(Config::default());
    for w in 1..=3 {
        s.handle(Duration::ZERO, joined(w, 1));
    }
    let shape = JobShape { verify: 1.0, ..JobShape::new(5, 1e3) };
    let a = s.handle(Duration::ZERO, Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    let second = assigned(&answer(&mut s, assigned(&a)[0].0, 1))[0];
    let third = assigned(&answer(&mut s, second.0, 2))[0];
    let end = answer(&mut s, third.0, 3);
    let Some(Action::JobEnded { outcome: Outcome::Failed(message), .. }) = end.last() else {
        panic!("{end:?}")
    };
    assert!(message.contains("three different results"), "{message}");

    let mut lone = Scheduler::new(Config::default());
    lone.handle(Duration::ZERO, joined(1, 1));
    let a =
        lone.handle(Duration::ZERO, Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    let done = answer(&mut lone, assigned(&a)[0].0, 9);
    assert!(done.iter().any(|a| matches!(a, Action::Reduce { result: 9, .. })), "{done:?}");
    // Two disagreeing and no third: the job fails with the reason.
    let mut pair = Scheduler::new(Config::default());
    pair.handle(Duration::ZERO, joined(1, 1));
    pair.handle(Duration::ZERO, joined(2, 1));
    let a =
        pair.handle(Duration::ZERO, Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    let check = assigned(&answer(&mut pair, assigned(&a)[0].0, 1))[0];
    let end = answer(&mut pair, check.0, 2);
    let Some(Action::JobEnded { outcome: Outcome::Failed(message), .. }) = end.last() else {
        panic!("{end:?}")
    };
    assert!(message.contains("no third worker"), "{message}");
}

#[test]
fn the_verified_share_is_fixed_by_the_key_and_close_to_the_fraction() {
    let key = VerifyKey::derived(b"a coordinator's secret");
    let chosen = |key: &VerifyKey, job: JobId, f: f64| {
        (0..100_000u32).filter(|&c| key.is_verified(job, c, f)).collect::<Vec<_>>()
    };
    assert!(chosen(&key, 7, 0.0).is_empty());
    assert_eq!(chosen(&key, 7, 1.0).len(), 100_000);
    let two_percent = chosen(&key, 7, 0.02);
    assert!((1_800..2_200).contains(&two_percent.len()), "{}", two_percent.len());
    assert_eq!(two_percent, chosen(&key, 7, 0.02), "the same chunks every time");
    let again = VerifyKey::derived(b"a coordinator's secret");
    assert_eq!(two_percent, chosen(&again, 7, 0.02), "and after a restart (the same secret)");
    assert_ne!(chosen(&key, 8, 0.5)[..64], chosen(&key, 7, 0.5)[..64], "other jobs, other chunks");
    // Another secret, another choice: what a member could compute from job and chunk alone
    // says nothing of it (about half of one choice's chunks are in another's at 0.5).
    let other = chosen(&VerifyKey::derived(b"another secret"), 7, 0.5);
    let mine = chosen(&key, 7, 0.5);
    let both = mine.iter().filter(|c| other.binary_search(c).is_ok()).count();
    let expected = mine.len() / 2;
    assert!(both.abs_diff(expected) < expected / 20, "{both} of {}", mine.len());
}

fn reduced(actions: &[Action<u64>]) -> Vec<ChunkIndex> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reduce { chunk, .. } => Some(*chunk),
            _ => None,
        })
        .collect()
}

fn chunks_assigned(actions: &[Action<u64>]) -> Vec<ChunkIndex> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Assign { chunk, .. } => Some(*chunk),
            _ => None,
        })
        .collect()
}

/// A job resumed after a restart: cut as before, its counted chunks skipped, the gaps before
/// the last counted one run first.
#[test]
fn a_resumed_job_runs_only_the_chunks_not_counted() {
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(1, 1));
    let plan = ChunkPlan { units: 100, chunk_units: 10 };
    let done = [0, 1, 3, 4].map(|c| (c, "w".to_string())).into();
    let shape = JobShape::new(100, 1.0);
    let given = vec![];
    let a = s.handle(Duration::ZERO, Event::JobResumed { job: 7, shape, plan, done, given });
    assert_eq!(s.plan(7), Some(plan), "the plan it had, not a new one");
    let p = s.progress(7).unwrap();
    assert_eq!((p.chunks_done, p.chunks_total, p.units_done, p.units_total), (4, 10, 40, 100));
    let mut order = chunks_assigned(&a);
    let mut next = assigned(&a)[0].0;
    loop {
        let more = answer(&mut s, next, 1);
        order.extend(chunks_assigned(&more));
        match assigned(&more).first() {
            Some(&(a, ..)) => next = a,
            None => break,
        }
    }
    assert_eq!(order, [2, 5, 6, 7, 8, 9], "the gap first, then the rest, each once");
    assert_eq!(s.progress(7), None, "ended");
    // All counted: it ends at once.
    let all = (0..10).map(|c| (c, "w".to_string())).collect();
    let given = vec![];
    let resumed = Event::JobResumed { job: 8, shape, plan, done: all, given };
    let ended = s.handle(Duration::ZERO, resumed);
    assert!(matches!(ended[..], [Action::JobEnded { job: 8, outcome: Outcome::Done, .. }]));
}

/// A result held through the coordinator's restart counts if the journal says the chunk was
/// given to that member; the chunks before it run, and one given to nobody is not taken.
#[test]
fn a_result_held_through_a_restart_counts_for_a_chunk_given_before_it() {
    let mut s = Scheduler::new(Config::default());
    let plan = ChunkPlan { units: 100, chunk_units: 10 };
    let done = [(0, "a".to_string())].into();
    let given = vec![(4, "b".to_string()), (99, "b".to_string())];
    let shape = JobShape::new(100, 1.0);
    s.handle(Duration::ZERO, Event::JobResumed { job: 7, shape, plan, done, given });
    assert_eq!(s.jobs[&7].fresh.first(), Some(5));
    assert_eq!(s.jobs[&7].retry, [1, 2, 3, 4]);
    s.handle(Duration::ZERO, joined(2, 1));
    let back = Event::WorkerJoined {
        worker: 3,
        member: "b".into(),
        slots: 1,
        quarantined: false,
        exec: true,
    };
    s.handle(Duration::ZERO, back);
    let deliver = |s: &mut Scheduler<u64>, worker, chunk| {
        s.handle(Duration::ZERO, Event::ChunkDelivered { worker, job: 7, chunk, result: 5 })
    };
    assert_eq!(reduced(&deliver(&mut s, 3, 4)), [4], "given to b before the restart");
    let not_given = deliver(&mut s, 3, 3);
    assert!(not_given.iter().any(|a| matches!(a, Action::NotGiven { chunk: 3, .. })));
}

/// Results held through a lost connection: counted once, and only for a chunk given to the
/// same member (whatever its connection) that it has not answered since; any other is told.
#[test]
fn delivered_results_count_once_and_only_for_chunks_given() {
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(1, 1));
    s.handle(Duration::ZERO, joined(2, 1));
    s.handle(
        Duration::ZERO,
        Event::JobSubmitted { job: 1, shape: JobShape::new(100, 1.0), homes: Homes::none() },
    );
    let deliver = |s: &mut Scheduler<u64>, worker, chunk| {
        s.handle(Duration::ZERO, Event::ChunkDelivered { worker, job: 1, chunk, result: 5 })
    };
    let not_given = |actions: &[Action<u64>]| {
        actions.iter().any(|a| matches!(a, Action::NotGiven { job: 1, .. }))
    };
    // Chunk 0 runs on worker 1, chunk 1 on worker 2. Worker 1 claims chunk 1 (given to 2) and
    // chunk 7 (never started): neither is counted, both are told.
    let (on_1, on_2) = (s.workers[&1].running.len(), s.workers[&2].running.len());
    assert_eq!((on_1, on_2), (1, 1));
    assert!(not_given(&deliver(&mut s, 1, 1)));
    assert!(not_given(&deliver(&mut s, 1, 7)));
    assert!(reduced(&deliver(&mut s, 9, 0)).is_empty(), "worker 9 is not connected");
    assert_eq!(s.progress(1).unwrap().chunks_done, 0);
    // Worker 1's connection is lost; its member comes back as worker 3 with the result it
    // held for chunk 0: counted, once.
    s.handle(Duration::ZERO, Event::WorkerLost { worker: 1 });
    let back = Event::WorkerJoined {
        worker: 3,
        member: "1".into(),
        slots: 1,
        quarantined: false,
        exec: true,
    };
    s.handle(Duration::ZERO, back);
    let taken = deliver(&mut s, 3, 0);
    assert_eq!(reduced(&taken), [0]);
    assert!(!not_given(&taken));
    let again = deliver(&mut s, 3, 0);
    assert!(reduced(&again).is_empty() && !not_given(&again), "done: dropped without a word");
    // A chunk a member failed cannot be answered by it afterwards.
    let running_on_2 = s.workers[&2].running.keys().next().copied().unwrap();
    let chunk = s.assignments[&running_on_2].chunk;
    s.handle(Duration::ZERO, Event::ChunkFailed { assignment: running_on_2, error: "x".into() });
    assert!(not_given(&deliver(&mut s, 2, chunk)), "it failed that chunk: nothing held");
}

#[test]
fn a_delivered_result_is_checked_by_another_member_when_verified() {
    let member_1_again = |worker| Event::WorkerJoined {
        worker,
        member: "1".into(),
        slots: 1,
        quarantined: false,
        exec: true,
    };
    let shape = JobShape { verify: 1.0, ..JobShape::new(1_000, 1.0) };
    let deliver = |s: &mut Scheduler<u64>, worker| {
        s.handle(Duration::ZERO, Event::ChunkDelivered { worker, job: 1, chunk: 0, result: 5 })
    };
    // Alone, nobody can check it: taken as it is. (Chunk 0 ran on worker 1, whose member
    // came back as worker 3.)
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(1, 1));
    s.handle(Duration::ZERO, Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    s.handle(Duration::ZERO, Event::WorkerLost { worker: 1 });
    s.handle(Duration::ZERO, member_1_again(3));
    assert_eq!(reduced(&deliver(&mut s, 3)), [0]);
    // With a second member, the first result waits for its check; the same member again,
    // on any connection, is no check.
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(1, 1));
    s.handle(Duration::ZERO, joined(2, 1));
    s.handle(Duration::ZERO, Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    s.handle(Duration::ZERO, Event::WorkerLost { worker: 1 });
    s.handle(Duration::ZERO, member_1_again(3));
    assert_eq!(s.jobs[&1].started[&0].given, ["1", "1"], "given to member 1 twice");
    assert!(reduced(&deliver(&mut s, 3)).is_empty(), "waits for a check");
    assert!(reduced(&deliver(&mut s, 3)).is_empty(), "not from the same member");
    s.handle(Duration::ZERO, Event::WorkerLost { worker: 3 });
    s.handle(Duration::ZERO, member_1_again(4));
    assert!(reduced(&deliver(&mut s, 4)).is_empty(), "nor from its next connection");
    // Member 2 runs what it holds until it has checked chunk 0.
    for _ in 0..3 {
        let on_2 = *s.workers[&2].running.keys().next().expect("member 2 runs a chunk");
        let chunk = s.assignments[&on_2].chunk;
        let finished = Event::ChunkFinished { assignment: on_2, result: 5 };
        if chunk == 0 {
            assert_eq!(reduced(&s.handle(Duration::ZERO, finished)), [0], "checked by another");
            return;
        }
        s.handle(Duration::ZERO, finished);
    }
    panic!("chunk 0 was never checked by member 2");
}

/// A shape for users' commands: no backups, retries, slots per chunk, workers that exec.
fn command_shape(units: u64, slots_per_chunk: u32, retries: u32) -> JobShape {
    let mut shape = JobShape::new(units, 1.0);
    shape.max_chunk_units = 1;
    shape.backups = false;
    shape.exec = true;
    shape.slots_per_chunk = slots_per_chunk;
    shape.retries = retries;
    shape
}

#[test]
fn commands_go_only_to_workers_that_run_them() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    let refuser = Event::WorkerJoined {
        worker: 1,
        member: 1.to_string(),
        slots: 4,
        quarantined: false,
        exec: false,
    };
    s.handle(t, refuser.clone());
    // Workers are there and none runs commands: the job fails at once, saying why.
    let a = s.handle(
        t,
        Event::JobSubmitted { job: 1, shape: command_shape(4, 1, 0), homes: Homes::none() },
    );
    let ended = a.iter().find_map(|a| match a {
        Action::JobEnded { job: 1, outcome: Outcome::Failed(why), .. } => Some(why.clone()),
        _ => None,
    });
    assert!(ended.is_some_and(|why| why.contains("--no-exec")), "{a:?}");
    s.handle(t, joined(2, 1));
    let a = s.handle(
        t,
        Event::JobSubmitted { job: 2, shape: command_shape(4, 1, 0), homes: Homes::none() },
    );
    assert_eq!(assigned(&a).iter().map(|a| a.1).collect::<Vec<_>>(), [2], "only the runner");
    // Built-in tasks still use the refuser.
    let a = s.handle(
        t,
        Event::JobSubmitted { job: 3, shape: JobShape::new(100, 1.0), homes: Homes::none() },
    );
    assert!(assigned(&a).iter().all(|a| a.1 == 1) && assigned(&a).len() == 4, "{a:?}");
}

#[test]
fn a_chunk_takes_the_slots_it_asks_for_or_all_of_a_smaller_worker() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    s.handle(t, joined(1, 4));
    s.handle(t, joined(2, 2));
    let a = s.handle(
        t,
        Event::JobSubmitted { job: 1, shape: command_shape(10, 3, 0), homes: Homes::none() },
    );
    // Worker 1 fits one chunk of 3 slots; worker 2 has 2 slots, and gives them all to one.
    let placed = assigned(&a);
    assert_eq!(placed.len(), 2, "{a:?}");
    assert_eq!((s.busy_slots(1), s.busy_slots(2)), (3, 2));
    assert_eq!(s.load().slots_busy, 5);
    let (first, ..) = placed[0];
    let next = assigned(&finish(&mut s, t, first));
    assert_eq!(next.len(), 1, "its slots free again for one more");
    assert_eq!(s.load().slots_busy, 5);
}

#[test]
fn a_failing_command_is_retried_elsewhere_as_often_as_the_job_allows_and_never_backed_up() {
    let mut s = Scheduler::new(Config { max_failures: 1, ..Config::default() });
    let t = Duration::ZERO;
    s.handle(t, joined(1, 1));
    s.handle(t, joined(2, 1));
    let a = s.handle(
        t,
        Event::JobSubmitted { job: 1, shape: command_shape(1, 1, 2), homes: Homes::none() },
    );
    let attempts = |actions: &[Action<u64>]| -> Vec<(WorkerId, u32)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Assign { worker, attempt, .. } => Some((*worker, *attempt)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(attempts(&a), [(1, 0)]);
    // Long past any deadline: a command gets no backup copy.
    let late = s.handle(Duration::from_secs(3600), Event::Tick);
    assert!(assigned(&late).is_empty(), "{late:?}");
    let fail = |s: &mut Scheduler<u64>, a: AssignmentId| {
        s.handle(t, Event::ChunkFailed { assignment: a, error: "exit 3".into() })
    };
    let again = fail(&mut s, assigned(&a)[0].0);
    assert_eq!(attempts(&again), [(2, 1)], "the other worker, the second attempt");
    let third = fail(&mut s, assigned(&again)[0].0);
    assert_eq!(attempts(&third), [(1, 2)]);
    let ended = fail(&mut s, assigned(&third)[0].0);
    let failed =
        ended.iter().any(|a| matches!(a, Action::JobEnded { outcome: Outcome::Failed(_), .. }));
    assert!(failed, "1 failure allowed + 2 retries: the fourth failure ends it: {ended:?}");
}

#[test]
fn a_closing_job_starts_nothing_more_and_ends_when_its_running_chunks_do() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    s.handle(t, joined(1, 2));
    let a = s.handle(
        t,
        Event::JobSubmitted { job: 1, shape: command_shape(10, 1, 0), homes: Homes::none() },
    );
    let running = assigned(&a);
    assert_eq!(running.len(), 2);
    let closed = s.handle(t, Event::JobClosing { job: 1 });
    assert!(closed.is_empty(), "nothing ends yet: {closed:?}");
    let after_one = finish(&mut s, t, running[0].0);
    assert!(assigned(&after_one).is_empty(), "no new chunk: {after_one:?}");
    assert!(after_one.iter().any(|a| matches!(a, Action::Reduce { .. })), "still counted");
    // A failure of the last running chunk is not retried: the job ends, answered.
    let last = s.handle(t, Event::ChunkFailed { assignment: running[1].0, error: "x".into() });
    let ended = last.iter().find_map(|a| match a {
        Action::JobEnded { outcome, progress, .. } => Some((outcome.clone(), progress.chunks_done)),
        _ => None,
    });
    assert_eq!(ended, Some((Outcome::Answered, 1)), "{last:?}");
    assert!(assigned(&last).is_empty());
}

#[test]
fn a_judged_job_starts_nothing_between_a_result_and_its_judgement() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    s.handle(t, joined(1, 2));
    let mut shape = command_shape(10, 1, 0);
    shape.judged = true;
    let a = s.handle(t, Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    let running = assigned(&a);
    assert_eq!(running.len(), 2);
    // The result that would meet a halt rule: its freed slot waits for the judgement.
    let done = finish(&mut s, t, running[0].0);
    assert!(done.iter().any(|a| matches!(a, Action::Reduce { .. })), "{done:?}");
    assert!(assigned(&done).is_empty(), "nothing starts before the judgement: {done:?}");
    // Judged, the rule not met: the slot takes the next chunk.
    let go_on = s.handle(t, Event::JobJudged { job: 1 });
    assert_eq!(assigned(&go_on).len(), 1, "{go_on:?}");
    // Met: closing first, then judged: nothing starts, and the job ends with its last chunk.
    let done = finish(&mut s, t, running[1].0);
    assert!(assigned(&done).is_empty());
    assert!(s.handle(t, Event::JobClosing { job: 1 }).is_empty());
    let judged = s.handle(t, Event::JobJudged { job: 1 });
    assert!(assigned(&judged).is_empty(), "{judged:?}");
    let last = finish(&mut s, t, assigned(&go_on)[0].0);
    assert!(last.iter().any(|a| matches!(a, Action::JobEnded { outcome: Outcome::Answered, .. })));
    // A job whose results are not judged goes on at once.
    let a = s.handle(
        t,
        Event::JobSubmitted { job: 2, shape: command_shape(10, 1, 0), homes: Homes::none() },
    );
    let next = finish(&mut s, t, assigned(&a)[0].0);
    assert_eq!(assigned(&next).len(), 1, "{next:?}");
}

#[test]
fn a_job_holds_at_most_its_max_slots_at_once() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    s.handle(t, joined(1, 4));
    s.handle(t, joined(2, 4));
    let mut shape = command_shape(20, 1, 0);
    shape.max_slots = Some(3);
    let a = s.handle(t, Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    let running = assigned(&a);
    assert_eq!(running.len(), 3, "three of eight free slots: {a:?}");
    assert_eq!(s.load().slots_busy, 3);
    // Another job takes the rest.
    let b = s.handle(
        t,
        Event::JobSubmitted { job: 2, shape: command_shape(20, 1, 0), homes: Homes::none() },
    );
    assert_eq!(assigned(&b).len(), 5);
    // One of the first job's ends: it may take one more, no more.
    let next = finish(&mut s, t, running[0].0);
    let mine: Vec<_> = assigned(&next).into_iter().filter(|a| a.2 == 1).collect();
    assert_eq!(mine.len(), 1, "{next:?}");
    // Chunks of two slots: the first one that reaches the bound is the last.
    let mut s = Scheduler::new(Config::default());
    s.handle(t, joined(3, 8));
    let mut shape = command_shape(20, 2, 0);
    shape.max_slots = Some(3);
    let c = s.handle(t, Event::JobSubmitted { job: 3, shape, homes: Homes::none() });
    assert_eq!(assigned(&c).len(), 2, "two chunks of two slots reach three: {c:?}");
}

#[test]
fn a_spaced_jobs_chunks_start_that_far_apart_and_another_job_fills_the_slots() {
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(1, 4));
    let mut shape = command_shape(20, 1, 0);
    shape.spacing = Some(Duration::from_millis(500));
    let at = Duration::from_millis;
    let a = s.handle(at(0), Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    assert_eq!(assigned(&a).len(), 1, "one at once, not four: {a:?}");
    assert!(assigned(&s.handle(at(499), Event::Tick)).is_empty(), "not before 500 ms");
    let tick = s.handle(at(500), Event::Tick);
    assert_eq!(assigned(&tick).len(), 1, "one more at 500 ms: {tick:?}");
    // A chunk ending frees a slot, which the spaced job does not take before its time...
    let ended = finish(&mut s, at(600), assigned(&a)[0].0);
    assert!(assigned(&ended).is_empty(), "{ended:?}");
    // ...but another job does, at once.
    let b = s.handle(
        at(600),
        Event::JobSubmitted { job: 2, shape: command_shape(20, 1, 0), homes: Homes::none() },
    );
    assert_eq!(assigned(&b).len(), 3, "{b:?}");
    assert!(assigned(&b).iter().all(|a| a.2 == 2));
}

fn far(s: &mut Scheduler<u64>, worker: WorkerId, millis: u64) -> Vec<Action<u64>> {
    let rtt = Duration::from_millis(millis);
    s.handle(Duration::ZERO, Event::WorkerRtt { worker, rtt })
}

/// 1 s of work at 1e3 units/s on one slot: four chunks of 0.25 s.
fn quarter_second_chunks(s: &mut Scheduler<u64>, job: JobId) -> Vec<Action<u64>> {
    s.handle(
        Duration::ZERO,
        Event::JobSubmitted { job, shape: JobShape::new(1_000, 1e3), homes: Homes::none() },
    )
}

#[test]
fn a_far_worker_holds_enough_chunks_to_cover_a_round_trip_and_a_near_one_none() {
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(1, 1));
    // 1 ms against 250 ms chunks: 0.4%, nothing ahead.
    far(&mut s, 1, 1);
    assert_eq!(assigned(&quarter_second_chunks(&mut s, 1)).len(), 1);
    assert_eq!(s.prefetched(1), 0);
    // 100 ms: two round trips (0.2 s) are most of a chunk, so one waits.
    let ahead = assigned(&far(&mut s, 1, 100));
    assert_eq!(ahead.len(), 1, "one more, sent ahead");
    assert_eq!((s.busy_slots(1), s.prefetched(1)), (1, 1));
    // 600 ms: 2.4 chunks end per round trip, 4.8 in two: the job's last two go.
    assert_eq!(assigned(&far(&mut s, 1, 600)).len(), 2);
    assert_eq!((s.busy_slots(1), s.prefetched(1)), (1, 3));
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(1, 2));
    far(&mut s, 1, 300);
    let big = JobShape::new(1_000_000, 1e3);
    s.handle(Duration::ZERO, Event::JobSubmitted { job: 1, shape: big, homes: Homes::none() });
    // Two slots, 300 ms against 0.5 s chunks (the longest planned): 1.2 chunks end per round
    // trip, 2.4 in two, rounded up.
    assert_eq!((s.busy_slots(1), s.prefetched(1)), (2, 3));
    // Measured near again: it keeps what it holds, and gets no more.
    far(&mut s, 1, 0);
    assert!(assigned(&finish(&mut s, Duration::ZERO, 1)).is_empty(), "the next one was there");
    assert_eq!((s.busy_slots(1), s.prefetched(1)), (2, 2));
}

/// Two chunks of 1 s on a worker of one slot 100 ms away: one runs, one waits ahead.
fn two_chunks_on_a_far_worker(s: &mut Scheduler<u64>) -> (AssignmentId, AssignmentId) {
    s.handle(Duration::ZERO, joined(1, 1));
    far(s, 1, 100);
    let shape = JobShape::new(2, 1.0);
    let sent = assigned(
        &s.handle(Duration::ZERO, Event::JobSubmitted { job: 1, shape, homes: Homes::none() }),
    );
    assert_eq!(sent.len(), 2);
    assert_eq!((s.busy_slots(1), s.prefetched(1)), (1, 1));
    (sent[0].0, sent[1].0)
}

#[test]
fn a_prefetched_chunk_starts_when_a_slot_frees_and_its_deadline_counts_from_then() {
    let mut s = Scheduler::new(Config::default());
    let ms = Duration::from_millis;
    let (first, second) = two_chunks_on_a_far_worker(&mut s);
    let next = s.handle(ms(1_100), Event::ChunkFinished { assignment: first, result: 0 });
    assert!(assigned(&next).is_empty());
    assert_eq!((s.busy_slots(1), s.prefetched(1)), (1, 0), "the second started");
    assert_eq!(s.assignments[&second].started, ms(1_100));
    // A near worker joins: the second chunk runs, so there is nothing to take back, and it is
    // a straggler only 3 × 1.1 s after it started (sent at 0, it would be one by now).
    assert!(assigned(&s.handle(ms(1_100), joined(2, 1))).is_empty());
    assert!(assigned(&s.handle(ms(4_400), Event::Tick)).is_empty());
    let backup = assigned(&s.handle(ms(4_401), Event::Tick));
    assert_eq!(backup.iter().map(|a| a.1).collect::<Vec<_>>(), [2]);
}

#[test]
fn a_free_slot_takes_a_chunk_back_from_a_queue_elsewhere() {
    let mut s = Scheduler::new(Config::default());
    let (_, second) = two_chunks_on_a_far_worker(&mut s);
    let taken = s.handle(Duration::ZERO, joined(2, 1));
    assert_eq!(taken[0], Action::Cancel { assignment: second, worker: 1 });
    assert_eq!(assigned(&taken).iter().map(|a| a.1).collect::<Vec<_>>(), [2]);
    assert!(matches!(taken[1], Action::Assign { chunk: 1, attempt: 0, .. }));
    assert_eq!(s.prefetched(1), 0);
    assert_eq!(s.progress(1).map(|p| p.chunks_rerun), Some(0), "it never ran: no re-run");
}

#[test]
fn prefetched_chunks_run_elsewhere_when_their_worker_is_lost_and_end_with_their_job() {
    let mut s = Scheduler::new(Config::default());
    let (first, second) = two_chunks_on_a_far_worker(&mut s);
    let lost = s.handle(Duration::ZERO, Event::WorkerLost { worker: 1 });
    let cancelled: Vec<_> = lost
        .iter()
        .filter_map(|a| match a {
            Action::Cancel { assignment, .. } => Some(*assignment),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled, [first, second]);
    s.handle(Duration::ZERO, joined(2, 1));
    far(&mut s, 2, 100);
    assert_eq!((s.busy_slots(2), s.prefetched(2)), (1, 1), "both sent again");
    let ended = s.handle(Duration::ZERO, Event::JobCancelled { job: 1 });
    let cancels = ended.iter().filter(|a| matches!(a, Action::Cancel { worker: 2, .. }));
    assert_eq!(cancels.count(), 2, "{ended:?}");
    assert_eq!((s.busy_slots(2), s.prefetched(2)), (0, 0));
}

#[test]
fn a_worker_missing_deadlines_gets_nothing_ahead() {
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(1, 1));
    far(&mut s, 1, 100);
    s.workers.get_mut(&1).unwrap().missed = 1;
    assert_eq!(assigned(&quarter_second_chunks(&mut s, 1)).len(), 1);
    assert_eq!(s.prefetched(1), 0);
    s.workers.get_mut(&1).unwrap().missed = 0;
    assert_eq!(assigned(&s.handle(Duration::ZERO, Event::Tick)).len(), 1, "in time again");
}

#[test]
fn commands_are_never_sent_ahead() {
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(1, 1));
    far(&mut s, 1, 2_000);
    let a = s.handle(
        Duration::ZERO,
        Event::JobSubmitted { job: 1, shape: command_shape(9, 1, 0), homes: Homes::none() },
    );
    assert_eq!(assigned(&a).len(), 1);
    assert_eq!(s.prefetched(1), 0);
}

/// A chunk a member failed goes to another member, even when the only free slot is the
/// failing member's and the chunk waits in the other's queue (it is not taken back for the
/// failing member); a check never goes to a member that failed the chunk, and when no other
/// member can give one, the single result is taken.
#[test]
fn a_chunk_never_runs_again_where_it_failed_while_another_member_can_run_it() {
    let t = Duration::ZERO;
    let mut s = Scheduler::new(Config::default());
    s.handle(t, joined(1, 1));
    s.handle(t, joined(2, 1));
    // Far: worker 2 is sent chunks ahead, to wait in its queue.
    s.handle(t, Event::WorkerRtt { worker: 2, rtt: Duration::from_secs(1) });
    let mut actions = s.handle(
        t,
        Event::JobSubmitted { job: 1, shape: JobShape::new(50, 1.0), homes: Homes::none() },
    );
    let mut failed = BTreeSet::new();
    for _ in 0..20 {
        for a in &actions {
            if let Action::Assign { worker: 1, chunk, .. } = a {
                assert!(
                    !failed.contains(chunk),
                    "chunk {chunk} given again to the member that failed it"
                );
            }
        }
        let Some((&on_1, a)) = s.assignments.iter().find(|(_, a)| a.worker == 1) else { break };
        failed.insert(a.chunk);
        actions = s.handle(t, Event::ChunkFailed { assignment: on_1, error: "no".into() });
    }
    assert!(failed.len() > 1, "worker 1 kept running chunks");
    assert!(s.jobs.contains_key(&1), "failed nowhere else: the job goes on");

    // Verified: member 2 answers chunk 0; member 1 fails its check once; no other member can
    // check it, so member 2's result is taken.
    let mut s = Scheduler::new(Config::default());
    s.handle(t, joined(1, 1));
    s.handle(t, joined(2, 1));
    let shape = JobShape { verify: 1.0, ..JobShape::new(2, 1.0) };
    s.handle(t, Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    let on = |s: &Scheduler<u64>, worker| {
        *s.assignments.iter().find(|(_, a)| a.worker == worker).expect("a chunk").0
    };
    let on_2 = on(&s, 2);
    assert_eq!(s.assignments[&on_2].chunk, 1);
    s.handle(t, Event::ChunkFinished { assignment: on_2, result: 7 });
    // Member 1 runs chunk 0, then checks chunk 1 and fails it.
    let on_1 = on(&s, 1);
    s.handle(t, Event::ChunkFinished { assignment: on_1, result: 7 });
    let check = on(&s, 1);
    assert_eq!(s.assignments[&check].chunk, 1);
    let after = s.handle(t, Event::ChunkFailed { assignment: check, error: "no".into() });
    assert!(reduced(&after).contains(&1), "member 2's result taken as it is: {after:?}");
}

/// A member that hoards the chunks it is given is no check to wait for: once its copy is past
/// the deadline, a verified chunk's check goes to another worker or, if none can give it, the
/// result is taken as it is. With every chunk verified and a hoarder beside one honest
/// worker, the job ends.
#[test]
fn a_hoarded_check_does_not_wedge_a_verified_job() {
    let mut s = Scheduler::new(Config::default());
    let mut t = Duration::ZERO;
    s.handle(t, joined(1, 1)); // hoards
    s.handle(t, joined(2, 1));
    let shape = JobShape { verify: 1.0, ..JobShape::new(400, 1000.0) };
    s.handle(t, Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    for _ in 0..2000 {
        t += Duration::from_millis(10);
        let on_2: Vec<AssignmentId> = s.workers[&2].running.keys().copied().collect();
        let mut actions = vec![];
        for assignment in on_2 {
            actions.extend(s.handle(t, Event::ChunkFinished { assignment, result: 1 }));
        }
        actions.extend(s.handle(t, Event::Tick));
        if actions.iter().any(|a| matches!(a, Action::JobEnded { outcome: Outcome::Done, .. })) {
            return;
        }
    }
    panic!("wedged: {:?}", s.progress(1));
}

/// A member cannot pass a result off as held through a lost connection for a chunk it still
/// holds (running, or waiting in its queue): that result comes on the chunk's own stream.
#[test]
fn a_held_result_for_a_chunk_still_held_is_not_taken() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    s.handle(t, joined(1, 1));
    // Far: it is sent a chunk ahead, to wait in its queue.
    s.handle(t, Event::WorkerRtt { worker: 1, rtt: Duration::from_secs(1) });
    s.handle(
        t,
        Event::JobSubmitted { job: 1, shape: JobShape::new(400, 1000.0), homes: Homes::none() },
    );
    let held: Vec<ChunkIndex> = s.workers[&1]
        .running
        .keys()
        .chain(s.workers[&1].prefetched.iter().map(|(id, _)| id))
        .map(|id| s.assignments[id].chunk)
        .collect();
    assert!(held.len() >= 2, "one running, one ahead: {held:?}");
    for chunk in held {
        let event = Event::ChunkDelivered { worker: 1, job: 1, chunk, result: 0 };
        let actions = s.handle(t, event);
        assert!(reduced(&actions).is_empty(), "chunk {chunk}: {actions:?}");
        assert!(actions.iter().any(|a| matches!(a, Action::NotGiven { .. })), "{actions:?}");
    }
}

/// The chunks assigned, as (worker, chunk).
fn placed(actions: &[Action<u64>]) -> Vec<(WorkerId, ChunkIndex)> {
    let chunks = actions.iter().filter_map(|a| match a {
        Action::Assign { worker, chunk, .. } => Some((*worker, *chunk)),
        _ => None,
    });
    chunks.collect()
}

fn homes(of: &[(&str, &[u64])]) -> Homes {
    Homes(of.iter().map(|(m, units)| (m.to_string(), units.to_vec())).collect())
}

/// Locality: each slot takes the chunks whose files its worker holds, in order; a worker out
/// of its own takes one nobody holds, then the last of another's, never idling.
#[test]
fn a_free_slot_takes_a_chunk_whose_files_its_worker_holds() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    s.handle(t, joined(1, 1));
    s.handle(t, joined(2, 1));
    // Units 0..7: 1 holds 1, 3, 5; 2 holds 0, 2; nobody holds 4 and 6.
    let homes = homes(&[("1", &[1, 3, 5]), ("2", &[0, 2])]);
    let shape = command_shape(7, 1, 0);
    let a = s.handle(t, Event::JobSubmitted { job: 1, shape, homes });
    assert_eq!(placed(&a), [(1, 1), (2, 0)], "each its own first");
    let first = assigned(&a);
    let a = finish(&mut s, t, first[1].0);
    assert_eq!(placed(&a), [(2, 2)]);
    let a = finish(&mut s, t, assigned(&a)[0].0);
    assert_eq!(placed(&a), [(2, 4)], "out of its own: the first nobody holds");
    let a = finish(&mut s, t, assigned(&a)[0].0);
    assert_eq!(placed(&a), [(2, 6)]);
    let a = finish(&mut s, t, assigned(&a)[0].0);
    assert_eq!(placed(&a), [(2, 5)], "then the last of another's, never idle");
    let a = finish(&mut s, t, first[0].0);
    assert_eq!(placed(&a), [(1, 3)], "its own next one stayed");
    assert_eq!(s.load().chunks_queued, 0);
}

/// A member that is not connected (or takes no chunks) holds nothing that counts: its chunks
/// go in order to whoever is free, and the window bounds which chunks may go at all.
#[test]
fn chunks_held_by_an_absent_member_are_anybodys_and_the_window_holds() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    s.handle(t, joined(1, 1));
    s.handle(t, joined(2, 1));
    s.handle(t, Event::WorkerDraining { worker: 2 });
    let homes = homes(&[("2", &[0, 1]), ("gone", &[2]), ("1", &[4])]);
    let mut shape = command_shape(6, 1, 0);
    shape.window = Some(3);
    let a = s.handle(t, Event::JobSubmitted { job: 1, shape, homes });
    assert_eq!(placed(&a), [(1, 0)], "2 takes no chunks: its files count for nothing");
    let a = finish(&mut s, t, assigned(&a)[0].0);
    assert_eq!(placed(&a), [(1, 1)], "chunk 4 is 1's, but outside the window");
    s.handle(t, Event::JobWindow { job: 1, upto: 6 });
    let a = finish(&mut s, t, assigned(&a)[0].0);
    assert_eq!(placed(&a), [(1, 4)]);
    let a = finish(&mut s, t, assigned(&a)[0].0);
    assert_eq!(placed(&a), [(1, 2)], "a member never seen: its chunk is nobody's");
}

/// Units long enough (20 ms or more) get a chunk each when their job has homes, so each goes
/// where its file is; quick units, or a job without homes, are cut as always.
#[test]
fn units_with_homes_get_a_chunk_each_unless_they_are_quick() {
    let chunk_units = |rate: f64, homes: Homes| {
        let mut s = Scheduler::<u64>::new(Config::default());
        s.handle(Duration::ZERO, joined(1, 1));
        let shape = JobShape { exec: true, ..JobShape::new(10_000, rate) };
        s.handle(Duration::ZERO, Event::JobSubmitted { job: 1, shape, homes });
        s.plan(1).map(|plan| plan.chunk_units)
    };
    let some = || homes(&[("1", &[3])]);
    assert_eq!(chunk_units(LOCAL_UNITS_PER_SECOND, some()), Some(1));
    assert!(chunk_units(LOCAL_UNITS_PER_SECOND, Homes::none()) > Some(1));
    assert!(chunk_units(LOCAL_UNITS_PER_SECOND * 2.0, some()) > Some(1));
    assert!(chunk_units(LOCAL_UNITS_PER_SECOND, homes(&[("1", &[])])) > Some(1));
}

/// The chunks whose files are sent ahead, as (worker, chunk).
fn sent_ahead(actions: &[Action<u64>]) -> Vec<(WorkerId, ChunkIndex)> {
    let chunks = actions.iter().filter_map(|a| match a {
        Action::SendAhead { worker, chunk, .. } => Some((*worker, *chunk)),
        _ => None,
    });
    chunks.collect()
}

/// Sent ahead: a chunk given to a worker makes the first chunk nobody holds that worker's
/// next, its files sent there while the first runs; a worker whose next is its own already
/// is sent nothing, and a lost worker's next chunk is anybody's.
#[test]
fn a_worker_is_sent_the_files_of_its_next_chunk_while_it_runs_one() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    s.handle(t, joined(1, 1));
    s.handle(t, joined(2, 1));
    let shape = JobShape { send_ahead: true, ..command_shape(7, 1, 0) };
    let a = s.handle(t, Event::JobSubmitted { job: 1, shape, homes: Homes::none() });
    assert_eq!(placed(&a), [(1, 0), (2, 2)]);
    assert_eq!(sent_ahead(&a), [(1, 1), (2, 3)]);
    let a = finish(&mut s, t, assigned(&a)[0].0);
    assert_eq!((placed(&a), sent_ahead(&a)), (vec![(1, 1)], vec![(1, 4)]));
    let lost = s.handle(t, Event::WorkerLost { worker: 2 });
    assert!(placed(&lost).is_empty(), "1 is busy");
    let a = finish(&mut s, t, assigned(&a)[0].0);
    assert_eq!(placed(&a), [(1, 2)], "2's chunk runs again, before any fresh one");
    assert!(sent_ahead(&a).is_empty(), "1's next is its own already");
    let a = finish(&mut s, t, assigned(&a)[0].0);
    assert_eq!((placed(&a), sent_ahead(&a)), (vec![(1, 4)], vec![(1, 3)]), "2's next: anybody's");
    let a = finish(&mut s, t, assigned(&a)[0].0);
    assert_eq!((placed(&a), sent_ahead(&a)), (vec![(1, 3)], vec![(1, 5)]));
    // A job whose units have no files sends nothing ahead.
    let plain = s.handle(
        t,
        Event::JobSubmitted { job: 2, shape: command_shape(3, 1, 0), homes: Homes::none() },
    );
    assert!(sent_ahead(&plain).is_empty());
}

/// A command job resumed after a restart, its chunks 1 and 2 given to members "1" and "2"
/// before it; worker 3 (member "3") is connected and idle.
fn resumed_command(s: &mut Scheduler<u64>) -> Vec<Action<u64>> {
    s.handle(Duration::ZERO, joined(3, 1));
    let plan = ChunkPlan { units: 4, chunk_units: 1 };
    let done = [(0, "3".to_string())].into();
    let given = vec![(1, "1".to_string()), (2, "2".to_string())];
    let resumed = Event::JobResumed { job: 7, shape: command_shape(4, 1, 0), plan, done, given };
    s.handle(Duration::ZERO, resumed)
}

/// A command chunk given before a restart waits for its member: one that says it still runs
/// it is waited for past [`AWAIT_MEMBER`] and its delivery counts; one that does not say so
/// runs again at once; one whose member never comes back runs again after [`AWAIT_MEMBER`].
#[test]
fn a_resumed_commands_given_chunks_wait_for_their_members_lease() {
    let mut s = Scheduler::new(Config::default());
    let a = resumed_command(&mut s);
    assert_eq!(chunks_assigned(&a), [3], "only the chunk never given runs");
    s.handle(Duration::ZERO, joined(1, 1));
    let holds = Event::MemberHolds { worker: 1, held: vec![(7, 1), (9, 0)] };
    assert!(assigned(&s.handle(Duration::ZERO, holds)).is_empty(), "1 still runs chunk 1");
    let later = AWAIT_MEMBER + Duration::from_secs(1);
    let just_before = s.handle(AWAIT_MEMBER - Duration::from_millis(1), Event::Tick);
    assert!(assigned(&just_before).is_empty(), "2's member may still come back");
    let lapsed = s.handle(later, Event::Tick);
    assert_eq!(assigned(&lapsed).iter().map(|a| a.1).collect::<Vec<_>>(), [1]);
    assert_eq!(chunks_assigned(&lapsed), [2], "2's member did not come back: it runs elsewhere");
    assert_eq!(s.jobs[&7].started[&1].awaited, Some(Awaited::Held), "1's is still waited for");
    let delivered = Event::ChunkDelivered { worker: 1, job: 7, chunk: 1, result: right(7, 1) };
    assert_eq!(reduced(&s.handle(later, delivered)), [1]);
    assert_eq!(s.progress(7).unwrap().chunks_rerun, 1, "only chunk 2 ran again");
}

#[test]
fn a_member_that_does_not_hold_its_given_chunk_has_it_run_again_at_once() {
    let mut s = Scheduler::new(Config::default());
    resumed_command(&mut s);
    s.handle(Duration::ZERO, joined(2, 1));
    let holds = Event::MemberHolds { worker: 2, held: vec![(7, 1)] };
    let a = s.handle(Duration::ZERO, holds);
    assert_eq!(chunks_assigned(&a), [2], "2 does not hold chunk 2: it runs, on 2 itself");
    assert_eq!(s.jobs[&7].started[&1].awaited, Some(Awaited::Until(AWAIT_MEMBER)), "not 2's");
    assert_eq!(s.progress(7).unwrap().chunks_rerun, 1);
    let lost = a.iter().filter(|a| matches!(a, Action::UnitsLost { job: 7, chunk: 2, .. }));
    assert_eq!(lost.count(), 1, "its try is told lost: {a:?}");
}

/// Only the chunks given wait: a gap before them (never counted, never given) runs at once.
#[test]
fn chunks_not_given_before_a_restart_do_not_wait() {
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(3, 2));
    let plan = ChunkPlan { units: 4, chunk_units: 1 };
    let given = vec![(2, "1".to_string())];
    let resumed =
        Event::JobResumed { job: 7, shape: command_shape(4, 1, 0), plan, done: [].into(), given };
    let a = s.handle(Duration::ZERO, resumed);
    assert_eq!(chunks_assigned(&a), [0, 1], "the gap runs; chunk 2 waits for member 1");
    assert_eq!(s.jobs[&7].started[&2].awaited, Some(Awaited::Until(AWAIT_MEMBER)));
}

#[test]
fn a_held_chunk_whose_member_is_lost_waits_for_it_again_then_runs_elsewhere() {
    let mut s = Scheduler::new(Config::default());
    resumed_command(&mut s);
    s.handle(Duration::ZERO, joined(1, 1));
    s.handle(Duration::ZERO, Event::MemberHolds { worker: 1, held: vec![(7, 1)] });
    let lost_at = Duration::from_secs(100);
    s.handle(lost_at, Event::WorkerLost { worker: 1 });
    let waiting = Some(Awaited::Until(lost_at + AWAIT_MEMBER));
    assert_eq!(s.jobs[&7].started[&1].awaited, waiting);
    s.handle(lost_at, joined(1, 1));
    s.handle(lost_at, Event::MemberHolds { worker: 1, held: vec![(7, 1)] });
    assert_eq!(s.jobs[&7].started[&1].awaited, Some(Awaited::Held), "back, and says so");
    s.handle(lost_at, Event::WorkerLost { worker: 1 });
    assert!(!s.jobs[&7].retry.contains(&1));
    let a = s.handle(lost_at + AWAIT_MEMBER, Event::Tick);
    assert!(s.jobs[&7].retry.contains(&1) || chunks_assigned(&a).contains(&1), "runs again");
    assert_eq!(s.jobs[&7].started[&1].awaited, None);
}

#[test]
fn a_kernels_given_chunks_run_again_at_once() {
    let mut s = Scheduler::new(Config::default());
    s.handle(Duration::ZERO, joined(3, 2));
    let plan = ChunkPlan { units: 4, chunk_units: 1 };
    let given = vec![(1, "1".to_string())];
    let shape = JobShape::new(4, 1.0);
    let resumed = Event::JobResumed { job: 7, shape, plan, done: [].into(), given };
    let a = s.handle(Duration::ZERO, resumed);
    assert_eq!(chunks_assigned(&a), [0, 1], "chunk 1 runs again, first result wins");
}

/// A worker whose laptop's rules hold slots back gets chunks for the slots it gives: none
/// while paused (what runs there runs on), one at a time on one slot, all again when it gives
/// all; and none ahead while it gives fewer than all.
#[test]
fn a_worker_is_given_chunks_for_the_slots_it_gives_now() {
    let mut s = Scheduler::new(Config::default());
    let t = Duration::ZERO;
    s.handle(t, joined(1, 2));
    s.handle(t, Event::WorkerRtt { worker: 1, rtt: Duration::from_millis(500) });
    let a = s.handle(
        t,
        Event::JobSubmitted { job: 1, shape: command_shape(8, 1, 0), homes: Homes::default() },
    );
    let first = assigned(&a);
    assert_eq!(first.len(), 2, "two slots, two chunks");
    s.handle(t, Event::WorkerStanding { worker: 1, slots: 0 });
    assert_eq!(s.busy_slots(1), 2, "what runs runs on");
    let a = finish(&mut s, t, first[0].0);
    assert!(assigned(&a).is_empty(), "paused: no chunk for the freed slot");
    let a = finish(&mut s, t, first[1].0);
    assert!(assigned(&a).is_empty());
    let a = s.handle(t, Event::WorkerStanding { worker: 1, slots: 1 });
    let one = assigned(&a);
    assert_eq!(one.len(), 1, "one slot given: one chunk");
    assert_eq!(s.load().slots_busy, 1);
    let a = finish(&mut s, t, one[0].0);
    assert_eq!(assigned(&a).len(), 1, "the next one, on the same slot");
    let a = s.handle(t, Event::WorkerStanding { worker: 1, slots: 2 });
    assert_eq!(assigned(&a).len(), 1, "both slots again");
    assert_eq!(s.busy_slots(1), 2);
    // A standing above its slots is its slots.
    s.handle(t, Event::WorkerStanding { worker: 1, slots: 9 });
    assert_eq!(s.workers[&1].slots_now, 2);
    // Chunks ahead only when it gives all its slots: a pi job on a far worker.
    let mut s = Scheduler::new(Config::default());
    s.handle(t, joined(1, 2));
    s.handle(t, Event::WorkerRtt { worker: 1, rtt: Duration::from_millis(500) });
    s.handle(t, Event::WorkerStanding { worker: 1, slots: 1 });
    let a = s.handle(
        t,
        Event::JobSubmitted {
            job: 1,
            shape: JobShape::new(1_000_000, 1e6),
            homes: Homes::default(),
        },
    );
    assert_eq!(assigned(&a).len(), 1);
    assert_eq!(s.prefetched(1), 0, "no chunk ahead on a worker giving 1 of 2 slots");
    let a = s.handle(t, Event::WorkerStanding { worker: 1, slots: 2 });
    assert!(!assigned(&a).is_empty());
    assert!(s.prefetched(1) > 0, "all slots given again: chunks ahead again");
}
