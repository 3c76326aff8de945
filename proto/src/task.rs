//! The built-in tasks as they travel: what a job asks for ([`TaskSpec`]) and what one chunk of
//! it returns ([`ChunkOutput`]).
//!
//! Every task's work is a range of `u64` units (samples, divisors, rho attempts, ...); a chunk
//! is a sub-range. How many units a job holds is the daemon's business (`kernels::units`). That one shape lets the scheduler cut and re-cut any job without knowing
//! what the units mean.
//!
//! bincode encodes enum variants by position: append new variants, never reorder or reuse them.

use serde::{Deserialize, Serialize};

/// A job's task and parameters, as submitted and as sent with each chunk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSpec {
    /// Monte Carlo estimate of pi: `samples` points, point i a pure function of (seed, i).
    Pi { samples: u64, seed: u64 },
    /// Is `n` prime? A factor if not. The first chunk with a factor ends the job.
    Prime { n: u128, method: PrimeMethod },
    /// How often `letter` (one Unicode character) occurs in some bytes.
    Count { letter: String, ignore_case: bool, source: CountSource },
    /// The height of a falling body every `fall.dt` seconds until it reaches the ground: unit
    /// i is the point at t = i·dt. `points` is filled in by the coordinator (with drag, after
    /// a first pass finds where the body lands).
    Freefall { fall: Fall, points: u64 },
    /// One whole trajectory per drag coefficient `from..=to` in `steps` even steps (unit i is
    /// value i); each gives its time to ground, impact speed and maximum height.
    Sweep { fall: Fall, from: f64, to: f64, steps: u64 },
    /// On the way to a worker, a `Freefall` with drag becomes this: integrate from state
    /// `(y, v)` at point `at` (a checkpoint at or before the chunk's start).
    FreefallFrom { fall: Fall, points: u64, at: u64, y: f64, v: f64 },
    /// A `Freefall` with drag starts with this one-unit pass: integrate the whole trajectory,
    /// return where it lands and the state every `spacing` points.
    Survey { fall: Fall, spacing: u64 },
}

/// A body thrown straight up from height `y0` (m) at `v0` (m/s) under gravity `g` (m/s²),
/// with quadratic air drag: a = −g − drag·v·|v|. Points are `dt` seconds apart.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fall {
    pub y0: f64,
    pub v0: f64,
    pub g: f64,
    pub dt: f64,
    #[serde(default)]
    pub drag: f64,
}

impl Default for Fall {
    /// The lab notebook's throw: ground at t ≈ 2048.7 s, about 2,048,700 points.
    fn default() -> Self {
        Fall { y0: 100_000.0, v0: 10_000.0, g: 9.81, dt: 0.001, drag: 0.0 }
    }
}

impl Fall {
    /// The time of point `i`: i/n when dt is 1/n for a whole n (0.001, 0.01, ...), which is
    /// the correctly rounded decimal and prints as one (0.009, not 0.009000000000000001);
    /// i·dt otherwise. Workers and clients both use it, so a printed `t` is the `t` the height
    /// was computed at.
    pub fn time(&self, i: u64) -> f64 {
        let per_second = (1.0 / self.dt).round();
        if per_second >= 1.0 && 1.0 / per_second == self.dt {
            i as f64 / per_second
        } else {
            i as f64 * self.dt
        }
    }
}

/// Numbers a sweep gives per drag value: ground time, impact speed, maximum height.
pub const SWEEP_WIDTH: usize = 3;

/// The drag coefficient of value `i` of a sweep of `steps` values from `from` to `to`.
pub fn sweep_drag(from: f64, to: f64, steps: u64, i: u64) -> f64 {
    if steps <= 1 {
        return from;
    }
    from + (to - from) * (i as f64 / (steps - 1) as f64)
}

/// How a trajectory ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Landing {
    /// Seconds from the throw to y = 0.
    pub ground_time: f64,
    /// |v| at y = 0, m/s.
    pub impact_speed: f64,
    pub max_height: f64,
}

/// Where `count` gets its bytes. Units are bytes (letters, for `Random`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountSource {
    /// `letters` random lowercase letters, letter i a pure function of (seed, i), made on the
    /// workers: only this recipe crosses the network.
    Random { letters: u64, seed: u64 },
    /// Inline text.
    Text { text: String },
    /// A file on the coordinator's machine (`bytes` is filled in by the coordinator).
    File { path: String, bytes: u64 },
    /// On the way to a worker, `Text` and `File` become this: the chunk's bytes follow the
    /// request on its stream as [`crate::wire::ChunkData`] frames.
    Streamed,
    /// `Text` once the coordinator has it: the job's views say how much text there was, and
    /// the text itself is held only while the job runs.
    Inline { characters: u64, bytes: u64 },
}

/// How `prime` looks for a factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PrimeMethod {
    /// Trial division of every candidate up to √n, spread over the slots.
    #[default]
    Trial,
    /// A primality test, then Pollard–Brent rho on every slot for a composite.
    Auto,
}

impl PrimeMethod {
    pub fn name(self) -> &'static str {
        match self {
            PrimeMethod::Trial => "trial",
            PrimeMethod::Auto => "auto",
        }
    }
}

impl TaskSpec {
    /// The task's name, as typed on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            TaskSpec::Pi { .. } => "pi",
            TaskSpec::Prime { .. } => "prime",
            TaskSpec::Count { .. } => "count",
            TaskSpec::Freefall { .. } | TaskSpec::FreefallFrom { .. } | TaskSpec::Survey { .. } => {
                "freefall"
            }
            TaskSpec::Sweep { .. } => "sweep",
        }
    }
}

/// One chunk's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// A `survey`: the trajectory's point count, its landing, and the state (y, v) at points
    /// 0, spacing, 2·spacing, ... before the last.
    Survey { points: u64, landing: Landing, checkpoints: Vec<(f64, f64)> },
}
