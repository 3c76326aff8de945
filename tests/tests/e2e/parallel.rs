//! `marmotctl parallel` against GNU parallel itself: each option on a cluster, compared byte
//! for byte with `parallel -k`; files, pipes, retries and refusals. GNU parallel's own man
//! pages, run whole, are in [`man_pages`].

/// GNU parallel's tutorial and examples page, every local example, both tools.
mod man_pages;

use crate::util::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `parallel -k ARGS` (GNU's, or ours over `socket`) in `dir`, stdin from `input`.
fn one(
    ours: Option<&Path>,
    args: &[&str],
    dir: &Path,
    input: &[u8],
    env: &[(&str, &str)],
) -> (String, Option<i32>) {
    let mut cmd = match ours {
        Some(socket) => {
            let mut cmd = ctl_command();
            cmd.arg("--socket").arg(socket).arg("parallel");
            cmd
        }
        None => Command::new("parallel"),
    };
    cmd.arg("-k").args(args).current_dir(dir).envs(env.iter().copied());
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait");
    feeder.join().unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code())
}

/// A coordinator in `dir` and two workers of one slot each, connected.
fn two_slots(dir: &Path) -> (Coordinator, [Proc; 2]) {
    let c = Coordinator::start(dir);
    let workers = c.workers([("w1", 1), ("w2", 1)]);
    c.wait_for_workers(&["w1", "w2"]);
    (c, workers)
}

/// Each case run by GNU parallel and by `marmotctl parallel` over `socket` in `dir`: the
/// same stdout and exit status.
fn same_as_gnu(socket: &Path, cases: &[(&[&str], &[u8])], dir: &Path, env: &[(&str, &str)]) {
    for (args, input) in cases {
        let theirs = one(None, args, dir, input, env);
        let mine = one(Some(socket), args, dir, input, env);
        assert_eq!(mine, theirs, "parallel -k {args:?}");
    }
}

/// Two slots (as many as GNU parallel takes by default on two cores) and a dir for the
/// cases' files, under `dir`.
fn two_slots_and_files(dir: &Path) -> (Coordinator, [Proc; 2], std::path::PathBuf) {
    let (c, workers) = two_slots(dir);
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    (c, workers, files)
}

