//! A worker's name is its certificate's: two machines cannot share one, a certificate cannot
//! claim another, a revoked one is cut off for good, and a certificate is renewed before it
//! expires. A joined member that misbehaves (hoards slots, lies) cannot wedge or corrupt jobs.

use crate::util::*;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The exit status marmotd uses for what retrying cannot fix (EX_CONFIG).
const FINAL: i32 = 78;

fn stored_certificate(state_dir: &Path) -> certs::CertInfo {
    let membership = certs::Membership::load(state_dir).unwrap().expect("joined");
    certs::cert_info(&membership.cert_der).unwrap()
}

/// A hostile member `name` (`mode`, `slots`) beside two honest 1-slot workers `a` and `b`, all
/// listed.
fn beside_two_honest(c: &Coordinator, name: &str, slots: u32, mode: &str) -> [Proc; 3] {
    let hostile = c.hostile_member(name, slots, mode);
    let (a, b) = (c.worker("a", 1), c.worker("b", 1));
    c.wait_for_workers(&["a", "b", name]);
    [hostile, a, b]
}

/// Checks a `pi` result is right and counts nothing of `name`'s.
fn right_without(out: &serde_json::Value, name: &str) {
    let estimate = out["estimate"].as_f64().unwrap();
    assert!((estimate - std::f64::consts::PI).abs() < 1e-3, "{out}");
    let shares = out["workers"].as_array().unwrap();
    assert!(shares.iter().all(|w| w["name"] != name), "a result of {name}'s counted: {out}");
}

#[test]
fn two_machines_given_one_name_get_a_refusal_not_a_tug_of_war() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [_first] = c.workers([("twin", 1)]);
    // The second machine: its own state dir, the same name.
    let elsewhere = dir.path().join("other-laptop");
    std::fs::create_dir(&elsewhere).unwrap();
    let mut second = start_worker(&elsewhere, &c.addr, "twin", 1, Some(&c.token()));
    let status = second.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(FINAL), "{}", second.log_text());
    let log = second.log_text();
    assert!(log.contains("a worker named 'twin' is already in the cluster"), "{log}");
    assert!(log.contains("marmotctl revoke twin"), "{log}");
    // The first was never replaced.
    assert_eq!(c.worker_names(), ["twin"]);
    let connected = c.proc.log_text().matches("worker 'twin' connected").count();
    assert_eq!(connected, 1, "{}", c.proc.log_text());
}

/// A worker's state dir copied to a second machine: two processes, one certificate. The
/// newer session is refused (the older still answers), with a line on both sides, and the
/// first is never knocked off: no tug of war, no phantom worker.
#[test]
fn a_copied_state_dir_is_refused_not_a_tug_of_war() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [first] = c.workers([("w1", 1)]);
    let copy = dir.path().join("copied");
    std::fs::create_dir(&copy).unwrap();
    for file in ["worker.key", "worker.crt", "cluster-ca.crt"] {
        std::fs::copy(dir.path().join("w1").join(file), copy.join(file)).unwrap();
    }
    let mut cmd = std::process::Command::new(bin("marmotd"));
    cmd.args(["worker", "--coordinator", &c.addr, "--name", "w1"]);
    cmd.arg("--state-dir").arg(&copy);
    let mut second = spawn_worker(cmd, dir.path(), "copied");
    let status = second.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(FINAL), "{}", second.log_text());
    let log = second.log_text();
    assert!(log.contains("a worker with this certificate is already connected from"), "{log}");
    assert!(log.contains("two machines share one worker state dir"), "{log}");
    let coordinator = c.proc.log_text();
    assert!(coordinator.contains("refused worker 'w1'"), "{coordinator}");
    assert!(first.log_text().matches("connected to the coordinator").count() == 1);
    assert_eq!(c.worker_names(), ["w1"]);
    let connected = coordinator.matches("worker 'w1' connected").count();
    assert_eq!(connected, 1, "{coordinator}");
    let out = run_pi(&c, "1e8", "2");
    assert_eq!(out["workers"].as_array().unwrap().len(), 1, "{out}");
}

#[test]
fn a_certificate_speaks_for_its_own_name_only() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [mut w1] = c.workers([("w1", 1)]);
    w1.kill();
    c.wait_for_workers(&[]);
    // The same state dir (w1's certificate) started under another name.
    let mut cmd = std::process::Command::new(bin("marmotd"));
    cmd.args(["worker", "--coordinator", &c.addr, "--name", "impostor"]);
    cmd.arg("--state-dir").arg(dir.path().join("w1"));
    let mut impostor = spawn_worker(cmd, dir.path(), "impostor");
    let status = impostor.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(FINAL), "{}", impostor.log_text());
    let log = impostor.log_text();
    assert!(log.contains("issued to 'w1', not to 'impostor'"), "{log}");
    assert!(c.worker_names().is_empty());
}

