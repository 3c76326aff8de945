//! The built-in tasks' compute kernels.
//!
//! A kernel is a plain function over a range of units that checks a cancellation flag at least
//! every few milliseconds of work; it knows nothing of networks or threads. [`run_chunk`] maps a
//! chunk request to its kernel. Kernels that have SIMD versions pick one at run time through
//! [`simd`], so one binary is fast on a new server and still runs on an old laptop.

pub mod bench;
pub mod count;
pub mod freefall;
pub mod pi;
pub mod prime;
pub mod simd;

use proto::task::{ChunkOutput, CountSource, PrimeMethod, TaskSpec};
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

/// Runs units `start..end` of `task`.
pub fn run_chunk(
    task: &TaskSpec,
    start: u64,
    end: u64,
    cancel: &Cancel,
) -> Result<ChunkOutput, KernelError> {
    let units = units(task);
    if start > end || end > units {
        return Err(KernelError::OutOfRange { start, end, units });
    }
    check_result_size(task, end - start)?;
    let level = simd::Level::detect();
    match *task {
        TaskSpec::Pi { seed, .. } => {
            let inside = pi::count_inside(level, seed, start, end, cancel)?;
            Ok(ChunkOutput::Pi { inside })
        }
        TaskSpec::Prime { n, method: PrimeMethod::Trial } => {
            Ok(ChunkOutput::Prime { factor: prime::trial(n, start, end, level, cancel)? })
        }
        TaskSpec::Prime { n, method: PrimeMethod::Auto } => {
            Ok(ChunkOutput::Prime { factor: prime::rho(n, start, end, cancel)? })
        }
        TaskSpec::Count { ref letter, ignore_case, source: CountSource::Random { seed, .. } } => {
            let pattern = count::Pattern::new(one_char(letter)?, ignore_case);
            let count = count::count_random(&pattern, seed, start, end, level, cancel)?;
            Ok(ChunkOutput::Count { count })
        }
        TaskSpec::Count { .. } => Err(KernelError::BadRequest(
            "a count over bytes needs its bytes streamed with the chunk".into(),
        )),
        TaskSpec::Freefall { ref fall, .. } if fall.drag == 0.0 => {
            Ok(ChunkOutput::Series { values: freefall::vacuum_heights(fall, start, end, cancel)? })
        }
        TaskSpec::Freefall { .. } => Err(KernelError::BadRequest(
            "a freefall with drag needs its checkpoint sent with the chunk".into(),
        )),
        TaskSpec::FreefallFrom { ref fall, at, y, v, .. } => {
            let values = freefall::drag_heights(fall, (at, y, v), start, end, cancel)?;
            Ok(ChunkOutput::Series { values })
        }
        TaskSpec::Survey { ref fall, spacing } => {
            let s = freefall::survey(fall, Some(spacing.max(1)), cancel)?;
            Ok(ChunkOutput::Survey {
                points: s.points,
                landing: s.landing,
                checkpoints: s.checkpoints,
            })
        }
        TaskSpec::Sweep { ref fall, from, to, steps } => {
            let values = freefall::sweep(fall, (from, to, steps), start, end, cancel)?;
            Ok(ChunkOutput::Series { values })
        }
    }
}

/// Refuses a chunk whose result would be larger than the protocol carries, before anything
/// is allocated for it: the coordinator never asks for one, a peer that does is not obeyed.
fn check_result_size(task: &TaskSpec, units: u64) -> Result<(), KernelError> {
    let values = match *task {
        TaskSpec::Freefall { .. } | TaskSpec::FreefallFrom { .. } => units,
        TaskSpec::Sweep { .. } => units.saturating_mul(freefall::SWEEP_WIDTH as u64),
        TaskSpec::Survey { spacing, .. } if spacing < freefall::CHECKPOINT_SPACING => {
            return Err(KernelError::BadRequest(format!(
                "a survey with checkpoints every {spacing} points is over the protocol's limit \
                 (every {} at the closest)",
                freefall::CHECKPOINT_SPACING
            )));
        }
        _ => 0,
    };
    if values > freefall::MAX_CHUNK_POINTS {
        return Err(KernelError::BadRequest(format!(
            "a chunk of {values} values is over the protocol's limit of {}",
            freefall::MAX_CHUNK_POINTS
        )));
    }
    Ok(())
}

/// The one character of a `count` letter.
pub fn one_char(letter: &str) -> Result<char, KernelError> {
    let mut chars = letter.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(KernelError::BadRequest(format!(
            "the letter to count must be exactly one character, not '{letter}'"
        ))),
    }
}

