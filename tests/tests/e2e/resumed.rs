//! Command jobs that outlive the coordinator: killed with SIGKILL at three moments, re-executed
//! by `update --coordinator`, lost together with a worker. The attached `marmotctl run cmd`
//! with `-k`, `--results` and `--joblog` follows the job through and ends as an undisturbed
//! run does: each unit's output once and in order, every results dir, a joblog line per
//! unit, the same exit status.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// Units of the job; unit [`FAILING`] exits 1, so the run exits 1.
const UNITS: u64 = 20;
const FAILING: u64 = 7;

/// Each unit counts its runs in `$2/$1` (the workers are on this machine), takes a little
/// while, prints to stdout and stderr, and leaves a result.
const SCRIPT: &str = "echo x >> $2/$1; sleep 0.3; echo unit $1; echo err $1 >&2; \
                      echo $1 > $MARMOT_OUT/got; [ $1 != 7 ]";

/// `marmotctl run cmd -k --results --joblog` of the job, left running; its output in files.
struct Run {
    child: Child,
    /// A file per unit, a line per run.
    runs: PathBuf,
    out: PathBuf,
    err: PathBuf,
    results: PathBuf,
    joblog: PathBuf,
}

impl Run {
    fn start(c: &Coordinator, dir: &Path) -> Run {
        let (out, err) = (dir.join("run.out"), dir.join("run.err"));
        let (results, joblog) = (dir.join("results"), dir.join("joblog"));
        let runs = dir.join("runs");
        std::fs::create_dir_all(&runs).unwrap();
        let mut ctl = ctl_command();
        ctl.arg("--socket").arg(&c.socket).args(["run", "cmd", "-k", "--results"]);
        ctl.arg(&results).arg("--joblog").arg(&joblog);
        ctl.args(["--", "sh", "-c", SCRIPT, "sh", "{}"]).arg(&runs).arg(":::");
        ctl.args((1..=UNITS).map(|n| n.to_string()));
        let child = ctl
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Run { child, runs, out, err, results, joblog }
    }

    /// Waits for its end, and checks it ended as an undisturbed run does, but for a joblog
    /// line for each try lost with its worker (Exitval -1, Signal 0), each before its unit's
    /// own line; returns the units that ran more than once.
    ///
    /// A lost line alone is not a unit run twice: a chunk given (and journaled) just before
    /// its coordinator is killed may never have reached its worker, which then does not say
    /// it holds it, and it runs once, elsewhere, after a lost line.
    fn check(mut self) -> Vec<u64> {
        let limit = Duration::from_secs(120);
        let status = wait_for("the attached run to end", limit, || self.child.try_wait().unwrap());
        let err = std::fs::read_to_string(&self.err).unwrap();
        assert_eq!(status.code(), Some(1), "one unit failed, so exit 1: {err}");
        let out = std::fs::read_to_string(&self.out).unwrap();
        let want: Vec<String> = (1..=UNITS).map(|n| format!("unit {n}")).collect();
        assert_eq!(out.lines().collect::<Vec<_>>(), want, "each unit once, in input order");
        for n in 1..=UNITS {
            let said = err.lines().filter(|l| *l == format!("err {n}")).count();
            assert_eq!(said, 1, "unit {n}'s stderr once: {err}");
            let got = self.results.join(n.to_string()).join("got");
            let got = std::fs::read_to_string(&got).unwrap_or_else(|e| panic!("{got:?}: {e}"));
            assert_eq!(got.trim(), n.to_string());
        }
        let log = std::fs::read_to_string(&self.joblog).unwrap();
        let rows: Vec<Vec<&str>> = log.lines().skip(1).map(|l| l.split('\t').collect()).collect();
        let is_lost = |row: &Vec<&str>| (row[6], row[7]) == ("-1", "0");
        let mut seqs: Vec<u64> =
            rows.iter().filter(|r| !is_lost(r)).map(|r| r[0].parse().unwrap()).collect();
        let failed: Vec<&str> = log.lines().filter(|l| l.split('\t').nth(6) == Some("1")).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=UNITS).collect::<Vec<_>>(), "a joblog line per unit:\n{log}");
        assert_eq!(failed.len(), 1, "unit {FAILING} failed, once:\n{log}");
        assert!(failed[0].starts_with(&format!("{FAILING}\t")), "{log}");
        for (at, row) in rows.iter().enumerate().filter(|(_, r)| is_lost(r)) {
            let later = rows[at + 1..].iter().any(|r| r[0] == row[0] && !is_lost(r));
            assert!(later, "a lost try of unit {} before its own line:\n{log}", row[0]);
        }
        let runs =
            |n: u64| std::fs::read_to_string(self.runs.join(n.to_string())).unwrap_or_default();
        (1..=UNITS).filter(|&n| runs(n).lines().count() > 1).collect()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `units` units of the only job have ended on the coordinator; its id.
