//! The job table across a restart, through a real journal in a temp dir, and results
//! delivered after a lost connection: every chunk counted exactly once, results the same as
//! an uninterrupted run's.

use super::*;
use crate::exec::spool::Spool;
use crate::journal::{Journal, Retention};
use std::collections::BTreeSet;
use std::path::Path;

/// A sim whose job table resumed from the journal in `dir`, with `workers` workers.
fn resumed(dir: &Path, workers: usize) -> (Sim, Journal) {
    let (journal, recovered) = Journal::open(dir, false, Retention::default()).unwrap();
    let mut sim = Sim::new(0, 0.0);
    let spool = Spool::open(dir, 1).unwrap();
    sim.jobs.resume(sim.now, crate::journal::unix_ms(), recovered, &spool);
    sim.carry_out();
    for _ in 0..workers {
        sim.join();
    }
    (sim, journal)
}

/// Hands a sim's records to its journal and closes it, as a stopping coordinator does; returns
/// the chunks counted, by (phase, chunk).
fn stop(sim: &mut Sim, journal: &Journal) -> BTreeSet<(u32, u32)> {
    let records = sim.jobs.take_records();
    let counted = chunks_counted(&records);
    journal.append(records);
    journal.close();
    counted
}

fn chunks_counted(records: &[Record]) -> BTreeSet<(u32, u32)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Chunk { phase, chunk, .. } => Some((*phase, *chunk)),
            _ => None,
        })
        .collect()
}

fn pi_result(view: &JobView) -> proto::result::PiResult {
    match &view.result {
        Some(JobResult::Pi(r)) => r.clone(),
        other => panic!("no pi result: {other:?}"),
    }
}

/// What `spec` gives run without any restart: its view, and the values its client took.
fn uninterrupted(spec: JobSpec) -> (JobView, Vec<f64>) {
    let mut sim = Sim::new(2, 0.0);
    let id = sim.jobs.submit(sim.now, spec, None, "test").unwrap().id;
    sim.carry_out();
    sim.settle();
    let taken =
        sim.taken.get(&id).map_or(vec![], |t| t.iter().flat_map(|c| c.values.clone()).collect());
    (sim.view(id), taken)
}

#[test]
fn a_job_resumed_from_the_journal_runs_only_its_chunks_not_yet_counted() {
    let dir = tempfile::tempdir().unwrap();
    let spec = JobSpec::Pi { samples: 3_000, seed: 11 };
    let (mut sim, journal) = resumed(dir.path(), 2);
    let id = sim.jobs.submit(sim.now, spec.clone(), None, "alice").unwrap().id;
    sim.carry_out();
    // Some chunks counted, others running when the coordinator stops.
    for i in 0..7 {
        sim.answer(i, false);
    }
    let (total, units_before) = (sim.view(id).chunks_total, sim.view(id).units_done);
    let before = stop(&mut sim, &journal);
    assert_eq!(before.len(), 7);
    assert!(!sim.in_flight.is_empty(), "chunks were running at the stop");

    let (mut sim, journal) = resumed(dir.path(), 2);
    let view = sim.view(id);
    assert_eq!((view.state, view.chunks_done, view.chunks_total), (JobState::Running, 7, total));
    assert_eq!(view.units_done, units_before, "units of the counted chunks");
    sim.settle();
    let after = chunks_counted(&sim.jobs.take_records());
    assert!(
        before.is_disjoint(&after),
        "no chunk counted before ran again: {:?}",
        before.intersection(&after).collect::<Vec<_>>()
    );
    assert_eq!(before.len() + after.len(), total as usize, "every chunk counted once");
    let (view, whole) = (sim.view(id), uninterrupted(spec).0);
    assert_eq!(view.state, JobState::Done);
    let (r, w) = (pi_result(&view), pi_result(&whole));
    assert_eq!((r.inside, r.estimate, r.std_error), (w.inside, w.estimate, w.std_error));
    let units: u64 = r.workers.iter().map(|s| s.units).sum();
    assert_eq!(units, 3_000, "shares from before and after the restart add up");
    // A new job gets an id after those the stopped coordinator had reserved.
    let next = sim.jobs.submit(sim.now, JobSpec::Pi { samples: 1, seed: 1 }, None, "bob").unwrap();
    assert_eq!(next.id, ID_BLOCK + 1);
    journal.close();
}

