use crate::util::*;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// The port the coordinator's log says its `--http` dashboard listens on.
fn http_port(c: &Coordinator) -> u16 {
    wait_for("the dashboard's address in the log", Duration::from_secs(20), || {
        let log = c.proc.log_text();
        let rest = log.split("dashboard on http://").nth(1)?.to_string();
        let addr = rest.split('/').next()?;
        addr.rsplit(':').next()?.parse().ok()
    })
}

/// One HTTP/1.1 request to 127.0.0.1:`port`: the status and the body.
fn http(port: u16, method: &str, path: &str, bearer: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let auth = bearer.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("write");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("read");
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply[9..12].parse().expect("status");
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    (status, body)
}

/// A live feed (`GET /v1/overview/stream`) read one overview at a time.
struct Feed {
    lines: BufReader<TcpStream>,
}

impl Feed {
    fn open(port: u16, path: &str) -> Feed {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        stream.write_all(head.as_bytes()).expect("write");
        Feed { lines: BufReader::new(stream) }
    }

    /// The next overview (SSE `data:` line; chunked framing and comments skipped).
    fn next(&mut self) -> Value {
        loop {
            let mut line = String::new();
            let n = self.lines.read_line(&mut line).expect("the feed goes on");
            assert!(n > 0, "the feed ended");
            if let Some(json) = line.trim_end().strip_prefix("data: ") {
                return serde_json::from_str(json).expect("an overview");
            }
        }
    }

    /// Reads overviews until one satisfies `check`.
    fn until(&mut self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..600 {
            let overview = self.next();
            if check(&overview) {
                return overview;
            }
        }
        panic!("no overview showed {what}");
    }
}

/// Every sample of `/metrics`, by name and labels, read by a Prometheus parser.
fn scrape(text: &str) -> HashMap<String, f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    scrape
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<String> =
                s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("{} is a {other:?}", s.metric),
            };
            let key = if labels.is_empty() {
                s.metric
            } else {
                format!("{}{{{}}}", s.metric, labels.join(","))
            };
            (key, value)
        })
        .collect()
}

/// Runs a job to its end; its view.
fn finished(c: &Coordinator, args: &[&str]) -> Value {
    let id = detach(c, args);
    assert!(c.ctl(&["wait", &id.to_string()]).status.success());
    job_view(c, id)
}

fn started_with_http(dir: &Path, http: &str) -> Coordinator {
    Coordinator::start_with(&bin("marmotd"), dir, "127.0.0.1:0", &["--http", http, "--verify", "0"])
}

#[test]
fn metrics_count_the_work_done_as_a_prometheus_parser_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let c = started_with_http(dir.path(), "127.0.0.1:0");
    let _workers = c.workers([("m1", 1), ("m2", 2)]);
    let view = finished(&c, &["pi", "300000000", "--seed", "7"]);
    let chunks = view["chunks_done"].as_u64().unwrap();
    assert!(chunks >= 2, "{view}");
    let (status, _, body) = api_with(&c.socket, "GET", "/metrics", None, b"");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("# TYPE marmot_chunks_done counter"), "{text}");
    let m = scrape(&text);
    assert_eq!(m["marmot_workers_connected"], 2.0);
    assert_eq!(m["marmot_slots"], 3.0);
    assert_eq!(m["marmot_jobs_submitted_total"], 1.0);
    assert_eq!(m["marmot_jobs_ended_total{state=done}"], 1.0);
    assert_eq!(m["marmot_jobs_ended_total{state=failed}"], 0.0);
    assert_eq!(m["marmot_chunks_done_total"], chunks as f64);
    assert!(m["marmot_chunks_started_total"] >= chunks as f64);
    assert_eq!(m["marmot_worker_joins_total"], 2.0);
    let units = m["marmot_worker_units_done_total{worker=m1}"]
        + m["marmot_worker_units_done_total{worker=m2}"];
    assert_eq!(units, 3e8, "every sample counted once, to someone");
    let per_worker = m["marmot_worker_chunks_done_total{worker=m1}"]
        + m["marmot_worker_chunks_done_total{worker=m2}"];
    assert_eq!(per_worker, chunks as f64);
    assert!(m["marmot_sent_bytes_total"] > 0.0 && m["marmot_received_bytes_total"] > 0.0);
    assert!(m["marmot_worker_rtt_seconds{worker=m1}"] > 0.0);
    // The same on the --http address, without a token on loopback.
    let (status, body) = http(http_port(&c), "GET", "/metrics", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(scrape(&body)["marmot_chunks_done_total"], chunks as f64);
}