#[test]
fn a_revoked_worker_is_cut_off_at_once_and_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [mut lost, _kept] = c.workers([("lost", 1), ("kept", 1)]);
    let out = c.ctl(&["revoke", "lost"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("revoked lost: disconnected and refused from now on"), "{said}");
    let status = lost.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(FINAL), "{}", lost.log_text());
    assert!(lost.log_text().contains("certificate was revoked"), "{}", lost.log_text());
    assert_eq!(c.worker_names(), ["kept"]);

    // Started again with its certificate: refused again.
    let mut again = start_worker(dir.path(), &c.addr, "lost", 1, None);
    assert_eq!(again.wait_exit(Duration::from_secs(30)).code(), Some(FINAL));
    assert!(again.log_text().contains("certificate was revoked"), "{}", again.log_text());
    // Kept in the state dir, so a restarted coordinator refuses it too.
    let members = std::fs::read_to_string(dir.path().join("state/members.json")).unwrap();
    let members: serde_json::Value = serde_json::from_str(&members).unwrap();
    assert_eq!(members["revoked"][0]["name"], "lost", "{members}");
    assert_eq!(members["revoked"].as_array().unwrap().len(), 1, "{members}");

    one_line_error(&c.ctl(&["revoke", "lost"]), "unknown worker 'lost'");
    // The name is free for a new machine joining with the token.
    let fresh = dir.path().join("replacement");
    std::fs::create_dir(&fresh).unwrap();
    let _new = start_worker(&fresh, &c.addr, "lost", 1, Some(&c.token()));
    c.wait_for_workers(&["kept", "lost"]);
}

#[test]
fn certificates_are_renewed_before_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start_with(
        &bin("marmotd"),
        dir.path(),
        "127.0.0.1:0",
        &["--worker-cert-life", "9s"],
    );
    let [mut w] = c.workers([("w", 1)]);
    let state = dir.path().join("w");
    let first = stored_certificate(&state);
    // Renewed once less than a third of its life (3 s) is left.
    let renewed = wait_for("a renewed certificate", Duration::from_secs(30), || {
        let now = stored_certificate(&state);
        (now.not_after != first.not_after).then_some(now)
    });
    assert!(renewed.not_after > first.not_after);
    assert_eq!(renewed.key_sha256, first.key_sha256, "the same key");
    // (The worker says so once it has stored it: the file may be seen first.)
    wait_for("the worker to say it renewed", Duration::from_secs(10), || {
        w.log_text().contains("stored a renewed certificate").then_some(())
    });
    // Once the first certificate has expired, a restarted worker still connects: with the
    // renewed one.
    w.kill();
    wait_for("the first certificate to expire", Duration::from_secs(30), || {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        (now.as_secs() as i64 > first.not_after).then_some(())
    });
    let _w = start_worker(dir.path(), &c.addr, "w", 1, None);
    c.wait_for_workers(&["w"]);
}

/// A member claims 4,096 slots, takes every chunk and never answers. Its chunks get backups on
/// the honest worker once past their deadline (no chunk has finished yet, so the deadline
/// comes from the plan), and the job completes there with the right result.
#[test]
fn a_member_hoarding_slots_cannot_wedge_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _hoarder = c.hostile_member("hoarder", 4096, "hoard");
    let job = detach(&c, &["pi", "50000000", "--seed", "9"]);
    let _honest = c.worker("honest", 2);
    c.wait_for_workers(&["hoarder", "honest"]);
    let mut wait = ctl_command();
    wait.arg("--socket").arg(&c.socket).args(["--json", "wait", &job.to_string()]);
    let out = output_within(wait, Duration::from_secs(60));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let estimate = result["estimate"].as_f64().unwrap();
    assert!((estimate - std::f64::consts::PI).abs() < 2e-3, "{result}");
    let shares = result["workers"].as_array().unwrap();
    assert_eq!(shares.len(), 1, "only the honest worker counted: {result}");
    assert_eq!(shares[0]["name"], "honest");
    assert_eq!(shares[0]["units"], 50_000_000);
}

