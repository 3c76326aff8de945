//! The control API's client, and what `marmotctl` and `marmotd demo`/`local` share beyond it.
//!
//! # Layout
//! - [`client`]: one typed function per route of the control API (the routes are
//!   `proto::api::routes`, shared with the server's router), over the coordinator's Unix socket.
//! - [`reconnect`]: a request that finds no coordinator (restarting, rebooting) is asked again
//!   with backoff until it is back.
//! - [`follow`]: a job followed to its end, its series' chunks and its command output taken in
//!   order, through restarts.
//! - [`usage`]: a clap usage error as one line; [`docs`]: shell completions and man pages from
//!   a program's clap definition. Both command-line programs define their flags with clap and
//!   use these on them.

pub mod client;
pub mod docs;
pub mod follow;
pub mod reconnect;
pub mod usage;

pub use client::{Client, ClientError, LogsQuery, OutputPiece, SeriesChunk, Submit};