#[test]
fn the_live_feed_shows_workers_a_job_to_its_result_and_a_lost_worker() {
    let dir = tempfile::tempdir().unwrap();
    let c = started_with_http(dir.path(), "127.0.0.1:0");
    let [_f1, f2] = c.workers([("f1", 1), ("f2", 1)]);
    let port = http_port(&c);
    let mut feed = Feed::open(port, "/v1/overview/stream");
    let first = feed.next();
    let names: Vec<&str> =
        first["workers"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["f1", "f2"]);
    let id = detach(&c, &["pi", "10000000000", "--seed", "3"]);
    // Seen running part done: the feed shows progress, not only ends.
    feed.until("the job moving", |o| {
        o["jobs"].as_array().unwrap().iter().any(|j| {
            j["id"] == id && j["state"] == "running" && j["chunks_done"].as_u64() > Some(0)
        })
    });
    let done = feed.until("the job's result", |o| {
        o["jobs"].as_array().unwrap().iter().any(|j| j["id"] == id && j["state"] == "done")
    });
    let job = done["jobs"].as_array().unwrap().iter().find(|j| j["id"] == id).unwrap().clone();
    assert!(job["summary"].as_str().unwrap().starts_with("pi ≈ 3.14"), "{job}");
    assert!(job["ended_unix_ms"].as_u64().is_some(), "{job}");
    let shares: u64 =
        job["workers"].as_array().unwrap().iter().map(|w| w["units"].as_u64().unwrap()).sum();
    assert_eq!(shares, 10_000_000_000);
    // The event log has the joins.
    let events: Vec<&str> =
        done["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(events.iter().any(|m| m.contains("worker 'f2' connected")), "{events:?}");
    f2.signal(nix::sys::signal::Signal::SIGKILL);
    let lost = feed.until("f2 gone", |o| o["workers"].as_array().unwrap().len() == 1);
    assert_eq!(lost["workers"][0]["name"], "f1");
    assert!(lost["counters"]["workers_lost"].as_u64() >= Some(1), "{lost}");
}

#[test]
fn the_http_dashboard_reads_freely_on_loopback_and_asks_a_token_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let c = started_with_http(dir.path().join("loop").as_path(), "127.0.0.1:0");
    let port = http_port(&c);
    let (status, page) = http(port, "GET", "/", None);
    assert_eq!(status, 200);
    assert!(page.contains("<title>marmot</title>") && page.contains("EventSource"), "{page}");
    assert_eq!(http(port, "GET", "/v1/overview", None).0, 200);
    // Cancel always needs the token; none exists yet.
    let (status, body) = http(port, "DELETE", "/v1/jobs/1", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("marmotctl dashboard-token"), "{body}");
    // Only the dashboard's routes are served here, not the control API.
    assert_eq!(http(port, "GET", "/v1/workers", None).0, 404);
    let made = c.json(&["dashboard-token"]);
    let token = made["token"].as_str().unwrap().to_string();
    let again = c.ctl(&["dashboard-token"]);
    one_line_error(&again, "--rotate");
    let (status, body) = http(port, "DELETE", "/v1/jobs/1", Some("wrong"));
    assert_eq!(status, 401);
    assert!(body.contains("wrong dashboard token"), "{body}");
    // With the token, cancel reaches the coordinator (no such job here).
    let (status, body) = http(port, "DELETE", "/v1/jobs/1", Some(&token));
    assert_eq!(status, 404, "{body}");
    let (status, _) = http(port, "DELETE", &format!("/v1/jobs/1?token={token}"), None);
    assert_eq!(status, 404);

    // On every address: nothing without the token, even from this machine.
    let wide = started_with_http(dir.path().join("wide").as_path(), "0.0.0.0:0");
    let port = http_port(&wide);
    let (status, body) = http(port, "GET", "/", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("none was made yet"), "{body}");
    let token = wide.json(&["dashboard-token"])["token"].as_str().unwrap().to_string();
    assert_eq!(http(port, "GET", "/v1/overview", None).0, 401);
    assert_eq!(http(port, "GET", "/metrics", Some("wrong")).0, 401);
    assert_eq!(http(port, "GET", &format!("/?token={token}"), None).0, 200);
    assert_eq!(http(port, "GET", "/v1/overview/stream", None).0, 401);
    let mut feed = Feed::open(port, &format!("/v1/overview/stream?token={token}"));
    assert_eq!(feed.next()["status"]["workers"], 0);
    // Rotated: the old token stops working at once.
    let rotated = wide.json(&["dashboard-token", "--rotate"]);
    assert_ne!(rotated["token"].as_str().unwrap(), token);
    assert_eq!(http(port, "GET", &format!("/?token={token}"), None).0, 401);
}

