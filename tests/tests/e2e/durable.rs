//! Jobs that outlive the coordinator. A coordinator killed with SIGKILL, or re-executed by
//! `update --coordinator`, comes back on the same state dir and resumes from its journal; the
//! attached `marmotctl run` follows it through and prints what an uninterrupted run prints. A
//! worker cut off from the coordinator runs its chunk through the outage and delivers the
//! result, counted at most once. Results stay readable after the last hundred jobs, and a
//! journal the coordinator cannot read stops it with one line, the file untouched.

use crate::util::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SAMPLES: u64 = 20_000_000_000;
const SEED: u64 = 42;

/// How many points of pi 2e10 --seed 42 fall inside, computed here with the kernel itself
/// (two threads, two halves), once for every test that needs it.
fn reference_inside() -> u64 {
    static INSIDE: OnceLock<u64> = OnceLock::new();
    *INSIDE.get_or_init(|| {
        use marmotd::kernels::{pi, simd, Cancel};
        let half = SAMPLES / 2;
        let count = |start, end| {
            pi::count_inside(simd::Level::detect(), SEED, start, end, &Cancel::default())
                .expect("the kernel runs")
        };
        let first = std::thread::spawn(move || count(0, half));
        let second = count(half, SAMPLES);
        first.join().expect("the thread ran") + second
    })
}