/// A member returns well-formed lies (no point inside the circle). With every chunk verified,
/// each lie is contradicted by two honest workers: the liar is quarantined, the estimate is
/// right, and `marmotctl clear` lets it take chunks again.
#[test]
fn a_lying_member_is_outvoted_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _members = beside_two_honest(&c, "liar", 4, "lie");
    let out = c.json(&["run", "pi", "200000000", "--seed", "5", "--verify", "1"]);
    right_without(&out, "liar");
    let workers = c.json(&["workers"]);
    let liar = workers.as_array().unwrap().iter().find(|w| w["name"] == "liar").unwrap();
    assert_eq!(liar["quarantined"], true, "{workers}");
    assert!(c.proc.log_text().contains("worker 'liar' returned a result for chunk"));
    let job = c.json(&["jobs"]);
    let verified = job[0]["chunks_verified"].as_u64().unwrap();
    assert_eq!(verified, job[0]["chunks_total"].as_u64().unwrap(), "{job}");

    assert!(c.ctl(&["clear", "liar"]).status.success());
    let workers = c.json(&["workers"]);
    assert!(workers.as_array().unwrap().iter().all(|w| w["quarantined"] == false), "{workers}");
    one_line_error(&c.ctl(&["clear", "liar"]), "worker 'liar' is not quarantined");
}

/// A member delivers "held" results (the lost-connection path) for chunks it was never given:
/// none is counted, the estimate is right, and the coordinator says what it dropped.
#[test]
fn results_for_chunks_never_given_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let forger = c.hostile_member("forger", 1, "forge");
    let _honest = c.worker("honest", 1);
    c.wait_for_workers(&["forger", "honest"]);
    let out = c.json(&["run", "pi", "400000000", "--seed", "4"]);
    right_without(&out, "forger");
    // A fast honest worker may end the job (backing up the chunk the forger holds) while the
    // forger's deliveries still wait for streams: what it sent is dropped whenever it lands.
    let forged = || forger.log_text().contains("forged").then_some(());
    wait_for("the forger's deliveries", Duration::from_secs(30), forged);
    let dropped = "dropped a result from worker 'forger' for chunk";
    wait_for("the coordinator dropping them", Duration::from_secs(30), || {
        c.proc.log_text().contains(dropped).then_some(())
    });
}

/// A member delivers "held" units (the lost-connection path) printing `forged`, for the
/// command chunk it was given and still holds, and for chunks it was never given: none is
/// taken, and every unit's own output comes once.
#[test]
fn units_delivered_for_chunks_not_held_through_an_outage_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let forger = c.hostile_member("forger", 1, "forge");
    let _honest = c.worker("honest", 1);
    c.wait_for_workers(&["forger", "honest"]);
    let mut args = vec!["run", "cmd", "--", "echo", "unit", ":::"];
    let numbers: Vec<String> = (1..=20).map(|n| n.to_string()).collect();
    args.extend(numbers.iter().map(String::as_str));
    let mut ctl = ctl_command();
    ctl.arg("--socket").arg(&c.socket).args(&args);
    let out = ctl.stdin(Stdio::null()).output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    let forged = || forger.log_text().contains("forged").then_some(());
    wait_for("the forger's deliveries", Duration::from_secs(30), forged);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!printed.contains("forged"), "{printed}");
    let mut units: Vec<u64> =
        printed.lines().map(|l| l.strip_prefix("unit ").unwrap().parse().unwrap()).collect();
    units.sort_unstable();
    assert_eq!(units, (1..=20).collect::<Vec<_>>(), "each unit's own output once");
}

/// A member that answers every chunk with an error never fails a job while another worker can
/// take its chunks, checks of verified chunks included.
#[test]
fn a_failing_member_fails_no_job_verified_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _failer = c.hostile_member("failer", 2, "fail");
    let _honest = c.worker("honest", 1);
    c.wait_for_workers(&["failer", "honest"]);
    for verify in ["0", "1"] {
        let out = c.json(&["run", "pi", "100000000", "--seed", "6", "--verify", verify]);
        let estimate = out["estimate"].as_f64().unwrap();
        assert!((estimate - std::f64::consts::PI).abs() < 2e-3, "--verify {verify}: {out}");
    }
    let _second = c.worker("second", 1);
    c.wait_for_workers(&["failer", "honest", "second"]);
    let out = c.json(&["run", "pi", "100000000", "--seed", "7", "--verify", "1"]);
    let jobs = c.json(&["jobs"]);
    let last = jobs.as_array().unwrap().last().unwrap();
    assert_eq!(last["chunks_verified"], last["chunks_total"], "every chunk checked: {last}");
    assert!((out["estimate"].as_f64().unwrap() - std::f64::consts::PI).abs() < 2e-3, "{out}");
}