#[test]
fn a_streamed_job_resumes_after_the_chunks_its_client_took() {
    let dir = tempfile::tempdir().unwrap();
    let fall = drag_fall();
    let spec = JobSpec::Freefall { fall, points: 0 };
    let (mut sim, journal) = resumed(dir.path(), 2);
    let id = sim.jobs.submit(sim.now, spec.clone(), None, "test").unwrap().id;
    sim.carry_out();
    sim.answer(0, false); // the survey
    for i in 0..5 {
        sim.answer(i, false);
        sim.take();
    }
    let taken_before = sim.taken.get(&id).map_or(0, Vec::len);
    assert!(taken_before > 0, "the client took some chunks");
    let before: Vec<f64> = sim.taken[&id].iter().flat_map(|c| c.values.clone()).collect();
    stop(&mut sim, &journal);

    let (mut sim, journal) = resumed(dir.path(), 2);
    let e = sim.jobs.take_chunk(sim.now, id, 0).err().expect("taken before the restart");
    assert!(e.to_string().contains("already taken"), "{e}");
    sim.taken.insert(
        id,
        (0..taken_before).map(|_| TakenChunk { first_unit: 0, values: vec![] }).collect(),
    );
    sim.settle();
    let after: Vec<f64> =
        sim.taken[&id][taken_before..].iter().flat_map(|c| c.values.clone()).collect();
    let (_, whole) = uninterrupted(spec);
    assert_eq!([before, after].concat(), whole, "the heights in order, each once");
    assert_eq!(sim.view(id).state, JobState::Done);
    journal.close();
}

#[test]
fn a_result_delivered_after_a_lost_connection_counts_once() {
    let spec = JobSpec::Pi { samples: 3_000, seed: 5 };
    let mut sim = Sim::new(2, 0.0);
    let id = sim.jobs.submit(sim.now, spec.clone(), None, "test").unwrap().id;
    sim.carry_out();
    let (_, worker, request, input) = &sim.in_flight[0];
    let (worker, request, output) = (*worker, request.clone(), compute(request, input));
    sim.lose(sim.workers.iter().position(|&w| w == worker).unwrap());
    let back = *sim.workers.last().unwrap();
    let done = sim.view(id).chunks_done;

    // Not the job's chunk as it is cut, or not a possible output: dropped.
    let mut other_seed = request.clone();
    other_seed.task = proto::wire::ChunkTask::Pi { samples: 3_000, seed: 6 };
    assert!(!sim.jobs.chunk_delivered(sim.now, back, &other_seed, output.clone()));
    let mut shifted = request.clone();
    shifted.end += 1;
    assert!(!sim.jobs.chunk_delivered(sim.now, back, &shifted, output.clone()));
    let too_many = ChunkOutput::Pi { inside: request.end - request.start + 1 };
    assert!(!sim.jobs.chunk_delivered(sim.now, back, &request, too_many));
    let mut no_job = request.clone();
    no_job.job = id + 1;
    assert!(!sim.jobs.chunk_delivered(sim.now, back, &no_job, output.clone()));
    assert!(!sim.jobs.chunk_delivered(sim.now, 99, &request, output.clone()), "not connected");
    assert_eq!(sim.view(id).chunks_done, done);

    assert!(sim.jobs.chunk_delivered(sim.now, back, &request, output.clone()), "counted");
    sim.carry_out();
    assert!(!sim.jobs.chunk_delivered(sim.now, back, &request, output), "once");
    assert_eq!(sim.view(id).chunks_done, done + 1);
    sim.settle();
    let (view, whole) = (sim.view(id), uninterrupted(spec).0);
    assert_eq!(pi_result(&view).inside, pi_result(&whole).inside);
    assert_eq!(pi_result(&view).workers.iter().map(|s| s.units).sum::<u64>(), 3_000);
}

