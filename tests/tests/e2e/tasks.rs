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
    let _a = c.worker("a", 1);
    let _b = c.worker("b", 1);
    c.wait_for_workers(&["a", "b"]);
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
    let _a = c.worker("a", 1);
    let _b = c.worker("b", 1);
    c.wait_for_workers(&["a", "b"]);
    // 2^127 - 1 is prime; times 3 it has a factor in the first chunk, and its scan would
    // otherwise take years.
    let n = ((1u128 << 127) - 1) * 2 + 1; // odd, 2^128 - 1 = 3 × 5 × 17 × 257 × ...
    let result = prime(&c, &n.to_string(), "trial");
    assert_eq!(result["factor"], "3");
    wait_for("every slot idle", Duration::from_secs(1), || {
        (c.json(&["status"])["slots_busy"] == 0).then_some(())
    });
}

#[test]
fn exit_stops_workers_with_status_zero_and_keeps_the_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let mut leaving = c.worker("leaving", 1);
    let _staying = c.worker("staying", 1);
    c.wait_for_workers(&["leaving", "staying"]);
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
    // An unknown name is an error, and nobody is told.
    let bad = c.ctl(&["exit", "nobody"]);
    assert!(!bad.status.success());
    assert_eq!(c.worker_names(), ["staying"]);
}
