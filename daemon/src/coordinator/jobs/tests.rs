//! The job table with the scheduler and the real tasks, driven as the driver drives it but
//! without a network: orders are carried out by running the chunk in-process, in whatever order
//! a property test picks, with workers lost and results failing along the way.

use super::*;
use crate::kernels::Cancel;
use crate::scheduler::Config;
use crate::tasks::ChunkInput;
use proptest::prelude::*;
use proto::job::{Fall, PrimeMethod};
use std::time::Duration;

fn jobs(verify: f64) -> (Jobs, Instant) {
    let epoch = Instant::now();
    let spool = SpoolBounds::default();
    let config = JobsConfig { scheduler: Config::default(), max_running: 100, verify, spool };
    let mut jobs = Jobs::new(config, epoch);
    // Slow nominal slots: the small jobs of these tests get many chunks.
    jobs.pinned_speed = Some(1e-6);
    (jobs, epoch)
}

/// What a worker would answer for a chunk request.
fn compute(request: &ChunkRequest, input: &Option<ChunkInput>) -> ChunkOutput {
    let bytes = match input.as_ref().map(|i| (&*i.source, i.start, i.stop)) {
        Some((tasks::DataSource::Text(text), a, b)) => text[a as usize..b as usize].to_vec(),
        Some((tasks::DataSource::File(_), ..)) => unreachable!("no files in these tests"),
        None => vec![],
    };
    tasks::run_now(request, &bytes, &Cancel::default()).expect("the chunk runs")
}

/// A simulated cluster: orders in flight, workers that come and go.
struct Sim {
    jobs: Jobs,
    now: Instant,
    in_flight: Vec<(AssignmentId, WorkerId, ChunkRequest, Option<ChunkInput>)>,
    workers: Vec<WorkerId>,
    next_worker: WorkerId,
    /// Series chunks taken by the client, per job, in order.
    taken: BTreeMap<JobId, Vec<TakenChunk>>,
}

impl Sim {
    fn new(workers: usize, verify: f64) -> Self {
        let (jobs, now) = jobs(verify);
        let mut sim = Sim {
            jobs,
            now,
            in_flight: vec![],
            workers: vec![],
            next_worker: 1,
            taken: BTreeMap::new(),
        };
        for _ in 0..workers {
            sim.join();
        }
        sim
    }

    fn join(&mut self) {
        let name = format!("w{}", self.next_worker);
        self.join_as(&name);
    }

    /// A worker joins as the member `name` (a new one, or one coming back).
    fn join_as(&mut self, name: &str) {
        let id = self.next_worker;
        self.next_worker += 1;
        self.workers.push(id);
        self.jobs.worker_joined(self.now, id, name, 2, true);
        // Its session starts by saying it runs or holds nothing from before.
        self.jobs.member_holds(self.now, id, &[]);
        self.carry_out();
    }

    fn carry_out(&mut self) {
        for order in self.jobs.take_orders() {
            match order {
                Order::Run { assignment, worker, request, talk } => {
                    let input = tasks::Chunk { task: request.task.clone(), talk }.input();
                    self.in_flight.push((assignment, worker, request, input))
                }
                Order::Stop { assignment } => self.in_flight.retain(|(a, ..)| *a != assignment),
                Order::Forget { .. } | Order::Ended { .. } | Order::SendAhead { .. } => {}
            }
        }
    }

    /// Answers in-flight chunk `pick`, or fails it.
    fn answer(&mut self, pick: usize, fail: bool) {
        if self.in_flight.is_empty() {
            return;
        }
        let (assignment, _, request, input) = self.in_flight.remove(pick % self.in_flight.len());
        if fail {
            self.jobs.chunk_failed(self.now, assignment, "a failure".into());
        } else {
            let output = compute(&request, &input);
            self.jobs.chunk_finished(self.now, assignment, output);
        }
        self.carry_out();
    }

    /// Loses worker `pick`'s connection (its streams die with it); its member connects again.
    fn lose(&mut self, pick: usize) {
        let worker = self.workers.remove(pick % self.workers.len());
        self.in_flight.retain(|(_, w, ..)| *w != worker);
        let name = self.jobs.names.get(&worker).cloned().unwrap_or_else(|| format!("w{worker}"));
        self.jobs.worker_lost(self.now, worker);
        self.carry_out();
        self.join_as(&name);
    }

