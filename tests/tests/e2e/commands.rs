use crate::util::*;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// `marmotctl run cmd ARGS`, to its end.
fn run_cmd(c: &Coordinator, args: &[&str]) -> Output {
    let mut all = vec!["run", "cmd"];
    all.extend_from_slice(args);
    c.ctl(&all)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lines(out: &Output) -> Vec<String> {
    stdout(out).lines().map(str::to_string).collect()
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// A worker started with `extra` flags, waited for by the caller.
fn worker_with(c: &Coordinator, name: &str, slots: u32, extra: &[&str]) -> Proc {
    let token = c.token();
    let mut cmd = worker_command(&bin("marmotd"), &c.dir, &c.addr, name, slots, Some(&token));
    cmd.args(extra);
    spawn_worker(cmd, &c.dir, name)
}

#[test]
fn every_replacement_string_and_an_appended_input() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("w1", 1), ("w2", 1)]);
    let out = run_cmd(
        &c,
        &["-k", "--", "echo", "{#}|{}|{.}|{/}|{//}|{/.}", ":::", "dir/clip.tar.gz", "plain"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        lines(&out),
        ["1|dir/clip.tar.gz|dir/clip.tar|clip.tar.gz|dir|clip.tar", "2|plain|plain|plain|.|plain"]
    );
    // No replacement string: the input is the last argument, one argument however it looks.
    let out = run_cmd(&c, &["-k", "--", "printf", "<%s>\\n", ":::", "a b", "$HOME;x"]);
    assert_eq!(lines(&out), ["<a b>", "<$HOME;x>"]);
    // Inputs from a file and from stdin, options before `--`, `:::` before the command too.
    let list = dir.path().join("inputs.txt");
    std::fs::write(&list, "one\ntwo\n\nthree\n").unwrap();
    let out = run_cmd(&c, &["-k", "--inputs", list.to_str().unwrap(), "--", "echo", "[{}]"]);
    assert_eq!(lines(&out), ["[one]", "[two]", "[]", "[three]"]);
    let mut ctl = ctl_command();
    ctl.arg("--socket").arg(&c.socket);
    ctl.args(["run", "cmd", "-k", "--inputs", "-", "--", "sh", "-c", "echo $MARMOT_UNIT=$1", "sh"]);
    let mut child =
        ctl.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"x\ny\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(lines(&out), ["1=x", "2=y"]);
    let out = run_cmd(&c, &["::: ", "--", "true"]);
    one_line_error(&out, "inputs follow `:::`");
}

#[test]
fn keep_order_prints_in_input_order_whatever_finishes_first() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("w1", 2), ("w2", 2)]);
    // Durations shuffled so later inputs often end first.
    let sleeps = ["0.3", "0", "0.2", "0.05", "0", "0.25", "0.1", "0", "0.15", "0.02", "0.3", "0"];
    let mut args = vec!["-k", "--", "sh", "-c", "sleep $1; echo {#}", "sh", "{}", ":::"];
    args.extend_from_slice(&sleeps);
    let out = run_cmd(&c, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want: Vec<String> = (1..=sleeps.len()).map(|n| n.to_string()).collect();
    assert_eq!(lines(&out), want);
    // Without it, every unit's output still comes once, whole.
    let mut args = vec!["--", "sh", "-c", "sleep $1; echo {#}; echo end{#}", "sh", "{}", ":::"];
    args.extend_from_slice(&sleeps);
    let out = run_cmd(&c, &args);
    let printed = lines(&out);
    assert_eq!(printed.len(), 2 * sleeps.len());
    for pair in printed.chunks(2) {
        assert_eq!(format!("end{}", pair[0]), pair[1], "a unit's lines stay together");
    }
    // A job large enough to be probed, then cut into chunks of several units: still in order
    // across the two phases.
    let many: Vec<String> =
        (0..300).map(|n| if n % 7 == 3 { "0.02" } else { "0" }.into()).collect();
    let mut args = vec!["-k", "--", "sh", "-c", "sleep $1; echo {#}", "sh", "{}", ":::"];
    args.extend(many.iter().map(String::as_str));
    let out = run_cmd(&c, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want: Vec<String> = (1..=many.len()).map(|n| n.to_string()).collect();
    assert_eq!(lines(&out), want);
}

#[test]
fn a_small_jobs_units_do_not_wait_for_its_slow_first_one() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("w1", 1), ("w2", 1)]);
    let joblog = dir.path().join("joblog");
    // Unit 1 takes 2 s, the other five no time: they all run on the other slot meanwhile
    // (they waited for unit 1 when the first four units were a probe the rest waited for).
    let log = joblog.to_str().unwrap();
    let out = run_cmd(&c, &["--joblog", log, "--", "sleep", ":::", "2", "0", "0", "0", "0", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(&joblog).unwrap();
    let ends: Vec<(u64, f64)> = log
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let number = |i: usize| fields[i].trim().parse::<f64>().unwrap();
            (fields[0].parse().unwrap(), number(2) + number(3))
        })
        .collect();
    assert_eq!(ends.len(), 6, "{log}");
    let slow_end = ends.iter().find(|(seq, _)| *seq == 1).unwrap().1;
    for (seq, end) in ends.iter().filter(|(seq, _)| *seq != 1) {
        assert!(*end < slow_end, "unit {seq} ended at {end}, after the slow unit ({slow_end})");
    }
}

