//! Jobs as the coordinator keeps them: the task, the running reduction of chunk results, who
//! computed what, and the result document once the job ends.
//!
//! The scheduler decides *whether* a result counts (exactly once per chunk); this module
//! decides *what* it adds up to. [`check_output`] runs first, on results straight off the
//! network, so a hostile or buggy worker cannot make a reduction nonsensical.

use super::cluster::ClusterError;
use crate::kernels::{self, freefall};
use crate::scheduler::{ChunkIndex, JobId, JobShape, Outcome, Progress};
use proto::api::{
    CountResult, FreefallResult, JobState, JobView, PiResult, PrimeResult, SweepResult, WorkerShare,
};
use proto::task::{ChunkOutput, CountSource, Fall, Landing, PrimeMethod, TaskSpec};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A series job whose client has not asked for a chunk for this long, while results wait for
/// it, is cancelled: the client is gone (killed, or its machine asleep) and would hold the job
/// and its window of results forever. Longer than the longest long poll (60 s).
pub const ABANDONED_AFTER: Duration = Duration::from_secs(180);

/// Chunks of a series a client may be behind by: what the coordinator holds for it is at most
/// this many chunks' results (8 MiB of heights), however long the series.
pub const SERIES_WINDOW: ChunkIndex = 16;

/// Whether `output` can be the result of units `start..end` of `task` (the chunk's task, as
/// sent to the worker).
pub fn check_output(
    task: &TaskSpec,
    start: u64,
    end: u64,
    output: &ChunkOutput,
) -> Result<(), String> {
    if start > end {
        return Err(format!("a chunk cannot run from unit {start} back to {end}"));
    }
    match (task, output) {
        (TaskSpec::Pi { .. }, ChunkOutput::Pi { inside }) if *inside <= end - start => Ok(()),
        (TaskSpec::Prime { .. }, ChunkOutput::Prime { factor: None }) => Ok(()),
        (TaskSpec::Count { .. }, ChunkOutput::Count { count }) if *count <= end - start => Ok(()),
        (TaskSpec::Prime { n, .. }, ChunkOutput::Prime { factor: Some(f) })
            if *f > 1 && f < n && n % f == 0 =>
        {
            Ok(())
        }
        (
            TaskSpec::Freefall { .. } | TaskSpec::FreefallFrom { .. },
            ChunkOutput::Series { values },
        ) if values.len() as u64 == end - start && values.iter().all(|v| v.is_finite()) => Ok(()),
        (TaskSpec::Sweep { .. }, ChunkOutput::Series { values })
            if values.len() as u64 == (end - start) * freefall::SWEEP_WIDTH as u64
                && values.iter().all(|v| v.is_finite()) =>
        {
            Ok(())
        }
        (
            TaskSpec::Survey { spacing, .. },
            ChunkOutput::Survey { points, checkpoints, landing },
        ) if (1..=freefall::MAX_POINTS).contains(points)
            && checkpoints.len() as u64 == points.div_ceil((*spacing).max(1))
            && checkpoints.iter().all(|(y, v)| y.is_finite() && v.is_finite())
            && landing_is_real(landing) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "worker returned an impossible result for {} chunk {start}..{end}",
            task.name()
        )),
    }
}

/// Whether a reported landing is one a throw can have: finite, not negative.
fn landing_is_real(landing: &proto::task::Landing) -> bool {
    [landing.ground_time, landing.impact_speed, landing.max_height]
        .iter()
        .all(|x| x.is_finite() && *x >= 0.0)
}

/// A task's partial result.
enum Reduction {
    Pi {
        inside: u64,
    },
    Prime {
        factor: Option<u128>,
    },
    Count {
        count: u64,
    },
    /// A freefall with drag, waiting for its survey (then a `Series`).
    Survey,
    /// Results a client takes in order (freefall heights, sweep rows).
    Series(Series),
}

