//! `marmotctl update`: new binaries rolled over real worker processes (each running from its
//! own copy of `marmotd`), in place, with rollback, and over the coordinator itself.

use crate::util::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A copy of `marmotd` with bytes appended: the same program under a new SHA-256.
fn new_build(dir: &Path, name: &str, extra: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut bytes = std::fs::read(bin("marmotd")).unwrap();
    bytes.extend_from_slice(extra);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// A copy of `marmotd`, edited.
fn patched(dir: &Path, name: &str, edit: impl Fn(&mut Vec<u8>)) -> PathBuf {
    let path = dir.join(name);
    let mut bytes = std::fs::read(bin("marmotd")).unwrap();
    edit(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// A copy of `marmotd` whose version stamp says 9 for its major version (the same length, so
/// nothing else moves), and that version.
fn newer_build(dir: &Path, name: &str) -> (PathBuf, String) {
    let stamp = format!("{}[{}+", "MARMOT-VERSION", env!("CARGO_PKG_VERSION"));
    let newer = format!("9{}", &env!("CARGO_PKG_VERSION")[1..]);
    let path = patched(dir, name, |b| {
        let at = b.windows(stamp.len()).position(|w| w == stamp.as_bytes()).unwrap();
        let replacement = format!("{}[{newer}+", "MARMOT-VERSION");
        b[at..at + stamp.len()].copy_from_slice(replacement.as_bytes());
    });
    let build = marmotd_version().split_once('+').unwrap().1.to_string();
    (path, format!("{newer}+{build}"))
}

/// The version of the `marmotd` under test.
fn marmotd_version() -> String {
    let out = std::process::Command::new(bin("marmotd")).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().last().unwrap().to_string()
}

fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split(' ').next().unwrap().to_string()
}

/// Worker name → SHA-256 of its binary, as `marmotctl workers` lists them.
fn worker_shas(c: &Coordinator) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = c
        .json(&["workers"])
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap().into(), w["binary_sha256"].as_str().unwrap().into()))
        .collect();
    list.sort();
    list
}

/// `marmotctl update ARGS --json`: the exit status and the report.
fn update(c: &Coordinator, args: &[&str]) -> (bool, Value) {
    let mut all = vec!["--json", "update"];
    all.extend_from_slice(args);
    let out = c.ctl(&all);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("no report: {}", String::from_utf8_lossy(&out.stderr));
    });
    (out.status.success(), report)
}

fn statuses(report: &Value) -> Vec<String> {
    let workers = report["workers"].as_array().unwrap();
    workers.iter().map(|w| w["status"].as_str().unwrap().to_string()).collect()
}

#[test]
fn an_update_reaches_every_worker_in_place_while_a_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let mut workers = copied_workers(&c, dir.path(), ["u1", "u2", "u3"]);
    let pids: Vec<u32> = workers.iter().map(Proc::pid).collect();
    let old = sha256_hex(&bin("marmotd"));
    let (new, new_version) = newer_build(dir.path(), "marmotd-new");
    let new_sha = sha256_hex(&new);

    // A job that runs through the rollout: its result must not change.
    let job = detach(&c, &["pi", "4e9", "--seed", "11"]);
    let (ok, report) = update(&c, &["--parallel", "1", new.to_str().unwrap()]);
    assert!(ok, "{report}");
    assert_eq!(statuses(&report), ["updated"; 3], "{report}");
    // The version each runs now is the new one, in the report and in the coordinator's log.
    for w in report["workers"].as_array().unwrap() {
        assert_eq!(w["version"], new_version.as_str(), "{report}");
    }
    let said = format!("worker 'u1' updated to marmotd {new_version}");
    assert!(c.proc.log_text().contains(&said), "{}", c.proc.log_text());
    assert!(report["bytes_sent"].as_u64().unwrap() >= 3 * std::fs::metadata(&new).unwrap().len());
    for (name, sha) in worker_shas(&c) {
        assert_eq!(sha, new_sha, "{name}");
    }
    // Same processes: updated in place (exec keeps the PID), each now running the new bytes
    // with the old ones kept beside them.
    for ((w, pid), name) in workers.iter_mut().zip(pids).zip(["u1", "u2", "u3"]) {
        assert!(w.is_running(), "{name} exited");
        assert_eq!(w.pid(), pid);
        let exe = dir.path().join(name).join("bin/marmotd");
        assert_eq!(sha256_hex(&exe), new_sha);
        assert_eq!(sha256_hex(&exe.with_file_name("marmotd.prev")), old);
        let linked = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert_eq!(linked, exe, "{name} runs its own binary file");
    }
    let during = c.json(&["wait", &job.to_string()]);
    let after = run_pi(&c, "4e9", "11");
    assert_eq!(during["inside"], after["inside"], "pi changed across the rollout");

    // Offering the same binary again: every worker is already current, nothing is sent.
    let (ok, report) = update(&c, &[new.to_str().unwrap()]);
    assert!(ok, "{report}");
    assert_eq!(statuses(&report), ["current"; 3]);
    assert_eq!(report["bytes_sent"], 0);
}