/// Peak resident memory of a process, sampled until it exits (it only grows).
fn peak_memory_until_exit(child: &mut std::process::Child) -> u64 {
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            let hwm = status.lines().find(|l| l.starts_with("VmHWM:"));
            let kb = hwm.and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok());
            peak = peak.max(kb.unwrap_or(0) * 1024);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    peak
}

#[test]
fn hundreds_of_megabytes_of_output_cost_bounded_memory_on_both_ends() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [w] = c.workers([("w", 2)]);
    let results = dir.path().join("results");
    let out_file = dir.path().join("stdout");
    let mut ctl = ctl_command();
    ctl.arg("--socket").arg(&c.socket);
    ctl.args(["run", "cmd", "--results", results.to_str().unwrap(), "--"]);
    // Unit 1 prints 200 MiB; unit 2 writes 200 MiB under $MARMOT_OUT.
    ctl.args(["sh", "-c", "case {} in out) head -c 209715200 /dev/zero ;; \
               res) head -c 209715200 /dev/zero > $MARMOT_OUT/big; echo small > $MARMOT_OUT/s ;; esac"]);
    ctl.args([":::", "out", "res"]);
    ctl.stdout(std::fs::File::create(&out_file).unwrap()).stderr(Stdio::piped());
    let mut child = ctl.spawn().unwrap();
    let ctl_peak = peak_memory_until_exit(&mut child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(&out_file).unwrap().len(), 200 << 20);
    assert_eq!(std::fs::metadata(results.join("2/big")).unwrap().len(), 200 << 20);
    assert_eq!(std::fs::read_to_string(results.join("2/s")).unwrap(), "small\n");
    assert!(!results.join("1").exists(), "unit 1 wrote no results");
    let (_, coordinator_peak) = memory_of(c.proc.pid());
    let (_, worker_peak) = memory_of(w.pid());
    for (who, peak) in
        [("marmotctl", ctl_peak), ("coordinator", coordinator_peak), ("worker", worker_peak)]
    {
        assert!(peak > 0 && peak < 100 << 20, "{who} peaked at {} MiB", peak >> 20);
    }
    // Nothing left behind: the spool is let go once read, units' dirs once sent.
    wait_for("the spool emptied", Duration::from_secs(10), || {
        let spooled = walk_size(&c.dir.join("state/spool"));
        (spooled == 0).then_some(())
    });
    assert_eq!(walk_size(&c.dir.join("w/units")), 0);
}