/// Chunk results held for the client of a series job, and what its chunks start from.
#[derive(Default)]
pub struct Series {
    /// Reduced chunks not yet taken: index → (first unit, values).
    held: BTreeMap<ChunkIndex, (u64, Vec<f64>)>,
    /// Every chunk before this one was taken (or skipped by the client).
    taken: ChunkIndex,
    /// When the client last asked for a chunk.
    last_asked: Option<Instant>,
    /// A freefall's landing, once known.
    landing: Option<Landing>,
    /// A freefall with drag: its point count and its state every `CHECKPOINT_SPACING`
    /// points, as its survey found them.
    surveyed_points: u64,
    checkpoints: Vec<(f64, f64)>,
}

/// A chunk of a series, as the client takes it.
pub struct TakenChunk {
    pub first_unit: u64,
    pub values: Vec<f64>,
}

impl Reduction {
    fn new(task: &TaskSpec) -> Self {
        match task {
            TaskSpec::Pi { .. } => Reduction::Pi { inside: 0 },
            TaskSpec::Prime { .. } => Reduction::Prime { factor: None },
            TaskSpec::Count { .. } => Reduction::Count { count: 0 },
            TaskSpec::Freefall { fall, .. } if fall.drag != 0.0 => Reduction::Survey,
            TaskSpec::Freefall { fall, .. } | TaskSpec::FreefallFrom { fall, .. } => {
                let landing = Some(freefall::vacuum_landing(fall));
                Reduction::Series(Series { landing, ..Default::default() })
            }
            TaskSpec::Sweep { .. } | TaskSpec::Survey { .. } => {
                Reduction::Series(Series::default())
            }
        }
    }

    /// Folds one chunk in; `true` when the task now has its answer and the rest can stop.
    fn add(&mut self, chunk: ChunkIndex, start: u64, output: ChunkOutput) -> bool {
        match (self, output) {
            (Reduction::Series(series), ChunkOutput::Series { values }) => {
                if chunk >= series.taken {
                    series.held.insert(chunk, (start, values));
                }
                false
            }
            (
                reduction @ Reduction::Survey,
                ChunkOutput::Survey { points, landing, checkpoints },
            ) => {
                *reduction = Reduction::Series(Series {
                    landing: Some(landing),
                    surveyed_points: points,
                    checkpoints,
                    ..Default::default()
                });
                false
            }
            (Reduction::Pi { inside }, ChunkOutput::Pi { inside: more }) => {
                *inside += more;
                false
            }
            (Reduction::Count { count }, ChunkOutput::Count { count: more }) => {
                *count += more;
                false
            }
            (Reduction::Prime { factor }, ChunkOutput::Prime { factor: found }) => {
                *factor = factor.or(found);
                factor.is_some()
            }
            // `check_output` lets only the task's own output through.
            _ => false,
        }
    }
}

/// A task as a worker sees it: `count --text` and `--file` become bytes streamed with each
/// chunk.
fn streamed(spec: &TaskSpec) -> TaskSpec {
    match spec {
        TaskSpec::Count {
            letter,
            ignore_case,
            source: CountSource::Text { .. } | CountSource::File { .. } | CountSource::Inline { .. },
        } => TaskSpec::Count {
            letter: letter.clone(),
            ignore_case: *ignore_case,
            source: CountSource::Streamed,
        },
        spec => spec.clone(),
    }
}

/// `spec` with its inline text (held once, in the job's [`DataSource`]) replaced by its size,
/// so views and lists of jobs stay small.
fn without_inline_text(spec: TaskSpec) -> TaskSpec {
    match spec {
        TaskSpec::Count { letter, ignore_case, source: CountSource::Text { text } } => {
            let (characters, bytes) = (text.chars().count() as u64, text.len() as u64);
            TaskSpec::Count {
                letter,
                ignore_case,
                source: CountSource::Inline { characters, bytes },
            }
        }
        spec => spec,
    }
}

/// Bytes a job's chunks read from the coordinator (`count --text` and `--file`).
pub enum DataSource {
    Text(Arc<[u8]>),
    File(PathBuf),
}

impl DataSource {
    /// The job's data source, if its chunks need one.
    pub fn of(spec: &TaskSpec) -> Option<Arc<DataSource>> {
        match spec {
            TaskSpec::Count { source: CountSource::Text { text }, .. } => {
                Some(Arc::new(DataSource::Text(text.as_bytes().into())))
            }
            TaskSpec::Count { source: CountSource::File { path, .. }, .. } => {
                Some(Arc::new(DataSource::File(path.into())))
            }
            _ => None,
        }
    }
}

