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
    use super::*;

    /// The pi kernel's rate measured plainly: a fixed count of samples timed, the best of a
    /// few runs (as the score is the best of its windows: a loaded machine only slows one).
    fn plain_rate() -> f64 {
        let (level, cancel) = (Level::detect(), Cancel::default());
        let samples = 8 * BLOCK;
        let best = (0..8)
            .map(|run| {
                let started = Instant::now();
                let inside = count_inside(level, 1, run * samples, (run + 1) * samples, &cancel);
                let seconds = started.elapsed().as_secs_f64();
                let inside = inside.unwrap();
                assert!(inside > samples / 2 && inside < samples, "{inside} of {samples} inside");
                samples as f64 / seconds
            })
            .fold(0.0, f64::max);
        best
    }

    #[test]
    fn the_score_is_the_kernels_own_rate() {
        let plain = plain_rate();
        let score = samples_per_second(Duration::from_millis(200));
        // The best window is at least what a plain run does (give or take a loaded
        // machine), and no window can run the kernel many times faster than it runs.
        assert!(score > plain / 3.0, "score {score:.3e}/s, plain run {plain:.3e}/s");
        assert!(score < plain * 3.0, "score {score:.3e}/s, plain run {plain:.3e}/s");
    }

    #[test]
    fn a_measurement_lasts_at_least_its_length() {
        let started = Instant::now();
        samples_per_second(Duration::from_millis(100));
        assert!(started.elapsed() >= Duration::from_millis(100), "ten windows of 10 ms");
    }
}