/// Bytes of the files under `dir`.
fn walk_size(dir: &Path) -> u64 {
    let Ok(items) = std::fs::read_dir(dir) else { return 0 };
    items
        .flatten()
        .map(|item| match item.file_type() {
            Ok(t) if t.is_dir() => walk_size(&item.path()),
            _ => item.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

#[test]
fn files_travel_once_by_content_and_appear_under_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [w] = c.workers([("w", 1)]);
    let data = dir.path().join("data.bin");
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&data, &bytes).unwrap();
    let script = dir.path().join("count.sh");
    std::fs::write(&script, "wc -c < data.bin; cat $1 | wc -c\n").unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    for (name, len) in [("a.txt", 10), ("b.txt", 20)] {
        std::fs::write(inputs.join(name), "x".repeat(len)).unwrap();
    }
    let glob = format!("{}/*.txt", inputs.display());
    let args = [
        "-k",
        "--file",
        data.to_str().unwrap(),
        "--file",
        script.to_str().unwrap(),
        "--input-files",
        &glob,
        "--",
        "sh",
        "count.sh",
    ];
    for round in 0..2 {
        let out = run_cmd(&c, &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(lines(&out), ["3000000", "10", "3000000", "20"], "round {round}");
    }
    let log = w.log_text();
    let fetched: Vec<&str> = log.lines().filter(|l| l.contains("into the file cache")).collect();
    assert_eq!(fetched.len(), 4, "each file once over both rounds: {fetched:?}");
    assert!(fetched.iter().any(|l| l.contains("data.bin (3000000 bytes")), "{fetched:?}");
    // The work dir is gone with the unit.
    assert_eq!(walk_size(&c.dir.join("w/units")), 0);
}

/// A file whose transfer a cut link stops a third of the way is not sent again from its start:
/// the worker kept what came and asks, when back, for the rest only.
#[test]
fn a_files_cut_transfer_resumes_after_the_bytes_kept() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    // 100 ms of round trip: the file takes seconds to cross, long enough to be cut mid-way.
    let wan = wan_to(&c, Duration::from_millis(100), 0.0);
    let worker = far_worker(&c, &wan, &bin("marmotd"), "far");
    let size = 24_000_000u64;
    let big = dir.path().join("big.bin");
    let bytes: Vec<u8> = (0..size).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&big, &bytes).unwrap();
    let incoming = c.dir.join("far/cache/incoming");
    let received = || {
        let files = std::fs::read_dir(&incoming).ok()?.flatten();
        files.filter_map(|f| f.metadata().ok()).map(|m| m.len()).max()
    };

    let args = ["--file", big.to_str().unwrap(), "--", "sh", "-c", "wc -c < big.bin", ":::", "x"];
    let out = cut_midway(&c, &wan, size / 3, received, || run_cmd(&c, &args));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines(&out), [size.to_string()]);
    let log = worker.log_text();
    let kept = log.lines().find(|l| l.contains("bytes of big.bin for later")).expect("kept");
    let resumed = log.lines().find(|l| l.contains("resuming the transfer of big.bin after the"));
    let resumed = resumed.expect("resumed");
    let number = |line: &str, before: &str| -> u64 {
        let at = line.find(before).unwrap();
        line[..at].split_whitespace().last().unwrap().parse().unwrap()
    };
    let from = number(resumed, " bytes kept");
    assert!(from >= size / 3 && from == number(kept, " bytes of big.bin"), "{kept}\n{resumed}");
    assert_eq!(log.matches("fetched big.bin (24000000 bytes").count(), 1, "{log}");
}