/// A chunk's bytes: `start..stop` of the job's data source.
pub struct ChunkInput {
    pub source: Arc<DataSource>,
    pub start: u64,
    pub stop: u64,
}

/// One job, running or ended.
pub struct JobRecord {
    pub id: JobId,
    pub spec: TaskSpec,
    /// Where the chunks' bytes come from, for tasks that stream them.
    pub source: Option<Arc<DataSource>>,
    pub state: JobState,
    submitted: Instant,
    ended: Option<Instant>,
    /// Final progress once ended (the scheduler's while running).
    pub progress: Progress,
    /// The share of chunks also run on a second worker and compared.
    pub verify: f64,
    reduction: Reduction,
    shares: BTreeMap<String, WorkerShare>,
    result: Option<serde_json::Value>,
    error: Option<String>,
    ended_tx: watch::Sender<bool>,
    /// Bumped whenever a series chunk is held, and when the job ends.
    series_tx: watch::Sender<u64>,
}

impl JobRecord {
    pub fn new(id: JobId, spec: TaskSpec) -> Self {
        let source = DataSource::of(&spec);
        let spec = without_inline_text(spec);
        JobRecord {
            id,
            reduction: Reduction::new(&spec),
            source,
            spec,
            state: JobState::Running,
            submitted: Instant::now(),
            ended: None,
            progress: Progress::default(),
            verify: 0.0,
            shares: BTreeMap::new(),
            result: None,
            error: None,
            ended_tx: watch::channel(false).0,
            series_tx: watch::channel(0).0,
        }
    }

    /// How the scheduler should run the job's current phase, on slots `speed` times the
    /// nominal one.
    pub fn shape(&self, speed: f64) -> JobShape {
        // The units are the job's (a streamed count's chunks do not know their source's size);
        // the rate is its chunks' (a freefall's survey is one whole trajectory).
        let rate = kernels::nominal_rate(&self.chunk_spec(0)) * speed;
        let mut shape = JobShape::new(kernels::units(&self.spec), rate);
        shape.verify = self.verify;
        match (&self.spec, &self.reduction) {
            (TaskSpec::Freefall { .. }, Reduction::Survey) => {
                shape.units = 1;
            }
            (TaskSpec::Freefall { .. }, _) => {
                shape.max_chunk_units = freefall::MAX_CHUNK_POINTS;
                shape.window = Some(SERIES_WINDOW);
            }
            (TaskSpec::Sweep { .. }, _) => {
                shape.max_chunk_units = freefall::MAX_CHUNK_POINTS / freefall::SWEEP_WIDTH as u64;
                shape.window = Some(SERIES_WINDOW);
            }
            _ => {}
        }
        shape
    }

    /// After a phase ends done: the shape of the next phase, if the job has one (a freefall
    /// with drag runs its points once its survey has found where the body lands).
    pub fn next_phase(&mut self, speed: f64) -> Option<JobShape> {
        let (TaskSpec::Freefall { points, .. }, Reduction::Series(series)) =
            (&mut self.spec, &self.reduction)
        else {
            return None;
        };
        if *points != 0 || series.surveyed_points == 0 {
            return None;
        }
        *points = series.surveyed_points;
        Some(self.shape(speed))
    }

    /// The task as a worker sees it for a chunk from unit `start`: streamed sources are
    /// replaced by their bytes, a freefall with drag starts from its checkpoint.
    pub fn chunk_spec(&self, start: u64) -> TaskSpec {
        match (&self.spec, &self.reduction) {
            (TaskSpec::Freefall { fall, .. }, Reduction::Survey) => {
                TaskSpec::Survey { fall: *fall, spacing: freefall::CHECKPOINT_SPACING }
            }
            (TaskSpec::Freefall { fall, points }, Reduction::Series(series))
                if fall.drag != 0.0 =>
            {
                let k = start / freefall::CHECKPOINT_SPACING;
                let (y, v) = series.checkpoints.get(k as usize).copied().unwrap_or_default();
                let at = k * freefall::CHECKPOINT_SPACING;
                TaskSpec::FreefallFrom { fall: *fall, points: *points, at, y, v }
            }
            (spec, _) => streamed(spec),
        }
    }

