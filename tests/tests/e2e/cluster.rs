use crate::util::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn two_workers_join_ping_and_estimate_pi_identically_in_any_shape() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [_w1, mut w2] = c.workers([("alpha", 1), ("beta", 2)]);
    let mode = std::fs::metadata(&c.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the control socket is the owner's alone");
    for w in c.json(&["workers"]).as_array().unwrap() {
        // semver, then the build number: `0.1.0+20261127094624`.
        let version = w["version"].as_str().unwrap();
        let (semver, build) = version.split_once('+').unwrap();
        assert_eq!(semver, env!("CARGO_PKG_VERSION"));
        assert!(build.len() == 14 && build.bytes().all(|b| b.is_ascii_digit()), "{version}");
        assert_eq!(w["binary_sha256"].as_str().unwrap().len(), 64);
        assert_eq!(w["arch"], std::env::consts::ARCH);
        assert_eq!(w["os"], std::env::consts::OS);
        assert!(w["connected_since"].as_u64().unwrap() > 0);
    }

    let pings = c.json(&["ping", "--timeout", "2s"]);
    let mut pinged: Vec<&str> =
        pings.as_array().unwrap().iter().map(|p| p["worker"].as_str().unwrap()).collect();
    pinged.sort();
    assert_eq!(pinged, ["alpha", "beta"]);
    assert!(pings.as_array().unwrap().iter().all(|p| p["rtt_ms"].as_f64().unwrap() > 0.0));

    let two = run_pi(&c, "200000000", "7");
    let estimate = two["estimate"].as_f64().unwrap();
    assert!((estimate - std::f64::consts::PI).abs() < 0.001, "estimate {estimate}");
    assert_eq!(two["samples"], 200_000_000u64);
    let shares = two["workers"].as_array().unwrap();
    let units: u64 = shares.iter().map(|s| s["units"].as_u64().unwrap()).sum();
    assert_eq!(units, 200_000_000, "every sample counted once: {shares:?}");
    assert_eq!(shares.len(), 2, "both workers computed: {shares:?}");
    for key in ["inside", "std_error", "seconds", "samples_per_second"] {
        assert!(two.get(key).is_some(), "{key} missing from {two}");
    }

    // One worker, another number of slots and so another cut: the same bits.
    w2.kill();
    c.wait_for_workers(&["alpha"]);
    let one = run_pi(&c, "2e8", "7");
    assert_eq!(one["inside"], two["inside"]);
    assert_eq!(one["estimate"].as_f64().unwrap().to_bits(), estimate.to_bits());
    // Another seed, another estimate.
    assert_ne!(run_pi(&c, "2e8", "8")["inside"], two["inside"]);
}

#[test]
fn a_wrong_token_is_refused_and_rotation_retires_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let token = c.token();
    let rotated = c.json(&["join-token", "--rotate"])["token"].as_str().unwrap().to_string();
    assert_ne!(token, rotated);
    assert_eq!(c.token(), rotated);

    // The old token names the right CA but its secret no longer lets anyone join.
    let mut old = start_worker(dir.path(), &c.addr, "old-token", 1, Some(&token));
    let status = old.wait_exit(Duration::from_secs(30));
    assert!(!status.success());
    assert!(old.log_text().contains("refused to let this worker join"), "{}", old.log_text());
    wait_for("the coordinator's refusal in its log", Duration::from_secs(10), || {
        c.proc.log_text().contains("refused to let 'old-token'").then_some(())
    });
    assert!(c.worker_names().is_empty());

    // The rotated token works.
    let _new = start_worker(dir.path(), &c.addr, "new-token", 1, Some(&rotated));
    c.wait_for_workers(&["new-token"]);
}

#[test]
fn a_worker_with_another_clusters_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = Coordinator::start(&dir.path().join("a"));
    let b = Coordinator::start(&dir.path().join("b"));

    // A token for A does not let a worker join B: B's CA is not the one it names.
    let mut wrong_ca = start_worker(dir.path(), &b.addr, "pinned", 1, Some(&a.token()));
    assert!(!wrong_ca.wait_exit(Duration::from_secs(30)).success());
    assert!(
        wrong_ca.log_text().contains("does not match the join token"),
        "{}",
        wrong_ca.log_text()
    );

    // A worker that joined B, trusting A's CA but holding B's certificate, is refused by A.
    let mut member_of_b = b.worker("intruder", 1);
    b.wait_for_workers(&["intruder"]);
    member_of_b.kill();
    let state = b.dir.join("intruder");
    std::fs::copy(a.dir.join("state/ca.crt"), state.join("cluster-ca.crt")).unwrap();
    let intruder = start_worker(&b.dir, &a.addr, "intruder", 1, None);
    wait_for("A to refuse the intruder", Duration::from_secs(30), || {
        a.proc.log_text().contains("refused a connection").then_some(())
    });
    wait_for("the intruder to log its refusal", Duration::from_secs(30), || {
        intruder.log_text().contains("refused this worker's certificate").then_some(())
    });
    assert!(a.worker_names().is_empty());
}

