//! JSON bodies of the coordinator's control API, served over HTTP/1.1 on a Unix socket.
//!
//! Routes (all under `/v1/`):
//! - `GET /v1/status` → [`Status`]
//! - `GET /v1/workers` → `Vec<WorkerView>`
//! - `POST /v1/ping` [`PingRequest`] → `Vec<PingResult>`
//! - `POST /v1/jobs` [`JobSpec`] → [`JobView`] (the job just queued)
//! - `GET /v1/jobs` → `Vec<JobView>`: running and recent jobs; `?all=true` adds every ended job
//!   the journal keeps. `GET /v1/jobs/{id}?wait_ms=N` → [`JobView`], answering early when the
//!   job ends (a long poll, so clients see the end without delay); an ended job's result is
//!   kept until its retention ends, and fetching it marks it read
//! - `503 Service Unavailable`: the coordinator is shutting down (often to restart): ask again
//! - `GET /v1/jobs/{id}/chunks/{k}?wait_ms=N` → chunk k of a `freefall` or `sweep` job's
//!   results, as little-endian `f64`s (`application/octet-stream`), with headers
//!   [`FIRST_UNIT_HEADER`], [`CHUNKS_HEADER`] and [`UNITS_HEADER`]; `204 No Content` when it is not ready
//!   within the wait. A client takes chunks in order; each chunk is handed out once, and
//!   taking it lets the job run further (the coordinator holds only a window of chunks)
//! - `GET /v1/jobs/{id}/output/{n}?offset=O&wait_ms=N` → delivery n of a `cmd` job's output
//!   (the spool of one chunk's units, laid out as [`crate::command::spool`] says), from byte O,
//!   at most [`OUTPUT_PIECE`] bytes, with header [`OUTPUT_SIZE_HEADER`] (the delivery's whole
//!   size); `204 No Content` when it is not ready within the wait, with [`OUTPUT_END_HEADER`]
//!   when it never will be (the job ended with fewer deliveries). Deliveries are numbered as
//!   units finish (or in input order, for `keep_order`); asking for n lets go of those before
//!   it
//! - `PUT /v1/files/{sha256}?size=N` (the raw bytes) → [`FileInfo`]: stores a file for
//!   commands, checked against its SHA-256; `GET /v1/files/{sha256}` → [`FileInfo`], or 404
//!   when the store does not have it (then upload it)
//! - `DELETE /v1/jobs/{id}` → [`JobView`] (cancels it)
//! - `GET /v1/join-token`, `POST /v1/join-token/rotate` → [`JoinToken`]
//! - `POST /v1/exit` [`ExitRequest`] → [`ExitReply`]: workers hand back their chunks and exit
//! - `POST /v1/bench` [`BenchRequest`] → `Vec<BenchResult>`: score every worker
//! - `POST /v1/binaries` (the raw bytes of a `marmotd`) → [`BinaryInfo`]: stores a binary on
//!   the coordinator for an update
//! - `POST /v1/update` [`UpdateRequest`] → [`UpdateReport`]: rolls stored binaries over the
//!   workers (and the coordinator); answers when the rollout is over
//!
//! - `GET /v1/overview` → [`Overview`]: the whole picture the dashboard and `marmotctl top`
//!   draw; `GET /v1/overview/stream` → the same as server-sent events (`text/event-stream`),
//!   one `data:` line of JSON each time it changes (at most ten a second)
//! - `GET /v1/logs?worker=W&after=SEQ&since_ms=T&limit=N` → [`LogsReply`]: log lines kept
//!   from the workers (and the coordinator's own, `worker: null`), oldest first
//! - `POST /v1/dashboard-token` [`DashboardTokenRequest`] → [`DashboardToken`]: the token the
//!   `--http` dashboard asks for, shown once; `409 Conflict` if one exists and `rotate` is not
//!   set
//! - `GET /metrics` → Prometheus' text exposition format; `GET /` → the dashboard's page
//!
//! Errors come back with a 4xx/5xx status and an [`ApiError`] body.

use crate::job::JobSpec;
use crate::result::JobResult;
use serde::{Deserialize, Serialize};

