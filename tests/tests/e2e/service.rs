//! What the systemd units rely on: readiness notification (`Type=notify`), a worker waiting
//! for an absent coordinator counting as started, and SIGTERM as a graceful stop with status 0
//! (so `Restart=on-failure` leaves a stopped worker down).

use crate::util::*;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A stand-in for systemd's notification socket.
fn notify_socket(dir: &Path) -> (UnixDatagram, std::path::PathBuf) {
    let path = dir.join(format!("notify-{}.sock", unique()));
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    (socket, path)
}

/// The next notification, as text.
fn next_message(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a notification within 20 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn both_roles_notify_readiness_and_stop_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let token = c.token();
    let addr = c.addr.clone();
    drop(c);

    // A worker whose coordinator is down is still ready: it loaded its state and keeps trying.
    let (socket, path) = notify_socket(dir.path());
    let mut cmd = worker_command(&bin("marmotd"), dir.path(), &addr, "w", 1, Some(&token));
    cmd.env("NOTIFY_SOCKET", &path);
    let mut worker = spawn_worker(cmd, dir.path(), "w");
    assert!(next_message(&socket).contains("READY=1"));
    assert!(worker.is_running());
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(worker.wait_exit(Duration::from_secs(10)).success(), "{}", worker.log_text());

    // A coordinator is ready once it listens.
    let (socket, path) = notify_socket(dir.path());
    let mut cmd = Command::new(bin("marmotd"));
    cmd.args(["coordinator", "--listen", "127.0.0.1:0"]);
    cmd.arg("--state-dir").arg(dir.path().join("c2"));
    cmd.arg("--socket").arg(dir.path().join("c2.sock"));
    cmd.env("NOTIFY_SOCKET", &path);
    let mut coordinator = Proc::spawn(cmd, dir.path().join("c2.log"));
    assert!(next_message(&socket).contains("READY=1"));
    assert!(dir.path().join("c2.sock").exists(), "ready before the socket listens");
    coordinator.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(coordinator.wait_exit(Duration::from_secs(10)).success());
    assert!(!dir.path().join("c2.sock").exists(), "the socket is removed on a graceful stop");
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    let Ok(found) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!("systemd-analyze is missing: install systemd (CI does, in .ci/run)");
    };
    assert!(found.status.success());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/verify.sh");
    let out = Command::new("bash").arg(script).arg(bin("marmotd")).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn logs_are_plain_words_in_a_pipe_and_unstamped_in_the_journal() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let token = c.token();

    // The worker's stderr is a file standing in for the journal's stream: JOURNAL_STREAM
    // names its device and inode, as systemd sets it.
    let log = dir.path().join("journal.log");
    std::fs::write(&log, "").unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    let mut cmd = worker_command(&bin("marmotd"), dir.path(), &c.addr, "w", 1, Some(&token));
    cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    let mut worker = Proc::spawn(cmd, log);
    c.wait_for_workers(&["w"]);
    c.json(&["exit", "w"]);
    assert!(worker.wait_exit(Duration::from_secs(10)).success());

    let journal = worker.log_text();
    assert!(journal.contains("worker stopped: told to exit by the coordinator"), "{journal}");
    for line in journal.lines() {
        assert!(!line.starts_with(|ch: char| ch.is_ascii_digit()), "a timestamp: {line}");
    }
    for text in [journal, c.proc.log_text()] {
        assert!(!text.contains('\u{1b}'), "colours in a pipe: {text}");
        assert!(!text.contains("Told") && !text.contains("Refused {"), "Debug output: {text}");
    }
    // Outside the journal, lines keep their own timestamps.
    assert!(c.proc.log_text().lines().next().is_some_and(|l| l.starts_with("20")));
}