#[test]
fn a_chunk_delivered_ahead_of_those_started_is_counted_and_the_gap_queued() {
    let dir = tempfile::tempdir().unwrap();
    let spec = JobSpec::Pi { samples: 3_000, seed: 8 };
    let (mut sim, journal) = resumed(dir.path(), 1);
    let id = sim.jobs.submit(sim.now, spec.clone(), None, "test").unwrap().id;
    sim.carry_out();
    sim.answer(0, false);
    // The chunks still running at the stop are not in the journal: after the restart they are
    // fresh again, and one comes back from the worker that ran it.
    let (_, _, request, input) = sim.in_flight.last().unwrap();
    let (request, output) = (request.clone(), compute(request, input));
    stop(&mut sim, &journal);
    let (mut sim, journal) = resumed(dir.path(), 0);
    sim.join();
    let back = sim.workers[0];
    assert!(sim.jobs.chunk_delivered(sim.now, back, &request, output.clone()));
    sim.carry_out();
    sim.settle();
    let view = sim.view(id);
    assert_eq!(view.chunks_done, view.chunks_total);
    assert_eq!(pi_result(&view).inside, pi_result(&uninterrupted(spec).0).inside);
    journal.close();
}

#[test]
fn deliveries_never_given_or_past_the_plan_are_dropped() {
    let mut sim = Sim::new(1, 0.0);
    let id = sim
        .jobs
        .submit(sim.now, JobSpec::Pi { samples: 10_000_000, seed: 1 }, None, "t")
        .unwrap()
        .id;
    sim.carry_out();
    let plan = sim.jobs.scheduler.plan(id).unwrap();
    let worker = sim.workers[0];
    let request_for = |chunk: u32| {
        let (start, end) = plan.range(chunk);
        let task = proto::wire::ChunkTask::Pi { samples: 10_000_000, seed: 1 };
        ChunkRequest { job: id, chunk, task, start, end }
    };
    let never_given = plan.len() as u32 - 1;
    let output = ChunkOutput::Pi { inside: 0 };
    let delivered =
        sim.jobs.chunk_delivered(sim.now, worker, &request_for(never_given), output.clone());
    assert!(!delivered);
    let past = request_for(plan.len() as u32);
    assert!(!sim.jobs.chunk_delivered(sim.now, worker, &past, output.clone()));
    assert_eq!(sim.view(id).chunks_done, 0);
}

#[test]
fn ids_are_reserved_a_block_ahead_and_only_a_new_block_waits() {
    let mut sim = Sim::new(1, 0.0);
    let submit = |sim: &mut Sim| {
        let id = sim.jobs.submit(sim.now, JobSpec::Pi { samples: 1, seed: 1 }, None, "t");
        let reserved: Vec<u64> = sim
            .jobs
            .take_records()
            .iter()
            .filter_map(|r| match r {
                Record::Reserved { upto } => Some(*upto),
                _ => None,
            })
            .collect();
        (id.unwrap().id, sim.jobs.take_reservation(), reserved)
    };
    assert_eq!(submit(&mut sim), (1, true, vec![ID_BLOCK]), "the first id opens a block");
    assert_eq!(submit(&mut sim), (2, false, vec![]));
    sim.jobs.next_job = ID_BLOCK;
    assert_eq!(submit(&mut sim), (ID_BLOCK, false, vec![]), "the block's last id");
    assert_eq!(submit(&mut sim), (ID_BLOCK + 1, true, vec![2 * ID_BLOCK]), "the next block");
    assert!(!sim.jobs.take_reservation(), "taken");
    // A clean stop gives back what was reserved and not given, once.
    sim.jobs.release_ids();
    let released = |sim: &mut Sim| -> Vec<u64> {
        let records = sim.jobs.take_records();
        records
            .iter()
            .filter_map(|r| match r {
                Record::Released { last } => Some(*last),
                _ => None,
            })
            .collect()
    };
    assert_eq!(released(&mut sim), vec![ID_BLOCK + 1]);
    sim.jobs.release_ids();
    assert_eq!(released(&mut sim), Vec::<u64>::new(), "nothing more to give back");
    // The next id opens a new block.
    assert_eq!(submit(&mut sim), (ID_BLOCK + 2, true, vec![2 * ID_BLOCK + 1]));
}

/// A command job of `units` units of `echo {}`, in input order or not.
fn echo_job(units: usize, keep_order: bool) -> JobSpec {
    let command = proto::command::Template::new(vec!["echo".into()]).unwrap();
    let inputs = (0..units).map(|i| format!("in{i}")).collect();
    let spec = proto::command::CmdSpec::new(command, inputs);
    JobSpec::Cmd(Box::new(proto::command::CmdSpec { keep_order, ..spec }))
}