/// How many units of work a job of `task` holds.
pub fn units(task: &TaskSpec) -> u64 {
    match *task {
        TaskSpec::Pi { samples, .. } => samples,
        TaskSpec::Prime { n, method: PrimeMethod::Trial } => prime::trial_units(n),
        // A prime (or 0, 1) needs no search: its verdict is the primality test's.
        TaskSpec::Prime { n, method: PrimeMethod::Auto } if n < 4 || prime::is_prime(n) => 0,
        TaskSpec::Prime { method: PrimeMethod::Auto, .. } => prime::RHO_ATTEMPTS,
        TaskSpec::Count { ref source, .. } => match source {
            CountSource::Random { letters, .. } => *letters,
            CountSource::Text { text } => text.len() as u64,
            CountSource::Inline { bytes, .. } => *bytes,
            CountSource::File { bytes, .. } => *bytes,
            CountSource::Streamed => 0,
        },
        TaskSpec::Freefall { points, .. } | TaskSpec::FreefallFrom { points, .. } => points,
        TaskSpec::Survey { .. } => 1,
        TaskSpec::Sweep { steps, .. } => steps,
    }
}

/// The pi samples per second of the slot [`nominal_rate`] assumes; `bench` scores are
/// compared with it.
pub const NOMINAL_PI_RATE: f64 = 1.0e9;

/// Expected units per second of a slot that does [`NOMINAL_PI_RATE`] pi samples per second:
/// sizes a job's chunks, scaled by the cluster's `bench` scores once it has them.
pub fn nominal_rate(task: &TaskSpec) -> f64 {
    match task {
        TaskSpec::Pi { .. } => NOMINAL_PI_RATE,
        TaskSpec::Prime { n, method: PrimeMethod::Trial } if *n <= u128::from(u64::MAX) => 2.0e9,
        TaskSpec::Prime { method: PrimeMethod::Trial, .. } => 3.0e7,
        // About 0.1 s per rho attempt: chunks of a few attempts.
        TaskSpec::Prime { method: PrimeMethod::Auto, .. } => 10.0,
        TaskSpec::Count { source: CountSource::Random { .. }, .. } => 2.0e9,
        // Streamed bytes: bounded by the network and the coordinator's disk.
        TaskSpec::Count { .. } => 5.0e8,
        // Heights are cheap; shipping them (8 bytes each) is what takes the time.
        TaskSpec::Freefall { .. } => 5.0e7,
        TaskSpec::FreefallFrom { .. } => 2.0e7,
        // A unit is a whole trajectory: ~25 ns per RK4 step.
        TaskSpec::Survey { fall, .. } | TaskSpec::Sweep { fall, .. } => {
            let steps = freefall::vacuum_landing(fall).ground_time / fall.dt;
            1.0 / (steps.max(1.0) * 25e-9)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::task::Fall;

    #[test]
    fn a_chunk_too_big_for_the_protocol_is_refused_before_it_runs() {
        let cancel = Cancel::default();
        let fall = Fall::default();
        let points = 10_000_000_000;
        let freefall = TaskSpec::Freefall { fall, points };
        let max = freefall::MAX_CHUNK_POINTS;
        assert!(run_chunk(&freefall, 0, max, &cancel).is_ok());
        let Err(KernelError::BadRequest(e)) = run_chunk(&freefall, 0, max + 1, &cancel) else {
            panic!("a chunk over the limit ran");
        };
        assert!(e.contains(&format!("{} values is over the protocol's limit", max + 1)), "{e}");
        let sweep = TaskSpec::Sweep { fall, from: 0.0, to: 1e-4, steps: 1_000_000 };
        let third = max / freefall::SWEEP_WIDTH as u64;
        assert!(run_chunk(&sweep, 0, third + 1, &cancel).is_err());
        let survey = TaskSpec::Survey { fall: Fall { drag: 1e-4, ..fall }, spacing: 1 };
        let Err(KernelError::BadRequest(e)) = run_chunk(&survey, 0, 1, &cancel) else {
            panic!("a survey with a checkpoint per point ran");
        };
        assert!(e.contains("checkpoints every 1 points"), "{e}");
        let pi = TaskSpec::Pi { samples: u64::MAX, seed: 1 };
        assert!(check_result_size(&pi, u64::MAX).is_ok(), "pi's result does not grow");
    }
}
