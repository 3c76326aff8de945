//! `freefall`: the height of a body thrown straight up, every `dt` seconds until it lands.
//! Units are points; heights stream to the client chunk by chunk ([`Series`]).
//!
//! Without drag, any range of points is a closed form, and the job has one phase. With drag
//! it has two: a *survey* (one unit: the whole trajectory integrated once, to find where it
//! lands and keep its state every [`CHECKPOINT_SPACING`] points), then the *points*, each chunk
//! integrating from the checkpoint at or before its start.

use super::{Chunk, Fold, Invalid, Job, Run, Series, Work, SERIES_WINDOW};
use crate::kernels::freefall::{self as kernel, CHECKPOINT_SPACING, MAX_CHUNK_POINTS};
use crate::kernels::KernelError;
use crate::scheduler::{ChunkIndex, JobShape};
use proto::job::{Fall, JobSpec, Landing};
use proto::result::{FreefallResult, JobResult};
use proto::wire::{ChunkOutput, ChunkTask};

pub fn job(fall: Fall) -> Result<Box<dyn Job>, Invalid> {
    kernel::validate(&fall).map_err(Invalid)?;
    let phase = if fall.drag == 0.0 {
        // Without drag the points are known now; with drag, once the survey has run.
        let points = kernel::vacuum_points(&fall).map_err(|e| Invalid(e.to_string()))?;
        Phase::Points { points, landing: kernel::vacuum_landing(&fall), checkpoints: vec![] }
    } else {
        Phase::Survey { surveyed: None }
    };
    Ok(Box::new(FreefallJob { fall, phase, series: Series::default() }))
}

struct FreefallJob {
    fall: Fall,
    phase: Phase,
    series: Series,
}

enum Phase {
    /// The one-unit first pass of a throw with drag, and what it found.
    Survey { surveyed: Option<Surveyed> },
    /// The points, with the state every [`CHECKPOINT_SPACING`] points (with drag).
    Points { points: u64, landing: Landing, checkpoints: Vec<(f64, f64)> },
}

/// What a survey found: the point count, the landing, the state every
/// [`CHECKPOINT_SPACING`] points.
type Surveyed = (u64, Landing, Vec<(f64, f64)>);

/// Points per second of the reference slot: heights are cheap, shipping them (8 bytes each)
/// is what takes the time.
const VACUUM_RATE: f64 = 5.0e7;
const DRAG_RATE: f64 = 2.0e7;

/// Whole trajectories per second of the reference slot (~25 ns per RK4 step): a survey, or
/// a sweep's unit.
pub fn trajectory_rate(fall: &Fall) -> f64 {
    let steps = kernel::vacuum_landing(fall).ground_time / fall.dt;
    1.0 / (steps.max(1.0) * 25e-9)
}

impl Job for FreefallJob {
    fn spec(&self) -> JobSpec {
        let points = match self.phase {
            Phase::Survey { .. } => 0,
            Phase::Points { points, .. } => points,
        };
        JobSpec::Freefall { fall: self.fall, points }
    }

    fn shape(&self) -> JobShape {
        match self.phase {
            Phase::Survey { .. } => JobShape::new(1, trajectory_rate(&self.fall)),
            Phase::Points { points, .. } => {
                let rate = if self.fall.drag == 0.0 { VACUUM_RATE } else { DRAG_RATE };
                let mut shape = JobShape::new(points, rate);
                shape.max_chunk_units = MAX_CHUNK_POINTS;
                shape.window = Some(SERIES_WINDOW);
                shape
            }
        }
    }

    fn chunk(&self, start: u64, _end: u64, _attempt: u32) -> Chunk {
        let fall = self.fall;
        Chunk::of(match &self.phase {
            Phase::Survey { .. } => ChunkTask::Survey { fall, spacing: CHECKPOINT_SPACING },
            Phase::Points { points, .. } if fall.drag == 0.0 => {
                ChunkTask::Heights { fall, points: *points }
            }
            Phase::Points { points, checkpoints, .. } => {
                let k = start / CHECKPOINT_SPACING;
                let (y, v) = checkpoints.get(k as usize).copied().unwrap_or_default();
                let at = k * CHECKPOINT_SPACING;
                ChunkTask::HeightsFrom { fall, points: *points, at, y, v }
            }
        })
    }