    /// The clients of series jobs take what is ready, in order.
    fn take(&mut self) {
        let ids: Vec<JobId> = self.jobs.records.keys().copied().collect();
        for id in ids {
            loop {
                let next = self.taken.get(&id).map_or(0, Vec::len) as ChunkIndex;
                match self.jobs.take_chunk(self.now, id, next) {
                    Ok((Ok(chunk), _)) => self.taken.entry(id).or_default().push(chunk),
                    _ => break,
                }
            }
        }
        self.carry_out();
    }

    /// Runs everything left to its end.
    fn settle(&mut self) {
        for _ in 0..100_000 {
            self.take();
            if self.in_flight.is_empty() {
                return;
            }
            self.answer(0, false);
        }
        panic!("the jobs did not settle");
    }

    /// Whether job `id`'s chunks are held (its output at the spool's bounds).
    fn records_held(&self, id: JobId) -> bool {
        self.jobs.records[&id].held
    }

    fn view(&self, id: JobId) -> JobView {
        self.jobs.view(self.now, id).unwrap()
    }
}

fn drag_fall() -> Fall {
    Fall { y0: 10.0, v0: 0.0, g: 9.81, dt: 0.001, drag: 0.001 }
}

#[test]
fn a_throw_with_drag_runs_its_survey_then_its_points_exactly_once() {
    let mut sim = Sim::new(2, 0.0);
    let fall = drag_fall();
    let id =
        sim.jobs.submit(sim.now, JobSpec::Freefall { fall, points: 0 }, None, "test").unwrap().id;
    sim.carry_out();
    assert_eq!(sim.in_flight.len(), 1, "the survey alone runs first");
    assert!(matches!(sim.in_flight[0].2.task, proto::wire::ChunkTask::Survey { .. }));
    sim.answer(0, false);
    assert!(sim.in_flight.len() > 1, "then the points, on every slot");
    sim.settle();
    let view = sim.view(id);
    assert_eq!(view.state, JobState::Done);
    let JobSpec::Freefall { points, .. } = view.spec else { panic!() };
    let survey = crate::kernels::freefall::survey(&fall, None, &Cancel::default()).unwrap();
    assert_eq!(points, survey.points);
    let heights: Vec<f64> = sim.taken[&id].iter().flat_map(|c| c.values.clone()).collect();
    assert_eq!(heights.len() as u64, points, "every point once, in order");
    let direct = crate::kernels::freefall::drag_heights(
        &fall,
        (0, fall.y0, fall.v0),
        0,
        points,
        &Cancel::default(),
    )
    .unwrap();
    assert_eq!(heights, direct, "bit-identical to one pass");
    let Some(JobResult::Freefall(result)) = view.result else { panic!("no result") };
    assert_eq!(result.landing, survey.landing);
}

#[test]
fn the_first_factor_answers_a_prime_and_stops_the_rest() {
    let mut sim = Sim::new(2, 0.0);
    let n = 1009u128 * 1_000_000_007;
    let id = sim
        .jobs
        .submit(sim.now, JobSpec::Prime { n, method: PrimeMethod::Trial }, None, "test")
        .unwrap()
        .id;
    sim.carry_out();
    sim.settle();
    let view = sim.view(id);
    assert_eq!(view.state, JobState::Done);
    assert!(
        view.chunks_done < view.chunks_total,
        "{} of {}: the rest stopped",
        view.chunks_done,
        view.chunks_total
    );
    let Some(JobResult::Prime(r)) = view.result else { panic!() };
    assert_eq!((r.factor.as_deref(), r.cofactor.as_deref()), (Some("1009"), Some("1000000007")));
}

#[test]
fn requests_are_checked_before_a_job_exists() {
    let (mut jobs, now) = jobs(0.0);
    let e = jobs.submit(now, JobSpec::Pi { samples: 0, seed: 1 }, None, "test").unwrap_err();
    assert_eq!(e.to_string(), "pi needs at least 1 sample");
    let e = jobs.submit(now, JobSpec::Pi { samples: 1, seed: 1 }, Some(1.5), "test").unwrap_err();
    assert!(e.to_string().contains("from 0 to 1"), "{e}");
    assert!(jobs.list(now).is_empty(), "no id was used up");
    let e = jobs.take_chunk(now, 1, 0).err().unwrap();
    assert!(e.to_string().contains("no job 1"), "{e}");
}