/// `marmotctl dashboard` and what it printed first (its URL).
pub fn local_dashboard(c: &Coordinator) -> (Child, String) {
    let mut child = ctl_command()
        .arg("--socket")
        .arg(&c.socket)
        .args(["dashboard"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let url = first.trim().strip_prefix("dashboard: ").expect("a URL").to_string();
    (child, url)
}

#[test]
fn marmotctl_dashboard_serves_the_page_through_the_socket_to_its_own_url_only() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("d1", 1)]);
    let (mut child, url) = local_dashboard(&c);
    let rest = url.strip_prefix("http://127.0.0.1:").unwrap();
    let (port, query) = rest.split_once('/').unwrap();
    let port: u16 = port.parse().unwrap();
    let token = query.strip_prefix("?token=").unwrap();
    let (status, page) = http(port, "GET", &format!("/?token={token}"), None);
    assert_eq!(status, 200);
    assert!(page.contains("EventSource"));
    let (status, body) = http(port, "GET", &format!("/v1/overview?token={token}"), None);
    assert_eq!(status, 200);
    let overview: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(overview["workers"][0]["name"], "d1");
    // Without its secret, or outside the dashboard's routes: nothing.
    assert_eq!(http(port, "GET", "/v1/overview", None).0, 401);
    assert_eq!(http(port, "GET", "/?token=nope", None).0, 401);
    assert_eq!(http(port, "GET", &format!("/v1/workers?token={token}"), None).0, 404);
    assert_eq!(http(port, "POST", &format!("/v1/exit?token={token}"), None).0, 404);
    let mut feed = Feed::open(port, &format!("/v1/overview/stream?token={token}"));
    assert_eq!(feed.next()["workers"][0]["name"], "d1");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn logs_follow_prints_a_line_a_worker_logged_after_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _first = c.workers([("l1", 1)]);
    let out_path = dir.path().join("follow.out");
    let mut follow: Child = ctl_command()
        .arg("--socket")
        .arg(&c.socket)
        .args(["logs", "-f"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the follower's first answer (l1's lines are already there).
    wait_for("l1's lines", Duration::from_secs(30), || {
        std::fs::read_to_string(&out_path).unwrap().contains("l1: ").then_some(())
    });
    let _second = c.worker("l2", 1);
    c.wait_for_workers(&["l1", "l2"]);
    let line = wait_for("l2's connection in the followed log", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&out_path).unwrap();
        text.lines().find(|l| l.contains("l2: connected to the coordinator")).map(str::to_string)
    });
    assert!(line.contains(" INFO  l2: "), "{line}");
    follow.kill().unwrap();
    follow.wait().unwrap();
    // One worker's lines only; the coordinator's own under its name.
    let only = c.ctl(&["logs", "l2"]);
    let text = String::from_utf8_lossy(&only.stdout);
    assert!(only.status.success() && text.lines().all(|l| l.contains(" l2: ")), "{text}");
    let all = String::from_utf8_lossy(&c.ctl(&["logs", "-n", "5000"]).stdout).into_owned();
    assert!(all.contains("coordinator: worker 'l2' connected"), "{all}");
    // --since: an hour back has l1's connection; a millisecond back, long after it, does not.
    let hour = c.ctl(&["logs", "--since", "1h"]);
    let err = String::from_utf8_lossy(&hour.stderr).into_owned();
    let hour = String::from_utf8_lossy(&hour.stdout).into_owned();
    assert!(hour.contains("l1: connected to the coordinator"), "{hour} {err}");
    let now = String::from_utf8_lossy(&c.ctl(&["logs", "--since", "1ms"]).stdout).into_owned();
    assert!(!now.contains("l1: connected to the coordinator"), "{now}");
    let bad = c.ctl(&["logs", "no such"]);
    one_line_error(&bad, "is not a worker name");
}

