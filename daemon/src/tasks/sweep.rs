//! `sweep` (`marmotctl run freefall --sweep-drag FROM:TO:STEPS`): one whole trajectory per
//! drag value. Units are drag values; each gives a row (ground time, impact speed, maximum
//! height) that streams to the client chunk by chunk ([`Series`]).

use super::freefall::{check_chunk_size, trajectory_rate};
use super::{Chunk, Fold, Invalid, Job, Run, Series, Work, SERIES_WINDOW};
use crate::kernels::freefall::{self as kernel, MAX_CHUNK_POINTS, MAX_SWEEP_STEPS, SWEEP_WIDTH};
use crate::kernels::KernelError;
use crate::scheduler::{ChunkIndex, JobShape};
use proto::job::{Fall, JobSpec};
use proto::result::{JobResult, SweepResult};
use proto::wire::{ChunkOutput, ChunkTask};

pub fn job(fall: Fall, from: f64, to: f64, steps: u64) -> Result<Box<dyn Job>, Invalid> {
    // The largest drag is the hardest to integrate: check the throw with it.
    kernel::validate(&Fall { drag: from.max(to), ..fall }).map_err(Invalid)?;
    if !(from >= 0.0 && to >= 0.0) {
        return Err(Invalid(format!("drag values must be zero or positive, not {from}:{to}")));
    }
    if !(1..=MAX_SWEEP_STEPS).contains(&steps) {
        return Err(Invalid(format!(
            "a sweep takes 1 to {MAX_SWEEP_STEPS} drag values, not {steps}"
        )));
    }
    let fall = Fall { drag: 0.0, ..fall };
    Ok(Box::new(SweepJob { fall, from, to, steps, series: Series::default() }))
}

struct SweepJob {
    /// The throw, without drag: each value brings its own.
    fall: Fall,
    from: f64,
    to: f64,
    steps: u64,
    series: Series,
}

impl Job for SweepJob {
    fn spec(&self) -> JobSpec {
        JobSpec::Sweep { fall: self.fall, from: self.from, to: self.to, steps: self.steps }
    }

    fn shape(&self) -> JobShape {
        let mut shape = JobShape::new(self.steps, trajectory_rate(&self.fall));
        shape.max_chunk_units = MAX_CHUNK_POINTS / SWEEP_WIDTH as u64;
        shape.window = Some(SERIES_WINDOW);
        shape
    }

    fn chunk(&self, _start: u64, _end: u64, _attempt: u32) -> Chunk {
        let (fall, from, to, steps) = (self.fall, self.from, self.to, self.steps);
        Chunk::of(ChunkTask::Sweep { fall, from, to, steps })
    }

    fn reduce(&mut self, chunk: ChunkIndex, start: u64, output: ChunkOutput) -> Fold {
        if let ChunkOutput::Series { values } = output {
            self.series.hold(chunk, start, values);
        }
        Fold::Added
    }

    fn result(&self, run: Run) -> JobResult {
        JobResult::Sweep(SweepResult {
            fall: self.fall,
            from: self.from,
            to: self.to,
            steps: self.steps,
            seconds: run.seconds,
            workers: run.workers,
        })
    }

    fn series(&mut self) -> Option<&mut Series> {
        Some(&mut self.series)
    }
}

/// Whether `output` can be the rows of `units` drag values.
pub fn check(units: u64, output: &ChunkOutput) -> bool {
    matches!(output, ChunkOutput::Series { values }
        if values.len() as u64 == units.saturating_mul(SWEEP_WIDTH as u64)
            && values.iter().all(|v| v.is_finite()))
}

pub fn work(fall: Fall, range: (f64, f64, u64), start: u64, end: u64) -> Result<Work, KernelError> {
    check_chunk_size((end - start).saturating_mul(SWEEP_WIDTH as u64))?;
    Ok(Work::Compute(Box::new(move |cancel| {
        Ok(ChunkOutput::Series { values: kernel::sweep(&fall, range, start, end, cancel)? })
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_are_checked_and_rows_held_for_the_client() {
        let fall = Fall::default();
        assert!(job(fall, -1.0, 1e-4, 2).err().unwrap().0.contains("zero or positive"));
        assert!(job(fall, 0.0, 1e-4, 0)
            .err()
            .unwrap()
            .0
            .contains("1 to 1000000 drag values, not 0"));
        assert!(job(fall, 0.0, 1e-4, MAX_SWEEP_STEPS + 1).is_err());
        assert!(job(fall, 0.0, 1e6, 2).is_err(), "too stiff at the largest drag");
        let mut job = job(Fall { drag: 0.5, ..fall }, 0.0, 1e-4, 3).unwrap();
        assert_eq!(job.spec(), JobSpec::Sweep { fall, from: 0.0, to: 1e-4, steps: 3 });
        let shape = job.shape();
        assert_eq!(
            (shape.units, shape.max_chunk_units, shape.window),
            (3, MAX_CHUNK_POINTS / 3, Some(SERIES_WINDOW))
        );
        job.reduce(0, 0, ChunkOutput::Series { values: vec![1.0; 3] });
        let taken = job.series().unwrap().take(0, std::time::Instant::now()).unwrap().unwrap();
        assert_eq!(taken.values.len(), 3);
        assert!(check(2, &ChunkOutput::Series { values: vec![1.0; 6] }));
        assert!(!check(2, &ChunkOutput::Series { values: vec![1.0; 5] }));
        assert!(!check(2, &ChunkOutput::Series { values: vec![f64::NAN; 6] }));
        let third = MAX_CHUNK_POINTS / SWEEP_WIDTH as u64;
        assert!(work(fall, (0.0, 1e-4, 1_000_000), 10, 10 + third).is_ok());
        assert!(work(fall, (0.0, 1e-4, 1_000_000), 10, 11 + third).is_err());
    }
}
