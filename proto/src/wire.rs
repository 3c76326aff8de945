//! Messages between coordinator and workers, named by who opens the stream.
//!
//! - A worker opens one stream per connection and sends [`WorkerOpen`]: either a
//!   [`JoinRequest`] (first contact, no client certificate yet) answered by a [`JoinReply`], or
//!   a [`Hello`] answered by a [`Welcome`]. The hello stream then stays open as the session's
//!   control channel, carrying [`Control`] messages to the worker.
//! - The coordinator opens one stream per ping and per chunk and sends [`CoordinatorOpen`]; the
//!   worker answers a ping with [`Pong`] and a chunk with a [`ChunkReply`].
//!
//! - To update a worker, the coordinator opens a stream with [`CoordinatorOpen::Update`]; the
//!   worker answers an [`UpdateAnswer`]; on `Accept` the binary follows as [`ChunkData`]
//!   pieces and the stream is finished; the worker ends with an [`UpdateOutcome`].
//!
//! bincode encodes enum variants by position: append new variants, never reorder or reuse them.

use crate::command::placed::Placing;
use crate::command::spec::{FileRef, UnitReport};
use crate::command::termseq::TermSeq;
use crate::command::Template;
use crate::job::{Fall, Landing, PrimeMethod};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a worker gives a new binary's trial start (connect, be welcomed, exit 0) before
/// it rolls back; the coordinator waits at least this long for an update's outcome.
pub const TRIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// The first message on a stream a worker opens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WorkerOpen {
    Join(JoinRequest),
    Hello(Hello),
    /// A freshly received binary's trial start: the handshake of a [`Hello`], answered by a
    /// [`Welcome`], without becoming a worker. A new binary must pass it before it replaces
    /// the old one.
    Trial(Hello),
    /// A chunk's result held through a lost connection, delivered on a new session: the
    /// request as the coordinator sent it, and the output. The coordinator counts it if the
    /// chunk still waits for a result, and drops it otherwise. No answer follows.
    Deliver {
        request: ChunkRequest,
        output: ChunkOutput,
    },
    /// A [`Hello`] from a worker that does not do everything a worker may: one started with
    /// `--no-exec` runs no users' commands. (A worker that does everything sends a plain
    /// `Hello`, which coordinators of every release read.)
    HelloWith(Hello, Abilities),
    /// A batch of the worker's log records (INFO and up, at most [`crate::logs::MAX_BATCH`]),
    /// sent about once a second while there are some. No answer follows; a coordinator that
    /// does not know this message stops the stream, and the batch is lost.
    Logs(Vec<crate::logs::LogLine>),
    /// A command chunk whose units all ran through a lost connection, delivered on a new
    /// session: the request as the coordinator sent it, then each unit's
    /// [`CmdMessage::Unit`] report and output as on the chunk's own stream, then
    /// [`CmdMessage::Done`]. The coordinator finishes its side once it has read them (counted
    /// or not), or stops the stream if it does not want them.
    DeliverUnits {
        request: ChunkRequest,
    },
    /// The chunks this worker still runs or holds from connections lost before this session
    /// (at most [`MAX_HOLDING`]), sent once as the session starts: the coordinator waits for
    /// those, and runs again at once the ones it gave this member before a restart that are
    /// not among them. No answer follows.
    Holding(Vec<ChunkKey>),
    /// The slots this worker takes chunks for now, and why not all of them (its laptop's
    /// rules: on battery, too hot, outside its hours), sent when that changes and as a session
    /// starts if not all of them. Checked against the hello's slots; no answer follows. An
    /// older coordinator cannot read it and resets the stream: the worker then simply keeps
    /// getting chunks for all its slots, and stops its units while paused.
    Standing(crate::policy::Standing),
}

/// The most chunks a [`WorkerOpen::Holding`] names.
pub const MAX_HOLDING: usize = 4096;

/// A chunk of a job, by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChunkKey {
    pub job: u64,
    pub chunk: u32,
}

/// What a worker agrees to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abilities {
    /// Users' commands (`marmotctl run cmd`).
    pub exec: bool,
}

