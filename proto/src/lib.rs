//! Marmot's wire protocol and control-API types.
//!
//! # Layout
//! - [`frame`]: bytes ↔ messages. A length prefix plus bincode, with a hard size limit, so a
//!   hostile peer can cost at most one bounded frame of memory.
//! - [`framed`]: reading and writing whole messages on any async byte stream (a QUIC stream in
//!   the daemon, an in-memory pipe in tests).
//! - [`wire`]: the messages coordinator and workers exchange, named by who opens the stream,
//!   including what a chunk of a job is on its way to a worker and what it returns.
//! - [`command`]: users' commands over lists of inputs: the template with GNU parallel's
//!   replacement strings, inputs, `--halt`, the joblog.
//! - [`job`]: what a user asks for (a job's task and parameters) and the units of its work.
//! - [`result`]: what a finished job computed, typed per task.
//! - [`pieces`]: files sent and received a piece at a time, resumable from an offset.
//! - [`policy`]: a laptop's rules (battery, heat, hours) and what its worker gives now.
//! - [`paths`]: default socket and state locations, shared by both binaries.
//! - [`version`]: the build stamp both binaries report.
//! - [`logs`]: log lines sent by workers to the coordinator, bounded and checked.
//! - [`names`]: what a worker name may be, and peer strings made safe for a log line.
//! - [`human`]: counts and rates as people read them ("1 chunk", "2.50 GB/s").
//! - [`exit`]: exit statuses the binaries share with the systemd units.
//! - [`api`]: the JSON bodies of the coordinator's HTTP control API (`/v1/...`) and its routes.
//!
//! The protocol version lives in [`PROTOCOL_VERSION`] and in the ALPN string [`ALPN`]; a change
//! that old peers cannot decode bumps both.

pub mod api;
pub mod command;
pub mod exit;
pub mod frame;
pub mod framed;
pub mod human;
pub mod job;
pub mod logs;
pub mod names;
pub mod paths;
pub mod pieces;
pub mod policy;
pub mod result;
pub mod version;
pub mod wire;

pub use frame::{FrameError, MAX_FRAME};
pub use framed::{MessageReader, MessageWriter};

/// The version carried in every `Hello` and `JoinRequest`.
///
/// History:
/// - 1: first version (join, hello, ping, chunks of `pi`).
pub const PROTOCOL_VERSION: u32 = 1;

/// ALPN protocol name negotiated by QUIC; a peer speaking another major version fails the TLS
/// handshake instead of sending bytes we would misread.
pub const ALPN: &[u8] = b"marmot/1";

/// The default UDP port of a coordinator.
pub const DEFAULT_PORT: u16 = 7070;

/// The DNS name every coordinator certificate carries, whatever its IP addresses: workers check
/// it instead of the address they dialled, so a coordinator whose DHCP lease changed keeps
/// working.
pub const COORDINATOR_SERVER_NAME: &str = "coordinator.marmot";