#[test]
fn options_run_on_a_cluster_as_gnu_parallel_runs_them() {
    if without_gnu_parallel() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (c, _w, files) = two_slots_and_files(dir.path());
    std::fs::write(files.join("cols.csv"), "x,y\n1,2\n3 , 4\n").unwrap();
    std::fs::write(files.join("nul"), "a b\0c\nd\0").unwrap();
    let function = [("BASH_FUNC_twice%%", "() {  echo \"$1$1\"\n}")];
    let lock = dir.path().join("lock");
    let one_at_a_time = format!("mkdir {0} && sleep 0.2 && rmdir {0} && echo {{}}", lock.display());
    let numbers: Vec<u8> = (1..=3000).flat_map(|n| format!("{n}\n").into_bytes()).collect();
    let cases: &[(&[&str], &[u8])] = &[
        (&["--tag", "echo", "x", ":::", "a", "b", ":::", "c"], b""),
        (&["--tagstring", "{1}-{2}", "echo x; echo y", ":::", "a", "b", ":::", "c"], b""),
        (&["-v", "echo", ":::", "a b", "c"], b""),
        (&["exit {}", ":::", "0", "1", "2", "3"], b""),
        (&["-j1", "--halt", "now,fail=1", "exit {}", ":::", "0", "4", "5"], b""),
        // Nothing starts after the job that meets the rule.
        (
            &[
                "-j1",
                "--halt",
                "soon,fail=50%",
                "echo {}; exit {}",
                ":::",
                "0",
                "1",
                "2",
                "3",
                "0",
                "0",
            ],
            b"",
        ),
        (&["-j1", "--halt", "now,success=1", "echo {}; exit {}", ":::", "1", "0", "2"], b""),
        (&["-j1", "-X", "echo", "x{}y", ":::", "1", "2", "3"], b""),
        // -j1: one job at a time, or the second mkdir would fail.
        (&["-j1", &one_at_a_time, ":::", "a", "b", "c"], b""),
        (&["-j2", "-m", "echo", ":::", "1", "2", "3", "4", "5"], b""),
        // Lines filled to -s; under -m and -X the last line's arguments are spread over the
        // job slots, under --xargs not.
        (&["-j3", "-s", "1000", "-m", "echo"], &numbers),
        (&["-j2", "-s", "300", "-X", "echo", "x{}y"], &numbers),
        (&["-j4", "-s", "2000", "--xargs", "echo"], &numbers),
        (&["-j4", "--xargs", "echo", ":::", "1", "2", "3"], b""),
        (&["echo", "$PARALLEL_SEQ", "{#}", "{}", ":::", "a", "b", "c"], b""),
        (&["twice", ":::", "1", "2"], b""),
        (&["--colsep", ",", "--header", ":", "echo", "{y}", "{1}"], b"x,y\n1,2\n"),
        (&["--colsep", ",", "echo", "{2}-{1}", "::::", "cols.csv"], b""),
        (&["-0", "echo", "::::", "nul"], b""),
        (&["echo", "in:"], b"a\nb c\n\n"),
        (&["-N2", "echo", "{2}", "{1}", "::::", "-"], b"1\n2\n3\n"),
        (&["-q", "echo", "a  b", "{}", ":::", "it's"], b""),
        (&["--dry-run", "--tag", "echo", "{.}", ":::", "x.gz", "d/y"], b""),
        (&[":::", "echo one", "echo two; exit 3"], b""),
        // Perl: {= =} at a position, --plus, --rpl with a group, skip() (counted as failed).
        (&["echo", "{=2 s/b/B/ =}", "{= $_=uc =}", ":::", "a", "b", ":::", "b"], b""),
        (&["--plus", "echo", "{..}", "{+..}", "{%.gz}", "{##}", ":::", "x.tar.gz"], b""),
        (&["--rpl", "{/(.+?)/(.*?)} s/$$1/$$2/;", "echo", "{/tar.gz/zip}", ":::", "f.tar.gz"], b""),
        (&["echo", "{#}", "{= skip() if $_ == 2 =}", ":::", "1", "2", "3"], b""),
        (&["--tagstring", "{= $_=uc =}", "echo", ":::", "a"], b""),
        // Stopped past five times the median time of the jobs that succeeded (0.2 s).
        (&["-j1", "--timeout", "500%", "sleep {}; echo {}", ":::", "0.2", "0.2", "0.2", "3"], b""),
        // Judged on the worker, with room to spare: the jobs start.
        (&["--load", "100000", "--memfree", "1M", "--noswap", "echo", ":::", "a", "b"], b""),
        (&["--load", "10000%", "echo", ":::", "a"], b""),
        // The job slot, one job at a time: 1 each.
        (&["-j1", "echo {%} $PARALLEL_JOBSLOT {}", ":::", "a", "b"], b""),
        (&["-j1", "-q", "echo", "x{%}y", ":::", "a"], b""),
        (&["-j1", "--slotreplace", ",,", "echo", ",,", ":::", "a"], b""),
    ];
    same_as_gnu(&c.socket, cases, &files, &function);
}

/// Every file under `dir` (not dirs), by its path there: its bytes, mode and modification
/// time in seconds.
fn tree(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut files = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(at) = dirs.pop() {
        for item in std::fs::read_dir(&at).unwrap() {
            let path = item.unwrap().path();
            let meta = std::fs::metadata(&path).unwrap();
            if meta.is_dir() {
                dirs.push(path);
                continue;
            }
            let name = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            files.insert(name, (bytes, meta.mode() & 0o7777, meta.mtime()));
        }
    }
    files
}

