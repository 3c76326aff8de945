//! JSON bodies of the coordinator's control API, served over HTTP/1.1 on a Unix socket.
//!
//! Routes (all under `/v1/`):
//! - `GET /v1/status` → [`Status`]
//! - `GET /v1/workers` → `Vec<WorkerView>`
//! - `POST /v1/ping` [`PingRequest`] → `Vec<PingResult>`
//! - `POST /v1/jobs` [`TaskSpec`] → [`JobView`] (the job just queued)
//! - `GET /v1/jobs` → `Vec<JobView>`; `GET /v1/jobs/{id}?wait_ms=N` → [`JobView`], answering
//!   early when the job ends (a long poll, so clients see the end without delay)
//! - `GET /v1/jobs/{id}/chunks/{k}?wait_ms=N` → chunk k of a `freefall` or `sweep` job's
//!   results, as little-endian `f64`s (`application/octet-stream`), with headers
//!   [`FIRST_UNIT_HEADER`], [`CHUNKS_HEADER`] and [`UNITS_HEADER`]; `204 No Content` when it is not ready
//!   within the wait. A client takes chunks in order; each chunk is handed out once, and
//!   taking it lets the job run further (the coordinator holds only a window of chunks)
//! - `DELETE /v1/jobs/{id}` → [`JobView`] (cancels it)
//! - `GET /v1/join-token`, `POST /v1/join-token/rotate` → [`JoinToken`]
//! - `POST /v1/exit` [`ExitRequest`] → [`ExitReply`]: workers hand back their chunks and exit
//! - `POST /v1/bench` [`BenchRequest`] → `Vec<BenchResult>`: score every worker
//! - `POST /v1/binaries` (the raw bytes of a `marmotd`) → [`BinaryInfo`]: stores a binary on
//!   the coordinator for an update
//! - `POST /v1/update` [`UpdateRequest`] → [`UpdateReport`]: rolls stored binaries over the
//!   workers (and the coordinator); answers when the rollout is over
//!
//! Errors come back with a 4xx/5xx status and an [`ApiError`] body.

use crate::human;
use crate::task::{Fall, Landing, TaskSpec};
use serde::{Deserialize, Serialize};

/// Header of a taken chunk: the index of its first unit (point, or sweep value).
pub const FIRST_UNIT_HEADER: &str = "marmot-first-unit";
/// Header of a taken chunk: how many chunks the job's results have in all.
pub const CHUNKS_HEADER: &str = "marmot-chunks";
/// Header of a taken chunk: how many units (points, or sweep values) the job has in all.
pub const UNITS_HEADER: &str = "marmot-units";

/// An error, as every route returns it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
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
    pub slots: u32,
    pub slots_busy: u32,
    pub chunks_queued: u64,
    pub jobs_running: usize,
}

/// One connected worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerView {
    pub name: String,
    pub address: String,
    pub slots: u32,
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
    pub spec: TaskSpec,
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
    /// The task's result document, once the job is done (e.g. [`PiResult`]).
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// Work one worker did for a job.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkerShare {
    pub name: String,
    pub chunks: u64,
    pub units: u64,
}

/// The result of a `pi` job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PiResult {
    pub task: String,
    pub samples: u64,
    pub seed: u64,
    pub inside: u64,
    pub estimate: f64,
    pub std_error: f64,
    pub seconds: f64,
    pub samples_per_second: f64,
    pub workers: Vec<WorkerShare>,
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

/// The result of a `prime` job. Numbers up to 2^128 are written as decimal strings, which
/// every JSON reader keeps exact.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrimeResult {
    pub task: String,
    pub n: String,
    pub prime: bool,
    /// A non-trivial factor, when one was found.
    pub factor: Option<String>,
    /// `n / factor`.
    pub cofactor: Option<String>,
    pub method: String,
    pub seconds: f64,
    pub workers: Vec<WorkerShare>,
}

