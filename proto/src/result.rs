//! What a finished job computed: a typed [`JobResult`] per task, as `GET /v1/jobs/{id}`
//! returns it in [`crate::api::JobView::result`], and the summary `marmotctl` prints of it.
//!
//! In JSON a result is an object tagged by its task (`{"task": "pi", "estimate": ...}`).

use crate::human;
use crate::job::{Fall, Landing, PrimeMethod, Unit};
use serde::{Deserialize, Serialize};

/// A finished job's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum JobResult {
    Pi(PiResult),
    Prime(PrimeResult),
    Count(CountResult),
    Freefall(FreefallResult),
    Sweep(SweepResult),
    Cmd(CmdResult),
}

impl std::fmt::Display for JobResult {
    /// The human summary `marmotctl run` and `marmotd demo` print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobResult::Pi(r) => r.fmt(f),
            JobResult::Prime(r) => r.fmt(f),
            JobResult::Count(r) => r.fmt(f),
            JobResult::Freefall(r) => r.fmt(f),
            JobResult::Sweep(r) => r.fmt(f),
            JobResult::Cmd(r) => r.fmt(f),
        }
    }
}

/// Work one worker did for a job.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkerShare {
    pub name: String,
    pub chunks: u64,
    pub units: u64,
}

/// The result of a `pi` job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PiResult {
    pub samples: u64,
    pub seed: u64,
    pub inside: u64,
    pub estimate: f64,
    pub std_error: f64,
    pub seconds: f64,
    pub samples_per_second: f64,
    pub workers: Vec<WorkerShare>,
}

/// The result of a `prime` job. Numbers up to 2^128 are written as decimal strings, which
/// every JSON reader keeps exact.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrimeResult {
    pub n: String,
    pub prime: bool,
    /// A non-trivial factor, when one was found.
    pub factor: Option<String>,
    /// `n / factor`.
    pub cofactor: Option<String>,
    pub method: PrimeMethod,
    pub seconds: f64,
    pub workers: Vec<WorkerShare>,
}

/// The result of a `count` job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CountResult {
    pub letter: String,
    pub ignore_case: bool,
    pub count: u64,
    /// Bytes (random letters, for `--random`) looked at.
    pub bytes: u64,
    pub seconds: f64,
    pub bytes_per_second: f64,
    pub workers: Vec<WorkerShare>,
}

/// The result of a `freefall` job. The points themselves went to the client chunk by chunk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FreefallResult {
    pub fall: Fall,
    pub points: u64,
    pub landing: Landing,
    pub seconds: f64,
    pub points_per_second: f64,
    pub workers: Vec<WorkerShare>,
}

/// The result of a `sweep` job (a freefall per drag value). The rows went to the client
/// chunk by chunk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepResult {
    pub fall: Fall,
    pub from: f64,
    pub to: f64,
    pub steps: u64,
    pub seconds: f64,
    pub workers: Vec<WorkerShare>,
}

/// The result of a `cmd` job. The units' output went to the client as they finished.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CmdResult {
    pub units: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Units that did not run: `--halt` stopped the job first.
    pub skipped: u64,
    /// The `--halt` rule that stopped the job, if one did.
    pub halted: Option<String>,
    /// The job's exit status as the rule fixed it when it was met (GNU parallel's: see
    /// `command::halt`); otherwise the failed units count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt_status: Option<u8>,
    pub seconds: f64,
    pub workers: Vec<WorkerShare>,
    /// Units that ran more than once (`--retries`) before they counted.
    #[serde(default)]
    pub retried: u64,
    /// The first of them (at most 100), with the worker of each try.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retried_units: Vec<RetriedUnit>,
}

impl CmdResult {
    /// The exit status `marmotctl` gives for the job, as GNU parallel's.
    pub fn exit_status(&self) -> u8 {
        self.halt_status.unwrap_or_else(|| crate::command::halt::exit_status(self.failed))
    }
}

/// A unit that ran more than once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetriedUnit {
    /// Its index in the job, from 0.
    pub unit: u64,
    /// The worker of each try, in order; the last one counted.
    pub workers: Vec<String>,
}