/// Every dir under `dir`, by its path there.
fn dirs_in(dir: &Path) -> Vec<String> {
    let mut found = vec![];
    let mut to_read = vec![dir.to_path_buf()];
    while let Some(at) = to_read.pop() {
        for item in std::fs::read_dir(&at).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                found.push(path.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
                to_read.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The same files, modes and times in `gnu/` and `ours/`.
fn two_copies(root: &Path) -> [std::path::PathBuf; 2] {
    use std::os::unix::fs::PermissionsExt;
    let dirs = [root.join("gnu"), root.join("ours")];
    for dir in &dirs {
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for (name, text, mode, mtime) in [
            ("a.txt", "alpha\n".repeat(100), 0o640, 1_000_000_000),
            ("b.txt", "beta\n".to_string(), 0o600, 1_200_000_000),
            ("sub/c.txt", "gamma\n".repeat(7), 0o755, 1_300_000_000),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(std::time::UNIX_EPOCH + Duration::new(mtime, 5)).unwrap();
        }
    }
    dirs
}

/// `{%}` on a cluster as in GNU parallel: each running job holds a slot from 1 to `-j` that
/// no other running job holds (a job that found its slot's lock taken would fail).
#[test]
fn the_job_slot_is_one_no_other_running_job_holds() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("w1", 2), ("w2", 2)]);
    c.wait_for_workers(&["w1", "w2"]);
    let locks = dir.path().join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let job =
        format!("mkdir {0}/{{%}} && sleep 0.2 && rmdir {0}/{{%}} && echo {{%}}", locks.display());
    let (out, status) = one(
        Some(&c.socket),
        &["-j3", &job, ":::", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        dir.path(),
        b"",
        &[],
    );
    assert_eq!(status, Some(0), "no two running jobs shared a slot: {out}");
    let slots: std::collections::BTreeSet<&str> = out.lines().collect();
    assert_eq!(slots, ["1", "2", "3"].into(), "slots 1 to -j: {out}");
}

/// `--delay`: jobs start that far apart at least (as their joblog says), however many slots
/// are free; their output as GNU parallel's.
#[test]
fn a_delay_spaces_the_starts_of_jobs() {
    if without_gnu_parallel() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("w1", 2), ("w2", 2)]);
    c.wait_for_workers(&["w1", "w2"]);
    let log = dir.path().join("log");
    let log = log.to_str().unwrap();
    let args = ["--delay", "0.4", "--joblog", log, "echo", ":::", "a", "b", "c", "d"];
    same_as_gnu(&c.socket, &[(&args, b"")], dir.path(), &[]);
    let text = std::fs::read_to_string(log).unwrap();
    let mut starts: Vec<f64> =
        text.lines().skip(1).map(|l| l.split('\t').nth(2).unwrap().parse().unwrap()).collect();
    starts.sort_by(f64::total_cmp);
    assert_eq!(starts.len(), 4, "{text}");
    for pair in starts.windows(2) {
        assert!(pair[1] - pair[0] >= 0.39, "started {:.3} s apart:\n{text}", pair[1] - pair[0]);
    }
}

/// What reads `marmotctl parallel`'s output goes away (`| head`): the run stops, its job
/// cancelled on the cluster, with the status of a process SIGPIPE killed, as GNU parallel's.
#[test]
fn a_run_whose_reader_is_gone_stops_and_its_job_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _w) = two_slots(dir.path());
    let script = format!(
        "seq 3000 | {} --socket {} parallel -k echo | head -2; echo \"${{PIPESTATUS[1]}}\"",
        bin("marmotctl").display(),
        c.socket.display()
    );
    let out = Command::new("bash").arg("-c").arg(&script).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n2\n141\n");
    assert!(out.stderr.is_empty(), "nothing said: {}", String::from_utf8_lossy(&out.stderr));
    let state = wait_for("the job cancelled", Duration::from_secs(20), || {
        let jobs = c.json(&["jobs"]);
        let state = jobs[0]["state"].as_str()?.to_string();
        (state != "running").then_some(state)
    });
    assert_eq!(state, "cancelled");
}

/// Every file under `dir` by its path there, with its bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    tree(dir).into_iter().map(|(name, (bytes, _, _))| (name, bytes)).collect()
}

/// GNU parallel and `marmotctl parallel` run `args` (after `-k`), each in its own dir
/// under `root`: the same stdout, exit status, and files left there.
fn same_files_as_gnu(socket: &Path, root: &Path, args: &[&str]) {
    let dirs = [root.join("gnu"), root.join("ours")];
    for dir in &dirs {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
    }
    let theirs = one(None, args, &dirs[0], b"", &[]);
    let mine = one(Some(socket), args, &dirs[1], b"", &[]);
    assert_eq!(mine, theirs, "parallel -k {args:?}");
    let (theirs, mine) = (contents(&dirs[0]), contents(&dirs[1]));
    assert!(!mine.is_empty(), "parallel -k {args:?} kept no file");
    assert_eq!(mine, theirs, "the files of parallel -k {args:?}");
}

