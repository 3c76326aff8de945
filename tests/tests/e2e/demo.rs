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
        "1000000000 samples (seed 0)",
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
    the_commands_shown_give_the_answers_shown(&stdout);
}

/// A line of an answer, with a factorization's factors in order: whichever slot finds a
/// factor first decides which is printed first (`N = p × q` or `N = q × p`).
fn same_answer(line: &str) -> String {
    match line.split_once(" = ") {
        Some((n, factors)) if factors.contains(" × ") => {
            let mut factors: Vec<&str> = factors.split(" × ").collect();
            factors.sort_unstable();
            format!("{n} = {}", factors.join(" × "))
        }
        _ => line.to_string(),
    }
}

/// Each `$ marmotctl run …` line the demo shows, typed by hand against another cluster,
/// answers as the demo's run did: its first line of output (an estimate, a verdict, a count,
/// a factorization, a fall, a hash) is in the demo's block under that line.
fn the_commands_shown_give_the_answers_shown(demo: &str) {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("hand-1", 1), ("hand-2", 1)]);
    let blocks: Vec<&str> = demo.split("\n$ ").skip(1).collect();
    let runs: Vec<&str> = blocks.into_iter().filter(|b| b.starts_with("marmotctl run ")).collect();
    assert_eq!(runs.len(), 8, "the demo's run commands: {demo}");
    for block in runs {
        let (shown, answer) = block.split_once('\n').expect("a command and its answer");
        let typed = shown.split(" # ").next().unwrap().trim_start_matches("marmotctl ");
        let script = format!("exec \"$0\" --socket \"$1\" {typed}");
        let out = Command::new("sh")
            .args(["-c", &script])
            .arg(bin("marmotctl"))
            .arg(&c.socket)
            .env("XDG_CACHE_HOME", dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shown}: {}", String::from_utf8_lossy(&out.stderr));
        let first = same_answer(stdout.lines().next().expect("an answer"));
        assert!(
            answer.lines().any(|line| same_answer(line).contains(&first)),
            "typed `{shown}`, got {first:?}; the demo showed:\n{answer}"
        );
    }
}
