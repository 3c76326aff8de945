//! `pi`: a Monte Carlo estimate of pi. Units are samples; a chunk counts how many of its
//! points fall inside the quarter circle, and the counts add up.

use super::{Chunk, Fold, Invalid, Job, Run, Work};
use crate::kernels::{pi, simd};
use crate::scheduler::{ChunkIndex, JobShape};
use proto::job::JobSpec;
use proto::result::{JobResult, PiResult};
use proto::wire::{ChunkOutput, ChunkTask};

/// Samples per second of the reference slot.
pub const NOMINAL_RATE: f64 = 1.0e9;

pub fn job(samples: u64, seed: u64) -> Result<Box<dyn Job>, Invalid> {
    if samples == 0 {
        return Err(Invalid("pi needs at least 1 sample".into()));
    }
    Ok(Box::new(PiJob { samples, seed, inside: 0 }))
}

struct PiJob {
    samples: u64,
    seed: u64,
    inside: u64,
}

impl Job for PiJob {
    fn spec(&self) -> JobSpec {
        JobSpec::Pi { samples: self.samples, seed: self.seed }
    }

    fn shape(&self) -> JobShape {
        JobShape { revocable: true, ..JobShape::new(self.samples, NOMINAL_RATE) }
    }

    fn chunk(&self, _start: u64, _end: u64, _attempt: u32) -> Chunk {
        Chunk::of(ChunkTask::Pi { samples: self.samples, seed: self.seed })
    }

    fn reduce(&mut self, _chunk: ChunkIndex, _start: u64, output: ChunkOutput) -> Fold {
        if let ChunkOutput::Pi { inside } = output {
            self.inside += inside;
        }
        Fold::Added
    }

    fn revoke(&mut self, output: &ChunkOutput) {
        if let ChunkOutput::Pi { inside } = output {
            self.inside -= inside;
        }
    }

    fn result(&self, run: Run) -> JobResult {
        let (estimate, std_error) = pi::estimate(self.inside, self.samples);
        JobResult::Pi(PiResult {
            samples: self.samples,
            seed: self.seed,
            inside: self.inside,
            estimate,
            std_error,
            seconds: run.seconds,
            samples_per_second: self.samples as f64 / run.seconds.max(1e-9),
            workers: run.workers,
        })
    }
}

/// Whether `output` can be a pi chunk of `units` samples.
pub fn check(units: u64, output: &ChunkOutput) -> bool {
    matches!(output, ChunkOutput::Pi { inside } if *inside <= units)
}

pub fn work(seed: u64, start: u64, end: u64) -> Work {
    Work::Compute(Box::new(move |cancel| {
        let inside = pi::count_inside(simd::Level::detect(), seed, start, end, cancel)?;
        Ok(ChunkOutput::Pi { inside })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_to_the_estimate_with_its_standard_error() {
        assert_eq!(job(0, 1).err(), Some(Invalid("pi needs at least 1 sample".into())));
        let mut job = job(1000, 7).unwrap();
        assert_eq!(job.spec(), JobSpec::Pi { samples: 1000, seed: 7 });
        let shape = job.shape();
        assert_eq!((shape.units, shape.units_per_second), (1000, NOMINAL_RATE));
        assert_eq!(job.chunk(0, 10, 0).task, ChunkTask::Pi { samples: 1000, seed: 7 });
        assert_eq!(job.reduce(0, 0, ChunkOutput::Pi { inside: 500 }), Fold::Added);
        assert_eq!(job.reduce(1, 500, ChunkOutput::Pi { inside: 285 }), Fold::Added);
        let JobResult::Pi(r) = job.result(Run { seconds: 2.0, workers: vec![] }) else {
            panic!("not a pi result")
        };
        assert_eq!((r.inside, r.samples, r.seed), (785, 1000, 7));
        assert_eq!(r.estimate, 4.0 * 785.0 / 1000.0);
        assert!((r.std_error - 0.051_965_4).abs() < 1e-6, "{}", r.std_error);
        assert_eq!(r.samples_per_second, 500.0);
    }

    #[test]
    fn a_chunk_counts_no_more_points_than_it_has() {
        assert!(check(10, &ChunkOutput::Pi { inside: 10 }));
        assert!(!check(10, &ChunkOutput::Pi { inside: 11 }));
        assert!(!check(10, &ChunkOutput::Count { count: 1 }));
    }
}