/// Output kept in files (`--results` in each of its forms, `--files`), jobs run in a
/// random order (`--shuf`), progress on stderr (`--bar`, `--eta`, `--progress`), and the
/// failed jobs of a joblog run again (`--retry-failed`): as GNU parallel does them.
#[test]
fn results_files_shuffles_progress_and_retries_as_gnu_parallel_has_them() {
    if without_gnu_parallel() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (c, _w, files) = two_slots_and_files(dir.path());
    let socket = c.socket.as_path();
    let both = "echo out {}; echo err {} >&2";
    same_files_as_gnu(socket, dir.path(), &["--results", "out", "echo", ":::", "A", "b/c", "d e"]);
    same_files_as_gnu(
        socket,
        dir.path(),
        &["--header", ":", "--results", "out", both, ":::", "f1", "A", "B", ":::", "f2", "C"],
    );
    let failing = "echo out {}; echo err {} >&2; exit {}";
    same_files_as_gnu(socket, dir.path(), &["--results", "o/{1}", failing, ":::", "0", "1"]);
    same_files_as_gnu(socket, dir.path(), &["--results", "o/{}/", both, ":::", "X", "Y"]);
    same_files_as_gnu(socket, dir.path(), &["--results", "r", "--files", "echo", ":::", "a"]);

    // A table: a row per job. Host and times are the run's own; the rest as GNU parallel's.
    for table in ["t.csv", "t.tsv"] {
        let script = "printf '%s' {}; echo e {} >&2; exit {#}";
        let args = ["--results", table, script, ":::", "a b", "c\"d", "e"];
        let dirs = [dir.path().join("gnu"), dir.path().join("ours")];
        let mut rows = vec![];
        for (dir, ours) in dirs.iter().zip([None, Some(socket)]) {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir).unwrap();
            let ran = one(ours, &args, dir, b"", &[]);
            assert_eq!(ran, (String::new(), Some(3)), "{table}");
            let text = std::fs::read_to_string(dir.join(table)).unwrap();
            let sep = if table.ends_with("csv") { ',' } else { '\t' };
            // A row's stderr ends in a line end, inside its quotes: rows end at the others.
            let lines: Vec<Vec<String>> = text
                .replace("\n\"", "\u{1}\"")
                .lines()
                .map(|l| l.split(sep).map(String::from).collect())
                .collect();
            rows.push(lines);
        }
        let strip = |rows: &Vec<Vec<String>>| -> Vec<Vec<String>> {
            let mut out = rows.clone();
            for row in out.iter_mut().skip(1) {
                for n in [1, 2, 3] {
                    row[n] = String::new();
                }
            }
            out
        };
        assert_eq!(rows[1].len(), 4, "a header and three rows: {:?}", rows[1]);
        assert_eq!(strip(&rows[1]), strip(&rows[0]), "{table}");
    }
    // A joblog's Receive is the bytes of stdout, as GNU parallel's.
    for ours in [None, Some(socket)] {
        let log = files.join(format!("received-{}", ours.is_some()));
        let args = ["--joblog", log.to_str().unwrap(), "echo out; echo errr >&2", ":::", "1"];
        one(ours, &args, &files, b"", &[]);
        let text = std::fs::read_to_string(&log).unwrap();
        let receive = text.lines().nth(1).and_then(|l| l.split('\t').nth(5));
        assert_eq!(receive, Some("4"), "ours: {}: {text}", ours.is_some());
    }
    // --files: each job's stdout in a new file under --tmpdir, its name printed.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let tmpdir = tmp.to_str().unwrap();
    let (out, status) = one(
        Some(socket),
        &["--tmpdir", tmpdir, "--files", "echo", ":::", "a", "b"],
        &files,
        b"",
        &[],
    );
    assert_eq!(status, Some(0));
    let kept: Vec<String> =
        out.lines().map(|name| std::fs::read_to_string(name).unwrap()).collect();
    assert_eq!(kept, ["a\n", "b\n"], "{out}");
    assert!(out.lines().all(|name| name.starts_with(tmpdir) && name.ends_with(".par")), "{out}");

    // --shuf: every job once, numbered in the order they run, in a random order.
    let words: Vec<String> = (0..40).map(|n| n.to_string()).collect();
    let mut args = vec!["--shuf", "echo", "{#}", "{}", ":::"];
    args.extend(words.iter().map(String::as_str));
    let (out, status) = one(Some(socket), &args, &files, b"", &[]);
    assert_eq!(status, Some(0));
    let lines: Vec<(String, String)> = out
        .lines()
        .map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).unwrap())
        .collect();
    let seqs: Vec<String> = lines.iter().map(|(seq, _)| seq.clone()).collect();
    assert_eq!(seqs, (1..=40).map(|n| n.to_string()).collect::<Vec<_>>(), "{out}");
    let mut shuffled: Vec<String> = lines.iter().map(|(_, word)| word.clone()).collect();
    assert_ne!(shuffled, words, "40 jobs kept their order (1 chance in 40!)");
    shuffled.sort_by_key(|w| w.parse::<u32>().unwrap());
    assert_eq!(shuffled, words);

    // --bar, --eta, --progress: stdout as GNU parallel's; the last state on stderr.
    same_as_gnu(socket, &[(&["--bar", "--eta", "echo", ":::", "1", "2", "3"], b"")], &files, &[]);
    let mut bar = ctl_command();
    bar.arg("--socket").arg(socket).args(["parallel", "--bar", "--eta", "--progress", "true"]);
    let shown = bar.args([":::", "1", "2", "3"]).stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&shown.stderr);
    let last = stderr.rsplit('\r').next().unwrap();
    // The last unit to end names the line: any of the three (two workers, run at once).
    let ended = ["1", "2", "3"].map(|n| format!("100% 3:0=0s true {n} ETA: 0s Left: 0 AVG: "));
    assert!(ended.iter().any(|start| last.starts_with(start.as_str())), "{stderr:?}");
    assert!(last.contains("w1:") && last.ends_with(" \n"), "{stderr:?}");

    // --retry-failed: the joblog's failed jobs again, with their logged commands.
    for ours in [None, Some(socket)] {
        let (log, _) = (files.join(format!("log-{}", ours.is_some())), ());
        let log = log.to_str().unwrap();
        let first = one(
            ours,
            &["--joblog", log, "echo {}; exit {}", ":::", "1", "0", "2"],
            &files,
            b"",
            &[],
        );
        assert_eq!(first.1, Some(2), "{first:?}");
        let again = one(ours, &["--retry-failed", "--joblog", log], &files, b"", &[]);
        assert_eq!(again, ("1\n2\n".to_string(), Some(2)), "ours: {}", ours.is_some());
        let lines = std::fs::read_to_string(log).unwrap();
        assert_eq!(lines.lines().count(), 1 + 3 + 2, "{lines}");
        // No joblog yet: nothing to retry, and one is begun.
        let missing = files.join(format!("missing-{}", ours.is_some()));
        let missing = missing.to_str().unwrap();
        let none = one(ours, &["--retry-failed", "--joblog", missing], &files, b"", &[]);
        assert_eq!(none, (String::new(), Some(0)));
        assert_eq!(std::fs::read_to_string(missing).unwrap().lines().count(), 1);
    }
}