impl Default for Abilities {
    fn default() -> Self {
        Abilities { exec: true }
    }
}

/// A worker's request for a client certificate, proving it holds the join token's secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub protocol: u32,
    pub name: String,
    /// The join token's secret part. The worker has already checked the coordinator's CA
    /// against the token's hash, so this crosses an authenticated, encrypted channel.
    pub secret: String,
    /// A PKCS#10 certificate signing request for the worker's own key.
    pub csr_der: Vec<u8>,
}

/// The coordinator's answer to a [`JoinRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinReply {
    Accepted {
        cert_der: Vec<u8>,
        ca_der: Vec<u8>,
    },
    /// For good: a wrong token, another protocol version, a bad request. The worker stops.
    Refused {
        reason: String,
    },
    /// Not now: the coordinator failed on its side (a state file it cannot read, no file
    /// descriptors left). The worker tries again later. Appended last, so an older worker
    /// fails to decode it and retries too.
    Unavailable {
        reason: String,
    },
}

/// What a worker says about itself when its session starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub name: String,
    pub slots: u32,
    pub version: String,
    pub binary_sha256: String,
    pub arch: String,
    pub os: String,
}

impl Hello {
    /// Whether every field holds what a real worker sends: a worker name, 1 to 4096 slots, a
    /// version of plain characters, a SHA-256 in hex, and short lowercase architecture and
    /// OS names. The coordinator lists these strings and `marmotctl` prints them: a peer must
    /// not be able to put control characters or megabytes there.
    pub fn check(&self) -> Result<(), String> {
        crate::names::check_worker_name(&self.name)?;
        if self.slots == 0 || self.slots > 4096 {
            return Err(format!("{} slots: a worker has 1 to 4096", self.slots));
        }
        let word = |what: &str, value: &str, max: usize, allowed: fn(char) -> bool| {
            if value.is_empty() || value.len() > max || !value.chars().all(allowed) {
                return Err(format!("{what} {} is not one", crate::names::shown(value)));
            }
            Ok(())
        };
        word("the version", &self.version, 64, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-')
        })?;
        word("the SHA-256", &self.binary_sha256, 64, |c| matches!(c, '0'..='9' | 'a'..='f'))?;
        if self.binary_sha256.len() != 64 {
            return Err(format!(
                "the SHA-256 {} is not one",
                crate::names::shown(&self.binary_sha256)
            ));
        }
        let name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        word("the architecture", &self.arch, 16, name)?;
        word("the operating system", &self.os, 16, name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Welcome {
    Accepted { coordinator_version: String },
    Refused { reason: String },
}

/// Messages on the session stream, coordinator to worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// Hand back running chunks and exit with status 0.
    Exit,
}

/// The first message on a stream the coordinator opens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CoordinatorOpen {
    Ping {
        nonce: u64,
    },
    Chunk(ChunkRequest),
    /// Run the benchmark kernel on every slot at once for `millis`; answered by a
    /// [`BenchReply`].
    Bench {
        millis: u32,
    },
    /// Offer a new `marmotd`.
    Update(UpdateOffer),
    /// A new certificate for the worker's own key, before the current one expires; answered
    /// by a [`RenewReply`].
    Renew {
        cert_der: Vec<u8>,
    },
    /// Offer again a `marmotd` whose transfer a lost connection cut: a worker that kept the
    /// bytes it received answers [`UpdateAnswer::AcceptFrom`]. Sent only after a cut transfer;
    /// a worker of an older release does not know it and resets the stream, and is then
    /// offered the binary again as a plain [`CoordinatorOpen::Update`].
    UpdateResume(UpdateOffer),
    /// Input files of units this worker is likely to run next, sent ahead while its slots run
    /// others (at most [`MAX_SENT_AHEAD`]): the worker answers [`CmdMessage::Need`] with those
    /// it lacks, the coordinator sends each as [`ChunkData`] pieces and finishes its side.
    /// Into the cache only: nothing runs. A worker of an earlier release resets the stream.
    SendAhead(Vec<crate::command::FileRef>),
}

