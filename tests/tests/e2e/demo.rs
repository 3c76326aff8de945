use crate::oracle::is_prime_u64;
use crate::util::*;
use std::process::Command;
use std::time::Duration;

/// The quick start's first command: a local cluster that pings, benches and runs every task
/// through the control API, each answer right (the notebook's prime is prime, the semiprime
/// factors back, the freefall lands where the closed form says) and the process gone at the
/// end with status 0.
#[test]
fn the_demo_runs_every_task_and_exits() {
    let mut cmd = Command::new(bin("marmotd"));
    cmd.args(["demo", "--workers", "2", "--slots", "1"]);
    let out = output_within(cmd, Duration::from_secs(240));
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in [
        "$ marmotctl ping",
        "local-1",
        "local-2",
        "$ marmotctl bench",
        "$ marmotctl run pi 1e9",
        "1000000000 samples (seed 1)",
        "943349775459380173 is prime\nmethod trial",
        "943349775459380173 is prime\nmethod auto",
        "occurs",
        "in 16 bytes",
        "999999929",
        "2048688 points: ground at t = 2048.687 s",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    assert!(is_prime_u64(943_349_775_459_380_173));
    let estimate: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pi ≈ "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|x| x.parse().ok())
        .expect("a pi estimate");
    assert!((estimate - std::f64::consts::PI).abs() < 1e-3, "{estimate}");
    let semiprime = 999_999_937u128 * 999_999_929;
    let factored = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{semiprime} = ")))
        .expect("a factorization");
    let product: u128 = factored
        .split(['=', '×'])
        .skip(1)
        .map(|x| x.trim().parse::<u128>().expect("a factor"))
        .product();
    assert_eq!(product, semiprime, "{factored}");
    // The command's units, in input order: each input's SHA-256, as sha256sum prints it.
    let hashes: Vec<&str> = stdout.lines().filter(|l| l.starts_with("  unit ")).collect();
    assert_eq!(hashes.len(), 4, "{stdout}");
    for (i, (line, input)) in hashes.iter().zip(["alpha", "beta", "gamma", "delta"]).enumerate() {
        let sha = Command::new("sh")
            .args(["-c", &format!("printf %s {input} | sha256sum")])
            .output()
            .unwrap();
        let want = String::from_utf8_lossy(&sha.stdout).trim_end().to_string();
        assert!(line.starts_with(&format!("  unit {} on local-", i + 1)), "{line}");
        assert!(line.ends_with(&want), "{line} is not {want}");
    }
    assert!(stdout.contains("4 units in"), "{stdout}");
}