/// GNU parallel runs a job where its files are; `marmotctl parallel` makes that true on a
/// worker: files and dirs its arguments name travel there under the same paths, modes and
/// times (gzip writes the name and time into its header), and what the job makes, changes,
/// removes or moves is so where it was run when it ends: the same tree as GNU parallel's.
#[test]
fn files_travel_with_their_jobs_and_what_they_make_comes_back() {
    if without_gnu_parallel() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (c, _w) = two_slots(dir.path());
    let [gnu, ours] = two_copies(dir.path());
    let cases: &[&[&str]] = &[
        &["wc -c < {} > {}.n; echo {/}", ":::", "a.txt", "sub/c.txt"],
        &["echo more >> {}", ":::", "b.txt"],
        &["seq {} > made-{}; mkdir -p new/{}; touch new/{}/x", ":::", "1", "2"],
        &["-X", "cat", "{}", ">", "all.{#}", ":::", "a.txt", "b.txt"],
        // Dirs: made empty, named (with what they hold), moved into and away.
        &["mkdir", "{}", ":::", "dest", "empty"],
        &["ls", "{}", ":::", "sub", "new"],
        &["mv", "{}", "dest", ":::", "made-1", "made-2"],
        &["mv {} {}.old", ":::", "new"],
        // gzip takes the originals away, here as with GNU parallel.
        &["gzip", "-9", ":::", "a.txt", "./b.txt", "sub/c.txt"],
    ];
    for args in cases {
        let theirs = one(None, args, &gnu, b"", &[]);
        let mine = one(Some(&c.socket), args, &ours, b"", &[]);
        assert_eq!(mine, theirs, "parallel -k {args:?}");
    }
    let (theirs, mine) = (tree(&gnu), tree(&ours));
    let names = |files: &BTreeMap<String, _>| files.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&mine), names(&theirs), "the same files made, moved and taken away");
    assert!(!theirs.contains_key("a.txt") && theirs.contains_key("dest/made-1"));
    assert_eq!(theirs.len(), 11, "{:?}", names(&theirs));
    for (name, (bytes, mode, mtime)) in &theirs {
        let (my_bytes, my_mode, my_mtime) = mine.get(name).unwrap_or_else(|| panic!("{name}"));
        assert!(my_bytes == bytes, "{name}: not the same bytes as GNU parallel's");
        assert_eq!(my_mode, mode, "{name}: mode");
        if name.ends_with(".gz") {
            assert_eq!(my_mtime, mtime, "{name}: gzip dates it as the original");
        }
    }
    assert_eq!(dirs_in(&ours), dirs_in(&gnu), "the same dirs, the empty one too");
    assert!(dirs_in(&gnu).contains(&"empty".to_string()));
    let gz = &mine["a.txt.gz"].0;
    assert_eq!(&gz[4..8], &1_000_000_000u32.to_le_bytes(), "the original's time in the header");
}

