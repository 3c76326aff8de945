//! The built-in tasks' compute kernels.
//!
//! A kernel is a plain function over a range of units that checks a cancellation flag at least
//! every few milliseconds of work; it knows nothing of jobs, chunks, networks or threads (the
//! task modules in [`crate::tasks`] call them). Kernels that have SIMD versions pick one at run
//! time through [`simd`], so one binary is fast on a new server and still runs on an old
//! laptop.

pub mod bench;
pub mod count;
pub mod freefall;
pub mod pi;
pub mod prime;
pub mod simd;

use std::sync::atomic::{AtomicBool, Ordering};

/// Why a kernel did not produce a result.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KernelError {
    #[error("cancelled")]
    Cancelled,
    #[error("units {start}..{end} are outside the task's 0..{units}")]
    OutOfRange { start: u64, end: u64, units: u64 },
    #[error("{0}")]
    BadRequest(String),
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
