//! `marmotd`'s command line, run as the real binary: usage errors are one line and exit 2.
//!
//! (Having integration tests here also makes `cargo test --workspace` build the `marmotd`
//! binary that the end-to-end tests in `tests/` start.)

use std::process::Command;

fn marmotd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_marmotd")).args(args).output().expect("run marmotd")
}

#[test]
fn version_prints_the_package_version() {
    let out = marmotd(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_are_one_line() {
    for (args, needle) in [
        (&["worker"][..], "--coordinator"),
        (&["worker", "--coordinator", "h", "--slots", "0"], "--slots"),
        (&["coordinator", "--dead-after", "forever"], "5s"),
        (&["coordinator", "--straggler-factor", "0.5"], "greater than 1"),
        (&["frobnicate"], "frobnicate"),
    ] {
        let out = marmotd(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
