//! Workers across a WAN: the relay of `marmot_tests::wan` between them and the coordinator,
//! with a real round trip and real losses, and a worker whose address changes mid-job.

use crate::util::*;
use marmot_tests::wan::Wan;
use marmotd::kernels::{pi, simd, Cancel};
use serde_json::Value;
use std::time::{Duration, Instant};

/// What one pass of the pi kernel counts for `samples` of `seed`.
fn inside(seed: u64, samples: u64) -> u64 {
    pi::count_inside(simd::Level::detect(), seed, 0, samples, &Cancel::default()).unwrap()
}

/// The address the coordinator sees for worker `name`.
fn address_of(c: &Coordinator, name: &str) -> Option<String> {
    let workers = c.json(&["workers"]);
    let worker = workers.as_array()?.iter().find(|w| w["name"] == name)?;
    worker["address"].as_str().map(str::to_string)
}

/// A coordinator and one-slot workers `names` that reach it through a WAN of `rtt` and `loss`
/// each way.
fn far_cluster<const N: usize>(
    dir: &std::path::Path,
    rtt: Duration,
    loss: f64,
    names: [&str; N],
) -> (Coordinator, Wan, [Proc; N]) {
    let c = Coordinator::start(dir);
    let wan = wan_to(&c, rtt, loss);
    let (token, far) = (c.token(), wan.addr.to_string());
    let workers = names.map(|name| start_worker(dir, &far, name, 1, Some(&token)));
    c.wait_for_workers(&names);
    (c, wan, workers)
}

#[test]
fn pi_across_a_slow_lossy_link_is_exact_and_ping_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (c, wan, _workers) =
        far_cluster(dir.path(), Duration::from_millis(100), 0.01, ["far1", "far2"]);

    let result = run_pi(&c, "3e8", "11");
    assert_eq!(result["inside"].as_u64(), Some(inside(11, 300_000_000)), "{result}");
    let workers = result["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "both far workers counted: {result}");
    assert!(wan.dropped() > 0, "the link lost packets");

    let started = Instant::now();
    let mut ping = ctl_command();
    ping.arg("--socket").arg(&c.socket).args(["--json", "ping", "--timeout", "2s"]);
    let out = output_within(ping, Duration::from_secs(10));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(4), "bounded by its timeout");
    let answers: Value = serde_json::from_slice(&out.stdout).unwrap();
    for answer in answers.as_array().unwrap() {
        let rtt = answer["rtt_ms"].as_f64();
        // A lost probe may go unanswered within the timeout; an answer took a round trip.
        assert!(rtt.is_none_or(|ms| ms >= 100.0), "{answers}");
    }
}

#[test]
fn a_worker_whose_address_changes_mid_job_keeps_its_connection_and_its_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let (c, wan, _worker) = far_cluster(dir.path(), Duration::from_millis(2), 0.0, ["roamer"]);
    let before = address_of(&c, "roamer").unwrap();

    let samples = 6_000_000_000u64;
    let id = detach(&c, &["pi", &samples.to_string(), "--seed", "5"]);
    wait_for("the job to count its first chunks", Duration::from_secs(30), || {
        let view = job_view(&c, id);
        (view["units_done"].as_u64().unwrap_or(0) > 0).then_some(())
    });
    let moved = Instant::now();
    wan.move_clients();
    let after = wait_for("the coordinator to follow the move", Duration::from_secs(30), || {
        address_of(&c, "roamer").filter(|a| *a != before)
    });
    // A figure for the notes (`--nocapture`): how soon the coordinator was talking to the
    // worker at its new address.
    eprintln!("roamer moved from {before} to {after}: followed within {:?}", moved.elapsed());
    let view = wait_for("the job to end", Duration::from_secs(120), || {
        let view = job_view(&c, id);
        (view["state"] != "running").then_some(view)
    });
    assert_eq!(view["state"], "done", "{view}");
    assert_eq!(view["result"]["inside"].as_u64(), Some(inside(5, samples)), "{view}");
    let log = c.proc.log_text();
    assert_eq!(
        log.matches("worker 'roamer' connected").count(),
        1,
        "migrated, not reconnected: {log}"
    );
    assert!(!log.contains("worker 'roamer' left"), "{log}");
    assert_ne!(before, after);
}
