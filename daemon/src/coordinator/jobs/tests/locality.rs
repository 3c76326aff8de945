//! Files stay where they were sent: the job table remembers which input files each member was
//! sent, and a later job's units go to the members that hold their files.

use super::*;
use proto::command::{CmdSpec, FileRef, Template, UnitEnding};
use std::collections::HashMap;

/// A job running `wc -c` over input files `names` (each file's hash is its name's).
fn over_files(names: &[String]) -> JobSpec {
    let command = Template::new(vec!["wc".into(), "-c".into()]).unwrap();
    let mut spec = CmdSpec::new(command, names.to_vec());
    spec.input_files = names
        .iter()
        .map(|name| FileRef { name: name.clone(), sha256: format!("{name:0>64}"), size: 1000 })
        .collect();
    JobSpec::Cmd(Box::new(spec))
}

/// Runs in-flight chunks one at a time until job `id` ends, each unit taking 100 ms; returns
/// the member each file's unit ran on.
fn run(sim: &mut Sim, id: JobId, names: &HashMap<WorkerId, String>) -> HashMap<String, String> {
    let mut ran = HashMap::new();
    let spool = tempfile::tempdir().unwrap();
    while sim.jobs.view(sim.now, id).unwrap().state == JobState::Running {
        let (assignment, worker, request, _) = sim.in_flight.remove(0);
        let proto::wire::ChunkTask::Cmd(task) = &request.task else { panic!("not a command") };
        for unit in &task.units {
            let file = unit.file.as_ref().unwrap().name.clone();
            ran.insert(file, names[&worker].clone());
        }
        let first = task.units[0].unit;
        let units = first..first + task.units.len() as u64;
        let mut reports = crate::tasks::cmd::reports(units, UnitEnding::Exited(0));
        for report in &mut reports {
            report.duration_ms = 100;
        }
        let path = spool.path().join(format!("{assignment}"));
        std::fs::write(&path, b"").unwrap();
        sim.now += Duration::from_millis(100);
        let output = ChunkOutput::Cmd { units: reports, spool: Some(path) };
        sim.jobs.chunk_finished(sim.now, assignment, output);
        sim.carry_out();
    }
    assert_eq!(sim.jobs.view(sim.now, id).unwrap().state, JobState::Done);
    ran
}

#[test]
fn a_second_job_over_the_same_files_runs_each_unit_where_its_file_was_sent() {
    let mut sim = Sim::new(2, 0.0);
    let names: HashMap<WorkerId, String> =
        sim.workers.iter().map(|&id| (id, format!("w{id}"))).collect();
    let files: Vec<String> = (0..40).map(|i| format!("f{i:02}")).collect();
    let first = sim.jobs.submit(sim.now, over_files(&files), None, "test").unwrap().id;
    sim.carry_out();
    let before = run(&mut sim, first, &names);
    assert_eq!(before.len(), files.len());
    let split = before.values().filter(|m| *m == "w1").count();
    assert!((10..=30).contains(&split), "both workers ran units: {split} of 40 on w1");
    // Reversed: the units are numbered the other way round; their files are where they were.
    let reversed: Vec<String> = files.iter().rev().cloned().collect();
    let second = sim.jobs.submit(sim.now, over_files(&reversed), None, "test").unwrap().id;
    sim.carry_out();
    let after = run(&mut sim, second, &names);
    let moved: Vec<&String> = files.iter().filter(|f| before[*f] != after[*f]).collect();
    // A free slot takes another's unit rather than idle: at the probe's end (four units, a
    // worker's two slots may hold only two of its own) and the job's. The bound: 10%.
    assert!(moved.len() * 10 <= files.len(), "{} of 40 moved: {moved:?}", moved.len());
}

/// A job whose units have no files of their own is placed as always: nothing is remembered.
#[test]
fn units_without_files_of_their_own_have_no_homes() {
    let mut sim = Sim::new(2, 0.0);
    let command = Template::new(vec!["echo".into()]).unwrap();
    let spec = CmdSpec::new(command, vec!["a".into(); 300]);
    let id = sim.jobs.submit(sim.now, JobSpec::Cmd(Box::new(spec)), None, "test").unwrap().id;
    sim.carry_out();
    assert!(sim.jobs.holdings.is_empty());
    assert!(sim.jobs.homes(id, 300).is_empty());
}