/// Files one [`CoordinatorOpen::SendAhead`] names, at most: a chunk's units'.
pub const MAX_SENT_AHEAD: usize = crate::command::spec::MAX_CHUNK_UNITS as usize;

/// Whether the worker stored its renewed certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RenewReply {
    Stored,
    Failed { reason: String },
}

/// A new `marmotd` on offer: what it is, before any of its bytes are sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateOffer {
    /// Its version (`semver+build`), read from the stamp in its bytes.
    pub version: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// The CPU architecture of its ELF header, as Rust names it (`x86_64`, `aarch64`).
    pub arch: String,
    /// Take it even when it is older than the running version.
    pub allow_downgrade: bool,
}

/// A worker's answer to an [`UpdateOffer`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateAnswer {
    /// Send the bytes.
    Accept,
    /// The worker already runs this binary.
    Current,
    /// The binary is for another architecture than the worker's.
    WrongArch {
        ours: String,
    },
    /// The binary is older than the worker's, and downgrades were not allowed.
    Downgrade {
        ours: String,
    },
    Refused {
        reason: String,
    },
    /// Send the bytes from `offset` on: the worker kept the first `offset` bytes of a transfer
    /// a lost connection cut (whole pieces, hashed as they came). Only in answer to
    /// [`CoordinatorOpen::UpdateResume`].
    AcceptFrom {
        offset: u64,
    },
}

/// How a worker's update ended, after the bytes were sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateOutcome {
    /// The binary passed its checks and its trial start, replaced the old one, and the worker
    /// is re-executing itself: it will reconnect on the new binary.
    Restarting,
    /// Nothing was replaced (a bad transfer, not an executable for this machine, ...).
    Failed { reason: String },
    /// The binary failed its trial start; the worker stays on its old binary.
    RolledBack { reason: String },
}

/// Units per second of the benchmark kernel (pi samples), one entry per slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReply {
    pub slot_rates: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    pub nonce: u64,
}

/// Run units `start..end` of a job's task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkRequest {
    pub job: u64,
    pub chunk: u32,
    pub task: ChunkTask,
    pub start: u64,
    pub end: u64,
}

/// What a worker computes for a chunk: the job's task in the form a worker runs it, never
/// accepted from a user. The coordinator's `tasks` module makes one from a job (a count's text
/// becomes bytes streamed after the request, a freefall with drag starts from a checkpoint).
///
/// On the wire this keeps the layout of the first release's task type, position for position,
/// so workers and coordinators of either side of a rollout understand each other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ChunkTask {
    /// Pi samples `start..end` of a job of `samples` (point i a pure function of (seed, i)).
    Pi { samples: u64, seed: u64 },
    /// Divisors (trial) or rho attempts (auto) `start..end` for `n`.
    Prime { n: u128, method: PrimeMethod },
    /// Occurrences of `letter` in bytes `start..end` of `bytes`.
    Count { letter: String, ignore_case: bool, bytes: ChunkBytes },
    /// Heights of a body falling without drag at points `start..end` of `points`.
    Heights { fall: Fall, points: u64 },
    /// Whole trajectories for drag values `start..end` of a sweep.
    Sweep { fall: Fall, from: f64, to: f64, steps: u64 },
    /// Heights at points `start..end` of `points` with drag, integrated from state `(y, v)` at
    /// point `at` (a checkpoint at or before the chunk's start).
    HeightsFrom { fall: Fall, points: u64, at: u64, y: f64, v: f64 },
    /// A freefall with drag's first pass (one unit): the whole trajectory, where it lands and
    /// its state every `spacing` points.
    Survey { fall: Fall, spacing: u64 },
    /// Units `start..end` of a user's command: see [`CmdChunk`] for the exchange that follows.
    Cmd(Box<CmdChunk>),
    /// Units of a command whose units find files at their own paths and send back what they
    /// make there (`marmotctl parallel`): the exchange of [`ChunkTask::Cmd`]. A worker of an
    /// earlier release cannot read it and resets the stream: the chunk fails there.
    CmdPlaced(Box<CmdChunk>, Box<Placing>),
    /// [`ChunkTask::CmdPlaced`] whose units are stopped with the signals of `--termseq`
    /// (only then: a job without it keeps the forms above). A worker of an earlier release
    /// cannot read it and resets the stream: the chunk fails there.
    CmdTermSeq(Box<CmdChunk>, Box<Placing>, TermSeq),
}