#[test]
fn a_members_forged_or_flooding_log_lines_are_dropped_and_counted_and_it_stays() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let shouter = c.hostile_member("shouter", 1, "shout");
    wait_for("the shouting done", Duration::from_secs(30), || {
        shouter.log_text().contains("shouted").then_some(())
    });
    // 63 batches, 319 lines: a forged one, one too long (257), then 61 of one line each.
    let counts = || {
        let (_, _, body) = api_with(&c.socket, "GET", "/metrics", None, b"");
        let m = scrape(&String::from_utf8(body).unwrap());
        (m["marmot_log_lines_received_total"], m["marmot_log_lines_refused_total"])
    };
    let (received, refused) = wait_for("every batch read", Duration::from_secs(30), || {
        let (received, refused) = counts();
        (received + refused == 319.0).then_some((received, refused))
    });
    // At most 30 batches in 10 s are read at all, and the two bad ones never kept.
    assert!((28.0..=30.0).contains(&received), "{received} received, {refused} refused");
    let out = c.ctl(&["logs", "shouter", "-n", "5000"]);
    let kept = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(kept.lines().count() as f64, received, "{kept}");
    assert!(kept.lines().all(|l| l.contains("flood") || l.contains("an honest line")), "{kept}");
    assert!(out.status.success(), "{out:?}");
    // Dated u64::MAX ms by the member: dated when it came instead.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let today = &proto::human::rfc3339_millis(now.as_millis() as u64)[..10];
    let honest = kept.lines().find(|l| l.contains("an honest line")).expect("the honest line");
    assert!(honest.starts_with(today), "{honest}");
    let top = c.ctl(&["top", "--once"]);
    assert!(top.status.success(), "{top:?}");
    assert_eq!(c.worker_names(), ["shouter"], "bad batches cost their streams, not the member");
}

#[test]
fn top_once_prints_the_clusters_picture() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("t1", 2)]);
    let id = finished(&c, &["pi", "100000000", "--seed", "1"])["id"].as_u64().unwrap();
    let out = c.ctl(&["top", "--once"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 worker  slots 0/2 busy"), "{text}");
    assert!(text.lines().any(|l| l.contains("t1") && l.contains("127.0.0.1:")), "{text}");
    let job = text.lines().find(|l| l.starts_with(&format!("│{id} "))).expect("the job's row");
    assert!(job.contains("done") && job.contains("100%") && job.contains("pi ≈ 3.14"), "{job}");
    assert!(text.contains("worker 't1' connected"), "the events: {text}");
}

#[test]
fn an_http_address_taken_or_not_one_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let coordinator = |http: &str| {
        let mut cmd = std::process::Command::new(bin("marmotd"));
        cmd.args(["coordinator", "--listen", "127.0.0.1:0", "--http", http, "--state-dir"]);
        cmd.arg(dir.path().join("state")).arg("--socket").arg(dir.path().join("c.sock"));
        cmd.env("RUST_LOG", "off");
        output_within(cmd, Duration::from_secs(20))
    };
    let out = coordinator(&taken);
    one_line_error(&out, &format!("--http {taken}: cannot listen there"));
    assert_eq!(out.status.code(), Some(78), "not for systemd to retry");
    assert!(!dir.path().join("c.sock").exists(), "nothing left behind");
    let out = coordinator("localhost:80");
    one_line_error(&out, "is not a port or an IP:PORT");
}

/// 1,100 idle TCP connections to `--http` (more than a default limit of 1,024 descriptors)
/// lock nothing out: the control socket answers and a job runs on a member meanwhile, the
/// idle connections are closed within the header timeout, and the dashboard serves again.
#[test]
fn idle_connections_to_the_dashboard_lock_nothing_out() {
    // This test's own 1,100 sockets need more than a default soft limit, as the coordinator
    // does (marmotd raises its own).
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    assert!(hard >= 1_500, "this machine allows {hard} open files: too few for this test");
    let dir = tempfile::tempdir().unwrap();
    let c = started_with_http(dir.path(), "127.0.0.1:0");
    let port = http_port(&c);
    let _w = c.workers([("w", 1)]);
    let idle: Vec<TcpStream> =
        (0..1_100).map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect")).collect();
    let status = c.json(&["status"]);
    assert_eq!(status["workers"], 1, "{status}");
    assert_eq!(run_pi(&c, "1e7", "1")["samples"], 10_000_000u64);
    // Each is closed by the coordinator within the header timeout (5 s), unserved.
    for mut stream in idle {
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut byte = [0u8; 1];
        let read = stream.read(&mut byte);
        assert!(matches!(read, Ok(0) | Err(_)), "an idle connection was served: {read:?}");
        if let Err(e) = read {
            assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "still open after 30 s");
        }
    }
    let (code, body) = http(port, "GET", "/v1/overview", None);
    assert_eq!(code, 200, "{body}");
}