/// `--pipe` and `--pipepart`: input cut into blocks where GNU parallel cuts it (each job
/// here reports its block, so any other cut shows), each block the job's stdin (a pipe, as
/// `wc`'s padding shows), or a file or fifo named by `{}`.
#[test]
fn pipe_blocks_reach_jobs_as_gnu_parallels_do() {
    if without_gnu_parallel() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (c, _w, files) = two_slots_and_files(dir.path());
    let numbers: String = (1..=30_000).map(|n| format!("{n}\n")).collect();
    std::fs::write(files.join("numbers"), &numbers).unwrap();
    let headed = format!("name\n{}", (1..=50).map(|n| format!("{n}\n")).collect::<String>());
    std::fs::write(files.join("headed"), &headed).unwrap();
    let (numbers, headed) = (numbers.as_bytes(), headed.as_bytes());
    let records = b"a,_b,__c,___d".as_slice();
    let cases: &[(&[&str], &[u8])] = &[
        (&["--pipe", "--block", "20k", "wc"], numbers),
        (&["--pipe", "wc"], numbers),
        (&["--pipe", "-N", "1000", "wc -l"], numbers),
        (&["--pipe", "-L", "5000", "wc -l"], numbers),
        (&["--pipe", "--block", "2k", "-N", "100", "echo {#}; wc"], numbers),
        (&["--pipe", "--block", "3", "--recstart", "_", "--recend", ",", "echo J{#};cat"], records),
        (&["--pipe", "-N1", "--recend", ",_", "echo J{#};cat;echo"], records),
        (&["--pipe", "-N1", "--regexp", "--recend", ",_+", "echo J{#};cat;echo"], records),
        (&["--pipe", "-N1", "--rrs", "--regexp", "--recend", ",_+", "echo J{#};cat;echo"], records),
        (&["--pipe", "--header", ":", "-N7", "echo J{#};cat"], headed),
        (&["--pipe", "-r", "-N2", "echo J{#};cat"], b"a\n\n \nb\nc\n\n"),
        (&["--pipe", "--cat", "--block", "20k", "wc < {}"], numbers),
        (&["--pipe", "--fifo", "--block", "20k", "wc < {}"], numbers),
        (&["--pipe", "--block", "20k", "--tag", "wc -l"], numbers),
        (&["--pipe", "wc"], b""),
        (&["-j2", "--pipepart", "-a", "numbers", "wc"], b""),
        (&["--pipepart", "-a", "numbers", "--block", "20k", "wc"], b""),
        (&["--pipepart", "-a", "headed", "--header", ":", "--block", "30", "cat | head -2"], b""),
    ];
    same_as_gnu(&c.socket, cases, &files, &[]);
    // What --pipe cannot take, in one line.
    let refused: &[(&[&str], &str)] = &[
        (&["--pipe", "wc", ":::", "a"], "--pipe reads its input from stdin"),
        (&["--pipe", "--block", "1Q", "wc"], "--block 1Q: give a size"),
        (&["--pipe", "--block", "-2", "wc"], "needs --pipepart"),
        (&["--pipepart", "wc"], "--pipepart cuts the files given with -a"),
        (&["--pipe", "--regexp", "--recend", "(", "wc"], "not a regular expression"),
        (&["--round-robin", "wc"], "give --pipe"),
        (&["--pipe", "--round-robin", "--cat", "wc"], "with --cat or --fifo is not supported"),
    ];
    // --round-robin: as many jobs as job slots, the blocks dealt to them in turn (GNU
    // parallel deals them to whichever job reads first: only the whole is the same).
    let (counts, status) = one(
        Some(&c.socket),
        &["--pipe", "--block", "20k", "-j3", "--round-robin", "wc -l"],
        &files,
        numbers,
        &[],
    );
    assert_eq!(status, Some(0));
    let counts: Vec<u64> = counts.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), numbers.iter().filter(|&&b| b == b'\n').count() as u64);
    let (text, _) = one(
        Some(&c.socket),
        &["--pipe", "--block", "20k", "-j3", "--round-robin", "cat"],
        &files,
        numbers,
        &[],
    );
    let mut lines: Vec<&str> = text.lines().collect();
    let mut want: Vec<&str> = std::str::from_utf8(numbers).unwrap().lines().collect();
    assert_ne!(lines, want, "three jobs' blocks in turn, not the input in order");
    lines.sort_unstable();
    want.sort_unstable();
    assert_eq!(lines, want, "every line once");
    for (args, needle) in refused {
        let (out, status) = one(Some(&c.socket), args, &files, b"x\n", &[]);
        assert_eq!((out.as_str(), status), ("", Some(255)), "{args:?}");
        let mut all = vec!["parallel"];
        all.extend_from_slice(args);
        let said = c.ctl(&all);
        let err = String::from_utf8_lossy(&said.stderr);
        assert!(err.contains(needle) && err.lines().count() == 1, "{args:?}: {err}");
    }
}