impl ChunkTask {
    /// A command's chunk, in either form, and what its units do with placed files.
    pub fn cmd(&self) -> Option<(&CmdChunk, Option<&Placing>)> {
        match self {
            ChunkTask::Cmd(chunk) => Some((chunk, None)),
            ChunkTask::CmdPlaced(chunk, placing) | ChunkTask::CmdTermSeq(chunk, placing, _) => {
                Some((chunk, Some(placing)))
            }
            _ => None,
        }
    }

    /// The signals that stop a command chunk's units, when the job chose them.
    pub fn term_seq(&self) -> Option<&TermSeq> {
        match self {
            ChunkTask::CmdTermSeq(_, _, seq) => Some(seq),
            _ => None,
        }
    }

    /// A command's chunk given job slot `slot` ([`JOB_SLOT_VAR`] in its units' environment);
    /// another task as it is.
    pub fn in_job_slot(mut self, slot: u32) -> ChunkTask {
        if let ChunkTask::Cmd(chunk)
        | ChunkTask::CmdPlaced(chunk, _)
        | ChunkTask::CmdTermSeq(chunk, ..) = &mut self
        {
            chunk.env.push((JOB_SLOT_VAR.to_string(), slot.to_string()));
        }
        self
    }

    /// The task as it was before [`ChunkTask::in_job_slot`]: what a chunk is whatever slot
    /// it was given.
    pub fn without_job_slot(&self) -> ChunkTask {
        let mut task = self.clone();
        if let ChunkTask::Cmd(chunk)
        | ChunkTask::CmdPlaced(chunk, _)
        | ChunkTask::CmdTermSeq(chunk, ..) = &mut task
        {
            if chunk.env.last().is_some_and(|(key, _)| key == JOB_SLOT_VAR) {
                chunk.env.pop();
            }
        }
        task
    }
}

/// The variable a command chunk's units find their job slot in, as GNU parallel's jobs do.
pub const JOB_SLOT_VAR: &str = "PARALLEL_JOBSLOT";

/// A chunk of a `cmd` job: the command once per unit, one unit after another on the slot.
///
/// After the request, the worker sends [`CmdMessage::Need`] with the files it does not have
/// cached (or [`CmdMessage::NeedFrom`], when it kept part of one from a cut transfer); the
/// coordinator sends each as [`ChunkData`] pieces, in that order. The worker then runs the
/// units and sends, per unit, a [`CmdMessage::Unit`] followed by its stdout, stderr and
/// results as [`CmdMessage::Data`] pieces; then [`CmdMessage::Done`] (or
/// [`CmdMessage::Failed`]). The coordinator finishes its side once its journal keeps the
/// chunk's count; the worker keeps the chunk's output until then.
///
/// The coordinator adds [`JOB_SLOT_VAR`] to `env`: the job slot the chunk holds (GNU
/// parallel's `{%}`), from 1 to the most slots the job holds at once, none two running
/// chunks of a job share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CmdChunk {
    pub command: Template,
    /// One per unit of the chunk, in order.
    pub units: Vec<CmdUnit>,
    /// In every unit's work dir.
    pub files: Vec<FileRef>,
    pub env: Vec<(String, String)>,
    pub timeout_ms: Option<u64>,
    /// A failed unit fails the chunk, which then runs again elsewhere (it has retries left).
    pub retry_failed: bool,
    /// Send back what units write under `$MARMOT_OUT`.
    pub results: bool,
}

/// One unit of a [`CmdChunk`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmdUnit {
    /// Its index in the job, from 0.
    pub unit: u64,
    pub input: String,
    /// Its own input file (`--input-files`).
    pub file: Option<FileRef>,
}