/// The routes, written once for the server's router and the client's calls.
pub mod routes {
    pub const STATUS: &str = "/v1/status";
    pub const WORKERS: &str = "/v1/workers";
    pub const PING: &str = "/v1/ping";
    pub const JOBS: &str = "/v1/jobs";
    /// `{id}`: a job id.
    pub const JOB: &str = "/v1/jobs/{id}";
    /// `{id}`, `{chunk}`: a job id and a chunk index.
    pub const JOB_CHUNK: &str = "/v1/jobs/{id}/chunks/{chunk}";
    pub const JOIN_TOKEN: &str = "/v1/join-token";
    pub const ROTATE_JOIN_TOKEN: &str = "/v1/join-token/rotate";
    pub const EXIT: &str = "/v1/exit";
    pub const REVOKE: &str = "/v1/revoke";
    pub const CLEAR: &str = "/v1/clear";
    pub const BENCH: &str = "/v1/bench";
    pub const BINARIES: &str = "/v1/binaries";
    pub const UPDATE: &str = "/v1/update";
    /// `{id}`, `{n}`: a job id and a delivery's number.
    pub const JOB_OUTPUT: &str = "/v1/jobs/{id}/output/{n}";
    /// `{sha256}`: a file's SHA-256 in lowercase hex.
    pub const FILE: &str = "/v1/files/{sha256}";
    pub const OVERVIEW: &str = "/v1/overview";
    pub const OVERVIEW_STREAM: &str = "/v1/overview/stream";
    pub const LOGS: &str = "/v1/logs";
    pub const DASHBOARD_TOKEN: &str = "/v1/dashboard-token";
    /// Prometheus' conventional path, outside `/v1/`.
    pub const METRICS: &str = "/metrics";
    /// The dashboard's page.
    pub const PAGE: &str = "/";

    /// [`JOB_OUTPUT`] for delivery `n` of job `id`.
    pub fn job_output(id: u64, n: u64) -> String {
        JOB_OUTPUT.replace("{id}", &id.to_string()).replace("{n}", &n.to_string())
    }

    /// [`FILE`] for `sha256`.
    pub fn file(sha256: &str) -> String {
        FILE.replace("{sha256}", sha256)
    }

    /// [`JOB`] for job `id`.
    pub fn job(id: u64) -> String {
        JOB.replace("{id}", &id.to_string())
    }

    /// [`JOB_CHUNK`] for chunk `chunk` of job `id`.
    pub fn job_chunk(id: u64, chunk: u32) -> String {
        JOB_CHUNK.replace("{id}", &id.to_string()).replace("{chunk}", &chunk.to_string())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn paths_with_their_parameters() {
            assert_eq!(super::job(7), "/v1/jobs/7");
            assert_eq!(super::job_chunk(7, 3), "/v1/jobs/7/chunks/3");
            assert_eq!(super::job_output(7, 3), "/v1/jobs/7/output/3");
            assert_eq!(super::file("ab"), "/v1/files/ab");
        }
    }
}

/// Header of a taken chunk: the index of its first unit (point, or sweep value).
pub const FIRST_UNIT_HEADER: &str = "marmot-first-unit";
/// Header of a taken chunk: how many chunks the job's results have in all.
pub const CHUNKS_HEADER: &str = "marmot-chunks";
/// Header of a taken chunk: how many units (points, or sweep values) the job has in all.
pub const UNITS_HEADER: &str = "marmot-units";

/// Header of a piece of a command job's output: the delivery's whole size in bytes.
pub const OUTPUT_SIZE_HEADER: &str = "marmot-output-size";
/// Header of a `204` for a command job's output: no delivery of that number will come.
pub const OUTPUT_END_HEADER: &str = "marmot-output-end";
/// The most bytes of output one request returns.
pub const OUTPUT_PIECE: u64 = 4 << 20;

/// A file in the coordinator's store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub sha256: String,
    pub size: u64,
}

/// An error, as every route returns it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    /// Set while the coordinator stops (with status 503): whether it will be back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaving: Option<Leaving>,
}

impl ApiError {
    pub fn new(error: impl Into<String>) -> Self {
        ApiError { error: error.into(), leaving: None }
    }
}

