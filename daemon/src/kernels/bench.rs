//! The benchmark kernel: pi samples for a fixed time, giving samples per second.
//!
//! The score of a slot is what the pi kernel (at the best SIMD level the CPU has) does there
//! per second: the best of ten windows, since anything else running on the machine can only
//! slow a window down, and the best one is what the slot can do. The scheduler scales every
//! task's expected rate by it when sizing chunks.

use super::pi::count_inside;
use super::simd::Level;
use super::Cancel;
use std::time::{Duration, Instant};

/// Samples per timing check: ~0.3 ms on a fast core.
const BLOCK: u64 = 1 << 20;

/// Windows a measurement is cut into.
const WINDOWS: u32 = 10;

/// The pi kernel's samples per second on this thread: the best window of `length / 10`.
pub fn samples_per_second(length: Duration) -> f64 {
    let level = Level::detect();
    let cancel = Cancel::default();
    let window = length / WINDOWS;
    let mut best = 0.0f64;
    let mut at = 0u64;
    for _ in 0..WINDOWS {
        let started = Instant::now();
        let mut samples = 0u64;
        while started.elapsed() < window {
            // Cannot fail: nothing cancels this flag.
            let _ = count_inside(level, 1, at, at + BLOCK, &cancel);
            (samples, at) = (samples + BLOCK, at.wrapping_add(BLOCK));
        }
        best = best.max(samples as f64 / started.elapsed().as_secs_f64());
    }
    best
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rate_is_positive() {
        assert!(super::samples_per_second(std::time::Duration::from_millis(20)) > 0.0);
    }
}
