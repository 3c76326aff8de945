use crate::util::*;
use std::process::Command;
use std::time::Duration;

/// Asserts a failed run printed exactly one line on stderr, mentioning `needle`.
fn one_line_error(out: &std::process::Output, needle: &str) {
    assert!(!out.status.success(), "should have failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line, got: {stderr}");
    assert!(stderr.contains(needle), "'{needle}' not in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn marmotctl_without_a_coordinator_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin("marmotctl"))
        .arg("--socket")
        .arg(dir.path().join("nothing.sock"))
        .arg("status")
        .output()
        .unwrap();
    one_line_error(&out, "no coordinator at");
}

#[test]
fn unknown_workers_and_jobs_get_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("solo", 1)]);
    one_line_error(&c.ctl(&["ping", "nobody"]), "unknown worker 'nobody'");
    one_line_error(&c.ctl(&["cancel", "12345"]), "no job 12345");
    one_line_error(&c.ctl(&["wait", "12345"]), "no job 12345");
}

#[test]
fn a_worker_with_a_bad_token_or_no_token_exits_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |token: Option<&str>| {
        let mut cmd = Command::new(bin("marmotd"));
        cmd.args(["worker", "--coordinator", "127.0.0.1:9", "--state-dir"]).arg(dir.path());
        if let Some(token) = token {
            cmd.args(["--token", token]);
        }
        cmd.env("RUST_LOG", "off").output().unwrap()
    };
    one_line_error(&run(Some("not-a-token")), "malformed join token");
    one_line_error(&run(None), "--token");
    let well_formed = format!("marmot1-{}-{}", "ab".repeat(32), "cd".repeat(16));
    let out = Command::new(bin("marmotd"))
        .args(["worker", "--coordinator", "no-such-host.invalid:7070", "--token", &well_formed])
        .arg("--state-dir")
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    one_line_error(&out, "cannot resolve the coordinator address");
}

#[test]
fn ping_of_an_unreachable_worker_times_out_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [w] = c.workers([("frozen", 1)]);
    // SIGSTOP: the process is there but answers nothing, like a pulled cable.
    w.signal(nix::sys::signal::Signal::SIGSTOP);
    let started = std::time::Instant::now();
    let out = c.ctl(&["ping", "--timeout", "500ms"]);
    let took = started.elapsed();
    w.signal(nix::sys::signal::Signal::SIGCONT);
    assert_eq!(out.status.code(), Some(1), "a timed-out worker makes ping exit 1");
    assert!(String::from_utf8_lossy(&out.stdout).contains("timeout"));
    // The bound is the command's promise (timeout + 100 ms); process start-up is extra slack.
    assert!(took < Duration::from_millis(500 + 400), "ping took {took:?}");
}