/// How a stopping coordinator leaves, as it tells the clients it was answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Leaving {
    /// It restarts on its new binary (`marmotctl update --coordinator`): back in seconds.
    Restarting,
    /// It was told to stop (SIGTERM, Ctrl-C); a service manager or a reboot may start it
    /// again.
    Stopping,
    /// For good: its cluster lived in its process only (`marmotd local`, `marmotd demo`).
    Gone,
}

impl Leaving {
    /// Whether a client may wait for it to be back.
    pub fn may_return(self) -> bool {
        self != Leaving::Gone
    }

    /// What a client is told.
    pub fn says(self) -> &'static str {
        match self {
            Leaving::Restarting => "the coordinator is restarting on its new binary",
            Leaving::Stopping => {
                "the coordinator is stopping; a service manager or a reboot may start it again"
            }
            Leaving::Gone => {
                "the coordinator stopped for good: its cluster lived in its `marmotd local` \
                 process, and its jobs ended with it"
            }
        }
    }
}

/// `GET /v1/status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    /// SHA-256 of the coordinator's own binary.
    #[serde(default)]
    pub binary_sha256: String,
    /// The UDP address workers connect to.
    pub listen: String,
    pub uptime_seconds: f64,
    pub workers: usize,
    /// Workers that hold a certificate of this cluster, connected or not.
    #[serde(default)]
    pub members: usize,
    pub slots: u32,
    pub slots_busy: u32,
    pub chunks_queued: u64,
    pub jobs_running: usize,
    /// Connections not authenticated yet, by where they wait: many strangers means someone
    /// on the network is holding places (members never wait among them).
    #[serde(default)]
    pub waiting: Waiting,
    /// Why the journal cannot be written, while it cannot (a full disk): no job is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_failing: Option<String>,
}

/// Connections waiting to authenticate, by the place they hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// In their TLS handshake.
    pub handshaking: u32,
    /// Handshake done without a certificate, first message not read yet (joiners, anyone).
    pub strangers: u32,
    /// Handshake done with a member's certificate, hello not welcomed yet.
    pub members: u32,
}

/// One connected worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerView {
    pub name: String,
    pub address: String,
    pub slots: u32,
    /// The slots it takes chunks for now: fewer than `slots` while its laptop's rules hold
    /// some back (0: paused).
    #[serde(default)]
    pub slots_now: u32,
    /// Why it gives fewer than all its slots (shown as `battery 34%`, `91 °C`, `outside
    /// hours`).
    #[serde(default)]
    pub held_back: Option<crate::policy::Holdback>,
    pub slots_busy: u32,
    pub version: String,
    pub binary_sha256: String,
    pub arch: String,
    pub os: String,
    /// Unix time, seconds.
    pub connected_since: u64,
    /// Milliseconds since the last packet from this worker.
    pub last_seen_ms: u64,
    /// QUIC's smoothed round-trip estimate.
    pub rtt_ms: f64,
    /// The last `bench` score: G pi samples per second over all slots.
    pub score: Option<f64>,
    /// The last `bench` score of each slot.
    #[serde(default)]
    pub slot_scores: Vec<f64>,
    /// Its result for a chunk was contradicted by two other workers: it gets no chunks until
    /// `marmotctl clear`.
    #[serde(default)]
    pub quarantined: bool,
    /// Chunks and units this worker computed that were counted, since the coordinator started.
    #[serde(default)]
    pub chunks_done: u64,
    #[serde(default)]
    pub units_done: u64,
    /// Bytes sent to and received from it on this connection (UDP payload, QUIC's count).
    #[serde(default)]
    pub bytes_sent: u64,
    #[serde(default)]
    pub bytes_received: u64,
}

/// `POST /v1/bench`: run the benchmark kernel on every slot of every worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchRequest {
    pub millis: u32,
}

/// One worker's benchmark: G pi samples per second, in all and per slot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchResult {
    pub worker: String,
    pub score: Option<f64>,
    pub slot_scores: Vec<f64>,
    pub error: Option<String>,
}

