//! `marmotctl parallel --bar`, `--eta`, `--progress`: a run's progress on stderr, one line
//! rewritten (`\r`) as units end, as GNU parallel shows it. Sans-IO: units' ends in, the
//! line out.

use super::Progress;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a run has done so far.
pub struct Tracker {
    show: Progress,
    total: u64,
    started: Instant,
    done: u64,
    /// The last unit counted: its tries come one after another and count once.
    last: Option<u64>,
    /// Per worker: units ended and their run time together.
    workers: BTreeMap<String, (u64, Duration)>,
}

/// The longest part of a unit's command `--bar` shows.
const SHOWN: usize = 60;

impl Tracker {
    pub fn new(show: Progress, total: u64, now: Instant) -> Tracker {
        Tracker { show, total, started: now, done: 0, last: None, workers: BTreeMap::new() }
    }

    /// What is said before any unit ends: `--progress`'s columns, and the line as it stands
    /// (nothing done), as GNU parallel starts it.
    pub fn header(&self, now: Instant) -> String {
        let columns = match self.show.per_worker {
            true => "Worker:units done/% of units done/mean seconds a unit ran\n",
            false => "",
        };
        format!("{columns}{}", self.line("", now))
    }

    /// Counts unit `unit` ended on `worker` after `runtime` (a try it makes again counts
    /// once); the line to print then.
    pub fn unit_ended(
        &mut self,
        unit: u64,
        worker: &str,
        runtime: Duration,
        command: &str,
        now: Instant,
    ) -> String {
        if self.last != Some(unit) {
            self.done += 1;
            self.last = Some(unit);
        }
        let entry = self.workers.entry(worker.to_string()).or_default();
        *entry = (entry.0 + 1, entry.1 + runtime);
        self.line(command, now)
    }

    /// The line for the run as it stands, starting with `\r` (it rewrites the last).
    fn line(&self, command: &str, now: Instant) -> String {
        let left = self.total.saturating_sub(self.done);
        let elapsed = now.saturating_duration_since(self.started).as_secs_f64();
        let eta = match self.done {
            0 => 0.0,
            done => elapsed / done as f64 * left as f64,
        };
        let mut line = String::from("\r");
        if self.show.bar {
            let pct = (self.done * 100).checked_div(self.total).unwrap_or(100);
            let end = command.char_indices().nth(SHOWN).map_or(command.len(), |(at, _)| at);
            line += &format!("{pct}% {}:{left}={eta:.0}s {} ", self.done, &command[..end]);
        }
        if self.show.eta {
            let (units, time) =
                self.workers.values().fold((0, Duration::ZERO), |(n, t), w| (n + w.0, t + w.1));
            let mean = time.as_secs_f64() / units.max(1) as f64;
            line += &format!("ETA: {eta:.0}s Left: {left} AVG: {mean:.2}s  ");
        }
        if self.show.per_worker || self.show.eta {
            for (name, (units, time)) in &self.workers {
                let pct = (units * 100).checked_div(self.done).unwrap_or(0);
                let mean = time.as_secs_f64() / (*units).max(1) as f64;
                line += &format!("{name}:{units}/{pct}%/{mean:.1}s ");
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn the_bar_says_the_share_done_what_is_left_and_when_it_ends() {
        let now = Instant::now();
        let bar = Progress { bar: true, ..Progress::default() };
        let mut run = Tracker::new(bar, 4, now);
        assert_eq!(run.header(now), "\r0% 0:4=0s  ");
        let line = run.unit_ended(0, "w1", Duration::from_secs(2), "sleep 2", at(now, 2));
        assert_eq!(line, "\r25% 1:3=6s sleep 2 ");
        // A try made again counts once.
        let line = run.unit_ended(1, "w2", Duration::from_secs(1), "x", at(now, 4));
        assert_eq!(line, "\r50% 2:2=4s x ");
        let line = run.unit_ended(1, "w2", Duration::from_secs(1), "x", at(now, 4));
        assert_eq!(line, "\r50% 2:2=4s x ");
        let long = "y".repeat(100);
        let line = run.unit_ended(2, "w1", Duration::ZERO, &long, at(now, 6));
        assert_eq!(line, format!("\r75% 3:1=2s {} ", "y".repeat(60)));
    }

    #[test]
    fn eta_and_progress_say_each_workers_share() {
        let now = Instant::now();
        let show = Progress { eta: true, per_worker: true, ..Progress::default() };
        let mut run = Tracker::new(show, 3, now);
        let header = run.header(now);
        assert_eq!(header, "Worker:units done/% of units done/mean seconds a unit ran\n\rETA: 0s Left: 3 AVG: 0.00s  ");
        run.unit_ended(0, "w1", Duration::from_secs(1), "a", at(now, 1));
        let line = run.unit_ended(1, "w2", Duration::from_secs(3), "b", at(now, 2));
        assert_eq!(line, "\rETA: 1s Left: 1 AVG: 2.00s  w1:1/50%/1.0s w2:1/50%/3.0s ");
        let progress = Progress { per_worker: true, ..Progress::default() };
        let mut run = Tracker::new(progress, 1, now);
        let line = run.unit_ended(0, "w1", Duration::from_millis(500), "a", at(now, 1));
        assert_eq!(line, "\rw1:1/100%/0.5s ");
    }
}