#[test]
fn failures_count_in_the_exit_status_retry_elsewhere_and_halt() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("w1", 1), ("w2", 1)]);
    let out = run_cmd(&c, &["--", "sh", "-c", "exit $1", "sh", ":::", "0", "3", "3", "0", "7"]);
    assert_eq!(out.status.code(), Some(3), "three units failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exited with status 7"), "{stderr}");

    // Every unit fails its first try (wherever it runs) and runs again on the other worker:
    // counted as a success, its output the last try's, a joblog line per try (as GNU
    // parallel writes), and the summary names each try's worker.
    let joblog = dir.path().join("joblog");
    let marks = dir.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let script = "if mkdir \"$0/$1\" 2>/dev/null; then exit 3; fi; echo ran $1 on $MARMOT_WORKER";
    let inputs = ["a", "b", "c", "d", "e", "f"];
    let args = ["--retries", "2", "--joblog", joblog.to_str().unwrap(), "--", "sh", "-c", script];
    let args: Vec<&str> =
        args.into_iter().chain([marks.to_str().unwrap(), ":::"]).chain(inputs).collect();
    let out = run_cmd(&c, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    let mut printed = lines(&out);
    printed.sort();
    assert_eq!(printed.len(), 6, "the last tries' output only: {printed:?}");
    let log = std::fs::read_to_string(&joblog).unwrap();
    let rows: Vec<Vec<&str>> = log.lines().skip(1).map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 12, "a line per try:\n{log}");
    assert!(stderr.contains("6 units ran more than once:"), "{stderr}");
    for (seq, input) in inputs.iter().enumerate().map(|(i, input)| ((i + 1).to_string(), input)) {
        let tries: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == seq).collect();
        let (first, last) = (tries[0], tries[1]);
        assert_eq!((tries.len(), first[6], last[6]), (2, "3", "0"), "unit {seq}:\n{log}");
        assert_ne!(first[1], last[1], "unit {seq} ran again elsewhere:\n{log}");
        assert!(printed.contains(&format!("ran {input} on {}", last[1])), "{printed:?}");
        let named = format!("  unit {seq}: {}, {}", first[1], last[1]);
        assert!(stderr.lines().any(|l| l == named), "{named:?} not in:\n{stderr}");
        let again = format!(
            "marmotctl: unit {seq} ('{input}') exited with status 3 on {}; it runs again",
            first[1]
        );
        assert!(stderr.lines().any(|l| l == again), "{again:?} not in:\n{stderr}");
    }

    // Without retries left the failure stands; --halt now stops the rest.
    let out = run_cmd(
        &c,
        &["--halt", "now,fail=1", "--", "sh", "-c", "sleep 0.$1; exit 1", "sh", ":::"]
            .into_iter()
            .chain(["1", "9", "9", "9", "9", "9", "9", "9", "9", "9", "9", "9"])
            .collect::<Vec<_>>(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--halt now,fail=1 stopped it"), "{stderr}");
    // soon: running units finish, no new ones start.
    let out = run_cmd(
        &c,
        &["--halt", "soon,fail=2", "--", "sh", "-c", "exit $1", "sh", ":::"]
            .into_iter()
            .chain(std::iter::repeat_n("1", 40))
            .collect::<Vec<_>>(),
    );
    let failed = out.status.code().unwrap();
    assert!((2..=4).contains(&failed), "2 failures halt, the running ones end: {failed}");
    c.wait_idle(Duration::from_secs(10));
}

#[test]
fn a_unit_whose_worker_is_killed_runs_elsewhere_and_prints_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [_keeper, mut victim] = c.workers([("keeper", 1), ("victim", 1)]);
    let joblog = c.dir.join("joblog");
    let mut ctl = ctl_command();
    ctl.arg("--socket").arg(&c.socket).args(["run", "cmd", "--joblog"]).arg(&joblog).arg("--");
    // On the victim a unit hangs until the worker is killed (its process group outlives a
    // SIGKILLed worker: the test stops it by the PID it wrote); on the keeper it just prints.
    let pids = c.dir.join("victim-units.pid");
    let hang = format!(
        "[ $MARMOT_WORKER = victim ] && {{ echo $$ >> {}; exec sleep 20; }}; echo unit {{}}",
        pids.display()
    );
    ctl.args(["sh", "-c", &hang, ":::"]);
    ctl.args(["1", "2", "3", "4", "5", "6"]);
    let child = ctl.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // The unit's own line, not its directory: a directory made before the shell wrote its
    // PID would leave nothing to stop (and a kill too early to test the hang).
    wait_for("a unit hanging on the victim", Duration::from_secs(30), || {
        let written = std::fs::read_to_string(&pids).ok()?;
        written.trim().parse::<i32>().ok().map(drop)
    });
    victim.kill();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want: Vec<String> = (1..=6).map(|n| format!("unit {n}")).collect();
    assert_eq!(sorted(lines(&out)), want, "each unit's output exactly once");
    // The joblog says which unit was lost with its worker (Exitval -1, as GNU parallel
    // writes for a unit that did not exit by itself), before that unit's line from the keeper.
    let log = std::fs::read_to_string(&joblog).unwrap();
    let rows: Vec<Vec<&str>> = log.lines().skip(1).map(|l| l.split('\t').collect()).collect();
    let lost: Vec<&Vec<&str>> = rows.iter().filter(|r| r[1] == "victim").collect();
    assert_eq!(lost.len(), 1, "one unit ran on the victim:\n{log}");
    assert_eq!((lost[0][6], lost[0][7]), ("-1", "0"), "{log}");
    let seq = lost[0][0];
    let at = rows.iter().position(|r| r[1] == "victim").unwrap();
    let after: Vec<_> = rows[at + 1..].iter().filter(|r| r[0] == seq).collect();
    assert!(after.len() == 1 && after[0][1] == "keeper" && after[0][6] == "0", "{log}");
    let mut seqs: Vec<&str> = rows.iter().filter(|r| r[6] == "0").map(|r| r[0]).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, ["1", "2", "3", "4", "5", "6"], "each unit succeeded once:\n{log}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("unit {seq} ('{seq}') was lost with its worker")), "{said}");
    // Only what this test started: each hung unit's process group, by the PID it wrote.
    let written = std::fs::read_to_string(&pids).unwrap();
    for pid in written.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        let group = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
}

/// Processes whose command line is exactly `cmdline` (arguments joined by spaces).
fn processes(cmdline: &str) -> usize {
    pids_of(cmdline).len()
}