/// `POST /v1/ping`: ping the named workers, or all when `workers` is empty.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PingRequest {
    pub timeout_ms: u64,
    #[serde(default)]
    pub workers: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PingResult {
    pub worker: String,
    /// Round trip of a ping stream; `None` when it timed out or failed.
    pub rtt_ms: Option<f64>,
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_finished(self) -> bool {
        self != JobState::Running
    }
}

impl std::fmt::Display for JobState {
    /// The state as the API spells it: `running`, `done`, `failed`, `cancelled` (padded to
    /// a width, when one is given, for tables).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        })
    }
}

/// A job, running or finished.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobView {
    pub id: u64,
    pub task: String,
    pub spec: JobSpec,
    pub state: JobState,
    pub chunks_done: u64,
    pub chunks_total: u64,
    pub units_done: u64,
    pub units_total: u64,
    pub elapsed_seconds: f64,
    /// Chunks that had to run again (lost workers, failures, stragglers).
    pub chunks_rerun: u64,
    /// Chunks also run on a second worker and compared (`--verify`).
    #[serde(default)]
    pub chunks_verified: u64,
    /// The task's result, once the job is done.
    pub result: Option<JobResult>,
    pub error: Option<String>,
    /// Chunks and units each worker computed for it so far.
    #[serde(default)]
    pub workers: Vec<crate::result::WorkerShare>,
    /// When it ended, Unix time in milliseconds by the coordinator's clock.
    #[serde(default)]
    pub ended_unix_ms: Option<u64>,
    /// The result in words, as `marmotctl run` prints it.
    #[serde(default)]
    pub summary: Option<String>,
    /// Workers whose results it holds that were later caught lying: its result may be wrong
    /// (`marmotctl rerun` runs it again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caught_lying: Vec<String>,
}

/// `POST /v1/exit`: tell workers to hand back their chunks and exit with status 0.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExitRequest {
    /// The workers to stop; empty means none unless `all`.
    #[serde(default)]
    pub workers: Vec<String>,
    #[serde(default)]
    pub all: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExitReply {
    /// The workers that were told.
    pub told: Vec<String>,
}

/// `POST /v1/clear`: let a quarantined worker take chunks again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClearRequest {
    pub worker: String,
}

/// `POST /v1/revoke`: revoke a worker's certificate, at once and forever.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevokeRequest {
    pub worker: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevokeReply {
    pub worker: String,
    /// SHA-256 of the revoked public key, as `members.json` in the state dir lists it.
    pub key_sha256: String,
    /// Whether a live session of the worker was closed.
    pub disconnected: bool,
}

/// A `marmotd` stored on the coordinator, as read from its bytes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BinaryInfo {
    pub sha256: String,
    pub size: u64,
    /// `semver+build`, from the version stamp in the binary.
    pub version: String,
    /// From its ELF header: `x86_64`, `aarch64`, ...
    pub arch: String,
}

/// `POST /v1/update`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UpdateRequest {
    /// SHA-256 of stored binaries (`POST /v1/binaries`): each worker gets the one for its
    /// architecture.
    pub binaries: Vec<String>,
    /// Workers updated at once (default 1; at most a quarter of the workers).
    #[serde(default)]
    pub parallel: Option<u32>,
    #[serde(default)]
    pub allow_downgrade: bool,
    /// Then update the coordinator itself (it re-executes once the answer is sent).
    #[serde(default)]
    pub coordinator: bool,
    /// Go on after a worker rolls back (by default the rollout stops there: the binary is
    /// likely bad, and the rest are reported as not tried).
    #[serde(default)]
    pub keep_going: bool,
}

/// How one machine's update went.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UpdateStatus {
    Updated,
    Current,
    Skipped,
    Failed,
    RolledBack,
    /// The coordinator: replaced, and re-executing once this answer is sent.
    Restarting,
}

