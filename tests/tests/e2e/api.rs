//! The control API as scripts use it: the README's `curl` examples run as written, and every
//! rejection (axum's own included) answered with the documented `{"error": ...}` body.

use crate::util::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The README's `curl` command lines (backslash continuations joined), in order.
fn readme_curl_examples() -> Vec<String> {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(readme).unwrap();
    let mut examples = vec![];
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        match &mut current {
            Some(command) => command.push_str(line.trim_end_matches('\\')),
            None if line.starts_with("curl --unix-socket") => {
                current = Some(line.trim_end_matches('\\').to_string());
            }
            None => continue,
        }
        if !line.ends_with('\\') {
            examples.extend(current.take());
        }
    }
    examples
}

#[test]
fn the_readmes_curl_examples_work_as_written() {
    let examples = readme_curl_examples();
    assert!(examples.len() >= 3, "the README shows the API with curl: {examples:?}");
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("a", 1), ("b", 1)]);
    for example in &examples {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{example} --silent --show-error"))
            .env("MARMOT_SOCKET", &c.socket)
            .output()
            .expect("curl (the tests need it: apt-get install curl)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{example}: {}", String::from_utf8_lossy(&out.stderr));
        if example.contains("/metrics") {
            // Prometheus' text, not JSON.
            let lines = stdout.lines().map(|l| Ok(l.to_string()));
            let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
            assert!(scrape.samples.iter().any(|s| s.metric == "marmot_workers_connected"));
            continue;
        }
        let answer: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{example} answered no JSON ({e}): {stdout}"));
        assert!(answer.get("error").is_none_or(Value::is_null), "{example} failed: {answer}");
    }
}

/// One request with a chosen `Content-Type` (or none): the status and the body, which must
/// be JSON (and a failure's must say so in its `Content-Type`).
fn request(
    c: &Coordinator,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    let (status, head, body) = api_with(&c.socket, method, path, content_type, body);
    let head = head.to_ascii_lowercase();
    let json = serde_json::from_slice(&body).unwrap_or_else(|_| {
        panic!("{method} {path}: not JSON: {head}\n{}", String::from_utf8_lossy(&body))
    });
    if status >= 400 {
        assert!(head.contains("content-type: application/json"), "{method} {path}: {head}");
    }
    (status, json)
}

#[test]
fn bodies_are_json_whatever_the_content_type_and_every_rejection_is_json() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("w", 1)]);
    let job = br#"{"pi":{"samples":1000,"seed":1}}"#;
    for content_type in [None, Some("application/x-www-form-urlencoded"), Some("text/plain")] {
        let (status, view) = request(&c, "POST", "/v1/jobs", content_type, job);
        assert_eq!(status, 200, "{content_type:?}: {view}");
        assert!(view["id"].as_u64().is_some(), "{view}");
    }
    let rejections: [(&str, &str, &[u8], u16, &str); 6] = [
        ("POST", "/v1/jobs", b"not json", 400, "not what this route takes"),
        ("POST", "/v1/jobs", br#"{"dance":{}}"#, 400, "unknown variant"),
        ("GET", "/v1/nowhere", b"", 404, "no such route"),
        (
            "DELETE",
            "/v1/status",
            b"",
            405,
            "delete is not allowed on /v1/status (allowed: get,head)",
        ),
        ("GET", "/v1/jobs/abc", b"", 400, "abc"),
        ("GET", "/v1/jobs/999999", b"", 404, "no job 999999"),
    ];
    for (method, path, body, want, needle) in rejections {
        let (status, answer) = request(&c, method, path, None, body);
        assert_eq!(status, want, "{method} {path}: {answer}");
        let text = answer["error"].as_str().unwrap_or_else(|| panic!("no error text: {answer}"));
        assert!(
            text.to_lowercase().contains(needle),
            "{method} {path}: '{needle}' not in '{text}'"
        );
    }
    let huge = vec![b' '; 3 << 20];
    let (status, answer) = request(&c, "POST", "/v1/jobs", Some("application/json"), &huge);
    assert_eq!(status, 413);
    assert!(answer["error"].as_str().is_some(), "{answer}");
    // The coordinator still serves.
    c.wait_idle(Duration::from_secs(20));
    assert_eq!(c.json(&["status"])["workers"], 1);
}
