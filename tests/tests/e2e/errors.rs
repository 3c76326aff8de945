use crate::util::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn marmotctl_without_a_coordinator_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = ctl_command()
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
    // Every command that names a worker gives one answer for a name no worker has.
    let unknown = "unknown worker 'nobody': `marmotctl workers` lists the connected ones";
    for command in ["ping", "logs", "clear", "exit", "revoke"] {
        one_line_error(&c.ctl(&[command, "nobody"]), unknown);
    }
    // A worker the cluster knows, gone away: said so, not "unknown".
    let out = c.ctl(&["exit", "solo"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    one_line_error(&c.ctl(&["exit", "solo"]), "worker 'solo' is not connected");
    let out = c.ctl(&["logs", "solo"]);
    assert!(
        out.status.success(),
        "a known worker's logs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    one_line_error(&c.ctl(&["cancel", "12345"]), "no job 12345");
    one_line_error(&c.ctl(&["wait", "12345"]), "no job 12345");
}

#[test]
fn a_worker_with_a_bad_token_or_no_token_exits_with_one_line_and_status_78() {
    let dir = tempfile::tempdir().unwrap();
    let run = |token: Option<&str>| {
        let mut cmd = Command::new(bin("marmotd"));
        cmd.args(["worker", "--coordinator", "127.0.0.1:9", "--state-dir"]).arg(dir.path());
        if let Some(token) = token {
            cmd.args(["--token", token]);
        }
        cmd.env("RUST_LOG", "off").output().unwrap()
    };
    // 78 is in the unit's RestartPreventExitStatus=: systemd does not loop on these.
    let out = run(Some("not-a-token"));
    one_line_error(&out, "malformed join token");
    assert_eq!(out.status.code(), Some(78));
    let out = run(None);
    one_line_error(&out, "MARMOT_TOKEN");
    assert_eq!(out.status.code(), Some(78));

    // A well-formed token the coordinator refuses: the same.
    let c = Coordinator::start(&dir.path().join("c"));
    let token = c.token();
    let (ca_hash, _) = token.strip_prefix("marmot1-").unwrap().split_once('-').unwrap();
    let wrong_secret = format!("marmot1-{ca_hash}-{}", "cd".repeat(16));
    let out = Command::new(bin("marmotd"))
        .args(["worker", "--coordinator", &c.addr, "--token", &wrong_secret, "--state-dir"])
        .arg(dir.path().join("refused"))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    one_line_error(&out, "refused");
    assert_eq!(out.status.code(), Some(78));

    // A malformed address is a usage error (2), also not restarted.
    let out = Command::new(bin("marmotd"))
        .args(["worker", "--coordinator", "laptop:99999", "--token", &token])
        .output()
        .unwrap();
    one_line_error(&out, "HOST:PORT");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_coordinator_name_that_does_not_resolve_yet_is_retried() {
    // At boot DNS is often not up: the worker waits for the name as for an absent coordinator.
    let dir = tempfile::tempdir().unwrap();
    let well_formed = format!("marmot1-{}-{}", "ab".repeat(32), "cd".repeat(16));
    let mut cmd = Command::new(bin("marmotd"));
    cmd.args(["worker", "--coordinator", "no-such-host.invalid", "--token", &well_formed]);
    cmd.arg("--state-dir").arg(dir.path().join("w"));
    let mut worker = Proc::spawn(cmd, dir.path().join("w.log"));
    wait_for("a retried resolution in the log", Duration::from_secs(20), || {
        let log = worker.log_text();
        (log.contains("cannot resolve the coordinator address no-such-host.invalid:7070")
            && log.contains("reconnecting in"))
        .then_some(())
    });
    assert!(worker.is_running(), "{}", worker.log_text());
}

#[test]
fn a_second_process_on_a_state_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let mut second = Command::new(bin("marmotd"));
    second.args(["coordinator", "--listen", "127.0.0.1:0", "--state-dir"]);
    second.arg(c.dir.join("state")).arg("--socket").arg(dir.path().join("second.sock"));
    second.env("RUST_LOG", "off");
    let out = output_within(second, Duration::from_secs(20));
    one_line_error(&out, &format!("another marmotd (pid {})", c.proc.pid()));
    assert_eq!(out.status.code(), Some(78));
    assert!(!dir.path().join("second.sock").exists());

    let [w] = c.workers([("w", 1)]);
    let mut second = worker_command(&bin("marmotd"), &c.dir, &c.addr, "w", 1, None);
    second.env("RUST_LOG", "off");
    let out = output_within(second, Duration::from_secs(20));
    one_line_error(&out, &format!("another marmotd (pid {})", w.pid()));
    assert_eq!(out.status.code(), Some(78));
    // The first ones carry on.
    assert_eq!(run_pi(&c, "1e6", "1")["samples"], 1_000_000u64);
}

#[test]
fn no_command_prints_the_usage_and_the_commands() {
    for (program, commands) in
        [("marmotctl", ["run", "wait", "workers"]), ("marmotd", ["coordinator", "worker", "demo"])]
    {
        let out = Command::new(bin(program)).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{program}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("Usage:"), "{program}: {text}");
        for command in commands {
            assert!(text.contains(command), "{program}: '{command}' not in {text}");
        }
    }
    let out = ctl_command().arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("pi") && text.contains("freefall"), "{text}");
}

