//! Jobs as the coordinator keeps them: the task, the running reduction of chunk results, who
//! computed what, and the result document once the job ends.
//!
//! The scheduler decides *whether* a result counts (exactly once per chunk); this module
//! decides *what* it adds up to. [`check_output`] runs first, on results straight off the
//! network, so a hostile or buggy worker cannot make a reduction nonsensical.

use crate::kernels;
use crate::scheduler::{JobId, Outcome, Progress};
use proto::api::{CountResult, JobState, JobView, PiResult, PrimeResult, WorkerShare};
use proto::task::{ChunkOutput, CountSource, PrimeMethod, TaskSpec};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// Whether `output` can be the result of units `start..end` of `task`.
pub fn check_output(
    task: &TaskSpec,
    start: u64,
    end: u64,
    output: &ChunkOutput,
) -> Result<(), String> {
    match (task, output) {
        (TaskSpec::Pi { .. }, ChunkOutput::Pi { inside }) if *inside <= end - start => Ok(()),
        (TaskSpec::Prime { .. }, ChunkOutput::Prime { factor: None }) => Ok(()),
        (TaskSpec::Count { .. }, ChunkOutput::Count { count }) if *count <= end - start => Ok(()),
        (TaskSpec::Prime { n, .. }, ChunkOutput::Prime { factor: Some(f) })
            if *f > 1 && f < n && n % f == 0 =>
        {
            Ok(())
        }
        _ => Err(format!(
            "worker returned an impossible result for {} chunk {start}..{end}",
            task.name()
        )),
    }
}

/// A task's partial result.
enum Reduction {
    Pi { inside: u64 },
    Prime { factor: Option<u128> },
    Count { count: u64 },
}

impl Reduction {
    fn new(task: &TaskSpec) -> Self {
        match task {
            TaskSpec::Pi { .. } => Reduction::Pi { inside: 0 },
            TaskSpec::Prime { .. } => Reduction::Prime { factor: None },
            TaskSpec::Count { .. } => Reduction::Count { count: 0 },
        }
    }

    /// Folds one chunk in; `true` when the task now has its answer and the rest can stop.
    fn add(&mut self, output: ChunkOutput) -> bool {
        match (self, output) {
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
    reduction: Reduction,
    shares: BTreeMap<String, WorkerShare>,
    result: Option<serde_json::Value>,
    error: Option<String>,
    ended_tx: watch::Sender<bool>,
}

impl JobRecord {
    pub fn new(id: JobId, spec: TaskSpec) -> Self {
        JobRecord {
            id,
            reduction: Reduction::new(&spec),
            source: DataSource::of(&spec),
            spec,
            state: JobState::Running,
            submitted: Instant::now(),
            ended: None,
            progress: Progress::default(),
            shares: BTreeMap::new(),
            result: None,
            error: None,
            ended_tx: watch::channel(false).0,
        }
    }

    /// The task as a worker sees it: streamed sources are replaced by their bytes.
    pub fn chunk_spec(&self) -> TaskSpec {
        match &self.spec {
            TaskSpec::Count {
                letter,
                ignore_case,
                source: CountSource::Text { .. } | CountSource::File { .. },
            } => TaskSpec::Count {
                letter: letter.clone(),
                ignore_case: *ignore_case,
                source: CountSource::Streamed,
            },
            spec => spec.clone(),
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

    /// Folds in a chunk that `worker` computed; `true` when the job has its answer.
    pub fn reduce(&mut self, worker: &str, start: u64, end: u64, output: ChunkOutput) -> bool {
        let share = self.shares.entry(worker.to_string()).or_insert_with(|| WorkerShare {
            name: worker.to_string(),
            chunks: 0,
            units: 0,
        });
        share.chunks += 1;
        share.units += end - start;
        self.reduction.add(output)
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
        self.ended_tx.send_replace(true);
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
            _ => Err(serde::ser::Error::custom("task and reduction disagree")),
        };
        doc.unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
    }
}
