//! What a user asks for: a job's task and parameters ([`JobSpec`]), the body of `POST
//! /v1/jobs`, and the units its work is counted in ([`Unit`]).
//!
//! A job's work is a range of `u64` units (samples, divisors, points, ...); the coordinator
//! cuts it into chunks without knowing what the units mean. How a spec becomes chunks, and
//! what travels to a worker for each, is the daemon's `tasks` module and
//! [`crate::wire::ChunkTask`]: forms the API never accepts.

use crate::command::CmdSpec;
use serde::{Deserialize, Serialize};

/// A job's task and parameters, as submitted (`POST /v1/jobs`) and as the job's views show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobSpec {
    /// Monte Carlo estimate of pi: `samples` points, point i a pure function of (seed, i).
    Pi { samples: u64, seed: u64 },
    /// Is `n` prime? A factor if not. The first chunk with a factor ends the job.
    Prime { n: u128, method: PrimeMethod },
    /// How often `letter` (one Unicode character) occurs in some bytes.
    Count { letter: String, ignore_case: bool, source: CountSource },
    /// The height of a falling body every `fall.dt` seconds until it reaches the ground: unit
    /// i is the point at t = i·dt. `points` is filled in by the coordinator (with drag, after
    /// a first pass finds where the body lands).
    Freefall { fall: Fall, points: u64 },
    /// One whole trajectory per drag coefficient `from..=to` in `steps` even steps (unit i is
    /// value i); each gives its time to ground, impact speed and maximum height.
    Sweep { fall: Fall, from: f64, to: f64, steps: u64 },
    /// A user's command once per input, on free slots: see [`crate::command`].
    Cmd(Box<CmdSpec>),
}

/// What a job's units are. Every place that shows a count of units (progress bars, result
/// summaries, per-worker shares) names them through this, so they read the same everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Sample,
    Divisor,
    RhoAttempt,
    Byte,
    Point,
    Trajectory,
    /// One run of a user's command.
    CmdUnit,
}

impl Unit {
    /// The unit's name for one of it.
    pub fn one(self) -> &'static str {
        match self {
            Unit::Sample => "sample",
            Unit::Divisor => "divisor",
            Unit::RhoAttempt => "rho attempt",
            Unit::Byte => "byte",
            Unit::Point => "point",
            Unit::Trajectory => "trajectory",
            Unit::CmdUnit => "unit",
        }
    }

    /// The unit's name for any other count.
    pub fn many(self) -> &'static str {
        match self {
            Unit::Sample => "samples",
            Unit::Divisor => "divisors",
            Unit::RhoAttempt => "rho attempts",
            Unit::Byte => "bytes",
            Unit::Point => "points",
            Unit::Trajectory => "trajectories",
            Unit::CmdUnit => "units",
        }
    }

    /// What a rate of it is written with after an SI prefix: `B` for bytes (2.50 GB/s), the
    /// plural name otherwise (3.00 G samples/s).
    pub fn rate_symbol(self) -> &'static str {
        match self {
            Unit::Byte => "B",
            unit => unit.many(),
        }
    }

    /// `n` of it, in words: "1 sample", "2 samples".
    pub fn count(self, n: u64) -> String {
        crate::human::count(n, self.one(), self.many())
    }
}

impl JobSpec {
    /// The task's name, as typed after `marmotctl run`.
    pub fn name(&self) -> &'static str {
        match self {
            JobSpec::Pi { .. } => "pi",
            JobSpec::Prime { .. } => "prime",
            JobSpec::Count { .. } => "count",
            JobSpec::Freefall { .. } => "freefall",
            JobSpec::Sweep { .. } => "sweep",
            JobSpec::Cmd(_) => "cmd",
        }
    }

    /// What the job's units are.
    pub fn unit(&self) -> Unit {
        match self {
            JobSpec::Pi { .. } => Unit::Sample,
            JobSpec::Prime { method: PrimeMethod::Trial, .. } => Unit::Divisor,
            JobSpec::Prime { method: PrimeMethod::Auto, .. } => Unit::RhoAttempt,
            JobSpec::Count { .. } => Unit::Byte,
            JobSpec::Freefall { .. } => Unit::Point,
            JobSpec::Sweep { .. } => Unit::Trajectory,
            JobSpec::Cmd(_) => Unit::CmdUnit,
        }
    }
}

/// A body thrown straight up from height `y0` (m) at `v0` (m/s) under gravity `g` (m/s²),
/// with quadratic air drag: a = −g − drag·v·|v|. Points are `dt` seconds apart.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fall {
    pub y0: f64,
    pub v0: f64,
    pub g: f64,
    pub dt: f64,
    #[serde(default)]
    pub drag: f64,
}

impl Default for Fall {
    /// The lab notebook's throw: ground at t ≈ 2048.7 s, about 2,048,700 points.
    fn default() -> Self {
        Fall { y0: 100_000.0, v0: 10_000.0, g: 9.81, dt: 0.001, drag: 0.0 }
    }
}

impl Fall {
    /// The time of point `i`: i/n when dt is 1/n for a whole n (0.001, 0.01, ...), which is
    /// the correctly rounded decimal and prints as one (0.009, not 0.009000000000000001);
    /// i·dt otherwise. Workers and clients both use it, so a printed `t` is the `t` the height
    /// was computed at.
    pub fn time(&self, i: u64) -> f64 {
        let per_second = (1.0 / self.dt).round();
        if per_second >= 1.0 && 1.0 / per_second == self.dt {
            i as f64 / per_second
        } else {
            i as f64 * self.dt
        }
    }
}

/// Numbers a sweep gives per drag value: ground time, impact speed, maximum height.
pub const SWEEP_WIDTH: usize = 3;

/// The drag coefficient of value `i` of a sweep of `steps` values from `from` to `to`.
pub fn sweep_drag(from: f64, to: f64, steps: u64, i: u64) -> f64 {
    if steps <= 1 {
        return from;
    }
    from + (to - from) * (i as f64 / (steps - 1) as f64)
}

/// How a trajectory ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Landing {
    /// Seconds from the throw to y = 0.
    pub ground_time: f64,
    /// |v| at y = 0, m/s.
    pub impact_speed: f64,
    pub max_height: f64,
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
    /// `Text` as a job's views show it: how much text there was. The text itself is held only
    /// while the job runs. Not accepted in a request.
    Inline { characters: u64, bytes: u64 },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_named_once_for_counts_and_rates() {
        let pi = JobSpec::Pi { samples: 1, seed: 0 };
        assert_eq!(
            (pi.name(), pi.unit().count(1), pi.unit().count(2)),
            ("pi", "1 sample".into(), "2 samples".into())
        );
        let count = JobSpec::Count {
            letter: "e".into(),
            ignore_case: false,
            source: CountSource::Random { letters: 1, seed: 0 },
        };
        assert_eq!((count.unit().many(), count.unit().rate_symbol()), ("bytes", "B"));
        let rho = JobSpec::Prime { n: 91, method: PrimeMethod::Auto };
        assert_eq!(rho.unit().rate_symbol(), "rho attempts");
        let trial = JobSpec::Prime { n: 91, method: PrimeMethod::Trial };
        assert_eq!(trial.unit().count(3), "3 divisors");
        let sweep = JobSpec::Sweep { fall: Fall::default(), from: 0.0, to: 1.0, steps: 2 };
        assert_eq!((sweep.name(), sweep.unit().one()), ("sweep", "trajectory"));
        let freefall = JobSpec::Freefall { fall: Fall::default(), points: 0 };
        assert_eq!((freefall.name(), freefall.unit().many()), ("freefall", "points"));
    }
}