#[test]
fn a_reducing_job_has_no_chunks_to_take() {
    let mut sim = Sim::new(1, 0.0);
    let id =
        sim.jobs.submit(sim.now, JobSpec::Pi { samples: 10, seed: 1 }, None, "test").unwrap().id;
    let e = sim.jobs.take_chunk(sim.now, id, 0).err().unwrap();
    assert_eq!(e.to_string(), format!("job {id} (pi) has no chunks"));
}

#[test]
fn only_the_last_hundred_ended_jobs_are_kept() {
    let mut sim = Sim::new(1, 0.0);
    for _ in 0..KEEP_ENDED_JOBS + 5 {
        sim.jobs.submit(sim.now, JobSpec::Pi { samples: 1, seed: 1 }, None, "test").unwrap();
        sim.carry_out();
        sim.settle();
    }
    let list = sim.jobs.list(sim.now);
    assert_eq!(list.len(), KEEP_ENDED_JOBS);
    assert_eq!(list[0].id, 6, "the oldest went first");
}

#[test]
fn a_job_submitted_while_no_worker_is_connected_waits_and_runs_when_one_joins() {
    let mut sim = Sim::new(0, 0.0);
    let id = sim.jobs.submit(sim.now, JobSpec::Pi { samples: 1000, seed: 1 }, None, "t");
    let id = id.unwrap().id;
    sim.carry_out();
    sim.settle();
    assert_eq!((sim.view(id).state, sim.in_flight.len()), (JobState::Running, 0), "it waits");
    sim.join();
    sim.settle();
    assert_eq!(sim.view(id).state, JobState::Done);
}

#[test]
fn jobs_that_ended_before_a_start_are_recent_until_new_ones_take_their_place() {
    let mut before = Sim::new(1, 0.0);
    for _ in 0..KEEP_ENDED_JOBS + 3 {
        before.jobs.submit(before.now, JobSpec::Pi { samples: 1, seed: 1 }, None, "t").unwrap();
        before.carry_out();
        before.settle();
    }
    let listed = before.jobs.list(before.now);
    // As the journal lists them: newest first, and more than are recent.
    let mut journal = listed.clone();
    journal.reverse();
    let mut sim = Sim::new(1, 0.0);
    sim.jobs.next_job = 500;
    let running = sim.jobs.submit(sim.now, JobSpec::Pi { samples: 1, seed: 1 }, None, "t");
    let running = running.unwrap().id;
    // The journal's entry for a job in memory is not listed twice.
    let mut in_memory = journal[0].clone();
    in_memory.id = running;
    journal.insert(0, in_memory);
    sim.jobs.remember_ended(journal);
    let ids = |sim: &Sim| sim.jobs.list(sim.now).iter().map(|v| v.id).collect::<Vec<_>>();
    let mut want: Vec<u64> = listed.iter().map(|v| v.id).collect();
    want.push(running);
    assert_eq!(ids(&sim), want, "the same recent jobs, by id, and the running one");
    // Each job that ends now takes the place of the oldest from before.
    sim.carry_out();
    sim.settle();
    let after = ids(&sim);
    assert_eq!(after.len(), KEEP_ENDED_JOBS);
    assert_eq!((after[0], *after.last().unwrap()), (want[1], running));
}

