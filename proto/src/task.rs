//! The built-in tasks as they travel: what a job asks for ([`TaskSpec`]) and what one chunk of
//! it returns ([`ChunkOutput`]).
//!
//! Every task's work is a range of `u64` units (samples, divisors, letters, time steps); a chunk
//! is a sub-range. That one shape lets the scheduler cut and re-cut any job without knowing
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
}

impl TaskSpec {
    /// The task's name, as typed on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            TaskSpec::Pi { .. } => "pi",
        }
    }

    /// How many units of work the whole job holds.
    pub fn units(&self) -> u64 {
        match self {
            TaskSpec::Pi { samples, .. } => *samples,
        }
    }
}

/// One chunk's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkOutput {
    /// How many of the chunk's points fell inside the quarter circle.
    Pi { inside: u64 },
}
