//! A command job's running chunks hold job slots (GNU parallel's `{%}`, `$PARALLEL_JOBSLOT`
//! on the worker): from 1 up to the most chunks the job runs at once, none two running
//! chunks share, a slot free again when its chunk ends or its worker is lost.

use super::*;
use proto::command::{CmdSpec, Template, UnitEnding};
use proto::wire::JOB_SLOT_VAR;
use std::collections::BTreeSet;

/// The job slot a chunk's request gives its units.
fn slot_of(request: &ChunkRequest) -> u32 {
    let (chunk, _) = request.task.cmd().expect("a command's chunk");
    let (key, value) = chunk.env.last().expect("the job slot, last");
    assert_eq!(key, JOB_SLOT_VAR);
    value.parse().unwrap()
}

/// The slots of the chunks in flight: distinct, each from 1 to `most`.
fn in_flight_slots(sim: &Sim, most: u32) -> BTreeSet<u32> {
    let slots: Vec<u32> = sim.in_flight.iter().map(|(_, _, r, _)| slot_of(r)).collect();
    let distinct: BTreeSet<u32> = slots.iter().copied().collect();
    assert_eq!(distinct.len(), slots.len(), "two running chunks share a slot: {slots:?}");
    assert!(distinct.iter().all(|s| (1..=most).contains(s)), "{slots:?} past 1..={most}");
    distinct
}

/// Ends in-flight chunk `pick`, its units all succeeded.
fn finish(sim: &mut Sim, pick: usize, spool: &std::path::Path) {
    let (assignment, _, request, _) = sim.in_flight.remove(pick);
    let (chunk, _) = request.task.cmd().unwrap();
    let first = chunk.units[0].unit;
    let units = first..first + chunk.units.len() as u64;
    let reports = crate::tasks::cmd::reports(units, UnitEnding::Exited(0));
    let path = spool.join(format!("{assignment}"));
    std::fs::write(&path, b"").unwrap();
    let output = ChunkOutput::Cmd { units: reports, spool: Some(path) };
    sim.jobs.chunk_finished(sim.now, assignment, output);
    sim.carry_out();
}

#[test]
fn running_chunks_hold_distinct_job_slots_and_free_them_when_they_end() {
    // Two workers of two slots; the job may hold three at once.
    let mut sim = Sim::new(2, 0.0);
    let command = Template::new(vec!["echo".into()]).unwrap();
    let mut spec = CmdSpec::new(command, vec!["a".into(); 60]);
    spec.max_slots = Some(3);
    let id = sim.jobs.submit(sim.now, JobSpec::Cmd(Box::new(spec)), None, "test").unwrap().id;
    sim.carry_out();
    assert_eq!(in_flight_slots(&sim, 3), BTreeSet::from([1, 2, 3]), "the first three");
    let spool = tempfile::tempdir().unwrap();
    // The second chunk ends: its slot, 2, is the one the next chunk takes.
    let second = sim.in_flight.iter().position(|(_, _, r, _)| slot_of(r) == 2).unwrap();
    finish(&mut sim, second, spool.path());
    let newest = sim.in_flight.last().map(|(_, _, r, _)| slot_of(r));
    assert_eq!(newest, Some(2), "the freed slot is taken again");
    // A lost worker's chunks free their slots too.
    let lost = sim.in_flight[0].1;
    sim.in_flight.retain(|(_, w, ..)| *w != lost);
    sim.jobs.worker_lost(sim.now, lost);
    sim.carry_out();
    in_flight_slots(&sim, 3);
    let mut rounds = 0;
    while sim.jobs.view(sim.now, id).unwrap().state == JobState::Running {
        in_flight_slots(&sim, 3);
        let pick = rounds % sim.in_flight.len();
        finish(&mut sim, pick, spool.path());
        rounds += 1;
    }
    assert_eq!(sim.jobs.view(sim.now, id).unwrap().state, JobState::Done);
}