fn wait_for_units(c: &Coordinator, units: u64) -> u64 {
    wait_for(&format!("{units} units ended"), Duration::from_secs(60), || {
        let jobs = c.json(&["jobs"]);
        let job = jobs.as_array()?.first()?.clone();
        (job["units_done"].as_u64()? >= units).then(|| job["id"].as_u64())?
    })
}

/// The job, with the coordinator killed with SIGKILL once `units` units have ended, then
/// started again on its state dir and port.
fn killed_after(units: u64) {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut c = Coordinator::start_on(dir.path(), &listen);
    let _workers = c.workers([("a", 1), ("b", 1)]);
    let run = Run::start(&c, dir.path());
    let id = wait_for_units(&c, units);
    c.proc.kill();
    let c = Coordinator::start_on(dir.path(), &listen);
    assert_eq!(run.check(), [0u64; 0], "its workers ran on: no unit ran twice");
    // (Killed at the last unit, the job may have ended just before: then its output waited.)
    assert_eq!(job_view(&c, id)["state"], "done");
}

#[test]
fn a_command_job_goes_on_after_its_coordinator_is_killed_early() {
    killed_after(1);
}

#[test]
fn a_command_job_goes_on_after_its_coordinator_is_killed_half_way() {
    killed_after(UNITS / 2);
}

#[test]
fn a_command_job_goes_on_after_its_coordinator_is_killed_at_its_last_unit() {
    killed_after(UNITS - 1);
}

/// The journal held by another program's write (as `sqlite3` holding a transaction does), so
/// that what the coordinator does is not kept for a while: it must neither send a command's
/// chunk nor let a worker drop one it counted before its journal has them. Killed then, with
/// units counted in memory only, the job goes on, and no unit runs twice.
#[test]
fn a_coordinator_killed_before_its_journal_keeps_what_it_did_runs_no_unit_twice() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut c = Coordinator::start_on(dir.path(), &listen);
    let _workers = c.workers([("a", 1), ("b", 1)]);
    let run = Run::start(&c, dir.path());
    wait_for_units(&c, 2);
    let journal = rusqlite::Connection::open(dir.path().join("state/journal.sqlite")).unwrap();
    journal.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The chunks running now end, and are counted (in memory): the journal cannot say so.
    wait_for_units(&c, 4);
    c.proc.kill();
    drop(journal);
    let c = Coordinator::start_on(dir.path(), &listen);
    assert_eq!(run.check(), [0u64; 0], "no unit ran twice");
    assert_eq!(c.json(&["jobs"])[0]["state"], "done");
}

#[test]
fn a_command_job_goes_on_through_the_coordinator_updating_itself() {
    let dir = tempfile::tempdir().unwrap();
    let exe = marmotd_copy(&dir.path().join("coordinator"));
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let c = Coordinator::start_exe(&exe, dir.path(), &listen);
    // Workers from copies too: the update replaces their binaries.
    let _workers = copied_workers(&c, dir.path(), ["a", "b"]);
    let new = dir.path().join("marmotd-new");
    let mut bytes = std::fs::read(bin("marmotd")).unwrap();
    bytes.extend_from_slice(b"a build that outlives a command");
    std::fs::write(&new, bytes).unwrap();
    std::fs::set_permissions(&new, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = Run::start(&c, dir.path());
    wait_for_units(&c, 5);
    let report = c.json(&["update", "--coordinator", new.to_str().unwrap()]);
    assert_eq!(report["coordinator"]["status"], "updated", "{report}");
    assert_eq!(run.check(), [0u64; 0], "its workers ran on: no unit ran twice");
}

#[test]
fn a_command_job_goes_on_when_its_coordinator_and_a_worker_die_together() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut c = Coordinator::start_on(dir.path(), &listen);
    let [_keeper, mut lost] = c.workers([("keeper", 1), ("lost", 1)]);
    let run = Run::start(&c, dir.path());
    wait_for_units(&c, 6);
    lost.kill();
    c.proc.kill();
    let c = Coordinator::start_on(dir.path(), &listen);
    assert!(run.check().len() <= 1, "at most the lost worker's unit ran twice");
    let jobs = c.json(&["jobs"]);
    assert_eq!(jobs[0]["state"], "done", "{jobs}");
}