/// A process's peak resident memory, in KiB (0 once it has gone).
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: 0 kB");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// `--pipe` over a gigabyte: every line counted once, and memory bounded on every side
/// (marmotctl holds a few blocks at most; the coordinator and the workers move blocks
/// through files).
#[test]
#[ignore = "the --pipe gigabyte lab (a minute): .ci/run runs it; by hand: cargo test -p marmot-tests --test e2e parallel::pipe_a -- --ignored --nocapture"]
fn pipe_a_gigabyte_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (c, workers) = two_slots(dir.path());
    let mut cmd = ctl_command();
    cmd.arg("--socket").arg(&c.socket);
    cmd.args(["parallel", "--pipe", "--block", "10M", "wc -l"]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let (gib, line) = (1u64 << 30, b"0123456789abcdef0123456789abcdef0123456789abcdef012345678\n");
    let lines = gib / line.len() as u64;
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let many = line.repeat(4096);
        let mut left = lines;
        while left > 0 {
            let n = left.min(4096);
            stdin.write_all(&many[..n as usize * line.len()]).unwrap();
            left -= n;
        }
    });
    // Its peak, sampled until it ends (VmHWM only grows).
    let watching = std::thread::spawn(move || {
        let mut peak = 0;
        loop {
            match peak_kib(pid) {
                0 => return peak,
                now => peak = peak.max(now),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let ctl_peak = watching.join().unwrap();
    assert!(out.status.success(), "{out:?}");
    let counted: u64 = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse::<u64>().unwrap())
        .sum();
    assert_eq!(counted, lines, "every line once");
    let peaks = [("marmotctl", ctl_peak), ("the coordinator", peak_kib(c.proc.pid()))]
        .into_iter()
        .chain(workers.iter().map(|w| ("a worker", peak_kib(w.pid()))))
        .collect::<Vec<_>>();
    eprintln!(
        "--pipe over 1 GiB ({lines} lines) in {:.1} s; peak memory (MiB): {}",
        started.elapsed().as_secs_f64(),
        peaks
            .iter()
            .map(|(who, kib)| format!("{who} {}", kib / 1024))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (who, kib) in peaks {
        assert!(kib > 0 && kib < 256 * 1024, "{who} peaked at {} MiB", kib / 1024);
    }
}

/// Blocks are read while earlier ones upload: when the upload fails, reading stops and the
/// one line says why, however much input is left (it waited forever once).
#[test]
fn a_pipe_whose_upload_fails_stops_reading_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = ctl_command();
    cmd.arg("--socket").arg(dir.path().join("nobody.sock"));
    cmd.args(["parallel", "--pipe", "--block", "1k", "wc"]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Endless lines, until marmotctl closes its end.
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let line = b"y\n".repeat(2048);
        while stdin.write_all(&line).is_ok() {}
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains("no coordinator at") && err.lines().count() == 1, "{err}");
}

#[test]
fn retries_count_tries_as_gnu_parallel_counts_them() {
    if without_gnu_parallel() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (c, _w) = two_slots(dir.path());
    let tries = |ours: bool| {
        let counter = dir.path().join(format!("tries-{ours}"));
        let script = format!("echo x >> {}; echo ran; false", counter.display());
        let socket = ours.then_some(c.socket.as_path());
        let (out, status) =
            one(socket, &["--retries", "3", &script, ":::", "1"], dir.path(), b"", &[]);
        (out, status, std::fs::read_to_string(&counter).unwrap().lines().count())
    };
    let theirs = tries(false);
    assert_eq!(
        theirs,
        ("ran\n".to_string(), Some(1), 3),
        "GNU parallel: 3 tries, the last one's output"
    );
    assert_eq!(tries(true), theirs);
}

#[test]
fn a_timed_out_job_gets_the_signals_of_termseq_as_gnu_parallels_does() {
    if without_gnu_parallel() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (c, _w) = two_slots(dir.path());
    // Deaf to INT and TERM (it says which it got), so only the sequence's last step ends it;
    // each signal also ends the foreground sleep. A second after each signal: time for its
    // trap to run on a loaded machine, before the next one comes.
    let deaf = "trap 'echo got INT' INT; trap 'echo got TERM' TERM; echo {}; \
                while :; do sleep 0.05; done";
    let cases: &[(&[&str], &[u8])] = &[
        (&["--timeout", "1", "--termseq", "INT,1000,TERM,1000,KILL,25", deaf, ":::", "a"], b""),
        (&["--timeout", "1", "--termseq", "TERM,1000,USR1,25", deaf, ":::", "a", "b"], b""),
    ];
    same_as_gnu(&c.socket, cases, dir.path(), &[]);
}

#[test]
fn what_gnu_parallel_has_and_marmot_does_not_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let cases: &[(&[&str], &str)] = &[
        (&["--foo", "echo", ":::", "a"], "unknown option --foo"),
        (&["-S", "host", "echo", ":::", "a"], "not over ssh"),
        (
            &["--shard", "2", "echo", ":::", "a"],
            "--shard is not supported by marmotctl parallel yet",
        ),
        (&["--termseq", "INT,200,BOGUS,25", "echo", ":::", "a"], "`BOGUS` is not a signal"),
        (&["echo", "'{%}'", ":::", "a"], "`{%}` inside single quotes"),
        (&["--tagstring", "{%}", "echo", ":::", "a"], "the job slot"),
        (&["echo", "{= $_ = ( =}", ":::", "a"], "cannot use the perl expression"),
        (&["--jo", "2", "echo"], "ambiguous"),
        (&["--colsep", "(", "echo", ":::", "a"], "--colsep ( is not a regular expression"),
        (&["--halt", "sometimes", "echo", ":::", "a"], "is not a halt rule"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["parallel"];
        all.extend_from_slice(args);
        let out = c.ctl(&all);
        assert_eq!(
            out.status.code(),
            Some(255),
            "GNU parallel's status for its own errors: {args:?}"
        );
        one_line_error(&out, needle);
        assert!(out.stdout.is_empty(), "nothing run, nothing printed: {args:?}");
    }
}