/// Answers in-flight command chunk `pick` as its worker would: each unit succeeds, and the
/// chunk's spool file says which units it holds.
fn answer_cmd(sim: &mut Sim, spool: &Spool, pick: usize) {
    let (assignment, _, request, _) = sim.in_flight.remove(pick % sim.in_flight.len());
    let proto::wire::ChunkTask::Cmd(task) = &request.task else { panic!("not a command") };
    let first = task.units[0].unit;
    let units = first..first + task.units.len() as u64;
    let path = spool.chunk_file(request.job, assignment);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let printed: String = units.clone().map(|u| format!("{u} ")).collect();
    std::fs::write(&path, &printed).unwrap();
    let ending = proto::command::UnitEnding::Exited(0);
    let mut units = crate::tasks::cmd::reports(units, ending);
    units[0].stdout = printed.len() as u64;
    sim.jobs.chunk_finished(sim.now, assignment, ChunkOutput::Cmd { units, spool: Some(path) });
    sim.carry_out();
}

/// The client takes the deliveries of job `id` that are ready, from its `next`: what they
/// held, as units.
fn take_deliveries(sim: &mut Sim, id: JobId, next: &mut u64) -> Vec<u64> {
    let mut units = vec![];
    loop {
        let taken = sim.jobs.take_output(sim.now, id, *next).unwrap();
        if taken.take == Take::Gone {
            return units;
        }
        for path in taken.let_go {
            std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let Take::Ready(delivery) = taken.take else { break };
        let printed = std::fs::read_to_string(&delivery.spool).unwrap();
        units.extend(printed.split_whitespace().map(|u| u.parse::<u64>().unwrap()));
        *next += 1;
    }
    sim.carry_out();
    units
}

#[test]
fn a_command_job_goes_on_after_a_restart_and_its_client_gets_each_unit_once() {
    for keep_order in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1).unwrap();
        let (mut sim, journal) = resumed(dir.path(), 2);
        let id = sim.jobs.submit(sim.now, echo_job(600, keep_order), None, "test").unwrap().id;
        sim.carry_out();
        let (mut next, mut printed) = (0, vec![]);
        // The probe, then some of the rest counted in another order than they were given.
        for i in 0..12 {
            answer_cmd(&mut sim, &spool, i * 7);
            if i % 3 == 0 {
                printed.extend(take_deliveries(&mut sim, id, &mut next));
            }
        }
        assert!(next > 0 && !sim.in_flight.is_empty(), "taken some, some running");
        let counted = sim.view(id).units_done;
        stop(&mut sim, &journal);

        // Another run: its spool files are named apart from the first run's.
        let spool = Spool::open(dir.path(), 2).unwrap();
        let (journal, recovered) = Journal::open(dir.path(), false, Retention::default()).unwrap();
        let mut sim = Sim::new(0, 0.0);
        sim.jobs.resume(sim.now, crate::journal::unix_ms(), recovered, &spool);
        let kept = sim.jobs.spooled_files();
        let left_before = kept[&id].len() as u64;
        sim.carry_out();
        sim.join();
        sim.join();
        let view = sim.view(id);
        assert_eq!((view.state, view.units_done), (JobState::Running, counted), "{keep_order}");
        assert!(left_before > 0 || keep_order, "deliveries not taken are kept");
        while !sim.in_flight.is_empty() {
            answer_cmd(&mut sim, &spool, 3);
            printed.extend(take_deliveries(&mut sim, id, &mut next));
        }
        let view = sim.view(id);
        assert_eq!(view.state, JobState::Done);
        let Some(JobResult::Cmd(result)) = view.result else { panic!("a command's result") };
        assert_eq!((result.succeeded, result.failed), (600, 0), "every unit counted once");
        let mut sorted = printed.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..600).collect::<Vec<u64>>(), "each unit's output once");
        if keep_order {
            assert_eq!(printed, sorted, "in input order across the restart");
        }
        journal.close();
    }
}