/// A unit fails while `{dir}/fail-{n}` exists, and prints which it is.
fn flaky_script(dir: &Path) -> String {
    format!("echo unit $1; [ ! -e {}/fail-$1 ]", dir.display())
}

/// The joblog's units (`Seq`), in the order they were logged.
fn logged(joblog: &Path) -> Vec<u64> {
    let log = std::fs::read_to_string(joblog).unwrap();
    let mut lines = log.lines();
    assert_eq!(lines.next().map(|h| h.starts_with("Seq\tHost")), Some(true), "{log}");
    lines.map(|l| l.split('\t').next().unwrap().parse().unwrap()).collect()
}

/// The units a run printed (`unit N` lines), sorted.
fn printed(out: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(out);
    let mut units: Vec<u64> =
        text.lines().filter_map(|l| l.strip_prefix("unit ")?.parse().ok()).collect();
    units.sort_unstable();
    units
}

/// `marmotctl run cmd ARGS -- sh -c SCRIPT sh {} ::: 1..=units`, to its end.
fn run_units(c: &Coordinator, args: &[&str], script: &str, units: u64) -> std::process::Output {
    let mut all = vec!["run", "cmd"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--", "sh", "-c", script, "sh", "{}", ":::"]);
    let numbers: Vec<String> = (1..=units).map(|n| n.to_string()).collect();
    all.extend(numbers.iter().map(String::as_str));
    c.ctl(&all)
}

#[test]
fn resume_failed_runs_again_what_gnu_parallel_would_from_either_ones_joblog() {
    if without_gnu_parallel() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("a", 2)]);
    let script = flaky_script(dir.path());
    let (ours, theirs) = (dir.path().join("ours.log"), dir.path().join("theirs.log"));
    for failing in [3, 7, 8] {
        std::fs::write(dir.path().join(format!("fail-{failing}")), b"").unwrap();
    }
    let first = run_units(&c, &["--joblog", ours.to_str().unwrap()], &script, 10);
    assert_eq!(first.status.code(), Some(3), "three units failed");
    let gnu = |args: &[&str]| {
        let mut parallel = std::process::Command::new("parallel");
        parallel
            .args(["--will-cite", "-q", "-j2", "--joblog", theirs.to_str().unwrap()])
            .args(args);
        parallel.args(["sh", "-c", &script, "sh", "{}", ":::"]);
        parallel.args((1..=10).map(|n| n.to_string()));
        parallel.output().unwrap()
    };
    assert_eq!(gnu(&[]).status.code(), Some(3), "GNU parallel saw the same failures");
    // Unit 7 now succeeds; 3 and 8 still fail.
    std::fs::remove_file(dir.path().join("fail-7")).unwrap();
    let again = gnu(&["--resume-failed"]);
    let resumed =
        run_units(&c, &["--resume-failed", "--joblog", ours.to_str().unwrap()], &script, 10);
    assert_eq!(printed(&resumed.stdout), printed(&again.stdout), "the same units ran again");
    assert_eq!(printed(&resumed.stdout), [3, 7, 8]);
    assert_eq!(resumed.status.code(), again.status.code(), "the same exit status");
    let logged_ours = logged(&ours);
    assert_eq!(logged_ours.len(), 13, "the first run's ten lines, then three");
    assert_eq!(logged_ours.len(), logged(&theirs).len());
    // GNU parallel's own joblog resumed by marmotctl: only 3 and 8 fail in it now.
    let from_theirs =
        run_units(&c, &["--resume-failed", "--joblog", theirs.to_str().unwrap()], &script, 10);
    assert_eq!(printed(&from_theirs.stdout), [3, 8], "{from_theirs:?}");
    // And --resume runs nothing the log has, failed or not.
    let nothing = run_units(&c, &["--resume", "--joblog", ours.to_str().unwrap()], &script, 10);
    assert!(nothing.status.success(), "{nothing:?}");
    assert_eq!(printed(&nothing.stdout), Vec::<u64>::new());
    let e = run_units(&c, &["--resume", "--joblog", ours.to_str().unwrap()], &script, 5);
    let said = String::from_utf8_lossy(&e.stderr);
    assert!(!e.status.success() && said.contains("another job's joblog"), "{said}");
}

