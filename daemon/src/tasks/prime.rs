//! `prime`: is n prime, and a factor if not. Units are divisor candidates (trial division) or
//! rho attempts (auto); the first chunk that finds a factor answers the job.

use super::{Chunk, Fold, Job, Run, Work};
use crate::kernels::{prime, simd};
use crate::scheduler::{ChunkIndex, JobShape};
use proto::job::{JobSpec, PrimeMethod};
use proto::result::{JobResult, PrimeResult};
use proto::wire::{ChunkOutput, ChunkTask};

pub fn job(n: u128, method: PrimeMethod) -> Box<dyn Job> {
    Box::new(PrimeJob { n, method, factor: None })
}

struct PrimeJob {
    n: u128,
    method: PrimeMethod,
    factor: Option<u128>,
}

/// How many units a search for a factor of `n` has.
pub fn units(n: u128, method: PrimeMethod) -> u64 {
    match method {
        PrimeMethod::Trial => prime::trial_units(n),
        // A prime (or 0, 1) needs no search: its verdict is the primality test's.
        PrimeMethod::Auto if n < 4 || prime::is_prime(n) => 0,
        PrimeMethod::Auto => prime::RHO_ATTEMPTS,
    }
}

/// Units per second of the reference slot.
fn nominal_rate(n: u128, method: PrimeMethod) -> f64 {
    match method {
        PrimeMethod::Trial if n <= u128::from(u64::MAX) => 2.0e9,
        PrimeMethod::Trial => 3.0e7,
        // About 0.1 s per rho attempt: chunks of a few attempts.
        PrimeMethod::Auto => 10.0,
    }
}

impl Job for PrimeJob {
    fn spec(&self) -> JobSpec {
        JobSpec::Prime { n: self.n, method: self.method }
    }

    fn shape(&self) -> JobShape {
        // Revocable with nothing to take out: a factor is checked (it divides n), and "none
        // here" adds nothing; the chunks run again elsewhere.
        let shape = JobShape::new(units(self.n, self.method), nominal_rate(self.n, self.method));
        JobShape { revocable: true, ..shape }
    }

    fn chunk(&self, _start: u64, _end: u64, _attempt: u32) -> Chunk {
        Chunk::of(ChunkTask::Prime { n: self.n, method: self.method })
    }

    fn reduce(&mut self, _chunk: ChunkIndex, _start: u64, output: ChunkOutput) -> Fold {
        if let ChunkOutput::Prime { factor } = output {
            self.factor = self.factor.or(factor);
        }
        if self.factor.is_some() {
            Fold::Answered
        } else {
            Fold::Added
        }
    }

    fn result(&self, run: Run) -> JobResult {
        let (n, factor) = (self.n, self.factor);
        let prime = factor.is_none()
            && match self.method {
                PrimeMethod::Trial => n >= 2,
                PrimeMethod::Auto => prime::is_prime(n),
            };
        JobResult::Prime(PrimeResult {
            n: n.to_string(),
            prime,
            factor: factor.map(|f| f.to_string()),
            cofactor: factor.map(|f| (n / f).to_string()),
            method: self.method,
            seconds: run.seconds,
            workers: run.workers,
        })
    }
}

/// Whether `output` can be a chunk's answer for `n`: no factor, or a true one.
pub fn check(n: u128, output: &ChunkOutput) -> bool {
    match output {
        ChunkOutput::Prime { factor: None } => true,
        ChunkOutput::Prime { factor: Some(f) } => *f > 1 && *f < n && n.is_multiple_of(*f),
        _ => false,
    }
}

pub fn work(n: u128, method: PrimeMethod, start: u64, end: u64) -> Work {
    Work::Compute(Box::new(move |cancel| {
        let factor = match method {
            PrimeMethod::Trial => prime::trial(n, start, end, simd::Level::detect(), cancel)?,
            PrimeMethod::Auto => prime::rho(n, start, end, cancel)?,
        };
        Ok(ChunkOutput::Prime { factor })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(job: &dyn Job) -> PrimeResult {
        match job.result(Run { seconds: 1.0, workers: vec![] }) {
            JobResult::Prime(r) => r,
            other => panic!("not a prime result: {other:?}"),
        }
    }

    #[test]
    fn the_first_factor_answers_the_job() {
        let mut job = job(91, PrimeMethod::Trial);
        assert_eq!(job.shape().units, 8, "divisors 2..=9");
        assert_eq!(job.reduce(0, 0, ChunkOutput::Prime { factor: None }), Fold::Added);
        assert_eq!(job.reduce(1, 4, ChunkOutput::Prime { factor: Some(7) }), Fold::Answered);
        assert_eq!(job.reduce(2, 6, ChunkOutput::Prime { factor: Some(13) }), Fold::Answered);
        let r = result(&*job);
        assert_eq!(
            (r.prime, r.factor.as_deref(), r.cofactor.as_deref()),
            (false, Some("7"), Some("13"))
        );
    }

    #[test]
    fn verdicts_without_a_factor() {
        assert!(result(&*job(97, PrimeMethod::Trial)).prime);
        assert!(!result(&*job(1, PrimeMethod::Trial)).prime, "1 is not prime");
        assert!(result(&*job(2, PrimeMethod::Trial)).prime);
        assert!(result(&*job(97, PrimeMethod::Auto)).prime);
        assert!(!result(&*job(91, PrimeMethod::Auto)).prime, "no factor found is not prime");
        assert_eq!(units(97, PrimeMethod::Auto), 0, "a prime needs no search");
        assert_eq!(units(3, PrimeMethod::Auto), 0);
        assert_eq!((units(0, PrimeMethod::Auto), units(1, PrimeMethod::Auto)), (0, 0));
        assert_eq!(units(4, PrimeMethod::Auto), prime::RHO_ATTEMPTS, "4 is the first composite");
        assert_eq!(units(91, PrimeMethod::Auto), prime::RHO_ATTEMPTS);
        assert_eq!(job(91, PrimeMethod::Auto).shape().units_per_second, 10.0);
        let big = u128::from(u64::MAX) + 2;
        assert_eq!(job(big, PrimeMethod::Trial).shape().units_per_second, 3.0e7);
        assert_eq!(job(u128::from(u64::MAX), PrimeMethod::Trial).shape().units_per_second, 2.0e9);
    }

    #[test]
    fn only_true_factors_pass() {
        assert!(check(91, &ChunkOutput::Prime { factor: None }));
        assert!(check(91, &ChunkOutput::Prime { factor: Some(7) }));
        for bad in [0, 1, 2, 91, 182] {
            assert!(!check(91, &ChunkOutput::Prime { factor: Some(bad) }), "{bad}");
        }
        assert!(!check(91, &ChunkOutput::Pi { inside: 0 }));
    }
}
