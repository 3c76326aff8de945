//! Every built-in task, one module each: everything a task decides, on both sides of the wire.
//!
//! A task module answers, for its own kind of work:
//! - *on the coordinator* ([`Job`]): whether a request is valid ([`job`] builds one), how many
//!   units each phase has and how fast a slot runs them, what a chunk sends to a worker (a
//!   [`ChunkTask`], and for some tasks bytes to stream), how outputs reduce, and the typed
//!   [`JobResult`];
//! - *on both sides* ([`check_output`]): whether a chunk's output is one its task can have;
//! - *on a worker* ([`work`]): what runs for a chunk, calling the pure compute of
//!   [`crate::kernels`].
//! - *on the chunk's stream*: by default the coordinator sends the request (and, for some
//!   tasks, bytes of the job's data) and the worker replies with the output ([`Talk::Plain`]);
//!   a task whose chunk says more leads the conversation itself, on both sides ([`Converse`]
//!   on the coordinator, [`Serve`] on a worker), with what the contract lends it there
//!   ([`Stores`], [`crate::exec::units::Units`]).
//!
//! The coordinator, the scheduler and the worker name no task: they hold a `Box<dyn Job>`, a
//! [`ChunkTask`], a [`Talk`] and a [`Work`]. Adding a task means a file here, a variant of
//! [`proto::job::JobSpec`] (and of [`ChunkTask`] and [`JobResult`]), and a `marmotctl run`
//! subcommand.
//!
//! # Layout
//! - [`pi`], [`prime`], [`count`], [`freefall`], [`sweep`], [`cmd`]: the tasks.
//! - [`series`]: results a client takes chunk by chunk in order (freefall, sweep).

pub mod cmd;
pub mod count;
pub mod freefall;
pub mod pi;
pub mod prime;
pub mod series;
pub mod sweep;

pub use series::{Series, TakenChunk, SERIES_WINDOW};

use crate::exec::cache::FileCache;
use crate::exec::outbox::Outbox;
use crate::exec::spool::Spool;
use crate::exec::units::Units;
use crate::kernels::{Cancel, KernelError};
use crate::scheduler::{AssignmentId, ChunkIndex, JobShape};
use futures_util::future::BoxFuture;
use proto::command::placed::Placing;
use proto::job::JobSpec;
use proto::result::{JobResult, WorkerShare};
use proto::wire::{ChunkOutput, ChunkReply, ChunkRequest, ChunkTask};
use proto::{MessageReader, MessageWriter};
use quinn::{RecvStream, SendStream};
use std::path::PathBuf;
use std::sync::Arc;

/// Pi samples per second of the reference slot that every task's nominal rate assumes;
/// `bench` scores are compared with it to scale chunk sizes to the cluster.
pub const NOMINAL_SLOT_RATE: f64 = pi::NOMINAL_RATE;

/// A request no job can be made of, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A job's task as the coordinator runs it, from its checked request to its result.
pub trait Job: Send + 'static {
    /// The request as the job's views show it (a count's text reduced to its size).
    fn spec(&self) -> JobSpec;

    /// How the scheduler should cut the current phase, for a slot of [`NOMINAL_SLOT_RATE`].
    fn shape(&self) -> JobShape;

    /// What chunk `start..end` of the current phase sends to a worker, on its run after
    /// `attempt` failed ones.
    fn chunk(&self, start: u64, end: u64, attempt: u32) -> Chunk;

    /// The input file unit `unit` of the current phase has of its own, for tasks whose
    /// units have one (`cmd --input-files`): the scheduler sends the unit where the file
    /// already is.
    fn unit_file(&self, _unit: u64) -> Option<&proto::command::FileRef> {
        None
    }

    /// Units `start..end` of the current phase ran (or may have) on `worker`, which was lost
    /// before they were counted, at `at_ms` (Unix ms): they run again. A task whose units
    /// have side effects says so in its output (a command's joblog gets a line for the try).
    fn units_lost(&mut self, _start: u64, _end: u64, _worker: &str, _at_ms: u64) {}

    /// Folds in chunk `chunk` (units from `start`), whose output [`check_output`] passed.
    fn reduce(&mut self, chunk: ChunkIndex, start: u64, output: ChunkOutput) -> Fold;

    /// Takes out a chunk's output folded in before: for tasks whose [`Job::shape`] is
    /// revocable, when the member that gave it is caught lying.
    fn revoke(&mut self, _output: &ChunkOutput) {}

    /// The current phase ran all its chunks: `true` when another phase follows, whose
    /// [`Job::shape`] is then current (a freefall with drag runs its points once its survey
    /// has found where the body lands).
    fn next_phase(&mut self) -> bool {
        false
    }

    /// The job's result, once every phase is done or a chunk answered it.
    fn result(&self, run: Run) -> JobResult;

    /// Results the client takes chunk by chunk, for tasks that stream them.
    fn series(&mut self) -> Option<&mut Series> {
        None
    }

    /// Output the client takes as it comes, for tasks whose units print (commands).
    fn outbox(&mut self) -> Option<&mut Outbox> {
        None
    }

    /// The job ended: let go of what chunks read (a count's text).
    fn ended(&mut self) {}
}