#[test]
fn resume_after_marmotctl_itself_is_killed_skips_the_units_it_logged() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("a", 1), ("b", 1)]);
    let joblog = dir.path().join("joblog");
    let script = "sleep 0.2; echo unit $1";
    let mut ctl = ctl_command();
    ctl.arg("--socket").arg(&c.socket).args(["run", "cmd", "--joblog"]).arg(&joblog);
    ctl.args(["--", "sh", "-c", script, "sh", "{}", ":::"]).args((1..=30).map(|n| n.to_string()));
    let mut first = ctl.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for("five units logged", Duration::from_secs(60), || {
        (std::fs::read_to_string(&joblog).ok()?.lines().count() > 5).then_some(())
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let before = logged(&joblog);
    assert!(before.len() >= 5 && before.len() < 30, "{before:?}");
    let resumed = run_units(&c, &["--resume", "--joblog", joblog.to_str().unwrap()], script, 30);
    assert!(resumed.status.success(), "{resumed:?}");
    let ran = printed(&resumed.stdout);
    let want: Vec<u64> = (1..=30).filter(|n| !before.contains(n)).collect();
    assert_eq!(ran, want, "only the units the killed run had not logged");
    let mut all = logged(&joblog);
    all.sort_unstable();
    assert_eq!(all, (1..=30).collect::<Vec<_>>(), "one joblog line per unit, one header");
}

/// The SHA-256 of `bytes` in hex, as the store names a file.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn the_store_keeps_a_running_jobs_file_and_says_when_it_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start_with(
        &bin("marmotd"),
        dir.path(),
        "127.0.0.1:0",
        &["--file-store", "100KB"],
    );
    // A slot for B beside A's two units, so B never waits for A.
    let _worker = c.workers([("a", 3)]);
    let (a, b) = (vec![b'a'; 60_000], vec![b'b'; 60_000]);
    let (a_path, b_path) = (dir.path().join("a.bin"), dir.path().join("b.bin"));
    std::fs::write(&a_path, &a).unwrap();
    std::fs::write(&b_path, &b).unwrap();
    let gate = dir.path().join("gate");
    // Job A's units wait until the test opens the gate.
    let wait = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; cmp -s a.bin /dev/null || echo ok {{}}",
        gate.display()
    );
    let mut ctl = ctl_command();
    ctl.arg("--socket").arg(&c.socket).args(["run", "cmd", "--file"]).arg(&a_path);
    ctl.args(["--", "sh", "-c", &wait, ":::", "1", "2"]);
    let first = ctl.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stored = |bytes: &[u8]| dir.path().join("state/files").join(sha256_hex(bytes)).exists();
    wait_for("job A running", Duration::from_secs(30), || {
        let jobs = c.json(&["jobs"]);
        (jobs.as_array()?.first()?["state"] == "running").then_some(())
    });
    // B's file cannot fit beside A's, which A needs: refused, in one line; A's stays.
    let file = b_path.to_str().unwrap();
    let refused = c.ctl(&["run", "cmd", "--file", file, "--", "true", ":::", "x"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("--file-store"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    assert!(stored(&a), "a running job's file stays in the store");
    std::fs::write(&gate, b"").unwrap();
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Once A ended its file may go: B's now fits.
    let ran = c.ctl(&["run", "cmd", "--file", file, "--", "true", ":::", "x"]);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    assert!(stored(&b) && !stored(&a));
}

/// Bytes under `dir`, files in its subdirectories included.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&e.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[test]
fn output_its_client_does_not_take_holds_a_job_at_the_spools_bound_and_none_is_lost() {
    const UNIT_BYTES: u64 = 50_000;
    let dir = tempfile::tempdir().unwrap();
    let bound = "200KB";
    let extra = ["--spool-per-job", bound];
    let c = Coordinator::start_with(&bin("marmotd"), dir.path(), "127.0.0.1:0", &extra);
    let _worker = c.workers([("a", 2)]);
    let print = format!("head -c {UNIT_BYTES} /dev/zero | tr '\\0' x; echo \" unit $1\"");
    let mut ctl = ctl_command();
    ctl.arg("--socket").arg(&c.socket).args(["run", "cmd", "--", "sh", "-c", &print, "sh", "{}"]);
    ctl.arg(":::").args((1..=40).map(|n| n.to_string()));
    // Nobody reads its stdout for now: once the pipe is full, it takes no more output.
    let mut client = ctl.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for("the job held at the spool's bound", Duration::from_secs(60), || {
        c.proc.log_text().contains("its units wait until the client takes some").then_some(())
    });
    let spooled = dir_bytes(&dir.path().join("state/spool"));
    // The bound, and what the two slots' running units add before they stop.
    assert!(spooled <= 200_000 + 3 * (UNIT_BYTES + 200), "{spooled} bytes spooled");
    let jobs = c.json(&["jobs"]);
    assert!(jobs[0]["units_done"].as_u64().unwrap() < 40, "{jobs}");
    let mut out = vec![];
    std::io::Read::read_to_end(client.stdout.as_mut().unwrap(), &mut out).unwrap();
    let status = client.wait().unwrap();
    assert!(status.success(), "{status}");
    let text = String::from_utf8(out).unwrap();
    let mut units: Vec<u64> = text
        .lines()
        .map(|line| {
            let (xs, unit) = line.split_once(" unit ").expect("a unit's line");
            assert_eq!((xs.len() as u64, xs.trim_start_matches('x')), (UNIT_BYTES, ""), "whole");
            unit.parse().unwrap()
        })
        .collect();
    units.sort_unstable();
    assert_eq!(units, (1..=40).collect::<Vec<_>>(), "every unit's output, whole, once");
    assert!(c.proc.log_text().contains("its units go on"), "{}", c.proc.log_text());
}

/// Units that take a while and count their runs in `{dir}/runs-N`.
fn counted_script(dir: &Path) -> String {
    format!("echo run >> {}/runs-$1; sleep 2; echo unit $1", dir.display())
}

/// How many times unit `n` started.
fn runs(dir: &Path, n: u64) -> usize {
    std::fs::read_to_string(dir.join(format!("runs-{n}"))).map_or(0, |s| s.lines().count())
}

/// The worker's lease: units running when the coordinator is killed run on, and their output
/// is delivered when it is back. No unit runs twice, each prints once, and the run exits as an
/// undisturbed one does. (Before the lease, a coordinator's restart stopped every running unit
/// and ran it again.)
#[test]
fn units_running_when_their_coordinator_is_killed_run_once_under_the_workers_lease() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut c = Coordinator::start_on(dir.path(), &listen);
    let _workers = c.workers([("a", 1), ("b", 1)]);
    const N: u64 = 6;
    let script = counted_script(dir.path());
    let mut ctl = ctl_command();
    ctl.arg("--socket").arg(&c.socket).args(["run", "cmd", "-k", "--", "sh", "-c", &script]);
    ctl.args(["sh", "{}", ":::"]).args((1..=N).map(|n| n.to_string()));
    let run = ctl.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Both workers run a unit: the coordinator dies under them.
    wait_for("two units running", Duration::from_secs(60), || {
        ((1..=N).filter(|&n| runs(dir.path(), n) > 0).count() >= 2).then_some(())
    });
    c.proc.kill();
    let _c = Coordinator::start_on(dir.path(), &listen);
    let out = run.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let printed: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
    let want: Vec<String> = (1..=N).map(|n| format!("unit {n}")).collect();
    assert_eq!(printed, want, "each unit's output once, in order: {err}");
    let counts: Vec<usize> = (1..=N).map(|n| runs(dir.path(), n)).collect();
    assert_eq!(counts, vec![1; N as usize], "no unit ran twice: {err}");
}