#[test]
fn an_update_crosses_a_slow_lossy_link() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let wan = wan_to(&c, Duration::from_millis(100), 0.01);
    let exe = marmotd_copy(&dir.path().join("far"));
    let _worker = far_worker(&c, &wan, &exe, "far");
    let new = new_build(dir.path(), "marmotd-new", b"across the internet");

    let (ok, report) = update(&c, &[new.to_str().unwrap()]);
    assert!(ok, "{report}");
    assert_eq!(statuses(&report), ["updated"], "{report}");
    assert_eq!(report["bytes_sent"].as_u64(), Some(std::fs::metadata(&new).unwrap().len()));
    assert_eq!(worker_shas(&c), [("far".to_string(), sha256_hex(&new))]);
    assert_eq!(sha256_hex(&exe), sha256_hex(&new));
    assert!(wan.dropped() > 0, "the link lost packets");
}

/// A worker whose link is cut a third of the way through its transfer gets only the rest once
/// it is back: the pieces it kept are not sent again.
#[test]
fn a_cut_transfer_resumes_after_the_pieces_kept() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    // 100 ms of round trip: the transfer takes seconds, long enough to be cut in the middle.
    let wan = wan_to(&c, Duration::from_millis(100), 0.0);
    let exe = marmotd_copy(&dir.path().join("far"));
    let worker = far_worker(&c, &wan, &exe, "far");
    let new = new_build(dir.path(), "marmotd-new", b"cut, then resumed");
    let size = std::fs::metadata(&new).unwrap().len();
    let received = || {
        let files = std::fs::read_dir(exe.parent().unwrap()).unwrap().flatten();
        let staging =
            files.filter(|f| f.file_name().to_string_lossy().starts_with(".marmotd-update-"));
        staging.filter_map(|f| f.metadata().ok()).map(|m| m.len()).max()
    };

    let rollout = || update(&c, &[new.to_str().unwrap()]);
    let (ok, report) = cut_midway(&c, &wan, size / 3, received, rollout);
    assert!(ok, "{report}");
    assert_eq!(statuses(&report), ["updated"], "{report}");
    let sent = report["bytes_sent"].as_u64().unwrap();
    assert!(sent > 0 && sent <= size - size / 3, "sent {sent} of {size} after the cut: {report}");
    assert_eq!(worker_shas(&c), [("far".to_string(), sha256_hex(&new))]);
    assert_eq!(sha256_hex(&exe), sha256_hex(&new));
    let log = worker.log_text();
    assert!(log.contains("resuming the update's transfer after the"), "{log}");
}

