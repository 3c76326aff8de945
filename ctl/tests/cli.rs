//! `marmotctl`'s command line, run as the real binary: usage errors are one line and exit 2.
//!
//! (Having integration tests here also makes `cargo test --workspace` build the `marmotctl`
//! binary that the end-to-end tests in `tests/` run.)

use std::process::Command;

fn marmotctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_marmotctl")).args(args).output().expect("run marmotctl")
}

#[test]
fn bad_numbers_and_durations_are_one_line_before_any_connection() {
    for (args, needle) in [
        (&["run", "pi", "0"][..], "at least 1"),
        (&["run", "pi", "-5"], "negative"),
        (&["run", "pi", "abc"], "not a whole number"),
        (&["run", "pi", "1e30"], "larger than"),
        (&["run", "pi"], "SAMPLES"),
        (&["ping", "--timeout", "soon"], "2s"),
        (&["cancel", "x"], "x"),
        (&["run", "count", "ab", "--random", "5"], "not one character"),
        (&["run", "count", "e"], "--random"),
        (&["run", "count", "e", "--random", "5", "--text", "x"], "cannot be used with"),
        (&["run", "prime", "-7"], "negative"),
    ] {
        let out = marmotctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    // One set of examples, not humantime's and ours.
    let out = marmotctl(&["ping", "--timeout", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("time unit needed: write it like 2s or 500ms"), "{stderr}");
    assert!(!stderr.contains("for example"), "{stderr}");
}

#[test]
fn help_says_each_default_once() {
    let out = marmotctl(&["dashboard", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let port = help.lines().find(|l| l.contains("--port")).expect("--port in the help");
    assert_eq!(port.matches("default").count(), 1, "{port}");
}

#[test]
fn a_file_that_cannot_be_read_is_one_line_before_any_connection() {
    let out = marmotctl(&[
        "--socket",
        "/nonexistent.sock",
        "run",
        "count",
        "e",
        "--file",
        "/no/such/file",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot read /no/such/file"), "{stderr}");
}