#[test]
fn marmotctl_mistakes_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = |args: &[&str]| {
        ctl_command().arg("--socket").arg(dir.path().join("none.sock")).args(args).output().unwrap()
    };
    one_line_error(&ctl(&["wait", "abc"]), "ids are whole numbers like 3");
    one_line_error(
        &ctl(&["run", "count", "e", "--text", "hello", "--seed", "3"]),
        "--seed goes with --random",
    );
    one_line_error(&ctl(&["run", "freefall", "--plot", "fall.svg"]), "PNG files only");
    // With --json, the error is a JSON document on stdout.
    let out = ctl(&["--json", "status"]);
    assert!(!out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["error"].as_str().unwrap().contains("no coordinator at"), "{doc}");
    let out = ctl(&["--json", "wait", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["error"].as_str().unwrap().contains("not a job id"), "{doc}");
    // Both binaries of one build carry one version.
    let version = |program: &str| {
        let out = Command::new(bin(program)).arg("--version").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        text.split_whitespace().last().unwrap().to_string()
    };
    assert_eq!(version("marmotctl"), version("marmotd"));
    assert!(version("marmotctl").contains('+'), "a build stamp: {}", version("marmotctl"));
}

/// A deployed coordinator runs as an unprivileged user: a file it cannot read and a socket
/// group it is not in are each refused at once, in one line that says what to do.
#[test]
#[ignore = "needs root to drop to the user nobody: `.ci/run` runs it as root with --ignored"]
fn a_coordinator_without_rights_says_what_it_cannot_do() {
    assert!(is_root(), "dropping to the user nobody needs root: run this test as root");
    let dir = tempfile::Builder::new().prefix("marmot-nobody-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .unwrap();
    // nobody may not read the build tree: a copy of marmotd it can run.
    let exe = dir.path().join("marmotd");
    std::fs::copy(bin("marmotd"), &exe).unwrap();

    let out = as_nobody(&exe)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--socket-group", "root", "--state-dir"])
        .arg(dir.path().join("grouped"))
        .arg("--socket")
        .arg(dir.path().join("grouped.sock"))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    one_line_error(&out, "SupplementaryGroups=root");
    assert_eq!(out.status.code(), Some(78), "not restarted by systemd");

    let mut cmd = as_nobody(&exe);
    cmd.args(["coordinator", "--listen", "127.0.0.1:0", "--state-dir"]);
    cmd.arg(dir.path().join("state")).arg("--socket").arg(dir.path().join("c.sock"));
    let _coordinator = Proc::spawn(cmd, dir.path().join("c.log"));
    let socket = dir.path().join("c.sock");
    wait_for("the control socket", Duration::from_secs(20), || {
        std::os::unix::net::UnixStream::connect(&socket).ok().map(drop)
    });
    let secret = dir.path().join("root-only.txt");
    std::fs::write(&secret, "eeee").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let started = std::time::Instant::now();
    let out = ctl_command()
        .arg("--socket")
        .arg(&socket)
        .args(["run", "count", "e", "--file"])
        .arg(&secret)
        .output()
        .unwrap();
    one_line_error(&out, "the coordinator cannot read");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Permission denied") && text.contains("/srv/marmot"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused at submission, not after retries");
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

/// The subcommands `--help` lists under "Commands:" (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_argument_of_both_programs_says_what_it_is() {
    // An entry of clap's help: the flag, <VALUE> or command, two spaces, then its text.
    let documented = |line: &str| {
        let line = line.trim_start();
        let spec_end = line.find("  ").unwrap_or(line.len());
        !line[spec_end..].trim().is_empty()
    };
    // Each program's help pages: the top one and one per command (and task).
    for (program, pages) in [("marmotd", 10), ("marmotctl", 27)] {
        let mut queue = vec![vec![]];
        let mut seen = 0;
        while let Some(path) = queue.pop() {
            let out = Command::new(bin(program)).args(&path).arg("--help").output().unwrap();
            assert!(out.status.success(), "{program} {path:?} --help");
            let help = String::from_utf8_lossy(&out.stdout).into_owned();
            // Every entry (an argument, an option, a command) is indented; each has its text
            // beside it, or (clap's layout for long texts) on the next, deeper indented line.
            let lines: Vec<&str> = help.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let indent = line.len() - line.trim_start().len();
                if !(2..10).contains(&indent) || documented(line) {
                    continue;
                }
                let next = lines.get(i + 1).copied().unwrap_or("");
                let below = next.len() - next.trim_start().len() >= 10 && !next.trim().is_empty();
                assert!(below, "{program} {path:?}: bare '{line}'");
            }
            for sub in subcommands(&help) {
                queue.push([path.clone(), vec![sub]].concat());
            }
            seen += 1;
        }
        assert_eq!(seen, pages, "{program}: help pages");
    }
}

