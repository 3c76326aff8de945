//! The benchmark kernel: pi samples for a fixed time, giving samples per second.
//!
//! The score of a slot is what the pi kernel (at the best SIMD level the CPU has) does in a
//! second there; the scheduler scales every task's expected rate by it when sizing chunks.

use super::pi::count_inside;
use super::simd::Level;
use super::Cancel;
use std::time::{Duration, Instant};

/// Samples per timing check: ~1 ms on a fast core.
const BLOCK: u64 = 1 << 22;

/// The pi kernel's samples per second on this thread, measured over `length`.
pub fn samples_per_second(length: Duration) -> f64 {
    let level = Level::detect();
    let cancel = Cancel::default();
    let started = Instant::now();
    let mut samples = 0u64;
    while started.elapsed() < length {
        // Cannot fail: nothing cancels this flag.
        let _ = count_inside(level, 1, samples, samples + BLOCK, &cancel);
        samples += BLOCK;
    }
    samples as f64 / started.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rate_is_positive() {
        assert!(super::samples_per_second(std::time::Duration::from_millis(20)) > 0.0);
    }
}