    fn reduce(&mut self, chunk: ChunkIndex, start: u64, output: ChunkOutput) -> Fold {
        match (&mut self.phase, output) {
            (Phase::Survey { surveyed }, ChunkOutput::Survey { points, landing, checkpoints }) => {
                *surveyed = Some((points, landing, checkpoints));
            }
            (Phase::Points { .. }, ChunkOutput::Series { values }) => {
                self.series.hold(chunk, start, values)
            }
            // `check_output` lets only the chunk's own kind of output through.
            _ => {}
        }
        Fold::Added
    }

    fn next_phase(&mut self) -> bool {
        let Phase::Survey { surveyed } = &mut self.phase else { return false };
        let Some((points, landing, checkpoints)) = surveyed.take() else { return false };
        self.phase = Phase::Points { points, landing, checkpoints };
        true
    }

    fn result(&self, run: Run) -> JobResult {
        let (points, landing) = match &self.phase {
            Phase::Points { points, landing, .. } => (*points, *landing),
            Phase::Survey { .. } => (0, Landing::default()),
        };
        JobResult::Freefall(FreefallResult {
            fall: self.fall,
            points,
            landing,
            seconds: run.seconds,
            points_per_second: points as f64 / run.seconds.max(1e-9),
            workers: run.workers,
        })
    }

    fn series(&mut self) -> Option<&mut Series> {
        Some(&mut self.series)
    }
}

/// Whether `output` can be a freefall chunk of `units` units of `task`.
pub fn check(task: &ChunkTask, units: u64, output: &ChunkOutput) -> bool {
    match (task, output) {
        (
            ChunkTask::Heights { .. } | ChunkTask::HeightsFrom { .. },
            ChunkOutput::Series { values },
        ) => values.len() as u64 == units && values.iter().all(|v| v.is_finite()),
        (
            ChunkTask::Survey { spacing, .. },
            ChunkOutput::Survey { points, checkpoints, landing },
        ) => {
            (1..=kernel::MAX_POINTS).contains(points)
                && checkpoints.len() as u64 == points.div_ceil((*spacing).max(1))
                && checkpoints.iter().all(|(y, v)| y.is_finite() && v.is_finite())
                && landing_is_real(landing)
        }
        _ => false,
    }
}

/// Whether a reported landing is one a throw can have: finite, not negative.
fn landing_is_real(landing: &Landing) -> bool {
    [landing.ground_time, landing.impact_speed, landing.max_height]
        .iter()
        .all(|x| x.is_finite() && *x >= 0.0)
}

/// What a worker runs for a freefall chunk; refuses one whose result would be larger than the
/// protocol carries, before anything is allocated for it.
pub fn work(task: ChunkTask, start: u64, end: u64) -> Result<Work, KernelError> {
    match task {
        ChunkTask::Survey { spacing, .. } if spacing < CHECKPOINT_SPACING => {
            return Err(KernelError::BadRequest(format!(
                "a survey with checkpoints every {spacing} points is over the protocol's limit \
                 (every {CHECKPOINT_SPACING} at the closest)"
            )));
        }
        ChunkTask::Heights { .. } | ChunkTask::HeightsFrom { .. } => check_chunk_size(end - start)?,
        _ => {}
    }
    Ok(Work::Compute(Box::new(move |cancel| match task {
        ChunkTask::Heights { fall, .. } => {
            Ok(ChunkOutput::Series { values: kernel::vacuum_heights(&fall, start, end, cancel)? })
        }
        ChunkTask::HeightsFrom { fall, at, y, v, .. } => {
            let values = kernel::drag_heights(&fall, (at, y, v), start, end, cancel)?;
            Ok(ChunkOutput::Series { values })
        }
        ChunkTask::Survey { fall, spacing } => {
            let s = kernel::survey(&fall, Some(spacing), cancel)?;
            Ok(ChunkOutput::Survey {
                points: s.points,
                landing: s.landing,
                checkpoints: s.checkpoints,
            })
        }
        _ => Err(KernelError::BadRequest("not a freefall chunk".into())),
    })))
}