    /// The bytes chunk `start..end` reads, if its task streams them: its own range plus the
    /// few bytes a character starting at its end may run into.
    pub fn chunk_input(&self, start: u64, end: u64) -> Option<ChunkInput> {
        let source = self.source.clone()?;
        let TaskSpec::Count { letter, ignore_case, .. } = &self.spec else { return None };
        let tail = kernels::one_char(letter)
            .map_or(0, |c| kernels::count::Pattern::new(c, *ignore_case).max_len() - 1);
        let stop = end.saturating_add(tail as u64).min(kernels::units(&self.spec));
        Some(ChunkInput { source, start, stop })
    }

    /// Folds in chunk `chunk` (units `start..end`) that `worker` computed; `true` when the job
    /// has its answer.
    pub fn reduce(
        &mut self,
        worker: &str,
        (chunk, start, end): (ChunkIndex, u64, u64),
        output: ChunkOutput,
    ) -> bool {
        let share = self.shares.entry(worker.to_string()).or_insert_with(|| WorkerShare {
            name: worker.to_string(),
            chunks: 0,
            units: 0,
        });
        share.chunks += 1;
        share.units += end - start;
        let answered = self.reduction.add(chunk, start, output);
        self.series_tx.send_modify(|n| *n += 1);
        answered
    }

    /// Takes chunk `chunk` of a series job's results, if it is ready, with the index of the
    /// first chunk the client may take next; the scheduler's window moves to match.
    pub fn take_chunk(&mut self, chunk: ChunkIndex) -> Result<Option<TakenChunk>, ClusterError> {
        let id = self.id;
        let mut series = match &mut self.reduction {
            Reduction::Series(series) => Some(series),
            Reduction::Survey => None,
            _ => {
                let task = self.spec.name();
                return Err(ClusterError::Invalid(format!("job {id} ({task}) has no chunks")));
            }
        };
        if let Some(series) = &mut series {
            series.last_asked = Some(Instant::now());
            if chunk < series.taken {
                return Err(ClusterError::Invalid(format!(
                    "chunk {chunk} of job {id} was already taken: a job's results go to one client"
                )));
            }
        }
        let held = series.and_then(|s| s.held.remove(&chunk).map(|held| (s, held)));
        let Some((series, (first_unit, values))) = held else {
            return match self.state {
                JobState::Running => Ok(None),
                // Every chunk was reduced: this one was taken, or never existed.
                JobState::Done => Err(ClusterError::NotFound(format!(
                    "job {id} has no chunk {chunk} left to take"
                ))),
                JobState::Cancelled | JobState::Failed => {
                    let why = self.error.clone().unwrap_or_else(|| "it was cancelled".into());
                    Err(ClusterError::Unavailable(format!("job {id} ended early: {why}")))
                }
            };
        };
        series.taken = chunk + 1;
        series.held.retain(|&k, _| k > chunk);
        Ok(Some(TakenChunk { first_unit, values }))
    }

    /// Whether this running series job's client has stopped asking for its results: some
    /// wait, and no chunk was asked for during `limit` (counted from the job's start before the
    /// first request). Records why, for the job's error.
    pub fn abandoned(&mut self, now: Instant, limit: Duration) -> bool {
        let Reduction::Series(series) = &self.reduction else { return false };
        let since = series.last_asked.unwrap_or(self.submitted);
        let gone = self.state == JobState::Running
            && !series.held.is_empty()
            && now.saturating_duration_since(since) > limit;
        if gone {
            self.error = Some(format!(
                "its client asked for no results for {} s: cancelled",
                limit.as_secs()
            ));
        }
        gone
    }

    /// Where the scheduler's window of a series job stands.
    pub fn window(&self) -> Option<ChunkIndex> {
        match &self.reduction {
            Reduction::Series(series) => Some(series.taken.saturating_add(SERIES_WINDOW)),
            _ => None,
        }
    }

