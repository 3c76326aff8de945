//! A test fixture: a "marmotd" that passes the smoke test (`--version`) and crashes at start.
//!
//! It carries a version stamp newer than any real build, so an update to it is not a
//! downgrade; the update tests offer it to workers and expect it to be rolled back.

use std::process::ExitCode;

#[used]
static STAMP: &str = concat!("MARMOT-VERSION[", env!("CARGO_PKG_VERSION"), "+99991231235959]");

fn main() -> ExitCode {
    let version = STAMP.trim_start_matches("MARMOT-VERSION[").trim_end_matches(']');
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("marmotd {version}");
        return ExitCode::SUCCESS;
    }
    eprintln!("crash-at-start: failing at start, on purpose");
    ExitCode::from(3)
}