/// `marmotctl --json run ARGS`, left running; its stdout goes to a file.
struct Attached {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Attached {
    fn start(c: &Coordinator, args: &[&str]) -> Attached {
        let stamp = unique();
        let (out, err) =
            (c.dir.join(format!("run-{stamp}.out")), c.dir.join(format!("run-{stamp}.err")));
        let child = ctl_command()
            .arg("--socket")
            .arg(&c.socket)
            .args(["--json", "run"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Attached { child, out, err }
    }

    /// Waits for it to exit successfully and returns what it printed.
    fn result(mut self, limit: Duration) -> Value {
        let status = wait_for("the attached run to end", limit, || self.child.try_wait().unwrap());
        let err = std::fs::read_to_string(&self.err).unwrap();
        assert!(status.success(), "marmotctl run failed: {err}");
        serde_json::from_slice(&std::fs::read(&self.out).unwrap()).unwrap()
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The one running job's id, once it is listed.
fn running_job(c: &Coordinator) -> u64 {
    wait_for("a running job", Duration::from_secs(20), || {
        let jobs = c.json(&["jobs"]);
        let running = jobs.as_array()?.iter().find(|j| j["state"] == "running")?.clone();
        running["id"].as_u64()
    })
}

/// Waits until job `id` has counted at least `chunks` chunks.
fn wait_for_chunks(c: &Coordinator, id: u64, chunks: u64) {
    wait_for(&format!("{chunks} chunks of job {id}"), Duration::from_secs(60), || {
        (job_view(c, id)["chunks_done"].as_u64()? >= chunks).then_some(())
    });
}

/// A worker with 1 slot that logs every chunk it runs.
fn logging_worker(c: &Coordinator, name: &str, addr: &str) -> Proc {
    let token = c.token();
    let mut cmd = worker_command(&bin("marmotd"), &c.dir, addr, name, 1, Some(&token));
    cmd.env("RUST_LOG", "marmotd=debug,quinn=warn");
    spawn_worker(cmd, &c.dir, name)
}

/// How many times each chunk `(start, end)` of job `job` ran, over the workers' logs.
fn runs(workers: &[&Proc], job: u64) -> BTreeMap<(u64, u64), u32> {
    let marker = format!(" of job {job}: units ");
    let mut runs = BTreeMap::new();
    for worker in workers {
        for line in worker.log_text().lines() {
            let Some((_, units)) = line.split_once(&marker) else { continue };
            let (start, end) = units.trim().split_once("..").unwrap();
            *runs.entry((start.parse().unwrap(), end.parse().unwrap())).or_insert(0) += 1;
        }
    }
    runs
}

/// The chunks the journal in `dir` had counted for job `job`, as a user reads them with
/// `sqlite3 STATE/journal.sqlite 'SELECT start, end FROM chunks WHERE job = N'`.
fn counted(dir: &Path, job: u64) -> BTreeSet<(u64, u64)> {
    let path = dir.join("state/journal.sqlite");
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut stmt = conn.prepare("SELECT start, end FROM chunks WHERE job = ?1").unwrap();
    let rows = stmt
        .query_map([job as i64], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)));
    rows.unwrap().map(Result::unwrap).collect()
}

/// Checks a pi 2e10 --seed 42 result: the uninterrupted run's count, every sample counted once.
fn check_result(result: &Value) {
    assert_eq!(result["samples"], SAMPLES);
    assert_eq!(result["inside"], reference_inside(), "the same estimate as one pass: {result}");
    let units: u64 =
        result["workers"].as_array().unwrap().iter().map(|w| w["units"].as_u64().unwrap()).sum();
    assert_eq!(units, SAMPLES, "every sample counted once: {result}");
}

#[test]
fn a_coordinator_killed_mid_job_resumes_it_and_runs_no_counted_chunk_again() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut c = Coordinator::start_on(dir.path(), &listen);
    let workers = [logging_worker(&c, "a", &c.addr), logging_worker(&c, "b", &c.addr)];
    c.wait_for_workers(&["a", "b"]);
    // No chunk verified: a check would be a second run of its chunk.
    let run = Attached::start(&c, &["pi", "2e10", "--seed", "42", "--verify", "0"]);
    let id = running_job(&c);
    // Killed once the journal holds 8 counted chunks (read as sqlite3 would, while it runs).
    wait_for("8 chunks in the journal", Duration::from_secs(60), || {
        (counted(dir.path(), id).len() >= 8).then_some(())
    });
    c.proc.kill();
    let before = counted(dir.path(), id);
    assert!(before.len() >= 8, "{before:?}");
    let c = Coordinator::start_on(dir.path(), &listen);
    let result = run.result(Duration::from_secs(180));
    check_result(&result);
    // No chunk counted before the kill ran again; each ran once, but those running at the
    // kill (delivered after, or run again).
    let runs = runs(&workers.each_ref(), id);
    for range in &before {
        assert_eq!(runs.get(range), Some(&1), "chunk {range:?} ran again: {runs:?}");
    }
    let twice = runs.values().filter(|&&n| n > 1).count();
    assert!(twice <= 2, "only the chunks running at the kill may run twice: {runs:?}");
    assert_eq!(job_view(&c, id)["state"], "done");
    // `result` prints it again.
    let again = c.json(&["result", &id.to_string()]);
    assert_eq!(again["inside"], result["inside"]);
}

#[test]
fn a_job_survives_the_coordinator_updating_itself() {
    let dir = tempfile::tempdir().unwrap();
    let exe = marmotd_copy(&dir.path().join("coordinator"));
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let c = Coordinator::start_exe(&exe, dir.path(), &listen);
    let _workers = copied_workers(&c, dir.path(), ["a", "b"]);
    let new = dir.path().join("marmotd-new");
    let mut bytes = std::fs::read(bin("marmotd")).unwrap();
    bytes.extend_from_slice(b"a build that outlives a job");
    std::fs::write(&new, bytes).unwrap();
    std::fs::set_permissions(&new, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let run = Attached::start(&c, &["pi", "2e10", "--seed", "42"]);
    let id = running_job(&c);
    wait_for_chunks(&c, id, 4);
    let pid = c.proc.pid();
    let report = c.json(&["update", "--coordinator", new.to_str().unwrap()]);
    assert_eq!(report["coordinator"]["status"], "updated", "{report}");
    let result = run.result(Duration::from_secs(180));
    check_result(&result);
    assert_eq!(c.proc.pid(), pid, "the same process, re-executed");
    let view = job_view(&c, id);
    assert_eq!((view["state"].as_str(), view["id"].as_u64()), (Some("done"), Some(id)));
    assert!(c.proc.log_text().contains(&format!("job {id} resumed")), "{}", c.proc.log_text());
}

#[test]
fn a_worker_partitioned_mid_chunk_delivers_its_result_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    // Debug logs, for a delivery that is dropped as well as one counted.
    let debug = [("RUST_LOG", "marmotd=debug,quinn=warn")];
    let c = Coordinator::start_with_env(&bin("marmotd"), dir.path(), "127.0.0.1:0", &[], &debug);
    let relay = wan_to(&c, Duration::ZERO, 0.0);
    let cut_off = logging_worker(&c, "far", &relay.addr.to_string());
    let near = logging_worker(&c, "near", &c.addr);
    c.wait_for_workers(&["far", "near"]);
    let run = Attached::start(&c, &["pi", "2e10", "--seed", "42"]);
    let id = running_job(&c);
    wait_for("far to run a chunk", Duration::from_secs(30), || {
        (!runs(&[&cut_off], id).is_empty()).then_some(())
    });

    relay.cut();
    let cut_at = Instant::now();
    wait_for("far to be dropped", Duration::from_secs(30), || {
        (c.worker_names() == ["near"]).then_some(())
    });
    wait_for("far to hold its result", Duration::from_secs(30), || {
        cut_off.log_text().contains("holding the result of chunk").then_some(())
    });
    // The partition lasts 10 s.
    wait_for("10 s of partition", Duration::from_secs(20), || {
        (cut_at.elapsed() >= Duration::from_secs(10)).then_some(())
    });
    assert!(relay.dropped() > 0);
    relay.mend();
    wait_for("far's delivery", Duration::from_secs(60), || {
        c.proc.log_text().contains("worker 'far' delivered chunk").then_some(())
    });
    let result = run.result(Duration::from_secs(180));
    check_result(&result);
    let _ = near;
}

#[test]
fn two_thousand_detached_jobs_from_32_clients_can_all_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut c = Coordinator::start_on(dir.path(), &listen);
    let _workers = c.workers([("a", 2), ("b", 2)]);
    let socket = c.socket.clone();
    let clients: Vec<_> = (0..32)
        .map(|client| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let jobs = 2000 / 32 + usize::from(client < 2000 % 32);
                (0..jobs)
                    .map(|_| {
                        let body = br#"{"pi":{"samples":1,"seed":7}}"#;
                        let (status, reply) = api(&socket, "POST", "/v1/jobs", body);
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
                        let view: Value = serde_json::from_slice(&reply).unwrap();
                        view["id"].as_u64().unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let ids: BTreeSet<u64> = clients.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(ids.len(), 2000, "every submission got its own id");
    for &id in &ids {
        let (status, reply) = api(&socket, "GET", &format!("/v1/jobs/{id}?wait_ms=30000"), b"");
        assert_eq!(status, 200, "job {id}: {}", String::from_utf8_lossy(&reply));
        let view: Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(view["state"], "done", "{view}");
        assert_eq!(view["result"]["samples"], 1, "{view}");
    }
    let all = c.json(&["jobs", "--all"]);
    assert_eq!(all.as_array().unwrap().len(), 2000);
    assert_eq!(ids.last(), Some(&2000), "ids are dense from 1");
    let recent_ids = |c: &Coordinator| -> Vec<u64> {
        let recent = c.json(&["jobs"]);
        recent.as_array().unwrap().iter().map(|v| v["id"].as_u64().unwrap()).collect()
    };
    // The recent ones are the last 100 to end: end 100 more one after the other, so which
    // ended last is not a matter of milliseconds.
    let ids: BTreeSet<u64> = ids
        .into_iter()
        .chain((0..100).map(|_| {
            let (_, reply) = api(&socket, "POST", "/v1/jobs", br#"{"pi":{"samples":1,"seed":7}}"#);
            let id = serde_json::from_slice::<Value>(&reply).unwrap()["id"].as_u64().unwrap();
            let (status, _) = api(&socket, "GET", &format!("/v1/jobs/{id}?wait_ms=30000"), b"");
            assert_eq!(status, 200);
            id
        }))
        .collect();
    let recent = recent_ids(&c);
    assert_eq!(recent, (2001..=2100).collect::<Vec<u64>>(), "the recent ones by default");
    let first = *ids.first().unwrap();
    let out = c.ctl(&["result", &first.to_string()]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("pi ≈ "), "{out:?}");

    // Kept across a restart, the recent ones still listed as recent; after a clean stop the
    // ids go on where they were.
    c.proc.signal(nix::sys::signal::Signal::SIGTERM);
    c.proc.wait_exit(Duration::from_secs(20));
    let c = Coordinator::start_on(dir.path(), &listen);
    assert_eq!(recent_ids(&c), recent, "`jobs` after the restart");
    assert_eq!(c.json(&["result", &first.to_string()])["samples"], 1);
    c.wait_for_workers(&["a", "b"]);
    let next = detach(&c, &["pi", "1"]);
    assert_eq!(next, *ids.last().unwrap() + 1, "the next id");
    let gone = c.ctl(&["result", "999999"]);
    one_line_error(&gone, "no job 999999");
}

#[test]
fn a_damaged_journal_stops_the_coordinator_with_one_line_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let journal = state.join("journal.sqlite");
    let garbage = b"SQLite format 3\0 but then a cat walked over the keyboard".repeat(64);
    std::fs::write(&journal, &garbage).unwrap();
    let start = |extra: &[&str]| {
        let mut cmd = Command::new(bin("marmotd"));
        cmd.args(["coordinator", "--listen", "127.0.0.1:0"]);
        cmd.arg("--state-dir").arg(&state).arg("--socket").arg(dir.path().join("sock"));
        cmd.args(extra);
        cmd
    };
    let out = output_within(start(&[]), Duration::from_secs(30));
    one_line_error(&out, "--journal-reset");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("journal.sqlite is unreadable"),
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(78), "not for systemd to restart: {out:?}");
    assert_eq!(std::fs::read(&journal).unwrap(), garbage, "the file untouched");

    // Reset: moved aside, kept, and the coordinator starts on an empty journal.
    let mut c = Proc::spawn(start(&["--journal-reset"]), dir.path().join("reset.log"));
    wait_for("the control socket", Duration::from_secs(20), || {
        std::os::unix::net::UnixStream::connect(dir.path().join("sock")).ok()
    });
    let aside: Vec<PathBuf> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("journal.sqlite.reset-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage);
    assert!(c.log_text().contains("moved the journal aside"), "{}", c.log_text());
    c.kill();
}

/// A job submitted while no worker is connected is queued, says so in one line, and runs
/// when one joins; `--no-wait-for-workers` refuses it as before.
#[test]
fn a_job_submitted_while_no_worker_is_connected_waits_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let refused = c.ctl(&["run", "--no-wait-for-workers", "pi", "1e6"]);
    one_line_error(&refused, "no workers are connected");
    let attached = Attached::start(&c, &["pi", "1e6"]);
    let said = wait_for("the line that says the job waits", Duration::from_secs(30), || {
        let err = std::fs::read_to_string(&attached.err).ok()?;
        err.contains("waits for workers").then_some(err)
    });
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("job 1 waits for workers") && said.contains("none has joined"), "{said}");
    let [mut late] = c.workers([("late", 1)]);
    let result = attached.result(Duration::from_secs(60));
    assert_eq!(result["samples"], 1_000_000, "{result}");
    // Gone again: the line counts it among the known workers away.
    late.kill();
    wait_for("the worker gone", Duration::from_secs(30), || {
        c.json(&["workers"]).as_array().unwrap().is_empty().then_some(())
    });
    let out = c.ctl(&["run", "pi", "1e3", "--detach"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("job 2 waits for workers")
            && said.contains("(1 worker this cluster knows is away;"),
        "{said}"
    );
}

/// Ctrl-C of `marmotd local` ends its cluster for good: a `run` attached to it is told so and
/// ends with one line, rather than waiting ten minutes for a coordinator that will not return.
#[test]
fn a_client_of_a_local_cluster_that_stops_ends_at_once_with_one_line() {
    use std::io::BufRead;
    /// Killed if the test fails before it ends by itself.
    struct Started(Child);
    impl Drop for Started {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut local = Started(
        Command::new(bin("marmotd"))
            .args(["local", "--workers", "1", "--slots", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufReader::new(local.0.stdout.take().unwrap()).lines();
    let socket = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("control socket: ").map(PathBuf::from))
        .expect("the local cluster's socket");
    // The rest of what it prints is read, so its stdout stays open.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).count());
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("run.err");
    let mut run = Started(
        ctl_command()
            .arg("--socket")
            .arg(&socket)
            .args(["run", "pi", "1e13"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap(),
    );
    let ctl = |args: &[&str]| ctl_command().arg("--socket").arg(&socket).args(args).output();
    wait_for("the job to run", Duration::from_secs(30), || {
        let status = ctl(&["--json", "status"]).ok()?;
        let status: Value = serde_json::from_slice(&status.stdout).ok()?;
        (status["slots_busy"].as_u64()? > 0).then_some(())
    });
    // While it runs, `top --once` shows the busy worker's rate, and the coordinator's events
    // (the process's own lines: its workers share it) are there.
    let top = ctl(&["top", "--once"]).unwrap();
    let top = String::from_utf8_lossy(&top.stdout);
    let row = top.lines().find(|l| l.contains("local-1") && l.contains("127.0.0.1")).unwrap();
    assert!(row.contains("/s"), "a busy worker's rate: {row}\n{top}");
    assert!(top.contains("worker 'local-1' connected from"), "the events: {top}");
    let pid = nix::unistd::Pid::from_raw(local.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status =
        wait_for("the attached run to end", Duration::from_secs(30), || run.0.try_wait().unwrap());
    let said = std::fs::read_to_string(&err).unwrap();
    assert!(!status.success(), "{said}");
    assert_eq!(said.trim_end().lines().count(), 1, "one line: {said}");
    assert!(said.contains("stopped for good"), "{said}");
    let ended =
        wait_for("marmotd local to end", Duration::from_secs(30), || local.0.try_wait().unwrap());
    assert!(ended.success(), "Ctrl-C ends `marmotd local` with status 0: {ended}");
    rest.join().unwrap();
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {}", String::from_utf8_lossy(&out.stderr));
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `path` (a file of zeros, written until ENOSPC).
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 16 * 1024];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
}

/// The state dir on a 2 MB tmpfs filled while a detached `pi 1e12` runs: new jobs are refused
/// with one line while the journal cannot be written; once space is back they are taken again,
/// and after a `kill -9` and a restart every accepted job is there, with no chunk row orphaned.
#[test]
#[ignore = "needs root to mount a tmpfs: `.ci/run` runs it as root with --ignored"]
fn a_full_disk_refuses_new_jobs_and_loses_none() {
    assert!(is_root(), "mounting a tmpfs needs root: run this test as root");
    let dir = tempfile::tempdir().unwrap();
    let _tmpfs = Tmpfs::mount(&dir.path().join("state"), "2m");
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut c = Coordinator::start_on(dir.path(), &listen);
    let _w = c.workers([("w1", 1)]);
    let long = detach(&c, &["pi", "1e12", "--verify", "0"]);
    wait_for_chunks(&c, long, 2);

    let filler = dir.path().join("state/filler");
    fill(&filler);
    let reason = wait_for("the journal failing", Duration::from_secs(60), || {
        c.json(&["status"])["journal_failing"].as_str().map(str::to_string)
    });
    assert!(reason.contains("full"), "{reason}");
    let refused = c.ctl(&["run", "pi", "1000000", "--detach"]);
    one_line_error(&refused, "cannot write its journal");
    let said = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(said.contains("free space"), "{said}");

    std::fs::remove_file(&filler).unwrap();
    wait_for("the journal written again", Duration::from_secs(30), || {
        c.json(&["status"]).get("journal_failing").is_none().then_some(())
    });
    let later = detach(&c, &["pi", "1000000", "--verify", "0"]);
    c.json(&["wait", &later.to_string()]);
    wait_for_chunks(&c, long, job_view(&c, long)["chunks_done"].as_u64().unwrap() + 1);
    let counted_before = counted(dir.path(), long).len();

    c.proc.kill();
    let c = Coordinator::start_on(dir.path(), &listen);
    let jobs = c.json(&["jobs", "--all"]);
    let ids: Vec<u64> = jobs.as_array().unwrap().iter().filter_map(|j| j["id"].as_u64()).collect();
    assert!(ids.contains(&long) && ids.contains(&later), "{jobs}");
    assert_eq!(job_view(&c, long)["state"], "running", "resumed");
    assert!(counted_before >= 2, "{counted_before} chunks of job {long} in the journal");
    let conn = rusqlite::Connection::open(dir.path().join("state/journal.sqlite")).unwrap();
    let orphans: i64 = conn
        .query_row("SELECT count(*) FROM chunks WHERE job NOT IN (SELECT id FROM jobs)", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(orphans, 0, "chunk rows of jobs the journal does not have");
    c.ctl(&["cancel", &long.to_string()]);
}

/// A command job whose output fills the coordinator's disk (its state dir on an 8 MB tmpfs)
/// fails at once, in one line, rather than running its units again and again; what its client
/// had printed and logged stays done, and `--resume` runs only the rest once space is back:
/// submitted the moment the space is freed, it is taken (the journal is tried again then,
/// not at its next retry a second later).
#[test]
#[ignore = "needs root to mount a tmpfs: `.ci/run` runs it as root with --ignored"]
fn a_command_job_that_fills_the_disk_fails_in_one_line_and_resumes_after_what_was_done() {
    assert!(is_root(), "mounting a tmpfs needs root: run this test as root");
    let dir = tempfile::tempdir().unwrap();
    let _tmpfs = Tmpfs::mount(&dir.path().join("state"), "8m");
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("w1", 1)]);
    let joblog = dir.path().join("joblog");
    let script = "head -c 100000 /dev/zero; echo unit $1";
    let args = |resume: bool| {
        let mut ctl = ctl_command();
        ctl.arg("--socket").arg(&c.socket).args(["run", "cmd", "--joblog"]).arg(&joblog);
        if resume {
            ctl.arg("--resume");
        }
        ctl.args(["--", "sh", "-c", script, "sh", "{}", ":::"]);
        ctl.args((1..=40).map(|n| n.to_string()));
        ctl
    };
    let run = args(false).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for("some units logged", Duration::from_secs(60), || {
        (std::fs::read_to_string(&joblog).ok()?.lines().count() > 3).then_some(())
    });
    let filler = dir.path().join("state/filler");
    fill(&filler);
    let id = wait_for("the job failed", Duration::from_secs(60), || {
        let jobs = c.json(&["jobs"]);
        let job = jobs.as_array()?.iter().find(|j| j["state"] == "failed")?.clone();
        job["id"].as_u64()
    });
    let error = job_view(&c, id)["error"].as_str().unwrap().to_string();
    assert!(error.contains("disk is full") && error.contains("--resume"), "{error}");
    std::fs::remove_file(&filler).unwrap();
    let out = run.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.lines().last().is_some_and(|l| l.contains("disk is full")), "{said}");
    let logged = |joblog: &Path| -> Vec<u64> {
        let log = std::fs::read_to_string(joblog).unwrap();
        log.lines().skip(1).map(|l| l.split('\t').next().unwrap().parse().unwrap()).collect()
    };
    let before = logged(&joblog);
    assert!(!before.is_empty() && before.len() < 40, "{before:?}");
    let resumed = args(true).output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let mut all = logged(&joblog);
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<_>>(), "each unit done once, before or after");
}