    /// A receiver that changes when a series chunk is held or the job ends.
    pub fn subscribe_series(&self) -> watch::Receiver<u64> {
        self.series_tx.subscribe()
    }

    /// Records the end of the job and wakes everyone waiting for it.
    pub fn end(&mut self, outcome: Outcome, progress: Progress) {
        let now = Instant::now();
        self.ended = Some(now);
        self.progress = progress;
        let seconds = now.duration_since(self.submitted).as_secs_f64();
        match outcome {
            Outcome::Done | Outcome::Answered => {
                self.state = JobState::Done;
                self.result = Some(self.result_document(seconds));
            }
            Outcome::Cancelled => self.state = JobState::Cancelled,
            Outcome::Failed(message) => {
                self.state = JobState::Failed;
                self.error = Some(message);
            }
        }
        // No chunk will read the job's bytes again; those in flight hold their own reference.
        self.source = None;
        if self.state != JobState::Done {
            // Nobody will take what was held.
            if let Reduction::Series(series) = &mut self.reduction {
                series.held.clear();
            }
        }
        self.ended_tx.send_replace(true);
        self.series_tx.send_modify(|n| *n += 1);
    }

    /// A receiver that turns `true` when the job ends.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.ended_tx.subscribe()
    }

    pub fn view(&self, live: Option<Progress>) -> JobView {
        let p = live.unwrap_or(self.progress);
        let elapsed = self.ended.unwrap_or_else(Instant::now).duration_since(self.submitted);
        JobView {
            id: self.id,
            task: self.spec.name().to_string(),
            spec: self.spec.clone(),
            state: self.state,
            chunks_done: p.chunks_done,
            chunks_total: p.chunks_total,
            units_done: p.units_done,
            units_total: p.units_total,
            elapsed_seconds: elapsed.as_secs_f64(),
            chunks_rerun: p.chunks_rerun,
            chunks_verified: p.chunks_verified,
            result: self.result.clone(),
            error: self.error.clone(),
        }
    }

    fn result_document(&self, seconds: f64) -> serde_json::Value {
        let workers: Vec<WorkerShare> = self.shares.values().cloned().collect();
        let doc = match (&self.spec, &self.reduction) {
            (TaskSpec::Pi { samples, seed }, Reduction::Pi { inside }) => {
                let (estimate, std_error) = kernels::pi::estimate(*inside, *samples);
                serde_json::to_value(PiResult {
                    task: "pi".into(),
                    samples: *samples,
                    seed: *seed,
                    inside: *inside,
                    estimate,
                    std_error,
                    seconds,
                    samples_per_second: *samples as f64 / seconds.max(1e-9),
                    workers,
                })
            }
            (TaskSpec::Prime { n, method }, Reduction::Prime { factor }) => {
                let prime = factor.is_none()
                    && match method {
                        PrimeMethod::Trial => *n >= 2,
                        PrimeMethod::Auto => kernels::prime::is_prime(*n),
                    };
                serde_json::to_value(PrimeResult {
                    task: "prime".into(),
                    n: n.to_string(),
                    prime,
                    factor: factor.map(|f| f.to_string()),
                    cofactor: factor.map(|f| (n / f).to_string()),
                    method: method.name().into(),
                    seconds,
                    workers,
                })
            }
            (TaskSpec::Count { letter, ignore_case, .. }, Reduction::Count { count }) => {
                let bytes = kernels::units(&self.spec);
                serde_json::to_value(CountResult {
                    task: "count".into(),
                    letter: letter.clone(),
                    ignore_case: *ignore_case,
                    count: *count,
                    bytes,
                    seconds,
                    bytes_per_second: bytes as f64 / seconds.max(1e-9),
                    workers,
                })
            }
            (TaskSpec::Freefall { fall, points }, Reduction::Series(series)) => {
                serde_json::to_value(FreefallResult {
                    task: "freefall".into(),
                    fall: *fall,
                    points: *points,
                    landing: series.landing.unwrap_or_default(),
                    seconds,
                    points_per_second: *points as f64 / seconds.max(1e-9),
                    workers,
                })
            }
            (TaskSpec::Sweep { fall, from, to, steps }, Reduction::Series(_)) => {
                serde_json::to_value(SweepResult {
                    task: "sweep".into(),
                    fall: Fall { drag: 0.0, ..*fall },
                    from: *from,
                    to: *to,
                    steps: *steps,
                    seconds,
                    workers,
                })
            }
            _ => Err(serde::ser::Error::custom("task and reduction disagree")),
        };
        doc.unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::task::Fall;

    fn freefall() -> JobRecord {
        let fall = Fall::default();
        let points = freefall::vacuum_points(&fall).unwrap();
        JobRecord::new(7, TaskSpec::Freefall { fall, points })
    }

    fn heights(n: usize) -> ChunkOutput {
        ChunkOutput::Series { values: vec![1.0; n] }
    }

    /// Found by the `chunk_outputs` fuzz target: a range that runs backwards made the size
    /// check subtract with overflow.
    #[test]
    fn outputs_are_checked_against_what_the_chunk_can_hold() {
        let pi = TaskSpec::Pi { samples: 100, seed: 1 };
        assert_eq!(check_output(&pi, 10, 20, &ChunkOutput::Pi { inside: 10 }), Ok(()));
        assert!(check_output(&pi, 10, 20, &ChunkOutput::Pi { inside: 11 }).is_err());
        let e = check_output(&pi, 20, 10, &ChunkOutput::Pi { inside: 0 }).unwrap_err();
        assert_eq!(e, "a chunk cannot run from unit 20 back to 10");
        let survey = TaskSpec::Survey { fall: Fall::default(), spacing: 4 };
        let landing =
            |t: f64| proto::task::Landing { ground_time: t, impact_speed: 1.0, max_height: 2.0 };
        let output = |t: f64| ChunkOutput::Survey {
            points: 8,
            landing: landing(t),
            checkpoints: vec![(1.0, 0.0); 2],
        };
        assert_eq!(check_output(&survey, 0, 1, &output(3.0)), Ok(()));
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            assert!(check_output(&survey, 0, 1, &output(bad)).is_err(), "landing at {bad}");
        }
    }

    #[test]
    fn series_chunks_are_handed_out_once_in_any_order_of_arrival() {
        let mut job = freefall();
        assert_eq!(job.window(), Some(SERIES_WINDOW));
        job.reduce("w", (1, 10, 20), heights(10));
        assert!(job.take_chunk(0).unwrap().is_none(), "chunk 0 has not arrived");
        job.reduce("w", (0, 0, 10), heights(10));
        assert_eq!(job.take_chunk(0).unwrap().unwrap().first_unit, 0);
        assert!(job.take_chunk(0).is_err(), "taken twice");
        let second = job.take_chunk(1).unwrap().unwrap();
        assert_eq!((second.first_unit, second.values.len()), (10, 10));
        assert_eq!(job.window(), Some(2 + SERIES_WINDOW));
    }

    #[test]
    fn a_series_whose_client_stops_asking_is_abandoned() {
        let mut job = freefall();
        let later = Instant::now() + ABANDONED_AFTER + Duration::from_secs(1);
        assert!(!job.abandoned(later, ABANDONED_AFTER), "nothing waits for the client yet");
        job.reduce("w", (0, 0, 10), heights(10));
        assert!(!job.abandoned(Instant::now(), ABANDONED_AFTER));
        // A client that keeps asking (for a chunk not there yet) is not gone.
        job.reduce("w", (2, 20, 30), heights(10));
        assert!(job.take_chunk(0).unwrap().is_some());
        assert!(job.take_chunk(1).unwrap().is_none());
        assert!(!job.abandoned(Instant::now(), ABANDONED_AFTER));
        assert!(job.abandoned(later, ABANDONED_AFTER));
        assert!(job.error.as_deref().is_some_and(|e| e.contains("asked for no results")));
    }

    #[test]
    fn a_streamed_count_is_shaped_by_its_source_size() {
        let source = CountSource::Text { text: "1eMyWordToCountE".into() };
        let job =
            JobRecord::new(1, TaskSpec::Count { letter: "e".into(), ignore_case: true, source });
        assert_eq!(job.shape(1.0).units, 16);
        assert_eq!(job.chunk_spec(0).name(), "count");
    }
}