#[test]
fn bad_binaries_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let mut worker = copied_workers(&c, dir.path(), ["w"]);
    let pid = worker[0].pid();
    let old = sha256_hex(&bin("marmotd"));
    let exe = dir.path().join("w/bin/marmotd");
    let unchanged = |c: &Coordinator, worker: &mut Proc| {
        assert_eq!(worker_shas(c), [("w".to_string(), old.clone())]);
        assert!(worker.is_running());
        assert_eq!(worker.pid(), pid);
        assert_eq!(sha256_hex(&exe), old);
        // Nothing was left beside the binary: no staging files, no marmotd.prev.
        let files: Vec<_> = std::fs::read_dir(exe.parent().unwrap()).unwrap().collect();
        assert_eq!(files.len(), 1, "{files:?}");
    };

    // A binary that passes `--version` and exits non-zero at start: rolled back.
    let crash = bin("crash-at-start");
    let (ok, report) = update(&c, &[crash.to_str().unwrap()]);
    assert!(!ok, "{report}");
    assert_eq!(statuses(&report), ["rolled_back"], "{report}");
    let why = report["workers"][0]["detail"].as_str().unwrap();
    assert!(why.contains("exited with status 3"), "{why}");
    unchanged(&c, &mut worker[0]);

    // marmotctl given for marmotd: refused at upload, in one line.
    let out = c.ctl(&["update", bin("marmotctl").to_str().unwrap()]);
    one_line_error(&out, "is marmotctl, not marmotd");
    unchanged(&c, &mut worker[0]);

    // An aarch64 binary for an x86-64 worker: skipped, and said so.
    let aarch64 = patched(dir.path(), "marmotd-aarch64", |b| {
        b[18..20].copy_from_slice(&183u16.to_le_bytes())
    });
    let (ok, report) = update(&c, &[aarch64.to_str().unwrap()]);
    assert!(!ok, "{report}");
    assert_eq!(statuses(&report), ["skipped"], "{report}");
    let why = report["workers"][0]["detail"].as_str().unwrap();
    assert!(why.contains(std::env::consts::ARCH), "{why}");
    unchanged(&c, &mut worker[0]);

    // An older version: refused unless --allow-downgrade.
    let older = patched(dir.path(), "marmotd-older", |b| {
        let stamp = format!("{}[{}+", "MARMOT-VERSION", env!("CARGO_PKG_VERSION"));
        let at = b.windows(stamp.len()).position(|w| w == stamp.as_bytes()).unwrap();
        let low = format!("{}[0.0.0+", "MARMOT-VERSION");
        // The same length, so nothing else in the binary moves: pad with build-number digits.
        let mut replacement = low.into_bytes();
        replacement.resize(stamp.len(), b'0');
        b[at..at + stamp.len()].copy_from_slice(&replacement);
    });
    let (ok, report) = update(&c, &[older.to_str().unwrap()]);
    assert!(!ok, "{report}");
    let why = report["workers"][0]["detail"].as_str().unwrap();
    assert!(why.contains("--allow-downgrade"), "{why}");
    unchanged(&c, &mut worker[0]);

    // Bytes that do not match the offered SHA-256: the stored copy goes bad after upload.
    let new = new_build(dir.path(), "marmotd-new", b"another build");
    let (status, body) = api(&c.socket, "POST", "/v1/binaries", &std::fs::read(&new).unwrap());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let info: Value = serde_json::from_slice(&body).unwrap();
    let sha = info["sha256"].as_str().unwrap();
    let stored = c.dir.join("state/binaries").join(sha);
    let mut bytes = std::fs::read(&stored).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&stored, bytes).unwrap();
    let request = serde_json::json!({ "binaries": [sha] }).to_string();
    let (status, body) = api(&c.socket, "POST", "/v1/update", request.as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let report: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(statuses(&report), ["failed"], "{report}");
    let why = report["workers"][0]["detail"].as_str().unwrap();
    assert!(why.contains("not the offered"), "{why}");
    unchanged(&c, &mut worker[0]);

    // The worker still works.
    assert_eq!(run_pi(&c, "1e7", "1")["samples"], 10_000_000u64);
}