/// Trust files that do not belong together stop the process at once, in one line, with the
/// status systemd does not restart: never a silent new CA (orphaning every worker), a CA no
/// worker can join, or a worker that looks like it cannot reach its coordinator.
#[test]
fn damaged_trust_files_stop_with_one_line_and_status_78() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Coordinator::start(dir.path());
    let [mut w] = c.workers([("w", 1)]);
    w.kill();
    let state = c.dir.join("state");

    // The worker's key replaced by another key (here the coordinator's).
    std::fs::copy(state.join("coordinator.key"), c.dir.join("w/worker.key")).unwrap();
    let mut worker = worker_command(&bin("marmotd"), &c.dir, &c.addr, "w", 1, None);
    worker.env("RUST_LOG", "off");
    let out = output_within(worker, Duration::from_secs(20));
    one_line_error(&out, "worker.key in");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not the key of worker.crt"));
    assert_eq!(out.status.code(), Some(78));

    // `--socket` pointed at the CA key: refused, and the key is still there.
    let mut second = Command::new(bin("marmotd"));
    second.args(["coordinator", "--listen", "127.0.0.1:0", "--state-dir"]);
    second.arg(dir.path().join("other-state")).arg("--socket").arg(state.join("ca.key"));
    second.env("RUST_LOG", "off");
    let out = output_within(second, Duration::from_secs(20));
    one_line_error(&out, "is not a socket");
    assert_eq!(out.status.code(), Some(78));
    assert!(state.join("ca.key").exists(), "the CA key was deleted");

    // The CA key gone: the coordinator refuses to start instead of making a new CA.
    c.proc.kill();
    let ca = std::fs::read(state.join("ca.crt")).unwrap();
    std::fs::remove_file(state.join("ca.key")).unwrap();
    let mut restart = Command::new(bin("marmotd"));
    restart.args(["coordinator", "--listen", "127.0.0.1:0", "--state-dir"]);
    restart.arg(&state).arg("--socket").arg(dir.path().join("again.sock"));
    restart.env("RUST_LOG", "off");
    let out = output_within(restart, Duration::from_secs(20));
    one_line_error(&out, "ca.key is missing beside ca.crt");
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(std::fs::read(state.join("ca.crt")).unwrap(), ca, "the CA was replaced");
}

