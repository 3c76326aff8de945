//! The built-in tasks' compute kernels.
//!
//! A kernel is a plain function over a range of units that checks a cancellation flag at least
//! every few milliseconds of work; it knows nothing of networks or threads. [`run_chunk`] maps a
//! chunk request to its kernel. Kernels that have SIMD versions pick one at run time through
//! [`simd`], so one binary is fast on a new server and still runs on an old laptop.

pub mod pi;
pub mod simd;

use proto::task::{ChunkOutput, TaskSpec};
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a kernel did not produce a result.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KernelError {
    #[error("cancelled")]
    Cancelled,
    #[error("units {start}..{end} are outside the task's 0..{units}")]
    OutOfRange { start: u64, end: u64, units: u64 },
}

/// A shared flag a kernel polls; set when the chunk's stream is stopped.
#[derive(Debug, Default)]
pub struct Cancel(AtomicBool);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancelled, for `?` inside kernel loops.
    pub fn check(&self) -> Result<(), KernelError> {
        if self.is_cancelled() {
            Err(KernelError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Runs units `start..end` of `task`.
pub fn run_chunk(
    task: &TaskSpec,
    start: u64,
    end: u64,
    cancel: &Cancel,
) -> Result<ChunkOutput, KernelError> {
    let units = task.units();
    if start > end || end > units {
        return Err(KernelError::OutOfRange { start, end, units });
    }
    match *task {
        TaskSpec::Pi { seed, .. } => {
            let inside = pi::count_inside(simd::Level::detect(), seed, start, end, cancel)?;
            Ok(ChunkOutput::Pi { inside })
        }
    }
}

/// Expected units per second of one slot, before any measurement: sizes a job's chunks.
pub fn nominal_rate(task: &TaskSpec) -> f64 {
    match task {
        TaskSpec::Pi { .. } => 1.0e9,
    }
}