#[derive(Clone, Debug)]
enum Op {
    Answer(usize),
    Fail(usize),
    Lose(usize),
    Take,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => any::<usize>().prop_map(Op::Answer),
        1 => any::<usize>().prop_map(Op::Fail),
        1 => any::<usize>().prop_map(Op::Lose),
        2 => Just(Op::Take),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the order of results, failures and lost workers: every job's phases run in
    /// turn, every chunk counts exactly once, and results equal one uninterrupted pass.
    #[test]
    fn phases_and_results_survive_any_interleaving(ops in proptest::collection::vec(op(), 1..200), verify in prop_oneof![Just(0.0), Just(0.5)]) {
        let mut sim = Sim::new(3, verify);
        let fall = drag_fall();
        let samples = 20_000;
        let text = "année été ÉTÉ ".repeat(50);
        let specs = [
            JobSpec::Pi { samples, seed: 9 },
            JobSpec::Freefall { fall, points: 0 },
            JobSpec::Count { letter: "é".into(), ignore_case: true, source: proto::job::CountSource::Text { text: text.clone() } },
        ];
        let ids: Vec<JobId> = specs.into_iter().map(|spec| sim.jobs.submit(sim.now, spec, None, "test").unwrap().id).collect();
        sim.carry_out();
        for op in ops {
            match op {
                Op::Answer(pick) => sim.answer(pick, false),
                Op::Fail(pick) => sim.answer(pick, true),
                Op::Lose(pick) => sim.lose(pick),
                Op::Take => sim.take(),
            }
        }
        sim.settle();
        let views: Vec<JobView> = ids.iter().map(|&id| sim.view(id)).collect();
        for view in &views {
            // Three failures of one chunk fail its job: that too is an end, and a clean one.
            prop_assert!(view.state == JobState::Done || view.state == JobState::Failed, "{:?}", view.state);
        }
        if let Some(JobResult::Pi(r)) = &views[0].result {
            let direct = crate::kernels::pi::count_inside(crate::kernels::simd::Level::detect(), 9, 0, samples, &Cancel::default()).unwrap();
            prop_assert_eq!(r.inside, direct);
            prop_assert_eq!(r.workers.iter().map(|w| w.units).sum::<u64>(), samples, "each chunk counted once");
        }
        if views[1].state == JobState::Done {
            let JobSpec::Freefall { points, .. } = views[1].spec else { panic!() };
            let survey = crate::kernels::freefall::survey(&fall, None, &Cancel::default()).unwrap();
            prop_assert_eq!(points, survey.points, "the points phase followed the survey");
            let heights: Vec<f64> = sim.taken[&ids[1]].iter().flat_map(|c| c.values.clone()).collect();
            prop_assert_eq!(heights.len() as u64, points);
            let direct = crate::kernels::freefall::drag_heights(&fall, (0, fall.y0, fall.v0), 0, points, &Cancel::default()).unwrap();
            prop_assert!(heights == direct);
        }
        if let Some(JobResult::Count(r)) = &views[2].result {
            prop_assert_eq!(r.count, 250, "é in either case, across chunk boundaries");
        }
    }
}

#[test]
fn a_draining_worker_gets_no_new_chunks_until_it_resumes() {
    let mut sim = Sim::new(2, 0.0);
    let (a, b) = (sim.workers[0], sim.workers[1]);
    sim.jobs.set_draining(sim.now, a, true);
    sim.jobs.submit(sim.now, JobSpec::Pi { samples: 100_000, seed: 1 }, None, "test").unwrap();
    sim.carry_out();
    assert!(sim.in_flight.iter().all(|(_, w, ..)| *w == b), "only b takes chunks");
    assert_eq!((sim.jobs.busy_slots(a), sim.jobs.busy_slots(b)), (0, 2));
    let load = sim.jobs.load();
    assert_eq!((load.slots_busy, sim.jobs.running()), (2, 1));
    assert!(load.chunks_queued > 0, "{load:?}");
    sim.jobs.set_draining(sim.now, a, false);
    sim.carry_out();
    assert_eq!(sim.jobs.busy_slots(a), 2, "resumed: a takes chunks again");
    sim.settle();
    assert_eq!(sim.jobs.running(), 0);
    sim.jobs.set_draining(sim.now, 99, true); // an unknown worker: nothing happens
    assert!(sim.jobs.take_orders().is_empty());
}

#[test]
fn a_worker_two_others_contradict_is_quarantined_until_cleared() {
    let mut sim = Sim::new(3, 1.0);
    let liar = sim.workers[0];
    let id =
        sim.jobs.submit(sim.now, JobSpec::Pi { samples: 2_000, seed: 3 }, None, "test").unwrap().id;
    sim.carry_out();
    // The liar counts no point inside; the others answer right.
    for _ in 0..10_000 {
        let Some(pick) = (0..sim.in_flight.len()).next() else { break };
        let (assignment, worker, request, input) = sim.in_flight.remove(pick);
        let mut output = compute(&request, &input);
        if worker == liar {
            output = ChunkOutput::Pi { inside: 0 };
        }
        sim.jobs.chunk_finished(sim.now, assignment, output);
        sim.carry_out();
    }
    assert!(sim.jobs.is_quarantined("w1"), "the liar");
    assert!(!sim.jobs.is_quarantined("w2") && !sim.jobs.is_quarantined("w3"));
    let Some(JobResult::Pi(r)) = sim.view(id).result else { panic!("{:?}", sim.view(id)) };
    let direct = crate::kernels::pi::count_inside(
        crate::kernels::simd::Level::detect(),
        3,
        0,
        2_000,
        &Cancel::default(),
    )
    .unwrap();
    assert_eq!(r.inside, direct, "only agreeing results counted");
    let view = sim.view(id);
    assert!(view.workers.iter().all(|w| w.name != "w1"), "the liar's share taken back: {view:?}");
    assert!(view.caught_lying.is_empty(), "nothing of the liar's is left: {view:?}");
    sim.jobs.submit(sim.now, JobSpec::Pi { samples: 100_000, seed: 4 }, None, "test").unwrap();
    sim.carry_out();
    assert_eq!(sim.jobs.busy_slots(liar), 0, "quarantined: no chunks");
    let e = sim.jobs.clear(sim.now, "w2").unwrap_err();
    assert_eq!(e.to_string(), "worker 'w2' is not quarantined");
    sim.jobs.clear(sim.now, "w1").unwrap();
    sim.carry_out();
    assert!(!sim.jobs.is_quarantined("w1"));
    assert!(sim.jobs.busy_slots(liar) > 0, "cleared: it takes chunks again");
}