#[test]
fn workers_come_back_after_the_coordinator_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Coordinator::start(dir.path());
    let _workers = c.workers([("one", 1), ("two", 1)]);
    let token = c.token();
    let addr = c.addr.clone();
    c.json(&["bench", "--length", "100ms"]);
    let scores = |c: &Coordinator| {
        let workers = c.json(&["workers"]);
        let list = workers.as_array().unwrap();
        list.iter().map(|w| (w["name"].clone(), w["slot_scores"].clone())).collect::<Vec<_>>()
    };
    let benched = scores(&c);
    assert!(benched.iter().all(|(_, s)| s.as_array().is_some_and(|s| s.len() == 1)), "{benched:?}");

    c.proc.kill(); // a crash: no goodbye to the workers
    drop(c);
    let c = Coordinator::start_on(dir.path(), &addr);
    c.wait_for_workers(&["one", "two"]);
    assert_eq!(c.token(), token, "the join token survives a restart");
    // The same scores, to the last digits JSON carries them with.
    let close = |a: &serde_json::Value, b: &serde_json::Value| {
        (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-12
    };
    let restored = scores(&c);
    assert_eq!(restored.len(), benched.len());
    for ((name, before), (again, after)) in benched.iter().zip(&restored) {
        assert_eq!(name, again);
        assert!(
            close(&before[0], &after[0]),
            "bench scores survive a restart: {benched:?} {restored:?}"
        );
    }
    let pi = run_pi(&c, "1e7", "3");
    assert_eq!(pi["samples"], 10_000_000u64);
}