/// A worker's messages on a `cmd` chunk's stream: see [`CmdChunk`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CmdMessage {
    /// The SHA-256s of the files to send, in the order to send them.
    Need(Vec<String>),
    Unit(UnitReport),
    Data(ChunkData),
    Done,
    Failed {
        error: String,
    },
    /// [`CmdMessage::Need`] with, for each file, how many of its first bytes the worker kept
    /// from a cut transfer: only the rest is sent. Sent only when one kept some; a
    /// coordinator of an earlier release fails the chunk on it, and the worker then lets what
    /// it kept go.
    NeedFrom(Vec<(String, u64)>),
    /// A unit of a chunk that may be retried failed: how this try ended (its output is not
    /// sent, so its sizes are 0), and the chunk is over. It runs again elsewhere. A
    /// coordinator of an earlier release fails the chunk on it, which runs it again too.
    Tried(UnitReport),
}

/// Where a chunk of `count` gets its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkBytes {
    /// `letters` random lowercase letters made on the worker, letter i a pure function of
    /// (seed, i).
    Random {
        letters: u64,
        seed: u64,
    },
    /// Positions 1 and 2 carried request forms (inline text, a path on the coordinator) in
    /// the first release. No coordinator sends them; a worker refuses them. They hold their
    /// places so that `Streamed` keeps its own.
    RetiredText {
        text: String,
    },
    RetiredFile {
        path: String,
        bytes: u64,
    },
    /// The chunk's bytes follow its request on the stream as [`ChunkData`] frames.
    Streamed,
}

/// One chunk's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ChunkOutput {
    /// How many of the chunk's points fell inside the quarter circle.
    Pi { inside: u64 },
    /// A non-trivial factor of `n` found in the chunk, if any.
    Prime { factor: Option<u128> },
    /// Occurrences starting in the chunk.
    Count { count: u64 },
    /// Numbers for each unit of the chunk, in order: a height per `freefall` point, a
    /// (ground time, impact speed, maximum height) triple per `sweep` value.
    Series { values: Vec<f64> },
    /// A survey: the trajectory's point count, its landing, and the state (y, v) at points
    /// 0, spacing, 2·spacing, ... before the last.
    Survey { points: u64, landing: Landing, checkpoints: Vec<(f64, f64)> },
    /// The units of a `cmd` chunk, as their worker reported them (never sent as a reply: the
    /// coordinator makes it of the reports streamed on the chunk's stream).
    Cmd {
        units: Vec<UnitReport>,
        /// Where the coordinator spooled the units' output: its own, never on the wire.
        #[serde(skip)]
        spool: Option<std::path::PathBuf>,
    },
}

/// A piece of a chunk's input, after its [`ChunkRequest`] (for tasks whose bytes live on the
/// coordinator). The coordinator finishes the stream after the last piece.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkData {
    /// As bytes, not a sequence of `u8`: the same encoding on the wire, copied whole instead
    /// of byte by byte.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ChunkReply {
    Done(ChunkOutput),
    Failed { error: String },
}

impl std::fmt::Display for UpdateAnswer {
    /// In words, for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateAnswer::Accept => write!(f, "accepted"),
            UpdateAnswer::Current => write!(f, "already running it"),
            UpdateAnswer::WrongArch { ours } => write!(f, "declined: this worker is {ours}"),
            UpdateAnswer::Downgrade { ours } => write!(f, "declined: older than this {ours}"),
            UpdateAnswer::Refused { reason } => write!(f, "refused: {reason}"),
            UpdateAnswer::AcceptFrom { offset } => {
                write!(f, "accepted, resuming after the {offset} bytes it kept")
            }
        }
    }
}

impl std::fmt::Display for UpdateOutcome {
    /// In words, for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateOutcome::Restarting => write!(f, "installed; restarting on it"),
            UpdateOutcome::Failed { reason } => write!(f, "failed: {reason}"),
            UpdateOutcome::RolledBack { reason } => write!(f, "rolled back: {reason}"),
        }
    }
}

#[cfg(test)]
mod display_tests {