/// Refuses a chunk of more values than one frame carries.
pub fn check_chunk_size(values: u64) -> Result<(), KernelError> {
    if values > MAX_CHUNK_POINTS {
        return Err(KernelError::BadRequest(format!(
            "a chunk of {values} values is over the protocol's limit of {MAX_CHUNK_POINTS}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Cancel;

    fn surveyed(job: &mut Box<dyn Job>) -> Vec<(f64, f64)> {
        let ChunkTask::Survey { fall, spacing } = job.chunk(0, 1, 0).task else {
            panic!("a throw with drag starts with its survey")
        };
        let s = kernel::survey(&fall, Some(spacing), &Cancel::default()).unwrap();
        let output = ChunkOutput::Survey {
            points: s.points,
            landing: s.landing,
            checkpoints: s.checkpoints.clone(),
        };
        assert!(check(&job.chunk(0, 1, 0).task, 1, &output));
        job.reduce(0, 0, output);
        s.checkpoints
    }

    #[test]
    fn a_throw_with_drag_runs_its_points_after_its_survey() {
        let fall = Fall { y0: 1000.0, v0: 50.0, g: 9.81, dt: 0.0001, drag: 0.001 };
        let mut job = job(fall).unwrap();
        assert_eq!((job.shape().units, job.shape().window), (1, None), "the survey: one unit");
        assert_eq!(job.spec(), JobSpec::Freefall { fall, points: 0 });
        assert!(!job.next_phase(), "no points before the survey answered");
        let checkpoints = surveyed(&mut job);
        assert!(job.next_phase(), "the points follow the survey");
        assert!(!job.next_phase(), "and nothing follows the points");
        let JobSpec::Freefall { points, .. } = job.spec() else { panic!() };
        assert!(points > 2 * CHECKPOINT_SPACING, "{points}");
        let shape = job.shape();
        assert_eq!(
            (shape.units, shape.max_chunk_units, shape.units_per_second),
            (points, MAX_CHUNK_POINTS, DRAG_RATE)
        );
        let start = CHECKPOINT_SPACING + 5;
        let ChunkTask::HeightsFrom { at, y, v, .. } = job.chunk(start, start + 10, 0).task else {
            panic!("points with drag start from a checkpoint")
        };
        assert_eq!((at, (y, v)), (CHECKPOINT_SPACING, checkpoints[1]));
        // A chunk from its checkpoint gives the survey's own heights.
        let request = proto::wire::ChunkRequest {
            job: 1,
            chunk: 0,
            task: job.chunk(start, start + 10, 0).task,
            start,
            end: start + 10,
        };
        let ChunkOutput::Series { values } =
            super::super::run_now(&request, &[], &Cancel::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(values.len(), 10);
        let JobResult::Freefall(r) = job.result(Run { seconds: 1.0, workers: vec![] }) else {
            panic!()
        };
        assert_eq!(r.points, points);
        assert!(r.landing.ground_time > 0.0);
    }

    #[test]
    fn a_throw_without_drag_is_one_phase_of_known_points() {
        let fall = Fall::default();
        let mut job = job(fall).unwrap();
        let points = kernel::vacuum_points(&fall).unwrap();
        assert_eq!(job.spec(), JobSpec::Freefall { fall, points });
        assert_eq!((job.shape().units, job.shape().units_per_second), (points, VACUUM_RATE));
        assert_eq!(job.shape().window, Some(SERIES_WINDOW));
        assert_eq!(job.chunk(5, 10, 0).task, ChunkTask::Heights { fall, points });
        job.reduce(0, 0, ChunkOutput::Series { values: vec![1.0; 4] });
        assert!(!job.next_phase());
        assert!(job.series().unwrap().take(0, std::time::Instant::now()).unwrap().is_some());
        let JobResult::Freefall(r) = job.result(Run { seconds: 2.0, workers: vec![] }) else {
            panic!()
        };
        assert_eq!(r.landing, kernel::vacuum_landing(&fall));
        assert_eq!(r.points_per_second, points as f64 / 2.0);
        assert!(super::job(Fall { dt: 0.0, ..fall }).is_err());
    }

    #[test]
    fn a_vacuum_chunk_is_the_closed_form_and_a_trajectory_costs_its_steps() {
        let fall = Fall { y0: 100.0, v0: 10.0, g: 10.0, dt: 0.5, drag: 0.0 };
        let request = proto::wire::ChunkRequest {
            job: 1,
            chunk: 0,
            task: ChunkTask::Heights { fall, points: 10 },
            start: 2,
            end: 4,
        };
        let out = super::super::run_now(&request, &[], &Cancel::default()).unwrap();
        // y = 100 + 10 t − 5 t², at t = 1 and 1.5.
        assert_eq!(out, ChunkOutput::Series { values: vec![105.0, 103.75] });
        // The notebook's throw: 2,048,687 RK4 steps of ~25 ns, some 19.5 trajectories a second.
        let rate = trajectory_rate(&Fall::default());
        assert!((rate - 19.524).abs() < 0.01, "{rate}");
        let instant = Fall { y0: 0.0, v0: 0.0, g: 9.81, dt: 1.0, drag: 0.0 };
        assert_eq!(trajectory_rate(&instant), 4e7, "at least one step");
    }

    #[test]
    fn a_chunk_too_big_for_the_protocol_is_refused_before_it_runs() {
        let fall = Fall::default();
        let heights = ChunkTask::Heights { fall, points: 10_000_000_000 };
        assert!(work(heights.clone(), 0, MAX_CHUNK_POINTS).is_ok());
        let Err(KernelError::BadRequest(e)) = work(heights, 0, MAX_CHUNK_POINTS + 1) else {
            panic!("a chunk over the limit ran");
        };
        assert!(
            e.contains(&format!("{} values is over the protocol's limit", MAX_CHUNK_POINTS + 1)),
            "{e}"
        );
        let survey = ChunkTask::Survey { fall: Fall { drag: 1e-4, ..fall }, spacing: 1 };
        let Err(KernelError::BadRequest(e)) = work(survey, 0, 1) else {
            panic!("a survey with a checkpoint per point ran");
        };
        assert!(e.contains("checkpoints every 1 points"), "{e}");
    }

    #[test]
    fn outputs_are_checked_against_what_the_chunk_can_hold() {
        let survey = ChunkTask::Survey { fall: Fall::default(), spacing: 4 };
        let landing = |t: f64| Landing { ground_time: t, impact_speed: 1.0, max_height: 2.0 };
        let output = |t: f64| ChunkOutput::Survey {
            points: 8,
            landing: landing(t),
            checkpoints: vec![(1.0, 0.0); 2],
        };
        assert!(check(&survey, 1, &output(3.0)));
        let spoilt = |points, checkpoints| ChunkOutput::Survey {
            points,
            landing: landing(3.0),
            checkpoints,
        };
        assert!(!check(&survey, 1, &spoilt(8, vec![(1.0, 0.0); 3])), "a checkpoint too many");
        assert!(!check(&survey, 1, &spoilt(0, vec![])), "no points");
        assert!(!check(&survey, 1, &spoilt(8, vec![(1.0, 0.0), (f64::NAN, 0.0)])), "NaN height");
        assert!(
            !check(&survey, 1, &spoilt(8, vec![(1.0, 0.0), (0.0, f64::INFINITY)])),
            "inf speed"
        );
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            assert!(!check(&survey, 1, &output(bad)), "landing at {bad}");
        }
        let heights = ChunkTask::Heights { fall: Fall::default(), points: 100 };
        assert!(check(&heights, 2, &ChunkOutput::Series { values: vec![1.0, 2.0] }));
        assert!(!check(&heights, 3, &ChunkOutput::Series { values: vec![1.0, 2.0] }));
        assert!(!check(&heights, 2, &ChunkOutput::Series { values: vec![1.0, f64::NAN] }));
        assert!(!check(&heights, 1, &ChunkOutput::Pi { inside: 0 }));
    }
}