/// What reducing a chunk did to the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fold {
    /// Counted; the job needs the rest of its chunks.
    Added,
    /// The job has its answer: the rest can stop (a factor was found).
    Answered,
    /// Start no more chunks; those running finish (`--halt soon,...`).
    Closing,
}

/// How a finished job ran, for its result.
pub struct Run {
    pub seconds: f64,
    pub workers: Vec<WorkerShare>,
}

/// What one chunk sends to a worker, and how its stream goes.
pub struct Chunk {
    pub task: ChunkTask,
    pub talk: Talk,
}

impl Chunk {
    fn of(task: ChunkTask) -> Self {
        Chunk { task, talk: Talk::Plain(None) }
    }

    /// The bytes a plain exchange streams after the request, for tests.
    #[cfg(test)]
    pub fn input(self) -> Option<ChunkInput> {
        match self.talk {
            Talk::Plain(input) => input,
            Talk::Own(_) => None,
        }
    }
}

/// How a chunk's stream goes, on the coordinator.
pub enum Talk {
    /// The request, then bytes of the job's data for tasks whose data lives on the
    /// coordinator, then the worker's reply.
    Plain(Option<ChunkInput>),
    /// A conversation the task leads itself.
    Own(Box<dyn Converse>),
}

/// A chunk's own conversation on its stream, on the coordinator: from the request to the
/// worker's reply.
pub trait Converse: Send + 'static {
    fn converse<'a>(&'a mut self, stream: Stream<'a>) -> BoxFuture<'a, anyhow::Result<ChunkReply>>;

    /// The conversation ended without a reply that counts (it failed, was cancelled, or its
    /// worker was lost): let go of what it kept.
    fn abandoned(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// A chunk's stream on the coordinator, as a [`Converse`] has it.
pub struct Stream<'a> {
    pub writer: &'a mut MessageWriter<SendStream>,
    pub reader: &'a mut MessageReader<RecvStream>,
    pub request: &'a ChunkRequest,
    pub via: Via,
    /// The worker's name.
    pub worker: &'a str,
    pub stores: &'a Stores,
}

/// How a chunk's stream came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The coordinator opened it for an assignment.
    Assignment(AssignmentId),
    /// The worker opened it to deliver what ran through a lost connection (this run's
    /// delivery number `n`): nothing goes out but the end; the chunk's result comes at once.
    Delivery(u64),
}

/// What the coordinator lends chunks' conversations: the files users uploaded, and where
/// output waits for its client.
#[derive(Clone)]
pub struct Stores {
    pub files: Arc<FileCache>,
    pub spool: Spool,
}