#[test]
fn the_coordinator_updates_itself_and_keeps_workers_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let exe = marmotd_copy(&dir.path().join("coordinator"));
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut c = Coordinator::start_exe(&exe, dir.path(), &listen);
    let _workers = copied_workers(&c, dir.path(), ["a", "b"]);
    let token = c.token();
    let pid = c.proc.pid();
    let new = new_build(dir.path(), "marmotd-new", b"coordinator build");
    let new_sha = sha256_hex(&new);

    let (ok, report) = update(&c, &["--coordinator", new.to_str().unwrap()]);
    assert!(ok, "{report}");
    assert_eq!(statuses(&report), ["updated", "updated"], "{report}");
    assert_eq!(report["coordinator"]["status"], "updated", "{report}");
    // The same process, on the new binary, with the same CA and token; the workers came back.
    assert_eq!(c.json(&["status"])["binary_sha256"], new_sha.as_str());
    assert!(c.proc.is_running());
    assert_eq!(c.proc.pid(), pid);
    assert_eq!(sha256_hex(&exe), new_sha);
    assert_eq!(c.token(), token);
    c.wait_for_workers(&["a", "b"]);
    assert_eq!(run_pi(&c, "1e7", "2")["samples"], 10_000_000u64);
    // A new worker joins with the old token.
    let _late = c.worker("late", 1);
    c.wait_for_workers(&["a", "b", "late"]);
}

#[test]
fn a_new_binary_restarted_too_often_puts_the_previous_one_back() {
    // What systemd's Restart=on-failure does to a binary that keeps crashing after its swap:
    // start it again and again. The starts are counted in the state dir; past the limit the
    // worker restores marmotd.prev and re-executes it, in the same process.
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let exe = marmotd_copy(&dir.path().join("w"));
    let old = sha256_hex(&exe);
    std::fs::rename(&exe, exe.with_file_name("marmotd.prev")).unwrap();
    let new = new_build(dir.path(), "marmotd-new", b"a build that keeps failing");
    std::fs::copy(&new, &exe).unwrap();
    let state = c.dir.join("w");
    std::fs::create_dir_all(&state).unwrap();
    let pending = serde_json::json!({
        "from_sha256": old,
        "to_sha256": sha256_hex(&new),
        "starts": 3,
    });
    std::fs::write(state.join("update-pending.json"), pending.to_string()).unwrap();

    let token = c.token();
    let cmd = worker_command(&exe, &c.dir, &c.addr, "w", 1, Some(&token));
    let mut worker = spawn_worker(cmd, &c.dir, "w");
    let pid = worker.pid();
    c.wait_for_workers(&["w"]);
    assert_eq!(worker_shas(&c), [("w".to_string(), old.clone())]);
    assert!(worker.is_running());
    assert_eq!(worker.pid(), pid);
    assert_eq!(sha256_hex(&exe), old);
    assert!(!state.join("update-pending.json").exists());
}

#[test]
fn a_rollout_stops_after_the_first_rollback_unless_keep_going() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = copied_workers(&c, dir.path(), ["w1", "w2"]);
    let crash = bin("crash-at-start");

    let (ok, report) = update(&c, &[crash.to_str().unwrap()]);
    assert!(!ok, "{report}");
    let mut got = statuses(&report);
    got.sort();
    assert_eq!(got, ["rolled_back", "skipped"], "{report}");
    let workers = report["workers"].as_array().unwrap();
    let rolled = workers.iter().find(|w| w["status"] == "rolled_back").unwrap();
    let skipped = workers.iter().find(|w| w["status"] == "skipped").unwrap();
    let why = skipped["detail"].as_str().unwrap();
    assert!(
        why.contains(&format!("stopped after {} rolled back", rolled["name"].as_str().unwrap())),
        "{why}"
    );
    assert!(why.contains("--keep-going"), "{why}");

    let (ok, report) = update(&c, &["--keep-going", crash.to_str().unwrap()]);
    assert!(!ok, "{report}");
    assert_eq!(statuses(&report), ["rolled_back", "rolled_back"], "{report}");

    // The dashboard's event log says so, and /metrics counts every outcome.
    let log = String::from_utf8_lossy(&c.ctl(&["logs", "-n", "5000"]).stdout).into_owned();
    let rollbacks = log.lines().filter(|l| l.contains("rolled back to marmotd")).count();
    assert_eq!(rollbacks, 3, "{log}");
    let (_, _, metrics) = api_with(&c.socket, "GET", "/metrics", None, b"");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("marmot_updates_total{outcome=\"rolled_back\"} 3"), "{metrics}");
    assert!(metrics.contains("marmot_updates_total{outcome=\"skipped\"} 1"), "{metrics}");
}