impl std::fmt::Display for CmdResult {
    /// The human summary `marmotctl run cmd` prints (on stderr: stdout is the units').
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in {:.3} s: {} succeeded, {} failed",
            Unit::CmdUnit.count(self.units),
            self.seconds,
            self.succeeded,
            self.failed
        )?;
        match &self.halted {
            Some(rule) => writeln!(f, "; --halt {rule} stopped it, {} not run", self.skipped)?,
            None => writeln!(f)?,
        }
        if self.retried > 0 {
            writeln!(f, "{} ran more than once:", Unit::CmdUnit.count(self.retried))?;
            for unit in &self.retried_units {
                writeln!(f, "  unit {}: {}", unit.unit + 1, unit.workers.join(", "))?;
            }
            if self.retried > self.retried_units.len() as u64 {
                writeln!(f, "  and {} more", self.retried - self.retried_units.len() as u64)?;
            }
        }
        write_shares(f, &self.workers, Unit::CmdUnit)
    }
}

impl std::fmt::Display for PiResult {
    /// The human summary `marmotctl run pi` and `marmotd demo` print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "pi ≈ {:.10} ± {:.2e}", self.estimate, self.std_error)?;
        writeln!(
            f,
            "{} (seed {}) in {:.3} s: {}",
            Unit::Sample.count(self.samples),
            self.seed,
            self.seconds,
            human::rate(self.samples_per_second, Unit::Sample.rate_symbol())
        )?;
        write_shares(f, &self.workers, Unit::Sample)
    }
}

impl std::fmt::Display for PrimeResult {
    /// The human summary `marmotctl run prime` and `marmotd demo` print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.factor, &self.cofactor) {
            (Some(factor), Some(cofactor)) => writeln!(f, "{} = {factor} × {cofactor}", self.n)?,
            _ if self.prime => writeln!(f, "{} is prime", self.n)?,
            _ => writeln!(f, "{} is not prime (no factor found)", self.n)?,
        }
        writeln!(f, "method {} in {:.3} s", self.method.name(), self.seconds)?;
        let unit = match self.method {
            PrimeMethod::Trial => Unit::Divisor,
            PrimeMethod::Auto => Unit::RhoAttempt,
        };
        write_shares(f, &self.workers, unit)
    }
}

impl std::fmt::Display for CountResult {
    /// The human summary `marmotctl run count` and `marmotd demo` print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let case = if self.ignore_case { " (any case)" } else { "" };
        let times = human::count(self.count, "time", "times");
        let bytes = Unit::Byte.count(self.bytes);
        writeln!(f, "'{}'{case} occurs {times} in {bytes}", self.letter.escape_debug())?;
        writeln!(
            f,
            "{:.3} s: {}",
            self.seconds,
            human::rate(self.bytes_per_second, Unit::Byte.rate_symbol())
        )?;
        write_shares(f, &self.workers, Unit::Byte)
    }
}

impl std::fmt::Display for FreefallResult {
    /// The human summary `marmotctl run freefall` and `marmotd demo` print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Fall { y0, v0, g, dt, drag } = self.fall;
        let drag = if drag > 0.0 { format!(", drag {drag}") } else { String::new() };
        writeln!(f, "thrown from {y0} m at {v0} m/s, g = {g} m/s²{drag}, a point every {dt} s")?;
        let Landing { ground_time, impact_speed, max_height } = self.landing;
        writeln!(
            f,
            "{}: ground at t = {ground_time:.3} s, {impact_speed:.3} m/s, peak {max_height:.3} m",
            Unit::Point.count(self.points)
        )?;
        writeln!(
            f,
            "{:.3} s: {}",
            self.seconds,
            human::rate(self.points_per_second, Unit::Point.rate_symbol())
        )?;
        write_shares(f, &self.workers, Unit::Point)
    }
}

impl std::fmt::Display for SweepResult {
    /// The human summary `marmotctl run freefall --sweep-drag` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}, drag {} to {}, in {:.3} s",
            Unit::Trajectory.count(self.steps),
            self.from,
            self.to,
            self.seconds
        )?;
        write_shares(f, &self.workers, Unit::Trajectory)
    }
}

