//! marmotd: one binary that is a marmot coordinator, a worker, or a whole local cluster.
//!
//! # Layout
//! - [`scheduler`]: the sans-IO scheduling state machine (events in, actions out).
//! - [`tasks`]: every built-in task, one module each: what it checks, cuts, sends, runs,
//!   reduces and returns. The only place that names a task.
//! - [`kernels`]: the tasks' compute kernels, plain functions with a cancellation flag.
//! - [`coordinator`]: accepts workers over QUIC, drives the scheduler, serves the control API.
//! - [`journal`]: the coordinator's jobs in SQLite, so they outlive it.
//! - [`descriptors`]: the open-file limit raised at start.
//! - [`worker`]: joins, connects forever, runs chunks on a pool of slot threads.
//! - [`exec`]: users' commands: their files, units, processes and output, on both roles.
//! - [`transport`]: quinn endpoints and transport settings shared by both roles.
//! - [`update`]: receiving, checking and installing a new `marmotd`, with rollback.
//! - [`local`]: a coordinator and N workers in one process, and the `demo`.
//! - [`priority`]: the lowest CPU and I/O priority, for what runs the cluster's work.
//! - [`systemd`]: readiness notification for `Type=notify` units.
//! - [`install`]: `marmotd install`/`uninstall`: the systemd services in one command.
//! - [`cli`]: command-line flags, turned into the plain configs the modules take.
//! - [`logging`]: log output for a terminal, a pipe, or the journal.
//! - [`logbook`]: log lines gathered on the coordinator: workers' and its own.
//! - [`throttle`]: a burst of log lines per window, the rest counted.
//! - [`fatal`]: errors that restarting cannot fix (exit status 78, not restarted by systemd).
//! - [`state_dir`]: each role's state directory, and the lock that keeps it to one process.

pub mod cli;
pub mod coordinator;
pub mod descriptors;
pub mod exec;
pub mod fatal;
pub mod install;
pub mod journal;
pub mod kernels;
pub mod local;
pub mod logbook;
pub mod logging;
pub mod priority;
pub mod scheduler;
pub mod state_dir;
pub mod systemd;
pub mod tasks;
pub mod throttle;
pub mod transport;
pub mod update;
pub mod worker;
