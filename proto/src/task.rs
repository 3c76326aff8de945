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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSpec {
    /// Monte Carlo estimate of pi: `samples` points, point i a pure function of (seed, i).
    Pi { samples: u64, seed: u64 },
    /// Is `n` prime? A factor if not. The first chunk with a factor ends the job.
    Prime { n: u128, method: PrimeMethod },
    /// How often `letter` (one Unicode character) occurs in some bytes.
    Count { letter: String, ignore_case: bool, source: CountSource },
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
        }
    }
}

/// One chunk's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkOutput {
    /// How many of the chunk's points fell inside the quarter circle.
    Pi { inside: u64 },
    /// A non-trivial factor of `n` found in the chunk, if any.
    Prime { factor: Option<u128> },
    /// Occurrences starting in the chunk.
    Count { count: u64 },
}