    fn hello() -> Hello {
        Hello {
            protocol: crate::PROTOCOL_VERSION,
            name: "w1".into(),
            slots: 4,
            version: "0.1.0+20261130000000".into(),
            binary_sha256: "ab".repeat(32),
            arch: "x86_64".into(),
            os: "linux".into(),
        }
    }

    #[test]
    fn a_hello_holds_what_a_real_worker_sends_and_nothing_else() {
        assert_eq!(hello().check(), Ok(()));
        let limits = Hello { slots: 4096, name: "w".repeat(253), ..hello() };
        assert_eq!(limits.check(), Ok(()), "the largest values allowed");
        type Spoil = fn(&mut Hello);
        let bad: [(&str, Spoil); 10] = [
            ("is not a worker name", |h| h.name = "w\n1".into()),
            ("0 slots", |h| h.slots = 0),
            ("4097 slots", |h| h.slots = 4097),
            ("the version '0.1.0\\u{1b}[2J' is not one", |h| h.version = "0.1.0\u{1b}[2J".into()),
            ("the version", |h| h.version = "9".repeat(65)),
            ("the version", |h| h.version = String::new()),
            ("the SHA-256", |h| h.binary_sha256 = "AB".repeat(32)),
            ("the SHA-256", |h| h.binary_sha256 = "ab".repeat(31)),
            ("the architecture", |h| h.arch = "x86 64".into()),
            ("the operating system", |h| h.os = "l".repeat(17)),
        ];
        for (want, spoil) in bad {
            let mut h = hello();
            spoil(&mut h);
            let e = h.check().unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
            assert!(!e.chars().any(char::is_control), "{e:?}");
        }
    }

    use super::*;

    /// `ChunkTask` keeps the first release's task type's positions: a worker of one side of a
    /// rollout decodes the other side's chunks.
    #[test]
    fn chunk_tasks_keep_the_first_releases_encoding() {
        let encode = |task: ChunkTask| crate::frame::encode(&task).unwrap().to_vec();
        let count =
            ChunkTask::Count { letter: "e".into(), ignore_case: true, bytes: ChunkBytes::Streamed };
        // Variant 2 (count), "e", true, source variant 3 (streamed).
        assert_eq!(encode(count), [2, 1, b'e', 1, 3]);
        let fall = Fall { y0: 0.0, v0: 0.0, g: 1.0, dt: 1.0, drag: 0.0 };
        for (task, position) in [
            (ChunkTask::Pi { samples: 1, seed: 2 }, 0),
            (ChunkTask::Prime { n: 9, method: PrimeMethod::Auto }, 1),
            (ChunkTask::Heights { fall, points: 1 }, 3),
            (ChunkTask::Sweep { fall, from: 0.0, to: 1.0, steps: 2 }, 4),
            (ChunkTask::HeightsFrom { fall, points: 1, at: 0, y: 0.0, v: 0.0 }, 5),
            (ChunkTask::Survey { fall, spacing: 1 }, 6),
        ] {
            assert_eq!(encode(task.clone())[0], position, "{task:?}");
        }
        assert_eq!(encode(ChunkTask::Pi { samples: 1, seed: 2 }), [0, 1, 2]);
    }

    /// A resumed update's messages come after every earlier one: peers of the release before
    /// decode the rest as they did, and see these as unknown.
    #[test]
    fn resumed_updates_append_their_messages() {
        let offer = UpdateOffer {
            version: "0.1.0".into(),
            size: 1,
            sha256: "ab".repeat(32),
            arch: "x86_64".into(),
            allow_downgrade: false,
        };
        let first = |bytes: bytes::Bytes| bytes[0];
        let open = |o| first(crate::frame::encode(&o).unwrap());
        assert_eq!(open(CoordinatorOpen::Update(offer.clone())), 3);
        assert_eq!(open(CoordinatorOpen::Renew { cert_der: vec![] }), 4);
        assert_eq!(open(CoordinatorOpen::UpdateResume(offer)), 5);
        let answer = |a| first(crate::frame::encode(&a).unwrap());
        assert_eq!(answer(UpdateAnswer::Refused { reason: String::new() }), 4);
        assert_eq!(answer(UpdateAnswer::AcceptFrom { offset: 7 }), 5);
        let said = |m| first(crate::frame::encode(&m).unwrap());
        assert_eq!(said(CmdMessage::Failed { error: String::new() }), 4);
        assert_eq!(said(CmdMessage::NeedFrom(vec![])), 5);
    }