impl Stores {
    /// What to do, off the async runtime, once a job whose units printed is forgotten.
    pub fn forget(&self, job: u64) -> impl FnOnce() + Send + 'static {
        let dir = self.spool.job_dir(job);
        move || {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Bytes a job's chunks read from the coordinator.
pub enum DataSource {
    Text(Arc<[u8]>),
    File(PathBuf),
}

/// A chunk's bytes: `start..stop` of the job's data source.
pub struct ChunkInput {
    pub source: Arc<DataSource>,
    pub start: u64,
    pub stop: u64,
}

/// Makes a job of a request, or says what is wrong with it. Fills in what the coordinator
/// knows (a file's size, a throw's point count).
pub fn job(spec: JobSpec) -> Result<Box<dyn Job>, Invalid> {
    match spec {
        JobSpec::Pi { samples, seed } => pi::job(samples, seed),
        JobSpec::Prime { n, method } => Ok(prime::job(n, method)),
        JobSpec::Count { letter, ignore_case, source } => count::job(letter, ignore_case, source),
        JobSpec::Freefall { fall, .. } => freefall::job(fall),
        JobSpec::Sweep { fall, from, to, steps } => sweep::job(fall, from, to, steps),
        JobSpec::Cmd(spec) => cmd::job(*spec),
    }
}

/// Whether `output` can be the result of units `start..end` of `task`: run on every result off
/// the network before it reaches a reduction, so a hostile or buggy worker cannot make one
/// nonsensical.
pub fn check_output(
    task: &ChunkTask,
    start: u64,
    end: u64,
    output: &ChunkOutput,
) -> Result<(), String> {
    if start > end {
        return Err(format!("a chunk cannot run from unit {start} back to {end}"));
    }
    let units = end - start;
    let possible = match task {
        ChunkTask::Pi { .. } => pi::check(units, output),
        ChunkTask::Prime { n, .. } => prime::check(*n, output),
        ChunkTask::Count { .. } => count::check(units, output),
        ChunkTask::Heights { .. } | ChunkTask::HeightsFrom { .. } | ChunkTask::Survey { .. } => {
            freefall::check(task, units, output)
        }
        ChunkTask::Sweep { .. } => sweep::check(units, output),
        ChunkTask::Cmd(task) | ChunkTask::CmdPlaced(task, _) | ChunkTask::CmdTermSeq(task, ..) => {
            cmd::check(task, units, output)
        }
    };
    if possible {
        Ok(())
    } else {
        Err(format!("worker returned an impossible result for {} chunk {start}..{end}", name(task)))
    }
}

/// The task's name, for messages.
fn name(task: &ChunkTask) -> &'static str {
    match task {
        ChunkTask::Pi { .. } => "pi",
        ChunkTask::Prime { .. } => "prime",
        ChunkTask::Count { .. } => "count",
        ChunkTask::Heights { .. } | ChunkTask::HeightsFrom { .. } | ChunkTask::Survey { .. } => {
            "freefall"
        }
        ChunkTask::Sweep { .. } => "sweep",
        ChunkTask::Cmd(_) | ChunkTask::CmdPlaced(..) | ChunkTask::CmdTermSeq(..) => "cmd",
    }
}

/// What a worker runs for a chunk.
pub enum Work {
    /// A kernel over the chunk's units, run on a slot thread.
    Compute(Kernel),
    /// The chunk's bytes follow its request: fed piece by piece as they arrive.
    Stream(Box<dyn Feed>),
    /// A chunk that serves its own stream.
    Serve(Box<dyn Serve>),
}

/// A chunk that serves its own stream on a worker, to its end (a command: files fetched,
/// units run, their output sent back), with what the worker lends it. Returns what ran
/// through a lost connection, for the next session to deliver.
pub trait Serve: Send + 'static {
    fn serve<'a>(
        self: Box<Self>,
        reader: &'a mut MessageReader<RecvStream>,
        writer: &'a mut MessageWriter<SendStream>,
        units: &'a Units,
    ) -> BoxFuture<'a, Option<crate::exec::finished::Kept>>;
}

/// A chunk's kernel, ready to run on a slot thread.
pub type Kernel = Box<dyn FnOnce(&Cancel) -> Result<ChunkOutput, KernelError> + Send>;

/// A chunk that consumes bytes streamed after its request.
pub trait Feed: Send + 'static {
    /// The chunk's own bytes: fewer is a broken transfer.
    fn own(&self) -> u64;
    /// The most bytes the coordinator may send (its own plus what a match at its end may
    /// run into): more is refused.
    fn allowed(&self) -> u64;
    fn feed(&mut self, piece: &[u8]);
    fn finish(self: Box<Self>) -> ChunkOutput;
}

/// What to run for `request`, or why it cannot run: units outside the task, a result over the
/// protocol's limits, a form no coordinator sends.
pub fn work(request: &ChunkRequest) -> Result<Work, KernelError> {
    let ChunkRequest { start, end, .. } = *request;
    let within = |units: u64| match start <= end && end <= units {
        true => Ok(()),
        false => Err(KernelError::OutOfRange { start, end, units }),
    };
    match &request.task {
        &ChunkTask::Pi { samples, seed } => within(samples).map(|()| pi::work(seed, start, end)),
        &ChunkTask::Prime { n, method } => {
            within(prime::units(n, method)).map(|()| prime::work(n, method, start, end))
        }
        ChunkTask::Count { letter, ignore_case, bytes } => {
            within(count::units(bytes))?;
            count::work(letter, *ignore_case, bytes.clone(), start, end)
        }
        ChunkTask::Heights { points, .. } | ChunkTask::HeightsFrom { points, .. } => {
            within(*points)?;
            freefall::work(request.task.clone(), start, end)
        }
        ChunkTask::Survey { .. } => {
            within(1)?;
            freefall::work(request.task.clone(), start, end)
        }
        &ChunkTask::Sweep { fall, from, to, steps } => {
            within(steps)?;
            sweep::work(fall, (from, to, steps), start, end)
        }
        // A command's chunk carries its own units, and answers on its own stream (a range
        // it cannot run too).
        ChunkTask::Cmd(task) => Ok(cmd::work(task.clone(), Placing::default(), None, start, end)),
        ChunkTask::CmdPlaced(task, placing) => {
            Ok(cmd::work(task.clone(), (**placing).clone(), None, start, end))
        }
        ChunkTask::CmdTermSeq(task, placing, seq) => {
            Ok(cmd::work(task.clone(), (**placing).clone(), Some(seq.clone()), start, end))
        }
    }
}