/// The PIDs of the processes whose command line is exactly `cmdline`.
fn pids_of(cmdline: &str) -> Vec<i32> {
    let Ok(items) = std::fs::read_dir("/proc") else { return vec![] };
    items
        .flatten()
        .filter(|p| {
            let raw = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let args: Vec<String> = raw
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.join(" ") == cmdline
        })
        .filter_map(|p| p.file_name().to_str()?.parse().ok())
        .collect()
}

/// Kills, by PID, the processes this test started under a unique command line, if a failure
/// left any (an escaped daemon).
struct Leftovers(Vec<String>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pid in self.0.iter().flat_map(|cmdline| pids_of(cmdline)) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// A unit that daemonizes (`setsid`, out of its process group and session) is stopped all the
/// same, in its cgroup: when the unit ends, and when its job is cancelled.
#[test]
#[ignore = "needs root (or a delegated cgroup) for units' cgroups: `.ci/run` runs it as root with --ignored"]
fn a_unit_that_calls_setsid_is_stopped_at_its_end_and_on_cancel() {
    assert!(is_root(), "a worker makes cgroups for its units as root (or delegated): run as root");
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("w", 2)]);
    let marker = |n: u128| format!("sleep {}.{}", 300 + unique() % 600, n * 1000 + unique() % 1000);
    let (ended, cancelled) = (marker(1), marker(2));
    let _leftovers = Leftovers(vec![ended.clone(), cancelled.clone()]);
    let daemon = |sleep: &str| format!("setsid sh -c 'exec {sleep}' &");

    // The unit exits at once, its daemon still running.
    let script = format!("{} sleep 0.2", daemon(&ended));
    let out = run_cmd(&c, &["--", "sh", "-c", &script, ":::", "a"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("the ended unit's daemon gone", Duration::from_secs(5), || {
        (processes(&ended) == 0).then_some(())
    });

    // Cancelled while it runs.
    let script = format!("{} sleep 30", daemon(&cancelled));
    let mut ctl = ctl_command();
    ctl.arg("--socket").arg(&c.socket).args(["run", "cmd", "--", "sh", "-c", &script, ":::", "a"]);
    let mut child = ctl.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for("the daemon running", Duration::from_secs(30), || {
        (processes(&cancelled) == 1).then_some(())
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    wait_for("the cancelled unit's daemon gone", Duration::from_secs(5), || {
        (processes(&cancelled) == 0).then_some(())
    });
    assert_eq!(child.wait().unwrap().code(), Some(130));
    c.wait_idle(Duration::from_secs(10));
}

#[test]
fn cancel_stops_a_units_children_and_grandchildren() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("w", 2)]);
    let marker = format!("{}.{}", 300 + unique() % 600, unique() % 1000);
    let sleep = format!("sleep {marker}");
    let mut ctl = ctl_command();
    ctl.arg("--socket").arg(&c.socket).args(["run", "cmd", "--"]);
    // A child sleeping in the background and a grandchild through a second shell.
    ctl.args(["sh", "-c", &format!("{sleep} & sh -c '{sleep}'; wait"), ":::", "a"]);
    let mut child = ctl.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for("both sleeps running", Duration::from_secs(30), || {
        (processes(&sleep) == 2).then_some(())
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let asked = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    wait_for("no sleep left", Duration::from_secs(5), || (processes(&sleep) == 0).then_some(()));
    let gone = asked.elapsed();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "Ctrl-C's status");
    eprintln!("cancel to no process left: {gone:?}");
    c.wait_idle(Duration::from_secs(10));
}

#[test]
fn no_exec_workers_run_no_commands() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _refuser = worker_with(&c, "refuser", 2, &["--no-exec"]);
    c.wait_for_workers(&["refuser"]);
    let out = run_cmd(&c, &["--", "echo", ":::", "a"]);
    one_line_error(&out, "no connected worker runs commands");
    let _runner = c.worker("runner", 1);
    c.wait_for_workers(&["refuser", "runner"]);
    let joblog = dir.path().join("joblog");
    let mut args = vec!["--joblog", joblog.to_str().unwrap(), "--", "echo", ":::"];
    let inputs: Vec<String> = (0..12).map(|i| i.to_string()).collect();
    args.extend(inputs.iter().map(String::as_str));
    let out = run_cmd(&c, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines(&out).len(), 12);
    let log = std::fs::read_to_string(&joblog).unwrap();
    assert!(log.lines().skip(1).all(|l| l.split('\t').nth(1) == Some("runner")), "{log}");
    // Built-in tasks still run on the refuser.
    let pi = run_pi(&c, "1e9", "3");
    let names: Vec<&str> =
        pi["workers"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"refuser"), "{pi}");
}