#[test]
fn output_an_ended_command_job_had_not_handed_out_waits_through_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 1).unwrap();
    let (mut sim, journal) = resumed(dir.path(), 2);
    let id = sim.jobs.submit(sim.now, echo_job(5, false), None, "test").unwrap().id;
    sim.carry_out();
    while !sim.in_flight.is_empty() {
        answer_cmd(&mut sim, &spool, 0);
    }
    assert_eq!(sim.view(id).state, JobState::Done);
    let mut next = 0;
    let taken = sim.jobs.take_output(sim.now, id, 0).unwrap();
    assert!(matches!(taken.take, Take::Ready(_)), "delivery 0 read, not let go yet");
    let taken = sim.jobs.take_output(sim.now, id, 2).unwrap();
    assert_eq!(taken.let_go.len(), 2, "the client has 0 and 1");
    for path in taken.let_go {
        std::fs::remove_file(path).unwrap();
    }
    next += 2;
    stop(&mut sim, &journal);

    let (mut sim, journal) = resumed(dir.path(), 0);
    let taken = sim.jobs.take_output(sim.now, id, next).unwrap();
    assert!(matches!(taken.take, Take::Ready(ref d) if d.first_unit == 2), "{:?}", taken.take);
    assert!(taken.let_go.is_empty(), "what the client had is gone already");
    let printed = take_deliveries(&mut sim, id, &mut next);
    assert_eq!(printed, [2, 3, 4], "the three deliveries not taken, then the end");
    assert!(matches!(sim.jobs.take_orders()[..], [Order::Forget { job }] if job == id));
    let records = sim.jobs.take_records();
    let taken: Vec<u32> = records
        .iter()
        .filter_map(|r| match r {
            Record::Taken { upto, .. } => Some(*upto),
            _ => None,
        })
        .collect();
    assert_eq!(taken, [3, 4], "the client's place, journaled as it lets deliveries go");
    assert!(records.iter().any(|r| matches!(r, Record::Forgotten { job } if *job == id)));
    let e = sim.jobs.take_output(sim.now, id, next).err().expect("let go");
    assert!(e.to_string().contains("no job"), "{e}");
    journal.append(records);
    journal.close();
    let (journal, recovered) = Journal::open(dir.path(), false, Retention::default()).unwrap();
    assert!(recovered.leftovers.is_empty(), "nothing left to take");
    journal.close();
}

#[test]
fn a_command_job_whose_output_reaches_the_spools_bound_waits_for_its_client() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 1).unwrap();
    let mut sim = Sim::new(2, 0.0);
    // Each single-unit chunk prints "N " (2 to 4 bytes): 10 bytes hold a job, 16 all jobs.
    sim.jobs.spool = SpoolBounds { per_job: 10, total: 16 };
    let id = sim.jobs.submit(sim.now, echo_job(100, false), None, "test").unwrap().id;
    sim.carry_out();
    let mut answered = 0;
    while !sim.in_flight.is_empty() && answered < 50 {
        answer_cmd(&mut sim, &spool, 0);
        answered += 1;
    }
    assert!(sim.in_flight.is_empty(), "running chunks finish, no new one starts");
    assert!(answered < 10, "held after {answered} chunks");
    let held_at = sim.view(id).units_done;
    assert!(sim.records_held(id));
    // Another job may still start; it is held as soon as it holds some output (16 in all).
    let other = sim.jobs.submit(sim.now, echo_job(100, false), None, "test").unwrap().id;
    sim.carry_out();
    while !sim.in_flight.is_empty() {
        answer_cmd(&mut sim, &spool, 0);
    }
    assert!(sim.view(other).units_done > 0 && sim.records_held(other));
    // Its client takes all it printed: holding nothing, it goes on, though the first job
    // still holds the spool past its bound in all.
    take_deliveries(&mut sim, other, &mut 0);
    assert!(!sim.records_held(other) && sim.records_held(id));
    // The first job's client takes its output: it goes on.
    let mut next = 0;
    take_deliveries(&mut sim, id, &mut next);
    assert!(!sim.records_held(id) && !sim.in_flight.is_empty(), "its chunks run again");
    while !sim.in_flight.is_empty() {
        answer_cmd(&mut sim, &spool, 0);
        take_deliveries(&mut sim, id, &mut next);
    }
    assert_eq!(sim.view(id).state, JobState::Done);
    assert!(held_at < 100);
}