/// One line per worker: the chunks and units it computed.
fn write_shares(
    f: &mut std::fmt::Formatter<'_>,
    workers: &[WorkerShare],
    unit: Unit,
) -> std::fmt::Result {
    for w in workers {
        let chunks = human::noun(w.chunks, "chunk", "chunks");
        let unit = human::noun(w.units, unit.one(), unit.many());
        writeln!(f, "  {:<20} {:>6} {chunks:<6} {:>20} {unit}", w.name, w.chunks, w.units)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(units: &[u64]) -> Vec<WorkerShare> {
        let name = |i: usize| format!("w{i}");
        units
            .iter()
            .enumerate()
            .map(|(i, &u)| WorkerShare { name: name(i), chunks: u.min(3), units: u })
            .collect()
    }

    #[test]
    fn a_command_jobs_summary_names_the_units_that_ran_again() {
        let result = |retried, retried_units| CmdResult {
            units: 6,
            succeeded: 6,
            failed: 0,
            skipped: 0,
            halted: None,
            halt_status: None,
            seconds: 1.5,
            workers: vec![],
            retried,
            retried_units,
        };
        assert_eq!(result(0, vec![]).to_string(), "6 units in 1.500 s: 6 succeeded, 0 failed\n");
        let one = RetriedUnit { unit: 2, workers: vec!["vm".into(), "w2".into(), "vm".into()] };
        assert_eq!(
            result(1, vec![one.clone()]).to_string(),
            "6 units in 1.500 s: 6 succeeded, 0 failed\n1 unit ran more than once:\n  unit 3: vm, w2, vm\n"
        );
        let text = result(3, vec![one]).to_string();
        assert!(
            text.contains("3 units ran more than once:\n  unit 3: vm, w2, vm\n  and 2 more\n"),
            "{text}"
        );
    }

    #[test]
    fn results_read_as_sentences_with_plurals_and_scaled_rates() {
        let pi = PiResult {
            samples: 1_000_000,
            seed: 7,
            inside: 785_398,
            estimate: 3.25,
            std_error: 0.00164,
            seconds: 0.5,
            samples_per_second: 2e6,
            workers: shares(&[1, 999_999]),
        };
        assert_eq!(
            pi.to_string(),
            "pi ≈ 3.2500000000 ± 1.64e-3\n1000000 samples (seed 7) in 0.500 s: 2.00 M samples/s\n  \
             w0                        1 chunk                     1 sample\n  \
             w1                        3 chunks               999999 samples\n"
        );
        let prime = |factor: Option<&str>, prime: bool, method: PrimeMethod| PrimeResult {
            n: "91".into(),
            prime,
            factor: factor.map(Into::into),
            cofactor: factor.map(|_| "13".into()),
            method,
            seconds: 0.25,
            workers: shares(&[2]),
        };
        assert_eq!(
            prime(Some("7"), false, PrimeMethod::Trial).to_string(),
            "91 = 7 × 13\nmethod trial in 0.250 s\n  w0                        2 chunks                    2 divisors\n"
        );
        assert_eq!(
            prime(None, true, PrimeMethod::Auto).to_string(),
            "91 is prime\nmethod auto in 0.250 s\n  w0                        2 chunks                    2 rho attempts\n"
        );
        assert!(prime(None, false, PrimeMethod::Auto)
            .to_string()
            .starts_with("91 is not prime (no factor found)\n"));
        let count = CountResult {
            letter: "e".into(),
            ignore_case: true,
            count: 1,
            bytes: 16,
            seconds: 0.0003,
            bytes_per_second: 53_333.0,
            workers: vec![],
        };
        assert_eq!(
            count.to_string(),
            "'e' (any case) occurs 1 time in 16 bytes\n0.000 s: 53.3 kB/s\n"
        );
        let fall = Fall { y0: 100.0, v0: 10.0, g: 9.81, dt: 0.5, drag: 0.0 };
        let landing = Landing { ground_time: 5.678, impact_speed: 45.5, max_height: 105.1 };
        let freefall = |drag| FreefallResult {
            fall: Fall { drag, ..fall },
            points: 12,
            landing,
            seconds: 0.002,
            points_per_second: 6000.0,
            workers: vec![],
        };
        assert_eq!(
            freefall(0.0).to_string(),
            "thrown from 100 m at 10 m/s, g = 9.81 m/s², a point every 0.5 s\n12 points: ground at \
             t = 5.678 s, 45.500 m/s, peak 105.100 m\n0.002 s: 6.00 k points/s\n"
        );
        assert!(freefall(0.01).to_string().contains("g = 9.81 m/s², drag 0.01, a point"));
        let sweep =
            SweepResult { fall, from: 0.0, to: 0.5, steps: 1, seconds: 0.1, workers: shares(&[1]) };
        assert_eq!(
            sweep.to_string(),
            "1 trajectory, drag 0 to 0.5, in 0.100 s\n  w0                        1 chunk                     1 trajectory\n"
        );
    }
}