#[test]
fn mistakes_are_one_clear_line_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("w", 1)]);
    let missing = dir.path().join("missing.sh");
    let missing = missing.to_str().unwrap();
    let pattern = format!("{}/vanished*", dir.path().display());
    let cases: [(&[&str], &str); 7] = [
        (&[":::", "a"], "no command given"),
        (&["--", "echo", "{/."], "is not closed: write `{/.}`"),
        (&["--", "echo"], "no inputs"),
        (&["--file", missing, "--", "sh", ":::", "a"], "cannot read"),
        (&["--input-files", &pattern, "--", "cat"], "matches no file"),
        (&["--env", "MARMOT_OUT=x", "--", "echo", ":::", "a"], "marmot sets MARMOT_OUT itself"),
        (&["--halt", "now,fail=0", "--", "echo", ":::", "a"], "at least 1"),
    ];
    for (args, needle) in cases {
        let out = run_cmd(&c, args);
        one_line_error(&out, needle);
    }
    // Inputs of more than 1 MiB go as a file of lines: one holding a newline cannot (it
    // went as two inputs before, silently).
    let big: Vec<String> = (0..17).map(|i| format!("{i}\n{}", "x".repeat(64 * 1000))).collect();
    let mut args = vec!["--", "echo", ":::"];
    args.extend(big.iter().map(String::as_str));
    one_line_error(&run_cmd(&c, &args), "input 1 holds a newline");
    // A program that does not exist is a failed unit, not a mistake of marmotctl's.
    let out = run_cmd(&c, &["--", "no-such-program-here", ":::", "a"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("did not start") && stderr.contains("no-such-program-here"),
        "{stderr}"
    );
    let jobs = c.json(&["jobs"]);
    let cmd_jobs = jobs.as_array().unwrap().iter().filter(|j| j["task"] == "cmd").count();
    assert_eq!(cmd_jobs, 1, "only the last one became a job: {jobs}");
}

/// A unit's files are its own: one rewritten in place (the same size, its modification time
/// put back) changes nothing a later unit reads, and `gzip`, which refuses a file with other
/// links, compresses each input where it lies in the unit's work dir.
#[test]
fn a_units_files_are_its_own_and_later_units_read_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [_w] = c.workers([("w", 1)]);
    let data = dir.path().join("data.txt");
    std::fs::write(&data, "good").unwrap();
    let tamper = "cp -p data.txt .when; chmod u+w data.txt; printf evil > data.txt; \
                  touch -r .when data.txt; cat data.txt";
    let file = data.to_str().unwrap();
    let out = run_cmd(&c, &["--file", file, "--", "sh", "-c", tamper, ":::", "x"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines(&out), ["evil"], "its own copy, changed");
    let out = run_cmd(&c, &["--file", file, "--", "cat", "data.txt", ":::", "x"]);
    assert_eq!(lines(&out), ["good"], "a later unit reads what was sent");

    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    for name in ["a.txt", "b.txt"] {
        std::fs::write(inputs.join(name), name.repeat(100)).unwrap();
    }
    let glob = format!("{}/*.txt", inputs.display());
    let gzip = "gzip -9 {} && gzip -dc {}.gz | wc -c";
    let out = run_cmd(&c, &["-k", "--input-files", &glob, "--", "sh", "-c", gzip]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(lines(&out), ["500", "500"], "{stderr}");
}

/// The documented limit of a million inputs can be sent: inputs too large for one request
/// (here 6.9 MB) go to the coordinator in pieces, as a file, and become the job's units.
#[test]
fn a_million_inputs_reach_the_coordinator_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [_w] = c.workers([("w", 1)]);
    let inputs = dir.path().join("inputs");
    let text: String = (1..=1_000_000).map(|i| format!("{i}\n")).collect();
    std::fs::write(&inputs, text).unwrap();
    // The first unit fails and halts the job: what counts is that it had all its units.
    let args = ["--inputs", inputs.to_str().unwrap(), "--halt", "now,fail=1", "--", "false"];
    let out = run_cmd(&c, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("hung up") && !stderr.contains("too large"), "{stderr}");
    let jobs = c.json(&["jobs"]);
    let result = &jobs[0]["result"];
    assert_eq!(result["units"], 1_000_000, "{stderr} {result}");
    assert_eq!(result["skipped"], 999_999, "{result}");
    assert_eq!(jobs[0]["spec"]["cmd"]["inputs"][999_999], "1000000");
}
