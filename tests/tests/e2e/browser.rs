//! The dashboard's page in a real headless Chromium (Debian's `chromium`, driven through
//! `chromedriver` over WebDriver), against a real cluster: the browser lab, run with
//! `cargo test -p marmot-tests --features browser --test e2e browser::`.
//!
//! What a user sees is read from the page's elements (their `data-` attributes and text); the
//! page's own record (`window.marmot`) gives when each job was first shown ended, for the
//! latency from a job's last chunk to the page. A screenshot of the busy cluster is saved as
//! `target/tmp/dashboard.png` (with `MARMOT_BLESS=1`, also as the README's).

use crate::util::*;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the page may take to show something.
const SHOWN_WITHIN: Duration = Duration::from_secs(60);

/// A chromedriver on a free port, with a headless Chromium session.
struct Browser {
    _driver: Proc,
    client: Client,
    runtime: tokio::runtime::Runtime,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(dir: &Path) -> Browser {
        let port = free_tcp_port();
        let mut cmd = Command::new("chromedriver");
        cmd.arg(format!("--port={port}"));
        let driver = Proc::spawn(cmd, dir.join(format!("chromedriver-{}.log", unique())));
        wait_for("chromedriver", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(drop)
        });
        let profile = tempfile::tempdir().unwrap();
        // The flags Chromium needs as root, headless, on a machine with no way out.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({ "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args } });
        let Value::Object(caps) = caps else { unreachable!() };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = runtime
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a Chromium session");
        Browser { _driver: driver, client, runtime, _profile: profile }
    }

    fn goto(&self, url: &str) {
        self.runtime.block_on(self.client.goto(url)).expect("the page loads");
    }

    /// Runs `script` in the page (a function body: `return ...`).
    fn eval(&self, script: &str) -> Value {
        self.runtime.block_on(self.client.execute(script, vec![])).expect("the script runs")
    }

    /// Waits until `script` returns something other than `null` or `false`, and returns it.
    fn until(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + SHOWN_WITHIN;
        loop {
            let value = self.eval(script);
            if !(value.is_null() || value == Value::Bool(false)) {
                return value;
            }
            assert!(Instant::now() < deadline, "the page never showed {what}");
            // Paced polling of the page's state, as a WebDriver wait does.
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Clicks the element `css` finds, inside the page: the page redraws its tables on every
    /// overview, so an element found by one WebDriver call may be gone by the next.
    fn click(&self, css: &str) {
        let clicked = self.eval(&format!(
            "const e = document.querySelector('{css}'); if (e) e.click(); return !!e;"
        ));
        assert_eq!(clicked, Value::Bool(true), "nothing to click at {css}");
    }

    fn screenshot(&self, path: &Path) {
        let png = self.runtime.block_on(self.client.screenshot()).expect("a screenshot");
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.runtime.block_on(client.close());
    }
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The worker cards the page shows, with their state: `[[name, state], ...]`.
const WORKER_CARDS: &str = "return [...document.querySelectorAll('.worker')]
    .map(e => [e.dataset.name, e.dataset.state]);";

fn cards(b: &Browser) -> Vec<(String, String)> {
    let list = b.eval(WORKER_CARDS);
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string()))
        .collect()
}

/// A job row's progress bar width in percent, once it shows.
fn progress(b: &Browser, id: u64) -> f64 {
    let script = format!(
        "const i = document.querySelector('tr[data-job=\"{id}\"] .progress i');
         return i ? parseFloat(i.style.width) : null;"
    );
    b.until("the job's row", &script).as_f64().unwrap()
}

fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png")
}