#[test]
fn workers_and_pings_are_listed_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    // Joined in the other order.
    let _zeta = c.workers([("zeta", 1)]);
    let _alpha = c.worker("alpha", 1);
    c.wait_for_workers(&["alpha", "zeta"]);
    let names = |list: serde_json::Value, key: &str| -> Vec<String> {
        list.as_array().unwrap().iter().map(|w| w[key].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(c.json(&["workers"]), "name"), ["alpha", "zeta"]);
    assert_eq!(names(c.json(&["ping"]), "worker"), ["alpha", "zeta"]);
    let out = c.ctl(&["workers"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let (alpha, zeta) = (text.find("alpha").unwrap(), text.find("zeta").unwrap());
    assert!(alpha < zeta, "{text}");
}

#[test]
fn a_coordinator_failing_on_its_side_of_a_join_is_waited_for() {
    // A refusal stops a worker for good (status 78, not restarted): the coordinator's own
    // trouble must not look like one. Here its join secret cannot be read for a while.
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let token = c.token();
    let secret_path = c.dir.join("state/join-secret");
    let secret = std::fs::read(&secret_path).unwrap();
    std::fs::remove_file(&secret_path).unwrap();
    std::fs::create_dir(&secret_path).unwrap();

    let mut worker = start_worker(&c.dir, &c.addr, "patient", 1, Some(&token));
    wait_for("the worker to be told to come back later", Duration::from_secs(20), || {
        worker.log_text().contains("cannot take joins just now").then_some(())
    });
    assert!(worker.is_running(), "{}", worker.log_text());

    std::fs::remove_dir(&secret_path).unwrap();
    std::fs::write(&secret_path, secret).unwrap();
    c.wait_for_workers(&["patient"]);
}

/// A peer on the LAN, before any authentication, sends join requests: a name made to forge a
/// log line ("... joined the cluster"), then 200 requests with a wrong secret. The log shows
/// the name escaped on the refusal's own line, and holds back the flood.
#[test]
fn a_joining_peer_can_neither_forge_nor_flood_the_coordinators_log() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let hostile = |token: &str, name: &str, count: &str| {
        let out = std::process::Command::new(bin("hostile-join"))
            .args([c.addr.as_str(), token, name, count])
            .arg(dir.path().join("hostile-state"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let token = c.token();
    let forged = "mallory\nINFO marmotd: worker 'trusted' at 10.0.0.9:7070 joined the cluster";
    let answers = hostile(&token, forged, "1");
    assert!(
        answers.starts_with("refused:") && answers.contains("is not a worker name"),
        "{answers}"
    );

    // The secret replaced: refused 200 times as fast as it can ask.
    let (known, _secret) = token.rsplit_once('-').unwrap();
    let wrong = format!("{known}-{}", "00".repeat(16));
    let answers = hostile(&wrong, "w1", "200");
    assert_eq!(answers.lines().filter(|l| l.contains("wrong join token")).count(), 200);

    let log = c.proc.log_text();
    for line in log.lines().filter(|l| l.contains("'trusted'")) {
        assert!(line.contains("refused to let 'mallory\\nINFO"), "a forged line: {line}");
    }
    let refusals = log.lines().filter(|l| l.contains("refused to let")).count();
    assert!(refusals <= 11, "{refusals} refusal lines for 201 refusals:\n{log}");
    assert!(log.len() < 16 * 1024, "{} bytes of log", log.len());
    // The cluster still takes honest workers.
    let _w = c.workers([("honest", 1)]);
}

/// 1,000 connections from a peer with no token and no certificate, each trying to open
/// streams and push a 4 MiB first message that never ends: the coordinator refuses most
/// before their handshake, takes at most 16 KiB of any, drops each within seconds, and its
/// memory grows by less than 50 MB at its peak. A running job is not disturbed.
#[test]
fn unauthenticated_connections_cost_the_coordinator_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("w1", 2)]);
    let job = detach(&c, &["pi", "400000000", "--seed", "5"]);
    let (before, _) = memory_of(c.proc.pid());

    let out = std::process::Command::new(bin("hostile-flood"))
        .args([c.addr.as_str(), &c.token(), "1000"])
        .output()
        .unwrap();
    let tally = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{tally}{}", String::from_utf8_lossy(&out.stderr));
    let numbers: Vec<u64> =
        tally.split_whitespace().filter_map(|w| w.parse().ok()).collect::<Vec<_>>();
    let [connected, refused, streams, bytes] = numbers[..] else { panic!("{tally}") };
    assert_eq!(connected + refused, 1000, "{tally}");
    assert!(refused > 0, "none refused: {tally}");
    assert_eq!(streams, connected, "one stream each: {tally}");
    // A 64 KiB connection window, of which the 16 KiB frame bound lets the reader take little.
    assert!(bytes <= connected * 128 * 1024, "{tally}");

    let (after, peak) = memory_of(c.proc.pid());
    let grew = peak.saturating_sub(before);
    assert!(grew < 50 << 20, "peak {peak} B, {grew} B over {before} B before; {tally}");
    assert!(after < before + (50 << 20), "{after} B after, {before} B before");
    // The job finished right, and the coordinator still serves.
    let result = c.json(&["wait", &job.to_string()]);
    let estimate = result["estimate"].as_f64().unwrap();
    assert!((estimate - std::f64::consts::PI).abs() < 1e-3, "{result}");
    let _w2 = c.worker("w2", 1);
    c.wait_for_workers(&["w1", "w2"]);
}

/// Strangers on the LAN holding every place a connection can wait in, from 16 source
/// addresses (127.0.0.10 on): 64 idle after their handshake (4 per address, the bound) and 160
/// stalled inside it, each opened again as soon as the coordinator drops it. A worker restarted
/// meanwhile and a new joiner get in while the flood goes on (members never wait among
/// strangers; a newcomer takes the oldest stranger's place; Retry under pressure).
#[test]
fn strangers_holding_every_place_do_not_lock_members_out() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let [mut w1] = c.workers([("w1", 1)]);
    let token = c.token();
    let flood = |kind: &str, per_source: &str| {
        let mut cmd = std::process::Command::new(bin("hostile-flood"));
        cmd.args([c.addr.as_str(), &token, "hold", "16", per_source, "60", kind]);
        let flood = Proc::spawn(cmd, dir.path().join(format!("flood-{kind}.log")));
        wait_for("the flood", Duration::from_secs(20), || {
            flood.log_text().contains("holding").then_some(())
        });
        flood
    };
    let (mut stalled, mut idle) = (flood("stall", "10"), flood("idle", "4"));
    let waiting = wait_for("strangers in every place", Duration::from_secs(30), || {
        let waiting = c.json(&["status"])["waiting"].clone();
        let full = waiting["strangers"] == 64 && waiting["handshaking"].as_u64() >= Some(128);
        full.then_some(waiting)
    });
    assert_eq!(waiting["members"], 0, "{waiting}");

    w1.kill();
    let restarted = std::time::Instant::now();
    let w1 = start_worker(dir.path(), &c.addr, "w1", 1, None);
    let w2 = c.worker("w2", 1);
    // When each got in, watched together: the time is the figure the issue asks for.
    let mut took = [None, None];
    wait_for("both welcomed", Duration::from_secs(30), || {
        for (i, w) in [&w1, &w2].into_iter().enumerate() {
            if took[i].is_none() && w.log_text().contains("connected to the coordinator") {
                took[i] = Some(restarted.elapsed().as_secs_f64());
            }
        }
        took.iter().all(Option::is_some).then_some(())
    });
    eprintln!(
        "while strangers held every place: restarted w1 in after {:.2} s, joining w2 after {:.2} s",
        took[0].unwrap(),
        took[1].unwrap()
    );
    c.wait_for_workers(&["w1", "w2"]);
    assert!(stalled.is_running() && idle.is_running(), "the flood went on all along");
    let waiting = c.json(&["status"])["waiting"].clone();
    assert!(waiting["strangers"].as_u64() >= Some(48), "still flooded: {waiting}");
    // The strangers are still there, and in the metrics.
    let (code, body) = api(&c.socket, "GET", "/metrics", b"");
    let metrics = String::from_utf8_lossy(&body).to_string();
    assert_eq!(code, 200, "{metrics}");
    let line =
        metrics.lines().find(|l| l.starts_with("marmot_connections_waiting{place=\"strangers\"}"));
    let held: u64 = line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0);
    assert!(held >= 48, "{metrics}");
}