/// The result of a `count` job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CountResult {
    pub task: String,
    pub letter: String,
    pub ignore_case: bool,
    pub count: u64,
    /// Bytes (random letters, for `--random`) looked at.
    pub bytes: u64,
    pub seconds: f64,
    pub bytes_per_second: f64,
    pub workers: Vec<WorkerShare>,
}

/// The result of a `freefall` job. The points themselves went to the client chunk by chunk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FreefallResult {
    pub task: String,
    pub fall: Fall,
    pub points: u64,
    pub landing: Landing,
    pub seconds: f64,
    pub points_per_second: f64,
    pub workers: Vec<WorkerShare>,
}

/// The result of a `sweep` job (a freefall per drag value). The rows went to the client
/// chunk by chunk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepResult {
    pub task: String,
    pub fall: Fall,
    pub from: f64,
    pub to: f64,
    pub steps: u64,
    pub seconds: f64,
    pub workers: Vec<WorkerShare>,
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

impl std::fmt::Display for PiResult {
    /// The human summary `marmotctl run pi` and `marmotd demo` print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "pi ≈ {:.10} ± {:.2e}", self.estimate, self.std_error)?;
        writeln!(
            f,
            "{} (seed {}) in {:.3} s: {}",
            human::count(self.samples, "sample", "samples"),
            self.seed,
            self.seconds,
            human::rate(self.samples_per_second, "samples")
        )?;
        write_shares(f, &self.workers, ("sample", "samples"))
    }
}

impl std::fmt::Display for PrimeResult {
    /// The human summary `marmotctl run prime` and `marmotd demo` print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.factor, &self.cofactor) {
            (Some(factor), Some(cofactor)) => writeln!(f, "{} = {factor} × {cofactor}", self.n)?,
            _ if self.prime => writeln!(f, "{} is prime", self.n)?,
            _ => writeln!(f, "{} is not prime (no factor found)", self.n)?,
        }
        writeln!(f, "method {} in {:.3} s", self.method, self.seconds)?;
        let unit = if self.method == "trial" {
            ("divisor", "divisors")
        } else {
            ("rho attempt", "rho attempts")
        };
        write_shares(f, &self.workers, unit)
    }
}

impl std::fmt::Display for CountResult {
    /// The human summary `marmotctl run count` and `marmotd demo` print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let case = if self.ignore_case { " (any case)" } else { "" };
        let times = human::count(self.count, "time", "times");
        let bytes = human::count(self.bytes, "byte", "bytes");
        writeln!(f, "'{}'{case} occurs {times} in {bytes}", self.letter.escape_debug())?;
        writeln!(f, "{:.3} s: {}", self.seconds, human::rate(self.bytes_per_second, "B"))?;
        write_shares(f, &self.workers, ("byte", "bytes"))
    }
}

impl std::fmt::Display for FreefallResult {
    /// The human summary `marmotctl run freefall` and `marmotd demo` print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Fall { y0, v0, g, dt, drag } = self.fall;
        let drag = if drag > 0.0 { format!(", drag {drag}") } else { String::new() };
        writeln!(f, "thrown from {y0} m at {v0} m/s, g = {g} m/s²{drag}, a point every {dt} s")?;
        let Landing { ground_time, impact_speed, max_height } = self.landing;
        writeln!(
            f,
            "{}: ground at t = {ground_time:.3} s, {impact_speed:.3} m/s, peak {max_height:.3} m",
            human::count(self.points, "point", "points")
        )?;
        writeln!(f, "{:.3} s: {}", self.seconds, human::rate(self.points_per_second, "points"))?;
        write_shares(f, &self.workers, ("point", "points"))
    }
}

impl std::fmt::Display for SweepResult {
    /// The human summary `marmotctl run freefall --sweep-drag` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}, drag {} to {}, in {:.3} s",
            human::count(self.steps, "trajectory", "trajectories"),
            self.from,
            self.to,
            self.seconds
        )?;
        write_shares(f, &self.workers, ("trajectory", "trajectories"))
    }
}