    #[test]
    fn update_answers_and_outcomes_in_words() {
        let reason = || "disk full".to_string();
        let answers = [
            (UpdateAnswer::Accept, "accepted"),
            (UpdateAnswer::Current, "already running it"),
            (
                UpdateAnswer::WrongArch { ours: "aarch64".into() },
                "declined: this worker is aarch64",
            ),
            (UpdateAnswer::Downgrade { ours: "0.2.0".into() }, "declined: older than this 0.2.0"),
            (UpdateAnswer::Refused { reason: reason() }, "refused: disk full"),
        ];
        for (answer, words) in answers {
            assert_eq!(answer.to_string(), words);
        }
        let outcomes = [
            (UpdateOutcome::Restarting, "installed; restarting on it"),
            (UpdateOutcome::Failed { reason: reason() }, "failed: disk full"),
            (UpdateOutcome::RolledBack { reason: reason() }, "rolled back: disk full"),
        ];
        for (outcome, words) in outcomes {
            assert_eq!(outcome.to_string(), words);
        }
    }
}

#[cfg(test)]
mod job_slot_tests {
    use super::*;

    fn chunk(env: &[(&str, &str)]) -> ChunkTask {
        ChunkTask::Cmd(Box::new(CmdChunk {
            command: crate::command::Template::new(vec!["echo".into()]).unwrap(),
            units: vec![],
            files: vec![],
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            timeout_ms: None,
            retry_failed: false,
            results: false,
        }))
    }

    #[test]
    fn a_chunk_in_a_job_slot_is_the_same_chunk_without_it() {
        let task = chunk(&[("A", "1")]);
        let slotted = task.clone().in_job_slot(3);
        assert_eq!(slotted, chunk(&[("A", "1"), (JOB_SLOT_VAR, "3")]));
        assert_eq!(slotted.without_job_slot(), task);
        assert_eq!(task.without_job_slot(), task, "none to take off");
        // The user's own variable of that name, not last, stays.
        let own = chunk(&[(JOB_SLOT_VAR, "9"), ("A", "1")]);
        assert_eq!(own.without_job_slot(), own);
        let pi = ChunkTask::Pi { samples: 1, seed: 2 };
        assert_eq!(pi.clone().in_job_slot(1), pi, "only commands have slots");
        assert_eq!(pi.without_job_slot(), pi);
    }

    #[test]
    fn every_form_of_a_command_chunk_gives_its_chunk_placing_and_signals() {
        let ChunkTask::Cmd(inner) = chunk(&[("A", "1")]) else { unreachable!() };
        let placing = Placing { placed: vec![], bring_back: true, stdin: None };
        let seq = TermSeq { steps: vec![(2, 100)] };
        let forms = [
            (ChunkTask::Cmd(inner.clone()), None, None),
            (ChunkTask::CmdPlaced(inner.clone(), Box::new(placing.clone())), Some(&placing), None),
            (
                ChunkTask::CmdTermSeq(inner.clone(), Box::new(placing.clone()), seq.clone()),
                Some(&placing),
                Some(&seq),
            ),
        ];
        for (task, placed, signals) in forms {
            assert_eq!(task.cmd(), Some((&*inner, placed)), "{task:?}");
            assert_eq!(task.term_seq(), signals, "{task:?}");
            let slotted = task.clone().in_job_slot(2);
            assert_eq!(
                slotted.cmd().unwrap().0.env.last().unwrap(),
                &(JOB_SLOT_VAR.into(), "2".into())
            );
            assert_eq!(slotted.term_seq(), signals, "the slot changes nothing else");
            assert_eq!(slotted.without_job_slot(), task);
        }
        let pi = ChunkTask::Pi { samples: 1, seed: 2 };
        assert_eq!((pi.cmd(), pi.term_seq()), (None, None));
    }
}
