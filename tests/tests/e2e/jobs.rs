use crate::util::*;
use serde_json::Value;
use std::time::Duration;

fn busy_slots(c: &Coordinator, worker: &str) -> u64 {
    c.json(&["workers"])
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == worker)
        .map_or(0, |w| w["slots_busy"].as_u64().unwrap())
}

fn wait_result(c: &Coordinator, id: u64) -> Value {
    c.json(&["wait", &id.to_string()])
}

#[test]
fn a_job_survives_a_worker_killed_mid_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [_a, _b, mut victim] = c.workers([("a", 1), ("b", 1), ("victim", 1)]);
    let undisturbed = run_pi(&c, "4e9", "11");

    let id = detach(&c, &["pi", "4e9", "--seed", "11"]);
    wait_for("the victim to hold a chunk", Duration::from_secs(30), || {
        (busy_slots(&c, "victim") > 0).then_some(())
    });
    victim.kill();
    let survived = wait_result(&c, id);
    assert_eq!(survived["inside"], undisturbed["inside"], "bit-identical despite the kill");
    assert_eq!(survived["estimate"], undisturbed["estimate"]);
    let units: u64 =
        survived["workers"].as_array().unwrap().iter().map(|w| w["units"].as_u64().unwrap()).sum();
    assert_eq!(units, 4_000_000_000, "every chunk counted exactly once");
    assert!(job_view(&c, id)["chunks_rerun"].as_u64().unwrap() >= 1, "the lost chunk ran again");
}

#[test]
fn cancelling_frees_every_slot() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("a", 1), ("b", 1)]);

    let id = detach(&c, &["pi", "1e14"]);
    wait_for("both slots busy", Duration::from_secs(30), || {
        (c.json(&["status"])["slots_busy"] == 2).then_some(())
    });
    let cancelled = c.json(&["cancel", &id.to_string()]);
    assert_eq!(cancelled["state"], "cancelled");
    c.wait_idle(Duration::from_secs(1));
    // The freed slots take new work at once.
    assert_eq!(run_pi(&c, "1e8", "1")["samples"], 100_000_000u64);
}

#[test]
fn a_worker_joining_mid_job_gets_chunks_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _first = c.workers([("first", 1)]);
    let id = detach(&c, &["pi", "2e10", "--seed", "5"]);
    let _late = c.worker("late", 1);
    c.wait_for_workers(&["first", "late"]);
    assert_eq!(job_view(&c, id)["state"], "running", "the job must still run when 'late' joins");
    let result = wait_result(&c, id);
    let late = result["workers"].as_array().unwrap().iter().find(|w| w["name"] == "late").cloned();
    assert!(late.is_some_and(|w| w["chunks"].as_u64().unwrap() > 0), "{result}");
}

#[test]
fn jobs_are_listed_and_waitable_after_they_end() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("w", 1)]);
    let id = detach(&c, &["pi", "1e7", "--seed", "2"]);
    let first = wait_result(&c, id);
    let again = wait_result(&c, id);
    assert_eq!(first["inside"], again["inside"]);
    let view = job_view(&c, id);
    assert_eq!(view["state"], "done");
    assert_eq!(view["chunks_done"], view["chunks_total"]);
}

/// `marmotctl --socket S ARGS`, spawned with its stderr kept.
fn spawn_ctl(c: &Coordinator, args: &[&str]) -> std::process::Child {
    ctl_command()
        .arg("--socket")
        .arg(&c.socket)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn send(child: &std::process::Child, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
}

#[test]
fn ctrl_c_on_wait_stops_following_and_leaves_the_job_running() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("w", 1)]);
    let id = detach(&c, &["pi", "1e14"]);
    let wait = spawn_ctl(&c, &["wait", &id.to_string()]);
    wait_for_handler(wait.id(), nix::sys::signal::Signal::SIGINT);
    send(&wait, nix::sys::signal::Signal::SIGINT);
    let out = wait.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("stopped following job {id}")), "{said}");
    assert!(said.contains(&format!("marmotctl cancel {id}")), "{said}");
    assert_eq!(job_view(&c, id)["state"], "running", "wait must not cancel: {said}");
    c.json(&["cancel", &id.to_string()]);
}