/// One line per worker: the chunks and units it computed.
fn write_shares(
    f: &mut std::fmt::Formatter<'_>,
    workers: &[WorkerShare],
    (one, many): (&str, &str),
) -> std::fmt::Result {
    for w in workers {
        let chunks = human::noun(w.chunks, "chunk", "chunks");
        let unit = human::noun(w.units, one, many);
        writeln!(f, "  {:<20} {:>6} {chunks:<6} {:>20} {unit}", w.name, w.chunks, w.units)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(units: &[u64]) -> Vec<WorkerShare> {
        let name = |i: usize| format!("w{i}");
        units
            .iter()
            .enumerate()
            .map(|(i, &u)| WorkerShare { name: name(i), chunks: u.min(3), units: u })
            .collect()
    }

    #[test]
    fn results_read_as_sentences_with_plurals_and_scaled_rates() {
        let pi = PiResult {
            task: "pi".into(),
            samples: 1_000_000,
            seed: 7,
            inside: 785_398,
            estimate: 3.25,
            std_error: 0.00164,
            seconds: 0.5,
            samples_per_second: 2e6,
            workers: shares(&[1, 999_999]),
        };
        assert_eq!(
            pi.to_string(),
            "pi ≈ 3.2500000000 ± 1.64e-3\n1000000 samples (seed 7) in 0.500 s: 2.00 M samples/s\n  \
             w0                        1 chunk                     1 sample\n  \
             w1                        3 chunks               999999 samples\n"
        );
        let prime = |factor: Option<&str>, prime: bool, method: &str| PrimeResult {
            task: "prime".into(),
            n: "91".into(),
            prime,
            factor: factor.map(Into::into),
            cofactor: factor.map(|_| "13".into()),
            method: method.into(),
            seconds: 0.25,
            workers: shares(&[2]),
        };
        assert_eq!(
            prime(Some("7"), false, "trial").to_string(),
            "91 = 7 × 13\nmethod trial in 0.250 s\n  w0                        2 chunks                    2 divisors\n"
        );
        assert_eq!(
            prime(None, true, "auto").to_string(),
            "91 is prime\nmethod auto in 0.250 s\n  w0                        2 chunks                    2 rho attempts\n"
        );
        assert!(prime(None, false, "auto")
            .to_string()
            .starts_with("91 is not prime (no factor found)\n"));
        let count = CountResult {
            task: "count".into(),
            letter: "e".into(),
            ignore_case: true,
            count: 1,
            bytes: 16,
            seconds: 0.0003,
            bytes_per_second: 53_333.0,
            workers: vec![],
        };
        assert_eq!(
            count.to_string(),
            "'e' (any case) occurs 1 time in 16 bytes\n0.000 s: 53.3 kB/s\n"
        );
        let fall = Fall { y0: 100.0, v0: 10.0, g: 9.81, dt: 0.5, drag: 0.0 };
        let landing = Landing { ground_time: 5.678, impact_speed: 45.5, max_height: 105.1 };
        let freefall = |drag| FreefallResult {
            task: "freefall".into(),
            fall: Fall { drag, ..fall },
            points: 12,
            landing,
            seconds: 0.002,
            points_per_second: 6000.0,
            workers: vec![],
        };
        assert_eq!(
            freefall(0.0).to_string(),
            "thrown from 100 m at 10 m/s, g = 9.81 m/s², a point every 0.5 s\n12 points: ground at \
             t = 5.678 s, 45.500 m/s, peak 105.100 m\n0.002 s: 6.00 k points/s\n"
        );
        assert!(freefall(0.01).to_string().contains("g = 9.81 m/s², drag 0.01, a point"));
        let sweep = SweepResult {
            task: "sweep".into(),
            fall,
            from: 0.0,
            to: 0.5,
            steps: 1,
            seconds: 0.1,
            workers: shares(&[1]),
        };
        assert_eq!(
            sweep.to_string(),
            "1 trajectory, drag 0 to 0.5, in 0.100 s\n  w0                        1 chunk                     1 trajectory\n"
        );
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