/// A member that lies only where the first spot checks (a hash members could compute) would
/// not look, at `--verify 0.5`: the coordinator's checks are keyed by a secret, so it is
/// caught; what it gave the running job is taken back (that job's result is exact), and the
/// jobs that ended with its lies say so.
#[test]
fn a_liar_dodging_predictable_checks_is_caught_and_its_results_taken_back() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _members = beside_two_honest(&c, "dodger", 2, "dodge");
    let caught =
        || c.json(&["workers"]).as_array().unwrap().iter().any(|w| w["quarantined"] == true);
    let right = |estimate: f64| (estimate - std::f64::consts::PI).abs() < 1e-3;
    // Unchecked, its lies stand: a wrong result, for now.
    let unchecked = c.json(&["run", "pi", "2e9", "--seed", "100", "--verify", "0"]);
    assert!(!right(unchecked["estimate"].as_f64().unwrap()), "it told no lie: {unchecked}");
    let mut ran = vec![];
    for seed in 0..10 {
        let out = c.json(&["run", "pi", "2e9", "--seed", &seed.to_string(), "--verify", "0.5"]);
        ran.push(out["estimate"].as_f64().unwrap());
        if caught() {
            break;
        }
    }
    assert!(caught(), "the dodger was never caught in {} jobs: {ran:?}", ran.len());
    assert!(right(*ran.last().unwrap()), "the job that caught it kept a lie: {ran:?}");
    let jobs = c.json(&["jobs"]);
    let jobs = jobs.as_array().unwrap();
    for (job, estimate) in jobs[1..].iter().zip(&ran) {
        let flagged = job["caught_lying"].as_array().is_some_and(|l| l == &["dodger"]);
        assert!(right(*estimate) || flagged, "a wrong result not flagged: {job}");
    }
    let last = jobs.last().unwrap();
    let shares = last["workers"].as_array().unwrap();
    assert!(shares.iter().all(|w| w["name"] != "dodger"), "its results counted: {last}");

    // The unchecked job ended before: it says so, and runs again right.
    assert_eq!(jobs[0]["caught_lying"], serde_json::json!(["dodger"]), "{}", jobs[0]);
    let listed = String::from_utf8_lossy(&c.ctl(&["jobs"]).stdout).into_owned();
    let warning = "job 1 holds results from a worker later caught lying (dodger): `marmotctl \
                   rerun 1` runs it again";
    assert!(listed.contains(warning), "{listed}");
    let result = c.ctl(&["result", "1"]);
    assert_eq!(result.status.code(), Some(1), "{result:?}");
    assert!(String::from_utf8_lossy(&result.stderr).contains(warning), "{result:?}");
    let again = c.json(&["rerun", "1"]);
    assert!(right(again["estimate"].as_f64().unwrap()), "{again}");
    assert_eq!(again["seed"], 100, "{again}");
}

/// A plain liar caught in the middle of a job at `--verify 0.5`: every result it gave that job
/// is taken back and run again, so the job ends right.
#[test]
fn a_liar_caught_mid_job_keeps_none_of_its_results() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _members = beside_two_honest(&c, "liar", 4, "lie");
    let out = c.json(&["run", "pi", "2e9", "--seed", "3", "--verify", "0.5"]);
    right_without(&out, "liar");
}

/// A member claiming 4,096 slots at 9.9e10 samples/s each does not make jobs' chunks coarser:
/// chunks are sized by the speed seen in work, and a claim counts once per member.
#[test]
fn a_members_claimed_speed_does_not_size_the_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _members = beside_two_honest(&c, "braggart", 4096, "brag");
    assert!(c.ctl(&["bench", "--length", "200ms"]).status.success());
    let id = detach(&c, &["pi", "4e10", "--seed", "1"]);
    let view = c.json(&["jobs"]);
    let job = view.as_array().unwrap().iter().find(|j| j["id"] == id).unwrap().clone();
    // Sized by a's and b's speed (0.01 s of a real slot's work: thousands of chunks here), not
    // by the braggart's (100 times the nominal slot: 40 chunks of 1e9 samples).
    let chunks = job["chunks_total"].as_u64().unwrap();
    assert!(chunks >= 400, "{chunks} chunks: sized by the claim? {job}");
    assert!(c.ctl(&["cancel", &id.to_string()]).status.success());
}