#[test]
fn ctrl_c_sigterm_and_sighup_on_run_cancel_its_job() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("w", 1)]);
    use nix::sys::signal::Signal::{SIGHUP, SIGINT, SIGTERM};
    // `run` owns its job: however it is stopped, it leaves no orphan behind.
    for (signal, status) in [(SIGINT, 130), (SIGTERM, 143), (SIGHUP, 129)] {
        let before = c.json(&["jobs"]).as_array().unwrap().len();
        let run = spawn_ctl(&c, &["run", "pi", "1e14"]);
        let job = wait_for("the job to be listed", Duration::from_secs(30), || {
            let jobs = c.json(&["jobs"]);
            let jobs = jobs.as_array().unwrap();
            (jobs.len() > before).then(|| jobs.iter().map(|j| j["id"].as_u64().unwrap()).max())?
        });
        wait_for_handler(run.id(), signal);
        send(&run, signal);
        let out = run.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(status), "{signal}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(&format!("cancelled job {job}")), "{said}");
        assert_eq!(job_view(&c, job)["state"], "cancelled", "{signal} left an orphan job");
        c.wait_idle(Duration::from_secs(5));
    }
}

#[test]
fn jobs_lists_what_each_job_was_asked() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("w", 1)]);
    let id = detach(&c, &["pi", "1e6", "--seed", "7"]);
    wait_result(&c, id);
    let counted = detach(&c, &["count", "é", "--text", "héllo"]);
    wait_result(&c, counted);
    let out = c.ctl(&["jobs"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pi 1000000 --seed 7"), "{text}");
    assert!(text.contains("count 'é' --text (5 characters)"), "{text}");
}

/// Size does not cost memory: a pi job of u64::MAX samples starts at once and the
/// coordinator holds only its chunks in flight; a job's inline text is not in its views and
/// is dropped when it ends; and past `--max-jobs` new jobs are refused in one line.
#[test]
fn job_size_and_count_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let c =
        Coordinator::start_with(&bin("marmotd"), dir.path(), "127.0.0.1:0", &["--max-jobs", "2"]);
    let [_w] = c.workers([("w", 1)]);
    let (before, _) = memory_of(c.proc.pid());
    let huge = detach(&c, &["pi", &u64::MAX.to_string()]);
    let view = job_view(&c, huge);
    assert_eq!(view["chunks_total"], u64::from(u32::MAX), "{view}");
    wait_for("a chunk of the huge job running", Duration::from_secs(30), || {
        (busy_slots(&c, "w") > 0).then_some(())
    });
    let grew = memory_of(c.proc.pid()).0.saturating_sub(before);
    assert!(grew < 8 << 20, "the coordinator grew by {grew} bytes");

    // 100 kB of text (about what one argument may hold), counted; its view and the job
    // list stay small.
    let text = "e".repeat(100_000);
    let id = detach(&c, &["count", "e", "--text", &text]);
    let out = c.ctl(&["--json", "jobs"]);
    assert!(out.stdout.len() < 16 * 1024, "{} bytes of job list", out.stdout.len());
    let view = job_view(&c, id);
    assert_eq!(view["spec"]["count"]["source"]["inline"]["characters"], 100_000, "{view}");
    // Two jobs wait or run: a third is refused until one ends.
    one_line_error(
        &c.ctl(&["run", "pi", "1000", "--detach"]),
        "2 jobs are already waiting or running",
    );
    c.ctl(&["cancel", &huge.to_string()]);
    assert_eq!(wait_result(&c, id)["count"], 100_000);
    detach(&c, &["pi", "1000"]);
}