/// Runs a chunk whole, in the calling thread, for tests (a worker feeds streamed bytes as
/// they arrive instead).
#[cfg(test)]
pub fn run_now(
    request: &ChunkRequest,
    bytes: &[u8],
    cancel: &Cancel,
) -> Result<ChunkOutput, KernelError> {
    match work(request)? {
        Work::Compute(kernel) => kernel(cancel),
        Work::Stream(mut feed) => {
            feed.feed(bytes);
            Ok(feed.finish())
        }
        Work::Serve(_) => panic!("a chunk that serves its stream runs on a worker, not here"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::job::{CountSource, Fall, PrimeMethod};

    /// Found by the `chunk_outputs` fuzz target: a range that runs backwards made the size
    /// check subtract with overflow.
    #[test]
    fn a_backwards_chunk_has_no_possible_output() {
        let pi = ChunkTask::Pi { samples: 100, seed: 1 };
        assert_eq!(check_output(&pi, 10, 20, &ChunkOutput::Pi { inside: 10 }), Ok(()));
        let e = check_output(&pi, 10, 20, &ChunkOutput::Pi { inside: 11 }).unwrap_err();
        assert_eq!(e, "worker returned an impossible result for pi chunk 10..20");
        let e = check_output(&pi, 20, 10, &ChunkOutput::Pi { inside: 0 }).unwrap_err();
        assert_eq!(e, "a chunk cannot run from unit 20 back to 10");
        assert_eq!(check_output(&pi, 20, 20, &ChunkOutput::Pi { inside: 0 }), Ok(()), "empty");
    }

    #[test]
    fn every_request_becomes_a_job_of_its_own_task() {
        let fall = Fall::default();
        let random = CountSource::Random { letters: 10, seed: 1 };
        let specs = [
            JobSpec::Pi { samples: 10, seed: 1 },
            JobSpec::Prime { n: 91, method: PrimeMethod::Trial },
            JobSpec::Count { letter: "e".into(), ignore_case: false, source: random },
            JobSpec::Freefall { fall, points: freefall_points(&fall) },
            JobSpec::Sweep { fall, from: 0.0, to: 1e-4, steps: 4 },
        ];
        for spec in specs {
            let job = job(spec.clone()).unwrap();
            assert_eq!(job.spec(), spec, "a job shows the request it was made of");
        }
    }

    #[test]
    fn a_forgotten_job_lets_go_of_its_spool_and_no_other() {
        let state = tempfile::tempdir().unwrap();
        let files = FileCache::open(&state.path().join("files"), 1 << 20).unwrap();
        let stores =
            Stores { files: Arc::new(files), spool: Spool::open(state.path(), 1).unwrap() };
        for job in [3, 4] {
            std::fs::create_dir_all(stores.spool.job_dir(job)).unwrap();
            std::fs::write(stores.spool.chunk_file(job, 1), b"out").unwrap();
        }
        stores.forget(3)();
        assert!(!stores.spool.job_dir(3).exists());
        assert!(stores.spool.chunk_file(4, 1).exists());
        stores.forget(9)(); // nothing spooled: nothing to do
    }

    fn freefall_points(fall: &Fall) -> u64 {
        crate::kernels::freefall::vacuum_points(fall).unwrap()
    }

    #[test]
    fn workers_refuse_ranges_outside_the_task() {
        let request = |task, start, end| ChunkRequest { job: 1, chunk: 0, task, start, end };
        let pi = ChunkTask::Pi { samples: 100, seed: 1 };
        let Err(e) = work(&request(pi.clone(), 50, 101)) else { panic!("ran past the end") };
        assert_eq!(e, KernelError::OutOfRange { start: 50, end: 101, units: 100 });
        assert!(work(&request(pi.clone(), 60, 50)).is_err(), "backwards");
        assert!(work(&request(pi.clone(), 60, 60)).is_ok(), "empty, not backwards");
        assert!(work(&request(pi.clone(), 0, 100)).is_ok(), "up to the last unit");
        let out = run_now(&request(pi, 0, 100), &[], &Cancel::default()).unwrap();
        assert!(matches!(out, ChunkOutput::Pi { inside } if (70..=90).contains(&inside)));
        let survey = ChunkTask::Survey { fall: Fall::default(), spacing: 1 << 16 };
        assert!(work(&request(survey, 0, 2)).is_err(), "a survey is one unit");
    }
}
