//! Files stay where they were sent: a second run over the same input files, in the same order
//! or reversed, sends its units to the workers that already hold their files.

use crate::util::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Input files of `size` bytes each, every one different (bytes from a hash chain).
fn input_files(dir: &Path, count: usize, size: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..count)
        .map(|i| {
            let mut bytes = Vec::with_capacity(size + 32);
            let mut block = Sha256::digest(format!("file {i}").as_bytes());
            while bytes.len() < size {
                bytes.extend_from_slice(&block);
                block = Sha256::digest(block);
            }
            bytes.truncate(size);
            let path = dir.join(format!("f{i:03}.bin"));
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect()
}

/// What the coordinator has sent its workers so far, as `/metrics` counts it.
fn bytes_sent(c: &Coordinator) -> u64 {
    let (code, body) = api(&c.socket, "GET", "/metrics", b"");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(code, 200, "{text}");
    let line = text.lines().find_map(|l| l.strip_prefix("marmot_sent_bytes_total "));
    line.and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("no bytes sent in {text}"))
}

/// Runs `wc -c` over `files` (a unit of 30 ms or more each) and returns the bytes the
/// coordinator sent meanwhile.
fn run_over(c: &Coordinator, files: &[PathBuf], size: usize) -> u64 {
    let before = bytes_sent(c);
    let mut args = vec!["run", "cmd", "--input-files"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["--", "sh", "-c", "sleep 0.03; wc -c < {}"]);
    let out = c.ctl(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let counts: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().map(Into::into).collect();
    assert_eq!(counts, vec![size.to_string(); files.len()], "each unit read its whole file");
    bytes_sent(c) - before
}

#[test]
fn a_second_run_over_the_same_files_sends_few_of_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("a", 1), ("b", 1)]);
    // Enough files that the first run's split between the workers (they take chunks of
    // several units as they free up) is even to a few percent: a second run's worker that
    // runs out of its own takes the other's rather than idle, and sends those again.
    let (count, size) = (200, 64 << 10);
    let files = input_files(&dir.path().join("in"), count, size);
    let total = (count * size) as u64;
    let first = run_over(&c, &files, size);
    assert!(first >= total, "the first run sends every file once: {first} of {total} bytes");
    let again = run_over(&c, &files, size);
    let reversed: Vec<PathBuf> = files.iter().rev().cloned().collect();
    let backwards = run_over(&c, &reversed, size);
    eprintln!(
        "bytes sent: first run {first}, again {again}, reversed {backwards} ({total} of files)"
    );
    for (run, sent) in [("the same order", again), ("reverse order", backwards)] {
        assert!(
            sent * 10 <= total,
            "a second run in {run} sent {sent} bytes: over 10% of the files' {total}"
        );
    }
}

/// While a worker's slot runs a unit, the file of the unit it takes next is already on its way:
/// each unit waits (3 s at most) for its worker's cache to hold more input files than the
/// units that worker has started, and says whether it did.
#[test]
fn the_next_units_file_arrives_while_a_unit_runs() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("a", 1), ("b", 1)]);
    let files = input_files(&dir.path().join("in"), 12, 4096);
    let script = format!(
        r#"count={dir}/started-$MARMOT_WORKER; n=$(( $(cat $count 2>/dev/null || echo 0) + 1 ));
        echo $n > $count; cache={dir}/$MARMOT_WORKER/cache;
        for i in $(seq 60); do
            [ $(ls $cache | grep -c '^[0-9a-f]\{{64\}}$') -gt $n ] && {{ echo ahead; exit 0; }};
            sleep 0.05;
        done; echo none"#,
        dir = c.dir.display()
    );
    let mut args = vec!["run", "cmd", "--input-files"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["--", "sh", "-c", &script]);
    let out = c.ctl(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let ahead = said.lines().filter(|l| *l == "ahead").count();
    // Not ahead: a worker's last unit of the probe (the rest is not cut yet) and of the job.
    assert_eq!(said.lines().count(), 12, "{said}");
    assert!(ahead >= 8, "{ahead} of 12 units found their worker's next file there:\n{said}");
}