impl UpdateStatus {
    /// Whether the machine ends up on the asked binary.
    pub fn is_success(self) -> bool {
        matches!(self, UpdateStatus::Updated | UpdateStatus::Current | UpdateStatus::Restarting)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MachineUpdate {
    /// A worker's name, or `coordinator`.
    pub name: String,
    pub status: UpdateStatus,
    /// Why, for skipped, failed and rolled back.
    pub detail: Option<String>,
    /// The binary it ran before, and runs now (SHA-256).
    pub from_sha256: String,
    pub to_sha256: String,
    /// The version it runs at the end (that of `to_sha256`).
    pub version: String,
}

/// `POST /v1/update`'s answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UpdateReport {
    pub workers: Vec<MachineUpdate>,
    /// Workers updated at once (the asked number, capped at a quarter of the workers).
    pub parallel: u32,
    pub coordinator: Option<MachineUpdate>,
    pub seconds: f64,
    /// Binary bytes sent to workers, and the rate while sending.
    pub bytes_sent: u64,
    pub bytes_per_second: f64,
}

/// `GET /v1/join-token`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinToken {
    pub token: String,
}

/// `GET /v1/overview`: everything the dashboard shows, at one instant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Overview {
    pub status: Status,
    pub workers: Vec<WorkerView>,
    /// Running jobs, then the most recent ended ones, newest first.
    pub jobs: Vec<JobView>,
    pub counters: Counters,
    /// The coordinator's latest log lines (joins, losses, updates, failures), oldest first.
    pub events: Vec<KeptLine>,
}

/// Counts since the coordinator started, for `/metrics` and the dashboard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Chunk streams opened (first runs and re-runs), and of those the re-runs.
    pub chunks_started: u64,
    pub chunks_retried: u64,
    /// Chunk results counted.
    pub chunks_done: u64,
    /// Chunk streams that ended without a result (worker errors, lost connections).
    pub chunks_failed: u64,
    /// Chunk streams stopped by the coordinator (cancelled jobs, duplicates no longer needed).
    pub chunks_stopped: u64,
    pub jobs_submitted: u64,
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub jobs_cancelled: u64,
    /// Workers quarantined for a result two others contradicted.
    pub quarantines: u64,
    pub workers_joined: u64,
    pub workers_lost: u64,
    /// Bytes sent to and received from workers, over all connections.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Machines' update outcomes, by [`UpdateStatus`] in snake case.
    pub updates: std::collections::BTreeMap<String, u64>,
    /// Log lines received from workers, and lines refused (a bad batch).
    pub log_lines_received: u64,
    pub log_lines_refused: u64,
}

/// A log line as the coordinator keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptLine {
    /// Its number among all lines kept since the coordinator started (for `after=`).
    pub seq: u64,
    /// The worker that logged it; `None` for the coordinator.
    pub worker: Option<String>,
    #[serde(flatten)]
    pub line: crate::logs::LogLine,
}

/// `GET /v1/logs`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogsReply {
    pub lines: Vec<KeptLine>,
    /// Ask with `after=next` for the lines that come later.
    pub next: u64,
}

/// `POST /v1/dashboard-token`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DashboardTokenRequest {
    /// Make a new one even if one exists; the old one stops working at once.
    #[serde(default)]
    pub rotate: bool,
}

/// The `--http` dashboard's token: only this answer ever shows it (the coordinator keeps a
/// hash).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DashboardToken {
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaving_coordinator_says_whether_it_comes_back() {
        let all = [Leaving::Restarting, Leaving::Stopping, Leaving::Gone];
        let back: Vec<bool> = all.iter().map(|l| l.may_return()).collect();
        assert_eq!(back, [true, true, false]);
        assert!(Leaving::Gone.says().contains("stopped for good"));
        assert!(Leaving::Restarting.says().contains("restarting"));
        assert!(Leaving::Stopping.says().contains("stopping"));
        let json =
            serde_json::to_string(&ApiError { error: "e".into(), leaving: Some(Leaving::Gone) });
        assert_eq!(json.unwrap(), r#"{"error":"e","leaving":"gone"}"#);
        assert_eq!(serde_json::to_string(&ApiError::new("e")).unwrap(), r#"{"error":"e"}"#);
    }

    #[test]
    fn job_states_in_the_apis_words() {
        let words: Vec<String> =
            [JobState::Running, JobState::Done, JobState::Failed, JobState::Cancelled]
                .iter()
                .map(ToString::to_string)
                .collect();
        assert_eq!(words, ["running", "done", "failed", "cancelled"]);
    }
}