#[test]
fn a_series_whose_client_is_gone_is_cancelled_by_the_tick() {
    let mut sim = Sim::new(1, 0.0);
    let fall = Fall { y0: 10.0, v0: 0.0, g: 9.81, dt: 0.001, drag: 0.0 };
    let id =
        sim.jobs.submit(sim.now, JobSpec::Freefall { fall, points: 0 }, None, "test").unwrap().id;
    sim.carry_out();
    sim.answer(0, false);
    sim.jobs.tick(sim.now + ABANDONED_AFTER);
    assert_eq!(sim.view(id).state, JobState::Running, "not gone yet");
    sim.jobs.tick(sim.now + ABANDONED_AFTER + Duration::from_secs(1));
    let view = sim.view(id);
    assert_eq!(view.state, JobState::Cancelled);
    assert!(view.error.as_deref().is_some_and(|e| e.contains("asked for no results for 180 s")));
    let e = sim.jobs.take_chunk(sim.now, id, 0).err().unwrap();
    assert!(e.to_string().contains("ended early"), "{e}");
}

#[test]
fn shares_count_each_workers_chunks_and_units() {
    let mut sim = Sim::new(2, 0.0);
    let id = sim
        .jobs
        .submit(sim.now, JobSpec::Pi { samples: 50_000, seed: 5 }, None, "test")
        .unwrap()
        .id;
    let changes = sim.jobs.subscribe_changes();
    sim.carry_out();
    sim.settle();
    assert!(changes.has_changed().unwrap(), "every change is announced");
    let view = sim.view(id);
    let Some(JobResult::Pi(r)) = view.result else { panic!() };
    assert_eq!(r.workers.iter().map(|w| w.chunks).sum::<u64>(), view.chunks_done);
    assert_eq!(r.workers.iter().map(|w| w.units).sum::<u64>(), 50_000);
    assert!(r.workers.iter().all(|w| w.chunks > 0 && w.units > 0), "{:?}", r.workers);
}

#[test]
fn time_passing_with_nothing_to_do_is_not_announced_and_every_change_is() {
    let mut sim = Sim::new(1, 0.0);
    let mut changes = sim.jobs.subscribe_changes();
    changes.mark_unchanged();
    sim.jobs.tick(sim.now + std::time::Duration::from_millis(100));
    assert!(!changes.has_changed().unwrap(), "an idle tick wakes nobody");
    let id = sim
        .jobs
        .submit(sim.now, JobSpec::Pi { samples: 50_000, seed: 5 }, None, "test")
        .unwrap()
        .id;
    assert!(changes.has_changed().unwrap(), "a submit is news");
    changes.mark_unchanged();
    sim.carry_out();
    sim.settle();
    assert!(changes.has_changed().unwrap(), "results are news");
    assert_eq!(sim.view(id).state, proto::api::JobState::Done);
}