#[test]
fn the_page_follows_a_busy_cluster_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let http_port = free_tcp_port();
    let http = format!("127.0.0.1:{http_port}");
    let exe = bin("marmotd");
    let c = Coordinator::start_with(&exe, dir.path(), "127.0.0.1:0", &["--http", &http]);
    let [_a, _b, lost] = c.workers([("attic", 1), ("desk", 1), ("shelf", 1)]);
    let b = Browser::start(dir.path());
    let page = format!("http://{http}/");
    b.goto(&page);
    b.until("three workers", "return document.querySelectorAll('.worker').length === 3;");
    assert_eq!(
        cards(&b),
        [("attic", "connected"), ("desk", "connected"), ("shelf", "connected")]
            .map(|(n, s)| (n.to_string(), s.to_string()))
    );

    // A long job: its bar moves, and the cluster is busy for the screenshot.
    let id = detach(&c, &["pi", "60000000000", "--seed", "1"]);
    let first = b.until(
        "the job under way",
        &format!(
            "const i = document.querySelector('tr[data-job=\"{id}\"] .progress i');
             const w = i ? parseFloat(i.style.width) : 0; return w > 0 && w < 60 ? w : null;"
        ),
    );
    let moved = b.until(
        "the bar moving",
        &format!(
            "const i = document.querySelector('tr[data-job=\"{id}\"] .progress i');
             const w = parseFloat(i.style.width); return w > {} ? w : null;",
            first.as_f64().unwrap()
        ),
    );
    assert!(moved.as_f64().unwrap() > first.as_f64().unwrap());
    // Each worker's card shows what the coordinator says of it: its slots, each busy.
    let workers = c.json(&["workers"]);
    let slots: Vec<u64> =
        workers.as_array().unwrap().iter().map(|w| w["slots"].as_u64().unwrap()).collect();
    assert_eq!(slots, [1, 1, 1], "{workers}");
    b.until(
        "every card with its one slot busy",
        "const cards = Array.from(document.querySelectorAll('.worker'));
         return cards.length === 3 && cards.every(w =>
           w.querySelectorAll('.slots i').length === 1 &&
           w.querySelectorAll('.slots i.busy').length === 1 &&
           w.textContent.includes('1/1 busy'));",
    );
    // For the screenshot: a few seconds of rates drawn, and one worker's log lines shown.
    b.until(
        "the job a third done",
        &format!(
            "const i = document.querySelector('tr[data-job=\"{id}\"] .progress i');
             return parseFloat(i.style.width) > 45;"
        ),
    );
    b.click(".worker[data-name=\"attic\"]");
    b.until(
        "attic's log lines",
        "return document.querySelector('#logs div') !== null && \
         document.getElementById('logs-title').textContent === 'Logs of attic';",
    );
    b.screenshot(&screenshot_path());
    // On a phone's screen: nothing wider than the screen (no sideways scrolling).
    b.runtime.block_on(b.client.set_window_size(390, 844)).unwrap();
    let fits = b.until(
        "the phone layout",
        "const root = document.documentElement;
         return window.innerWidth <= 400 ? root.scrollWidth <= root.clientWidth : null;",
    );
    assert_eq!(fits, Value::Bool(true), "the page is wider than a phone's screen");
    b.screenshot(&screenshot_path().with_file_name("dashboard-phone.png"));
    b.runtime.block_on(b.client.set_window_size(1280, 1000)).unwrap();
    if std::env::var_os("MARMOT_BLESS").is_some() {
        let readme_copy = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard.png");
        std::fs::copy(screenshot_path(), readme_copy).unwrap();
    }

    // A worker killed outright is shown lost (once its connection times out).
    lost.signal(nix::sys::signal::Signal::SIGKILL);
    b.until(
        "shelf lost",
        "const e = document.querySelector('.worker[data-name=\"shelf\"]');
         return e && e.dataset.state === 'lost';",
    );
    // Its chunks run elsewhere; the result shows.
    let result = b.until(
        "the job's result",
        &format!(
            "const r = document.querySelector('tr[data-job=\"{id}\"][data-state=\"done\"] .result');
             return r ? r.textContent : null;"
        ),
    );
    assert!(result.as_str().unwrap().starts_with("pi ≈ 3.14"), "{result}");
    assert_eq!(progress(&b, id), 100.0);
    // The progress text stands beside its bar, whole: not over it, not cut.
    let laid_out = b.eval(&format!(
        "const p = document.querySelector('tr[data-job=\"{id}\"] .progress');
         const bar = p.querySelector('.track').getBoundingClientRect();
         const text = p.querySelector('span');
         const box = text.getBoundingClientRect();
         return [bar.right <= box.left, text.scrollWidth <= Math.ceil(box.width), box.right <= p.getBoundingClientRect().right + 0.5];"
    ));
    assert_eq!(laid_out, serde_json::json!([true, true, true]), "text beside the bar, whole");

    // Cancel: refused without the token (the page says why), done with it.
    let long = detach(&c, &["pi", "1000000000000"]);
    let button = format!("button[data-cancel=\"{long}\"]");
    b.until("the cancel button", &format!("return !!document.querySelector('{button}');"));
    b.click(&button);
    let notice = b.until(
        "the refusal",
        "const t = document.getElementById('notice').textContent; return t || null;",
    );
    assert!(notice.as_str().unwrap().contains("dashboard token"), "{notice}");
    let token = c.json(&["dashboard-token"])["token"].as_str().unwrap().to_string();
    b.goto(&format!("{page}?token={token}"));
    b.until("the cancel button again", &format!("return !!document.querySelector('{button}');"));
    b.click(&button);
    b.until(
        "the job cancelled",
        &format!(
            "return !!document.querySelector('tr[data-job=\"{long}\"][data-state=\"cancelled\"]');"
        ),
    );
    assert_eq!(job_view(&c, long)["state"], "cancelled");

    // From a job's last chunk to the page: the page notes when it first shows each end.
    let mut ids = vec![];
    for seed in 0..10 {
        let id = detach(&c, &["pi", "200000000", "--seed", &seed.to_string()]);
        b.until(
            "the small job done",
            &format!("return window.marmot.seenEnded[{id}] !== undefined;"),
        );
        ids.push(id);
    }
    let latencies = b.eval("return window.marmot.latencies;");
    let mut ms: Vec<f64> =
        latencies.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(ms.len() >= ids.len(), "every end seen live: {ms:?}");
    ms.sort_by(f64::total_cmp);
    let line = format!(
        "dashboard latency, job end to page, {} jobs: median {:.0} ms, max {:.0} ms\n",
        ms.len(),
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    );
    print!("{line}");
    std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-latency.txt"), line)
        .unwrap();

    // The coordinator restarts: the page reconnects by itself and shows the new one.
    let before = b.eval("return window.marmot.overviews;").as_u64().unwrap();
    let listen = c.addr.clone();
    drop(c);
    b.until(
        "the link lost",
        "return document.getElementById('link').textContent === 'reconnecting';",
    );
    let c = Coordinator::start_with(&exe, dir.path(), &listen, &["--http", &http]);
    b.until("the link back", "return document.getElementById('link').textContent === 'live';");
    let after = b.until(
        "a fresh overview",
        &format!("return window.marmot.overviews > {before} ? window.marmot.overviews : null;"),
    );
    assert!(after.as_u64().unwrap() > before);
    assert!(c.json(&["status"])["uptime_seconds"].as_f64().unwrap() < 120.0);
}

#[test]
fn marmotctl_dashboard_shows_the_same_page_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _w = c.workers([("porch", 1)]);
    let (mut child, url) = crate::dashboard::local_dashboard(&c);
    let b = Browser::start(dir.path());
    b.goto(&url);
    b.until("porch", "return document.querySelector('.worker[data-name=\"porch\"]') !== null;");
    b.until("the feed live", "return document.getElementById('link').textContent === 'live';");
    child.kill().unwrap();
    child.wait().unwrap();
}
