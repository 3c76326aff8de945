//! End-to-end tests: the real `marmotd` and `marmotctl` binaries, real QUIC on 127.0.0.1,
//! temp dirs and OS-chosen ports. Every wait is for an event (a socket appears, a worker is
//! listed, a job ends), bounded by a deadline; none is a fixed sleep.
//!
//! The binaries are the ones `cargo test --workspace` builds next to this test.

// Helpers outside `#[test]` functions panic on purpose: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod oracle;
mod util;

/// The control API as scripts use it: the README's curl examples, JSON errors.
mod api;
/// The dashboard's page in a real Chromium (the browser lab: `--features browser`).
#[cfg(feature = "browser")]
mod browser;
/// Joining, trust and refusals, restarts.
mod cluster;
/// `marmotctl run cmd`: users' commands over inputs, with files, output, failures and
/// cancellation, on real processes.
mod commands;
/// The dashboard: its live feed, `/metrics`, who may see it, `marmotctl dashboard`, `logs`,
/// `top`.
mod dashboard;
/// `marmotd demo`, the README's first command, through the control API's client.
mod demo;
/// Jobs that outlive the coordinator: kill -9, update --coordinator, a partitioned worker,
/// results kept until read, a damaged journal.
mod durable;
/// Mistakes a user can make, each one clear line and a non-zero exit.
mod errors;
/// freefall: points streamed in order, plots, drag and sweeps.
mod freefall;
/// `marmotd install`'s dry runs and mistakes; the package's generated files.
mod install;
/// Jobs under failure: killed workers, cancellation, workers joining mid-job.
mod jobs;
/// Workers on laptops: paused on battery (units suspended in place), fewer slots when hot,
/// only in their hours.
mod laptop;
/// Files stay where they were sent: a second run over them sends few again.
mod locality;
/// Members: names bound to certificates, revocation, renewal.
mod members;
/// `marmotctl parallel` against GNU parallel's own tutorial.
mod parallel;
/// The README's first steps, run as written.
mod readme;
/// Command jobs that outlive the coordinator: kill -9, update --coordinator, a worker lost
/// with it.
mod resumed;
/// What the systemd units rely on: readiness, graceful stop, unit files that verify.
mod service;
/// The lab notebook's tasks, each checked against an independent oracle.
mod tasks;
/// `marmotctl update`: rolling, in place, rollback, the coordinator too.
mod update;
/// Workers across a WAN: a slow, lossy link, and an address that changes mid-job.
mod wan;