/// Without `XDG_RUNTIME_DIR`, the socket lives in `/tmp/marmot-UID`, which any local user
/// could make first: both programs refuse a directory that is not the user's own.
#[test]
#[ignore = "needs root to act as two users: `.ci/run` runs it as root with --ignored"]
fn a_socket_dir_in_tmp_made_by_another_user_is_refused() {
    assert!(is_root(), "acting as two users needs root: run this test as root");
    let planted = std::path::Path::new("/tmp/marmot-65534");
    let _ = std::fs::remove_dir_all(planted);
    // Made by root for the user nobody, open to all: another user's trap.
    std::fs::create_dir(planted).unwrap();
    std::fs::set_permissions(planted, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let dir = tempfile::Builder::new().prefix("marmot-nobody-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .unwrap();
    let exe = dir.path().join("marmotd");
    std::fs::copy(bin("marmotd"), &exe).unwrap();
    let ctl = dir.path().join("marmotctl");
    std::fs::copy(bin("marmotctl"), &ctl).unwrap();

    let out = as_nobody(&ctl)
        .arg("status")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("MARMOT_SOCKET")
        .output()
        .unwrap();
    one_line_error(&out, "/tmp/marmot-65534 belongs to user 0, not to you");

    let out = as_nobody(&exe)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path().join("state"))
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("MARMOT_SOCKET")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    one_line_error(&out, "belongs to user 0, not to you");
    assert_eq!(out.status.code(), Some(78));
    assert!(!planted.join("marmotd.sock").exists());
    std::fs::remove_dir_all(planted).unwrap();
}

/// Damaged state is not a fresh start: a 0-byte journal (job ids would start at 1 again), a
/// missing `members.json` beside the CA (revoked certificates would be admitted again) and a
/// join secret that is not one stop the coordinator with exit 78 and one line naming the file
/// and the way out.
#[test]
fn damaged_state_stops_the_coordinator_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [_w] = c.workers([("w", 1)]);
    assert!(c.ctl(&["revoke", "w"]).status.success());
    drop(c);
    let state = dir.path().join("state");
    let start = |socket: &str| {
        let mut cmd = Command::new(bin("marmotd"));
        cmd.args(["coordinator", "--listen", "127.0.0.1:0", "--state-dir"]);
        cmd.arg(&state).arg("--socket").arg(dir.path().join(socket));
        cmd.env("RUST_LOG", "off");
        output_within(cmd, Duration::from_secs(30))
    };
    let journal = state.join("journal.sqlite");
    let kept = std::fs::read(&journal).unwrap();
    std::fs::write(&journal, b"").unwrap();
    for extra in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{extra}", journal.display()));
    }
    let out = start("one.sock");
    one_line_error(&out, "journal.sqlite is unreadable (it is empty");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--journal-reset"), "{out:?}");
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0, "left as it was");
    std::fs::write(&journal, kept).unwrap();

    let members = state.join("members.json");
    std::fs::remove_file(&members).unwrap();
    let out = start("two.sock");
    one_line_error(&out, "members.json is missing beside the cluster CA");
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert!(!members.exists(), "not made again");
    std::fs::write(&members, b"{}").unwrap();

    // A join secret that is not one would be printed as a token no worker can join with.
    std::fs::write(state.join("join-secret"), b"hello world\n").unwrap();
    let out = start("three.sock");
    one_line_error(&out, "join-secret holds no join secret");
    assert_eq!(out.status.code(), Some(78), "{out:?}");
}
