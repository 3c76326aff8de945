use crate::oracle::is_prime_u64;
use crate::util::*;
use serde_json::Value;
use std::time::Duration;

/// The lab notebook's numbers: all prime.
const NOTEBOOK: [u64; 11] = [
    499139582359084529,
    943349775459380173,
    440149999829818483,
    761795777243436499,
    403111596387917561,
    811508878081456537,
    341705128992983771,
    178225203054306761,
    446379149495008381,
    283762230407893121,
    880354649778912289,
];

fn prime(c: &Coordinator, n: &str, method: &str) -> Value {
    c.json(&["run", "prime", n, "--method", method])
}

/// Checks a `prime` result against the oracle: a factor must multiply back to n, a verdict
/// must agree with an independent primality test.
fn check(result: &Value, n: u64) {
    assert_eq!(result["n"], n.to_string());
    let claimed_prime = result["prime"].as_bool().unwrap();
    assert_eq!(claimed_prime, is_prime_u64(n), "verdict for {n}: {result}");
    if let (Some(f), Some(c)) = (result["factor"].as_str(), result["cofactor"].as_str()) {
        let (f, c): (u128, u128) = (f.parse().unwrap(), c.parse().unwrap());
        assert!(f > 1 && c > 1, "{result}");
        assert_eq!(f * c, u128::from(n), "{result}");
    } else {
        assert!(claimed_prime || n < 2, "a composite without a factor: {result}");
    }
}

#[test]
fn prime_by_both_methods_against_an_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("a", 1), ("b", 1)]);
    for n in NOTEBOOK {
        check(&prime(&c, &n.to_string(), "auto"), n);
    }
    // Full trial scans of three of them (each is ~10^9 candidates).
    for n in [NOTEBOOK[1], NOTEBOOK[7], NOTEBOOK[9]] {
        check(&prime(&c, &n.to_string(), "trial"), n);
    }
    // Composites: two primes both close to √n (the factor is near the end of the scan), a
    // small factor, a square, and the smallest numbers.
    let near_root = 999_999_937u64 * 999_999_929;
    for n in [near_root, 5 * NOTEBOOK[0], 1_000_003u64 * 1_000_003, 0, 1, 2, 3, 4] {
        for method in ["trial", "auto"] {
            check(&prime(&c, &n.to_string(), method), n);
        }
    }
    // Above 2^64: 2^64 + 1 = 274177 × 67280421310721.
    let big = prime(&c, "18446744073709551617", "auto");
    assert_eq!(big["prime"], false);
    let f: u128 = big["factor"].as_str().unwrap().parse().unwrap();
    assert_eq!((u128::from(u64::MAX) + 2) % f, 0);
}

#[test]
fn a_found_factor_ends_the_job_and_frees_every_slot() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("a", 1), ("b", 1)]);
    // 2^127 - 1 is prime; times 3 it has a factor in the first chunk, and its scan would
    // otherwise take years.
    let n = ((1u128 << 127) - 1) * 2 + 1; // odd, 2^128 - 1 = 3 × 5 × 17 × 257 × ...
    let result = prime(&c, &n.to_string(), "trial");
    assert_eq!(result["factor"], "3");
    c.wait_idle(Duration::from_secs(1));
}

#[test]
fn exit_stops_workers_with_status_zero_and_keeps_the_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [mut leaving, _staying] = c.workers([("leaving", 1), ("staying", 1)]);
    let id = detach(&c, &["pi", "3e9", "--seed", "4"]);
    let out = c.json(&["exit", "leaving"]);
    assert_eq!(out["left"], serde_json::json!(["leaving"]));
    let status = leaving.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "a worker told to exit exits 0: {status:?}");
    assert_eq!(c.worker_names(), ["staying"]);
    // The job still completes: the leaving worker's chunks ran elsewhere.
    let result = c.json(&["wait", &id.to_string()]);
    let units: u64 =
        result["workers"].as_array().unwrap().iter().map(|w| w["units"].as_u64().unwrap()).sum();
    assert_eq!(units, 3_000_000_000);
    // An unknown name is an error in one line naming it, and nobody is told.
    let bad = c.ctl(&["exit", "nobody"]);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("marmotctl: error: ") && stderr.contains("nobody"), "{stderr}");
    assert_eq!(c.worker_names(), ["staying"]);
}

fn count(c: &Coordinator, args: &[&str]) -> Value {
    let mut all = vec!["run", "count"];
    all.extend_from_slice(args);
    c.json(&all)
}

#[test]
fn count_against_plain_counts() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [_a, mut b] = c.workers([("a", 1), ("b", 2)]);

    // Random letters: the recipe, regenerated here, counted plainly.
    let n = 3_000_000u64;
    let plain = (0..n).filter(|&i| crate::oracle::random_letter(5, i) == b'q').count() as u64;
    let two = count(&c, &["q", "--random", "3e6", "--seed", "5"]);
    assert_eq!(two["count"], plain);
    assert_eq!(two["bytes"], n);
    assert_eq!(
        count(&c, &["Q", "--random", "3e6", "--seed", "5", "--ignore-case"])["count"],
        plain
    );

    // Inline text, the notebook's case.
    let text = count(&c, &["e", "--text", "1eMyWordToCountE", "--ignore-case"]);
    assert_eq!(text["count"], 2);

    // A file big enough to be cut into several chunks, dense with a two-byte letter so some
    // straddle chunk boundaries.
    let body = "éaé bé x ÉÉé\n".repeat(2_500_000);
    let path = dir.path().join("letters.txt");
    std::fs::write(&path, &body).unwrap();
    let path = path.to_str().unwrap();
    for (letter, ignore_case) in [("é", false), ("é", true), ("a", false), ("É", false)] {
        let plain = body
            .chars()
            .filter(|ch| {
                let l = letter.chars().next().unwrap();
                *ch == l || ignore_case && ch.to_lowercase().eq(l.to_lowercase())
            })
            .count();
        let mut args = vec![letter, "--file", path];
        if ignore_case {
            args.push("--ignore-case");
        }
        let result = count(&c, &args);
        assert_eq!(result["count"], plain as u64, "{letter} ignore_case={ignore_case}");
        assert_eq!(result["bytes"], body.len() as u64);
    }
    let jobs = c.json(&["jobs"]);
    let last = jobs.as_array().unwrap().last().unwrap().clone();
    assert!(last["chunks_total"].as_u64().unwrap() >= 2, "the file was cut: {last}");

    // The same random count with one worker: the same answer.
    b.kill();
    c.wait_for_workers(&["a"]);
    assert_eq!(count(&c, &["q", "--random", "3e6", "--seed", "5"])["count"], plain);
}

#[test]
fn bench_scores_every_worker_and_workers_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("a", 1), ("b", 2)]);
    let results = c.json(&["bench", "--length", "200ms"]);
    assert_eq!(results.as_array().unwrap().len(), 2);
    for r in results.as_array().unwrap() {
        assert!(r["score"].as_f64().unwrap() > 0.0, "{r}");
    }
    for w in c.json(&["workers"]).as_array().unwrap() {
        let slots = w["slots"].as_u64().unwrap() as usize;
        let scores = w["slot_scores"].as_array().unwrap();
        assert_eq!(scores.len(), slots, "a score per slot: {w}");
        assert!(scores.iter().all(|s| s.as_f64().unwrap() > 0.0));
        assert!(w["score"].as_f64().unwrap() > 0.0);
    }
    // Jobs still run, sized by the scores.
    assert_eq!(run_pi(&c, "1e8", "1")["samples"], 100_000_000u64);
}