#[test]
fn counters_count_chunks_jobs_and_each_workers_share_since_the_start() {
    let mut sim = Sim::new(2, 0.0);
    let pi = |seed| JobSpec::Pi { samples: 50_000, seed };
    let done = sim.jobs.submit(sim.now, pi(1), None, "test").unwrap().id;
    sim.carry_out();
    // One failure: that chunk runs again.
    sim.answer(0, true);
    sim.settle();
    let view = sim.view(done);
    let cancelled = sim.jobs.submit(sim.now, pi(2), None, "test").unwrap().id;
    sim.carry_out();
    let running = sim.in_flight.len() as u64;
    assert!(running > 0);
    sim.jobs.cancel(sim.now, cancelled).unwrap();
    sim.carry_out();
    let c = sim.jobs.counters();
    assert_eq!((c.jobs_submitted, c.jobs_done, c.jobs_cancelled, c.jobs_failed), (2, 1, 1, 0));
    assert_eq!(c.chunks_done, view.chunks_done);
    assert_eq!(c.chunks_failed, 1);
    assert_eq!(c.chunks_retried, 1, "the failed chunk's second run");
    assert_eq!(c.chunks_started, view.chunks_done + 1 + running);
    assert_eq!(c.chunks_stopped, running, "the cancelled job's chunks in flight");
    let (w1, w2) = (sim.jobs.done_by("w1"), sim.jobs.done_by("w2"));
    assert_eq!(w1.0 + w2.0, view.chunks_done);
    assert_eq!(w1.1 + w2.1, 50_000);
    assert_eq!(sim.jobs.done_by("nobody"), (0, 0));
    assert!(view.ended_unix_ms.is_none(), "no wall clock told: no end time made up");
    assert!(view.summary.as_deref().is_some_and(|s| s.starts_with("pi ≈")), "{view:?}");
    assert_eq!(view.workers.iter().map(|w| w.units).sum::<u64>(), 50_000);
}

#[test]
fn an_ended_jobs_time_is_the_coordinators_clock_once_told() {
    let (mut jobs, now) = jobs(0.0);
    let spool = Spool::open(tempfile::tempdir().unwrap().path(), 1).unwrap();
    jobs.resume(now, 1_000_000, crate::journal::Recovered::default(), &spool);
    jobs.worker_joined(now, 1, "w1", 1, true);
    let id = jobs.submit(now, JobSpec::Pi { samples: 10, seed: 1 }, None, "t").unwrap().id;
    let later = now + std::time::Duration::from_millis(250);
    jobs.cancel(later, id).unwrap();
    assert_eq!(jobs.view(later, id).unwrap().ended_unix_ms, Some(1_000_250));
}

mod durable;
mod job_slots;
mod locality;

/// Chunks are sized by the speed seen in workers' work: a claim (a bench score) counts once
/// per worker whatever slots it claims, the lower median wins, and work seen replaces it.
#[test]
fn chunks_are_sized_by_the_speed_seen_not_the_speed_claimed() {
    let (mut jobs, epoch) = jobs(0.0);
    jobs.pinned_speed = None;
    assert_eq!(jobs.speed(), 1.0, "nobody: the nominal slot");
    jobs.worker_joined(epoch, 1, "honest", 1, true);
    jobs.worker_joined(epoch, 2, "braggart", 4096, true);
    let claims = |list: &[(&str, f64)]| list.iter().map(|&(n, s)| (n.to_string(), s)).collect();
    jobs.set_claimed_speeds(claims(&[("braggart", 1e4)]));
    assert_eq!(jobs.speed(), 1.0, "one claim of two workers: the unclaimed one is nominal");
    jobs.set_claimed_speeds(claims(&[("honest", 2.0), ("braggart", 1e4)]));
    assert_eq!(jobs.speed(), 2.0, "the lower median");
    jobs.set_claimed_speeds(claims(&[("honest", 2.0), ("braggart", f64::NAN)]));
    assert_eq!(jobs.speed(), 2.0, "not a number: left out");

    // Alone, the braggart's claim stands until its work is seen.
    jobs.worker_lost(epoch, 1);
    jobs.set_claimed_speeds(claims(&[("braggart", 1e4)]));
    assert_eq!(jobs.speed(), 100.0, "clamped");
    let id = jobs.submit(epoch, JobSpec::Pi { samples: 10_000_000_000, seed: 1 }, None, "t");
    let id = id.unwrap().id;
    let runs: Vec<(AssignmentId, u64)> = jobs
        .take_orders()
        .into_iter()
        .filter_map(|o| match o {
            Order::Run { assignment, request, .. } => {
                Some((assignment, request.end - request.start))
            }
            _ => None,
        })
        .collect();
    assert!(!runs.is_empty());
    // Each chunk took its units at a tenth of the nominal rate.
    let nominal = crate::tasks::NOMINAL_SLOT_RATE;
    for &(assignment, units) in &runs {
        let took = Duration::from_secs_f64(units as f64 / (0.1 * nominal));
        let output = ChunkOutput::Pi { inside: units * 3 / 4 };
        jobs.chunk_finished(epoch + took, assignment, output);
    }
    let seen = jobs.speed();
    assert!((seen - 0.1).abs() < 1e-6, "seen, not claimed: {seen}");
    jobs.cancel(epoch, id).unwrap();
}
