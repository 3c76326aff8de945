//! A sans-IO rate limit for log lines: a burst per window, the rest counted, so a peer that
//! gets itself refused in a loop cannot fill the disk with the coordinator's log.
//! Used by the log book (lines gathered from workers) and by every place that logs peers'
//! mistakes.

/// Lets at most `burst` lines through per `window` and counts the rest, so a peer that gets
/// itself refused in a loop cannot fill the disk with the coordinator's log. Sans-IO: the
/// caller gives the time.
#[derive(Debug)]
pub struct Throttle {
    window: std::time::Duration,
    burst: u32,
    window_start: Option<std::time::Instant>,
    used: u32,
    suppressed: u64,
}

impl Throttle {
    pub fn new(burst: u32, window: std::time::Duration) -> Self {
        Throttle { window, burst, window_start: None, used: 0, suppressed: 0 }
    }

    /// Whether a line may be logged at `now`: `Some(n)` with the number of lines held back
    /// since the last one let through (to say so in it), or `None` to stay silent.
    pub fn allow(&mut self, now: std::time::Instant) -> Option<u64> {
        match self.window_start {
            Some(start) if now.duration_since(start) < self.window => {}
            _ => {
                self.window_start = Some(now);
                self.used = 0;
            }
        }
        if self.used >= self.burst {
            self.suppressed += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::Throttle;
    use std::time::{Duration, Instant};

    #[test]
    fn a_burst_per_window_then_a_count_of_what_was_held_back() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(3, Duration::from_secs(10));
        let seen: Vec<_> = (0..5).map(|_| throttle.allow(t0)).collect();
        assert_eq!(seen, [Some(0), Some(0), Some(0), None, None]);
        // Still inside the window: held back.
        assert_eq!(throttle.allow(t0 + Duration::from_millis(9_999)), None);
        // A new window: the next line says 3 were held back, and the count restarts.
        assert_eq!(throttle.allow(t0 + Duration::from_secs(10)), Some(3));
        assert_eq!(throttle.allow(t0 + Duration::from_secs(10)), Some(0));
        assert_eq!(throttle.allow(t0 + Duration::from_secs(10)), Some(0));
        assert_eq!(throttle.allow(t0 + Duration::from_secs(11)), None);
        assert_eq!(throttle.allow(t0 + Duration::from_secs(25)), Some(1));
    }
}
