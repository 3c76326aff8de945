//! The exec wing: everything that runs users' commands (`marmotctl run cmd`), on both sides of
//! the wire. The `cmd` task ([`crate::tasks::cmd`]) decides what a job's chunks are and how
//! their outputs count; this folder is how a command chunk actually runs.
//!
//! # Layout
//! - [`cache`]: files by SHA-256, bounded, least recently used out: the coordinator's store of
//!   uploads and each worker's cache of what it was sent.
//! - [`spool`]: where units' output waits on the coordinator, a dir per job.
//! - [`chunk`]: a command chunk's stream on the coordinator: files the worker asks for go
//!   out, units' reports and output come back into the spool.
//! - [`units`]: the same stream on a worker: files fetched, each unit run in a directory of
//!   its own, its output sent back while the next runs.
//! - [`finished`]: units that ran on a worker, their directories kept until the coordinator
//!   has their chunk, and how they go back (on the chunk's stream, or after a lost
//!   connection, on the next session's).
//! - [`ahead`]: the input file of a worker's next unit, sent while its slot runs another;
//!   [`arrivals`]: those on their way, which a chunk needing them waits for.
//! - [`process`]: one unit's process group: spawned, timed out, stopped, nothing left behind.
//! - [`cgroup`]: a cgroup for each unit, so that a unit's `setsid` does not escape its stop.
//! - [`results`]: a unit's `$MARMOT_OUT`, packed as a tar while it is sent.
//! - [`placed`]: files at their own paths in a unit's work dir (`marmotctl parallel`), and
//!   what the unit made there gathered to go back.
//! - [`outbox`]: what a job's units printed, handed to the client in deliveries.
//! - [`tries`]: the failed tries of units that run again, logged before their last.

pub mod ahead;
pub mod arrivals;
pub mod cache;
pub mod cgroup;
pub mod chunk;
pub mod finished;
pub mod outbox;
pub mod placed;
pub mod process;
pub mod results;
pub mod spool;
pub mod tries;
pub mod units;
