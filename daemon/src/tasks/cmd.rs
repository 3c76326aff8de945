//! `cmd` (`marmotctl run cmd -- COMMAND ARGS…`): a user's command once per input. Units are
//! inputs; a chunk runs its units one after another on one slot of a worker, whose stream
//! brings their output back ([`crate::exec`]).
//!
//! How long a unit takes is unknown until some have run, and chunk sizes need it (a chunk
//! of 32 `true`s is 30 ms; of 32 video transcodes, an hour that no other slot can share). So a
//! job runs in two phases: a *probe* of the first [`PROBE`] units, one per chunk, then the
//! rest cut for the median time the probe's units took. The rest starts when the whole probe
//! has ended, so a slot can wait up to a probe unit's time. A job of at most
//! [`SINGLE_UNIT_JOBS`] units without input files, where that wait would show, runs one unit
//! per chunk throughout instead, as GNU parallel does (dispatching costs well under a second).
//! Jobs over input files keep the probe: in a chunk of several units, the worker fetches the
//! next unit's file while one runs, which single units cannot do (measured by
//! `tests/bench/commands.sh`: see the README's benchmarks).
//!
//! Everything is decided here, sans-IO: retries (a chunk that may still be retried fails on a
//! failed unit, and the scheduler runs it elsewhere), `--halt` (a verdict per counted chunk),
//! and the result. Chunks of side effects get no backups and no verification copies.

use super::{Chunk, Converse, Fold, Invalid, Job, Run, Serve, Stream, Talk, Via, Work};
use crate::exec;
use crate::exec::cache::{FileCache, Pinned};
use crate::exec::outbox::{Delivery, Outbox};
use crate::exec::tries::Tries;
use crate::exec::units::Units;
use crate::kernels::KernelError;
use crate::scheduler::{ChunkIndex, JobShape};
use futures_util::future::BoxFuture;
use proto::command::halt::{Halt, Tally, Verdict};
use proto::command::inputs::Inputs;
use proto::command::placed::{Placing, MAX_PLACED_CHUNK_UNITS};
use proto::command::spec::MAX_CHUNK_UNITS;
use proto::command::termseq::TermSeq;
use proto::command::{CmdSpec, FileRef};
use proto::command::{UnitEnding, UnitReport};
use proto::job::JobSpec;
use proto::result::{CmdResult, JobResult};
use proto::wire::{ChunkOutput, ChunkReply, ChunkTask, CmdChunk, CmdUnit};
use proto::{MessageReader, MessageWriter};
use quinn::{RecvStream, SendStream};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

/// Units of the first phase, one per chunk, run to learn how long a unit takes.
pub const PROBE: u64 = 4;
/// Jobs of at most this many units (and no input files) are one phase of one unit per
/// chunk: no probe.
pub const SINGLE_UNIT_JOBS: u64 = 256;
/// The shortest time a unit is taken to need, for sizing chunks: below it, starting a process
/// is what costs.
const MIN_UNIT_SECONDS: f64 = 0.000_5;

/// Reads a spec's inputs file (what a client sends, as any file, when its inputs would not fit
/// in one request) into its inputs, checked as inputs given inline are. Blocking: run it off
/// the async runtime.
pub fn read_inputs_file(files: &FileCache, spec: &mut CmdSpec) -> Result<(), Invalid> {
    let Some(file) = spec.inputs_file.take() else { return Ok(()) };
    if !spec.inputs.is_empty() {
        return Err(Invalid("give the inputs in the request or as a file, not both".into()));
    }
    let sha = &file.sha256;
    let path = files.path(sha).ok_or_else(|| {
        Invalid(format!(
            "the inputs' file {sha} is not in the coordinator's store: upload it first"
        ))
    })?;
    let opened = std::fs::File::open(&path)
        .map_err(|e| Invalid(format!("cannot read the inputs' file {sha}: {e}")))?;
    let mut inputs = Inputs::default();
    let read = inputs.read_lines(std::io::BufReader::new(opened), "the inputs' file");
    read.map_err(|e| Invalid(e.to_string()))?;
    spec.inputs = inputs.finish().map_err(|e| Invalid(e.to_string()))?;
    Ok(())
}

/// Pins in the coordinator's store every file a job of `spec` needs, for as long as it is
/// queued or running (the caller releases them when it ends); refuses, in one line, a job
/// whose files are not all there or could never be together.
pub fn pin_files(files: &FileCache, spec: &CmdSpec) -> Result<Vec<Pinned>, Invalid> {
    // A placed dir is made on the worker, not stored.
    let placed = spec.placed.iter().flatten().filter(|p| !p.is_dir()).map(|p| &p.file);
    let mut needed: Vec<&FileRef> =
        spec.files.iter().chain(&spec.input_files).chain(placed).collect();
    needed.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    needed.dedup_by(|a, b| a.sha256 == b.sha256);
    let bytes: u64 = needed.iter().map(|f| f.size).sum();
    let (limit, max_files) = files.bounds();
    if bytes > limit || needed.len() > max_files {
        return Err(Invalid(format!(
            "the job's {} files are {bytes} bytes together; the coordinator's store holds at \
             most {max_files} files, {limit} bytes: start it with a larger --file-store or \
             --files-max, or split the job",
            needed.len()
        )));
    }
    let mut pinned = Vec::with_capacity(needed.len());
    for file in needed {
        let Some(pin) = files.pin(&file.sha256) else {
            for pin in pinned {
                files.release(pin);
            }
            return Err(Invalid(format!(
                "the job's file {} is no longer in the coordinator's store (newer uploads \
                 pushed it out): run the command again, which sends it again",
                proto::names::shown(&file.name)
            )));
        };
        pinned.push(pin);
    }
    Ok(pinned)
}

pub fn job(spec: CmdSpec) -> Result<Box<dyn Job>, Invalid> {
    spec.check().map_err(Invalid)?;
    let outbox = Outbox::new(spec.keep_order);
    let selected = (!spec.skip.is_empty()).then(|| spec.units().collect());
    Ok(Box::new(CmdJob {
        selected,
        spec,
        phase: Phase::Probe,
        probe_ms: vec![],
        succeeded_ms: VecDeque::new(),
        tally: Tally::default(),
        halted: false,
        halt_status: None,
        outbox,
        tries: Tries::default(),
    }))
}

/// `--timeout N%` judges by the median of this many units that succeeded last.
const MEDIAN_OF: usize = 999;

struct CmdJob {
    spec: CmdSpec,
    /// The numbers of the units that run, when some are skipped (`--resume`): the job's
    /// phases and chunks count only these.
    selected: Option<Vec<u64>>,
    phase: Phase,
    /// How long each unit of the probe took, in milliseconds.
    probe_ms: Vec<u64>,
    /// How long the last units that succeeded took (at most [`MEDIAN_OF`]), in milliseconds:
    /// `--timeout N%` is a share of their median.
    succeeded_ms: VecDeque<u64>,
    tally: Tally,
    /// `--halt` stopped the job.
    halted: bool,
    /// The job's exit status, fixed when its `--halt` rule was met.
    halt_status: Option<u8>,
    outbox: Outbox,
    /// Failed tries of units that run again (`--retries`).
    tries: Tries,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// The first units, one per chunk.
    Probe,
    /// The rest, expected at this many units per second on a slot.
    Rest { units_per_second: f64 },
}

impl CmdJob {
    /// `--timeout N%`: N% of the median time of the units that succeeded last; none before
    /// one did (GNU parallel's rule, judged here when a chunk is given).
    fn timeout_by_median(&self) -> Option<u64> {
        let pct = u64::from(self.spec.timeout_percent?);
        let mut times: Vec<u64> = self.succeeded_ms.iter().copied().collect();
        times.sort_unstable();
        let median = *times.get(times.len() / 2)?;
        Some((median.saturating_mul(pct) / 100).max(1))
    }

    /// How many units run.
    fn units(&self) -> u64 {
        self.selected.as_ref().map_or(self.spec.inputs.len(), Vec::len) as u64
    }

    /// The number of the unit at `place` among those that run.
    fn unit_at(&self, place: u64) -> u64 {
        self.selected.as_ref().map_or(place, |units| units[place as usize])
    }

    /// The place of unit `unit` among those that run.
    fn place_of(&self, unit: u64) -> u64 {
        let place = self.selected.as_ref().map(|units| units.partition_point(|&u| u < unit));
        place.map_or(unit, |p| p as u64)
    }

    /// The units of the first phase: the probe, or the whole of a small job.
    fn probe_units(&self) -> u64 {
        match self.units() {
            units if units <= SINGLE_UNIT_JOBS && self.spec.input_files.is_empty() => units,
            units => PROBE.min(units),
        }
    }

    /// The job's first unit in the current phase.
    fn first_unit(&self) -> u64 {
        match self.phase {
            Phase::Probe => 0,
            Phase::Rest { .. } => self.probe_units(),
        }
    }
}

impl Job for CmdJob {
    fn spec(&self) -> JobSpec {
        JobSpec::Cmd(Box::new(self.spec.clone()))
    }

    fn shape(&self) -> JobShape {
        let (units, units_per_second, max_chunk_units) = match self.phase {
            Phase::Probe => (self.probe_units(), 1.0 / MIN_UNIT_SECONDS, 1),
            Phase::Rest { units_per_second } => {
                // One unit a chunk: when a failed unit is retried (its chunk runs again
                // whole), and under --halt (a halt starts no unit more, as GNU parallel's).
                // And under --delay, which spaces units, not chunks.
                let one = self.spec.retries > 0
                    || self.spec.halt != Halt::Never
                    || self.spec.delay_ms.is_some();
                let max = match (one, self.spec.placed.is_empty()) {
                    (true, _) => 1,
                    (false, true) => MAX_CHUNK_UNITS,
                    (false, false) => MAX_PLACED_CHUNK_UNITS,
                };
                (self.units() - self.first_unit(), units_per_second, max)
            }
        };
        let mut shape = JobShape::new(units, units_per_second);
        shape.max_chunk_units = max_chunk_units;
        shape.window = self.outbox.window();
        shape.backups = false;
        shape.retries = self.spec.retries;
        shape.slots_per_chunk = self.spec.slots_per_unit;
        shape.exec = true;
        shape.send_ahead = !self.spec.input_files.is_empty();
        shape.judged = self.spec.halt != Halt::Never;
        shape.max_slots = self.spec.max_slots;
        shape.spacing = self.spec.delay_ms.map(Duration::from_millis);
        shape
    }

    fn chunk(&self, start: u64, end: u64, attempt: u32) -> Chunk {
        let base = self.first_unit();
        let spec = &self.spec;
        let units = (base + start..base + end)
            .map(|place| {
                let unit = self.unit_at(place);
                CmdUnit {
                    unit,
                    input: spec.inputs[unit as usize].clone(),
                    file: spec.input_files.get(unit as usize).cloned(),
                }
            })
            .collect();
        let chunk = Box::new(CmdChunk {
            command: spec.command.clone(),
            units,
            files: spec.files.clone(),
            env: spec.env.clone(),
            timeout_ms: spec.timeout_ms.or_else(|| self.timeout_by_median()),
            retry_failed: attempt < spec.retries,
            results: spec.results,
        });
        let plain = spec.placed.is_empty() && !spec.bring_back && spec.stdin.is_none();
        let placed = chunk.units.iter().filter_map(|u| spec.placed.get(u.unit as usize));
        let placing = Placing {
            placed: placed.cloned().collect(),
            bring_back: spec.bring_back,
            stdin: spec.stdin.clone(),
        };
        // The plainest form that says it all, which the most workers read.
        let task = match (&spec.term_seq, plain) {
            (Some(seq), _) => ChunkTask::CmdTermSeq(chunk, Box::new(placing), seq.clone()),
            (None, true) => ChunkTask::Cmd(chunk),
            (None, false) => ChunkTask::CmdPlaced(chunk, Box::new(placing)),
        };
        let tries = self.tries.clone();
        Chunk { task, talk: Talk::Own(Box::new(Exchange { spool: None, tries })) }
    }

    fn unit_file(&self, unit: u64) -> Option<&FileRef> {
        let place = self.first_unit().checked_add(unit).filter(|&p| p < self.units())?;
        self.spec.input_files.get(usize::try_from(self.unit_at(place)).ok()?)
    }

    fn units_lost(&mut self, start: u64, end: u64, worker: &str, at_ms: u64) {
        let base = self.first_unit();
        for place in (base + start..base + end).take_while(|&p| p < self.units()) {
            self.tries.add(UnitReport {
                unit: self.unit_at(place),
                ending: UnitEnding::Lost,
                started_ms: at_ms,
                duration_ms: 0,
                stdout: 0,
                stderr: 0,
                results: 0,
                worker: worker.to_string(),
            });
        }
    }

    fn reduce(&mut self, chunk: ChunkIndex, _start: u64, output: ChunkOutput) -> Fold {
        let ChunkOutput::Cmd { units, spool } = output else { return Fold::Added };
        let mut verdict = Verdict::Go;
        for report in &units {
            self.tries.settle(report);
            if report.ending.success() {
                self.tally.succeeded += 1;
                if self.spec.timeout_percent.is_some() {
                    if self.succeeded_ms.len() == MEDIAN_OF {
                        self.succeeded_ms.pop_front();
                    }
                    self.succeeded_ms.push_back(report.duration_ms);
                }
            } else {
                self.tally.failed += 1;
            }
            if self.phase == Phase::Probe {
                self.probe_ms.push(report.duration_ms);
            }
            // As GNU parallel: the rule is judged after each unit, and the exit status is
            // what it was when the rule was met.
            if self.halt_status.is_none() {
                verdict = self.spec.halt.verdict(self.tally, self.units());
                if verdict != Verdict::Go {
                    let last = report.ending.exit_and_signal();
                    let status = self.spec.halt.exit_status(self.tally, self.units(), last);
                    self.halt_status = Some(status);
                }
            }
        }
        if let (Some(first), Some(spool)) = (units.first(), spool) {
            let first_unit = self.place_of(first.unit);
            let bytes = units.iter().map(UnitReport::body).sum();
            let delivery = Delivery { spool, first_unit, units: units.len() as u64, bytes };
            self.outbox.add(chunk, delivery);
        }
        if self.halted {
            return Fold::Added;
        }
        match verdict {
            Verdict::Go => Fold::Added,
            Verdict::Soon => {
                self.halted = true;
                Fold::Closing
            }
            Verdict::Now => {
                self.halted = true;
                Fold::Answered
            }
        }
    }

    fn next_phase(&mut self) -> bool {
        if self.phase != Phase::Probe || self.units() == self.probe_units() || self.halted {
            return false;
        }
        self.phase = Phase::Rest { units_per_second: rate(&self.probe_ms) };
        self.outbox.phase_started(self.first_unit());
        true
    }

    fn result(&self, run: Run) -> JobResult {
        let Tally { succeeded, failed } = self.tally;
        let (retried, retried_units) = self.tries.retried();
        JobResult::Cmd(CmdResult {
            retried,
            retried_units,
            units: self.units(),
            succeeded,
            failed,
            skipped: self.units().saturating_sub(succeeded + failed),
            halted: self.halted.then(|| self.spec.halt.to_string()),
            halt_status: self.halt_status,
            seconds: run.seconds,
            workers: run.workers,
        })
    }

    fn outbox(&mut self) -> Option<&mut Outbox> {
        Some(&mut self.outbox)
    }

    fn ended(&mut self) {
        self.outbox.flush();
    }
}

/// A command chunk's stream on the coordinator ([`exec::chunk`]): its output is spooled to a
/// file of its own, removed if the chunk does not count.
struct Exchange {
    spool: Option<PathBuf>,
    /// The job's failed tries: a unit's earlier ones are spooled before it, a new one added.
    tries: Tries,
}

impl Converse for Exchange {
    fn converse<'a>(&'a mut self, stream: Stream<'a>) -> BoxFuture<'a, anyhow::Result<ChunkReply>> {
        Box::pin(async move {
            let Some((task, placing)) = stream.request.task.cmd() else {
                anyhow::bail!("a command's exchange was given another task's chunk");
            };
            let job = stream.request.job;
            let spool = match stream.via {
                Via::Assignment(assignment) => stream.stores.spool.chunk_file(job, assignment),
                Via::Delivery(n) => stream.stores.spool.delivery_file(job, n),
            };
            let spool = self.spool.insert(spool);
            let (writer, reader) = (stream.writer, stream.reader);
            let at = (spool.as_path(), stream.worker);
            let stores = (&*stream.stores.files, &self.tries);
            match stream.via {
                Via::Assignment(_) => {
                    let task = (task, placing);
                    exec::chunk::exchange(writer, reader, stream.request, task, stores, at).await
                }
                Via::Delivery(_) => exec::chunk::take_delivered(reader, task, stores.1, at).await,
            }
        })
    }

    fn abandoned(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Not counted: what it spooled will never be read.
            if let Some(spool) = self.spool.take() {
                let _ = tokio::fs::remove_file(spool).await;
            }
        })
    }
}

/// What a worker runs for a command chunk of units `start..end`: it serves the chunk's
/// stream, answering a range it cannot run there too.
pub fn work(
    task: Box<CmdChunk>,
    placing: Placing,
    term_seq: Option<TermSeq>,
    start: u64,
    end: u64,
) -> Work {
    Work::Serve(Box::new(Served(runnable(task, placing, term_seq, start, end))))
}

/// The chunk, if it carries a unit for each of `start..end` (and a list of placed files for
/// each, if any) and its signals are signals; else why it cannot run.
fn runnable(
    task: Box<CmdChunk>,
    placing: Placing,
    term_seq: Option<TermSeq>,
    start: u64,
    end: u64,
) -> Result<(Box<CmdChunk>, Placing, Option<TermSeq>), String> {
    let units = task.units.len() as u64;
    if units != end.saturating_sub(start) {
        return Err(KernelError::OutOfRange { start, end, units }.to_string());
    }
    if !placing.placed.is_empty() && placing.placed.len() != task.units.len() {
        return Err(format!("{} lists of placed files for {units} units", placing.placed.len()));
    }
    if let Some(seq) = &term_seq {
        seq.check().map_err(|why| format!("--termseq: {why}"))?;
    }
    Ok((task, placing, term_seq))
}

/// A command chunk on a worker ([`exec::units`]), or why it cannot run.
struct Served(Result<(Box<CmdChunk>, Placing, Option<TermSeq>), String>);

impl Serve for Served {
    fn serve<'a>(
        self: Box<Self>,
        reader: &'a mut MessageReader<RecvStream>,
        writer: &'a mut MessageWriter<SendStream>,
        units: &'a Units,
    ) -> BoxFuture<'a, Option<exec::finished::Kept>> {
        Box::pin(async move {
            let task = self.0.as_ref().map(|(task, placing, seq)| (&**task, placing, seq.as_ref()));
            exec::units::serve(task.map_err(Clone::clone), reader, writer, units).await
        })
    }
}

/// Units per second of one slot, from how long the probe's units took (their median).
fn rate(probe_ms: &[u64]) -> f64 {
    let mut sorted = probe_ms.to_vec();
    sorted.sort_unstable();
    let median_ms = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    1.0 / (median_ms as f64 / 1000.0).max(MIN_UNIT_SECONDS)
}

/// Whether `output` can be what the units of `task` reported: one report per unit, in order,
/// each within bounds.
pub fn check(task: &CmdChunk, units: u64, output: &ChunkOutput) -> bool {
    let ChunkOutput::Cmd { units: reports, .. } = output else { return false };
    reports.len() as u64 == units
        && task.units.len() == reports.len()
        && task.units.iter().zip(reports).all(|(u, r)| u.unit == r.unit && r.check().is_ok())
}

/// Reports of a chunk's units, for tests.
#[cfg(test)]
pub fn reports(units: std::ops::Range<u64>, ending: proto::command::UnitEnding) -> Vec<UnitReport> {
    units
        .map(|unit| UnitReport {
            unit,
            ending: ending.clone(),
            started_ms: 0,
            duration_ms: 10,
            stdout: 0,
            stderr: 0,
            results: 0,
            worker: String::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::command::{FileRef, Halt, Template, UnitEnding};

    fn spec(inputs: usize) -> CmdSpec {
        CmdSpec {
            command: Template::new(vec!["echo".into()]).unwrap(),
            inputs: (0..inputs).map(|i| format!("in{i}")).collect(),
            inputs_file: None,
            input_files: vec![],
            files: vec![],
            env: vec![],
            timeout_ms: None,
            timeout_percent: None,
            term_seq: None,
            delay_ms: None,
            retries: 0,
            halt: Halt::Never,
            slots_per_unit: 2,
            max_slots: None,
            keep_order: false,
            results: false,
            skip: vec![],
            placed: vec![],
            bring_back: false,
            stdin: None,
        }
    }

    fn output(units: std::ops::Range<u64>, ending: UnitEnding, spool: &str) -> ChunkOutput {
        ChunkOutput::Cmd { units: reports(units, ending), spool: Some(spool.into()) }
    }

    #[test]
    fn a_probe_of_single_units_then_the_rest_cut_for_how_long_they_took() {
        let mut job = job(spec(1000)).unwrap();
        let shape = job.shape();
        assert_eq!((shape.units, shape.max_chunk_units), (PROBE, 1));
        assert!(!shape.backups && shape.exec && shape.window.is_none());
        assert_eq!((shape.slots_per_chunk, shape.retries), (2, 0));
        let ChunkTask::Cmd(chunk) = job.chunk(2, 3, 0).task else { panic!("not a cmd chunk") };
        assert_eq!(chunk.units, [CmdUnit { unit: 2, input: "in2".into(), file: None }]);
        assert!(!chunk.retry_failed);
        for unit in 0..PROBE {
            let ms = [10, 30, 20, 1000][unit as usize];
            let mut out = reports(unit..unit + 1, UnitEnding::Exited(0));
            out[0].duration_ms = ms;
            let fold = job.reduce(unit as u32, unit, ChunkOutput::Cmd { units: out, spool: None });
            assert_eq!(fold, Fold::Added);
        }
        assert!(job.next_phase());
        let shape = job.shape();
        assert_eq!((shape.units, shape.max_chunk_units), (1000 - PROBE, MAX_CHUNK_UNITS));
        assert_eq!(shape.units_per_second, 1.0 / 0.03, "the median unit took 30 ms");
        let ChunkTask::Cmd(chunk) = job.chunk(0, 2, 0).task else { panic!("not a cmd chunk") };
        let units: Vec<u64> = chunk.units.iter().map(|u| u.unit).collect();
        assert_eq!(units, [PROBE, PROBE + 1], "the rest counts from after the probe");
        assert!(!job.next_phase(), "two phases only");
        assert_eq!(rate(&[0, 0, 0]), 1.0 / MIN_UNIT_SECONDS);
        assert_eq!(rate(&[]), 1.0 / MIN_UNIT_SECONDS);
    }

    #[test]
    fn a_timeout_in_percent_is_a_share_of_the_median_of_the_units_that_succeeded() {
        let mut job = job(CmdSpec { timeout_percent: Some(200), ..spec(3000) }).unwrap();
        let timeout = |job: &dyn Job| match job.chunk(0, 1, 0).task {
            ChunkTask::Cmd(chunk) => chunk.timeout_ms,
            _ => panic!("not a cmd chunk"),
        };
        assert_eq!(timeout(&*job), None, "none before a unit succeeded");
        let ran = |job: &mut Box<dyn Job>, unit: u64, ms: u64, ending: UnitEnding| {
            let mut out = reports(unit..unit + 1, ending);
            out[0].duration_ms = ms;
            job.reduce(unit as u32, unit, ChunkOutput::Cmd { units: out, spool: None });
        };
        ran(&mut job, 0, 100, UnitEnding::Exited(0));
        assert_eq!(timeout(&*job), Some(200));
        ran(&mut job, 1, 300, UnitEnding::Exited(0));
        ran(&mut job, 2, 200, UnitEnding::Exited(0));
        // A failed unit's time is not counted.
        ran(&mut job, 3, 90_000, UnitEnding::Exited(1));
        assert_eq!(timeout(&*job), Some(400), "twice the median, 200 ms");
        // The last MEDIAN_OF units judge: slower units push the fast ones out.
        for unit in 4..4 + MEDIAN_OF as u64 {
            ran(&mut job, unit, 1000, UnitEnding::Exited(0));
        }
        assert_eq!(timeout(&*job), Some(2000));
        let fixed = job_of(CmdSpec { timeout_ms: Some(5), ..spec(3) });
        assert_eq!(timeout(&*fixed), Some(5));
        let mut tiny = job_of(CmdSpec { timeout_percent: Some(1), ..spec(3) });
        ran(&mut tiny, 0, 0, UnitEnding::Exited(0));
        assert_eq!(timeout(&*tiny), Some(1), "never 0, which would be none");
    }

    fn job_of(spec: CmdSpec) -> Box<dyn Job> {
        job(spec).unwrap()
    }

    #[test]
    fn a_small_job_is_one_phase_of_single_units() {
        for units in [3, PROBE, 5, SINGLE_UNIT_JOBS] {
            let mut job = job(spec(units as usize)).unwrap();
            let shape = job.shape();
            assert_eq!((shape.units, shape.max_chunk_units), (units, 1), "{units} units");
            let ChunkTask::Cmd(chunk) = job.chunk(units - 1, units, 0).task else { panic!() };
            assert_eq!(chunk.units[0].unit, units - 1);
            for unit in 0..units {
                job.reduce(unit as u32, unit, output(unit..unit + 1, UnitEnding::Exited(0), "s"));
            }
            assert!(!job.next_phase(), "{units} units: no second phase");
        }
        let job = job(spec(SINGLE_UNIT_JOBS as usize + 1)).unwrap();
        assert_eq!(job.shape().units, PROBE, "a larger job is probed");
        let file = |n: usize| FileRef { name: format!("f{n}"), sha256: "a".repeat(64), size: 1 };
        let inputs = (0..10).map(|n| format!("f{n}")).collect();
        let over_files = CmdSpec { input_files: (0..10).map(file).collect(), inputs, ..spec(10) };
        let over_files = super::job(over_files).unwrap();
        assert_eq!(over_files.shape().units, PROBE, "a job over files is probed");
    }

    #[test]
    fn units_a_joblog_shows_done_do_not_run_and_the_others_keep_their_numbers() {
        let skip = vec![(0, 3), (7, 8)];
        let mut job = job(CmdSpec { skip, keep_order: true, ..spec(10) }).unwrap();
        assert_eq!(job.shape().units, 6, "ten units, three and one skipped");
        let ChunkTask::Cmd(chunk) = job.chunk(0, 6, 0).task else { panic!("a command chunk") };
        let run: Vec<(u64, &str)> = chunk.units.iter().map(|u| (u.unit, &*u.input)).collect();
        let want = [3, 4, 5, 6, 8, 9].map(|u: u64| (u, format!("in{u}")));
        assert_eq!(run, want.iter().map(|(u, i)| (*u, i.as_str())).collect::<Vec<_>>());
        // In input order, unit 8 (place 4) waits for units 3 to 6 (places 0 to 3) only.
        job.reduce(4, 4, output(8..9, UnitEnding::Exited(0), "eight"));
        for (place, unit) in [(0, 3), (1, 4), (2, 5), (3, 6)] {
            job.reduce(place as u32, place, output(unit..unit + 1, UnitEnding::Exited(0), "x"));
        }
        let now = std::time::Instant::now();
        let (taken, _) = job.outbox().unwrap().take(4, now);
        let want = Delivery { spool: "eight".into(), first_unit: 4, units: 1, bytes: 0 };
        assert_eq!(taken, crate::exec::outbox::Take::Ready(want));
    }

    #[test]
    fn retries_make_single_unit_chunks_that_fail_until_the_last_attempt() {
        let mut job = job(CmdSpec { retries: 2, ..spec(300) }).unwrap();
        let tell = |attempt| {
            let ChunkTask::Cmd(c) = job.chunk(0, 1, attempt).task else { panic!() };
            c.retry_failed
        };
        assert_eq!((tell(0), tell(1), tell(2)), (true, true, false));
        for unit in 0..PROBE {
            job.reduce(unit as u32, unit, output(unit..unit + 1, UnitEnding::Exited(0), "s"));
        }
        assert!(job.next_phase());
        assert_eq!((job.shape().max_chunk_units, job.shape().retries), (1, 2));
    }

    #[test]
    fn halts_count_failed_units_and_the_result_says_so() {
        let now = |text: &str| CmdSpec { halt: text.parse().unwrap(), ..spec(10) };
        let mut job = job(now("now,fail=2")).unwrap();
        assert_eq!(job.reduce(0, 0, output(0..1, UnitEnding::Exited(3), "a")), Fold::Added);
        assert_eq!(job.reduce(1, 1, output(1..2, UnitEnding::Exited(0), "b")), Fold::Added);
        assert_eq!(job.reduce(2, 2, output(2..3, UnitEnding::TimedOut, "c")), Fold::Answered);
        assert_eq!(job.reduce(3, 3, output(3..4, UnitEnding::Exited(1), "d")), Fold::Added);
        assert!(!job.next_phase(), "a halted job runs no more phases");
        let run = Run { seconds: 1.0, workers: vec![] };
        let JobResult::Cmd(result) = job.result(run) else { panic!("not a cmd result") };
        assert_eq!((result.units, result.succeeded, result.failed, result.skipped), (10, 1, 3, 6));
        assert_eq!(result.halted.as_deref(), Some("now,fail=2"));
        assert_eq!(result.halt_status, Some(2), "the failed units when it halted, not after");

        let mut job = super::job(now("soon,fail=1")).unwrap();
        let failed = output(0..1, UnitEnding::Signalled(9), "a");
        assert_eq!(job.reduce(0, 0, failed), Fold::Closing);
        let run = Run { seconds: 1.0, workers: vec![] };
        let JobResult::Cmd(result) = job.result(run) else { panic!("not a cmd result") };
        assert_eq!((result.failed, result.skipped), (1, 9));
        assert_eq!(result.halt_status, Some(128 + 9), "a signal's status as bash gives it");

        let mut job = super::job(spec(10)).unwrap();
        for unit in 0..3 {
            let out = output(unit..unit + 1, UnitEnding::Exited(1), "x");
            assert_eq!(job.reduce(unit as u32, unit, out), Fold::Added, "never halts");
        }
        let run = Run { seconds: 1.0, workers: vec![] };
        let JobResult::Cmd(result) = job.result(run) else { panic!("not a cmd result") };
        assert_eq!((result.failed, result.halted, result.halt_status), (3, None, None));
    }

    #[test]
    fn a_halt_is_judged_at_each_unit_of_a_chunk_and_chunks_are_single_units_under_it() {
        let one = CmdSpec { halt: "soon,fail=1".parse().unwrap(), ..spec(1000) };
        let mut job = super::job(one).unwrap();
        let mut units = reports(0..3, UnitEnding::Exited(0));
        units[1].ending = UnitEnding::Exited(4);
        units[2].ending = UnitEnding::Exited(5);
        let out = ChunkOutput::Cmd { units, spool: Some("s".into()) };
        assert_eq!(job.reduce(0, 0, out), Fold::Closing);
        let run = Run { seconds: 1.0, workers: vec![] };
        let JobResult::Cmd(result) = job.result(run) else { panic!("not a cmd result") };
        assert_eq!((result.failed, result.halt_status), (2, Some(4)), "the first failure's");

        let half = CmdSpec { halt: "soon,fail=50%".parse().unwrap(), ..spec(1000) };
        let mut job = super::job(half).unwrap();
        for unit in 0..PROBE {
            job.reduce(unit as u32, unit, output(unit..unit + 1, UnitEnding::Exited(0), "s"));
        }
        assert!(job.next_phase());
        assert_eq!(job.shape().max_chunk_units, 1, "a halt starts no unit more");
    }

    #[test]
    fn counted_chunks_go_to_the_outbox() {
        let mut job = job(CmdSpec { keep_order: true, ..spec(10) }).unwrap();
        assert!(job.shape().window.is_some());
        job.reduce(1, 1, output(1..2, UnitEnding::Exited(0), "one"));
        let now = std::time::Instant::now();
        let outbox = job.outbox().unwrap();
        assert_eq!(outbox.take(0, now).0, crate::exec::outbox::Take::NotYet);
        job.reduce(0, 0, output(0..1, UnitEnding::Exited(0), "zero"));
        let (taken, _) = job.outbox().unwrap().take(0, now);
        let want = Delivery { spool: "zero".into(), first_unit: 0, units: 1, bytes: 0 };
        assert_eq!(taken, crate::exec::outbox::Take::Ready(want));
    }

    #[test]
    fn a_chunk_serves_its_own_stream() {
        let job = job(spec(10)).unwrap();
        let chunk = job.chunk(2, 4, 0);
        assert!(matches!(chunk.talk, Talk::Own(_)), "the command leads its stream");
        let ChunkTask::Cmd(task) = chunk.task else { panic!("a command's chunk") };
        let none = Placing::default;
        assert!(matches!(work(task.clone(), none(), None, 2, 4), Work::Serve(_)));
        let other = work(task.clone(), none(), None, 2, 5);
        assert!(matches!(other, Work::Serve(_)), "answered on its stream");
        // Two units, wherever they start; any other range cannot run.
        assert!(runnable(task.clone(), none(), None, 2, 4).is_ok());
        assert!(runnable(task.clone(), none(), None, 7, 9).is_ok());
        let e = runnable(task.clone(), none(), None, 2, 5).unwrap_err();
        assert_eq!(e, KernelError::OutOfRange { start: 2, end: 5, units: 2 }.to_string());
        assert!(runnable(task.clone(), none(), None, 4, 2).is_err(), "backwards");
        // Placed files come as a list per unit, or none at all.
        let one = Placing { placed: vec![vec![]], bring_back: true, stdin: None };
        let e = runnable(task.clone(), one, None, 2, 4).unwrap_err();
        assert_eq!(e, "1 lists of placed files for 2 units");
        let two = Placing { placed: vec![vec![], vec![]], bring_back: true, stdin: None };
        assert!(runnable(task.clone(), two, None, 2, 4).is_ok());
        // Signals are checked where they are sent.
        let seq = |steps| Some(TermSeq { steps });
        assert!(runnable(task.clone(), none(), seq(vec![(2, 10), (9, 0)]), 2, 4).is_ok());
        let e = runnable(task, none(), seq(vec![(0, 10)]), 2, 4).unwrap_err();
        assert_eq!(e, "--termseq: 0 is not a signal");
    }

    #[test]
    fn a_job_with_placed_files_sends_each_unit_its_own_in_smaller_chunks() {
        let file = |name: &str| proto::command::placed::Placed {
            file: FileRef { name: name.into(), sha256: "c".repeat(64), size: 1 },
            mode: 0o600,
            mtime_ns: 3,
        };
        let placed: Vec<_> = (0..300).map(|n| vec![file(&format!("f{n}"))]).collect();
        let mut job = job(CmdSpec { placed, bring_back: true, ..spec(300) }).unwrap();
        let ChunkTask::CmdPlaced(chunk, placing) = job.chunk(2, 4, 0).task else {
            panic!("not a placed chunk")
        };
        assert_eq!(chunk.units.len(), 2);
        assert_eq!(placing.placed, [vec![file("f2")], vec![file("f3")]]);
        assert!(placing.bring_back);
        job.reduce(0, 0, output(0..1, UnitEnding::Exited(0), "a"));
        for unit in 1..PROBE {
            job.reduce(unit as u32, unit, output(unit..unit + 1, UnitEnding::Exited(0), "b"));
        }
        assert!(job.next_phase());
        assert_eq!(job.shape().max_chunk_units, MAX_PLACED_CHUNK_UNITS);
        // Only bringing back: a chunk of that form with no lists.
        let job = super::job(CmdSpec { bring_back: true, ..spec(3) }).unwrap();
        let ChunkTask::CmdPlaced(_, placing) = job.chunk(0, 1, 0).task else { panic!() };
        assert_eq!(*placing, Placing { placed: vec![], bring_back: true, stdin: None });
    }

    #[test]
    fn a_job_with_a_termseq_sends_it_with_every_chunk_and_only_then_that_form() {
        let seq = TermSeq { steps: vec![(2, 200), (15, 100)] };
        let with = job(CmdSpec { term_seq: Some(seq.clone()), ..spec(3) }).unwrap();
        let task = with.chunk(1, 2, 0).task;
        let ChunkTask::CmdTermSeq(chunk, placing, sent) = &task else { panic!("{task:?}") };
        assert_eq!((chunk.units.len(), &**placing, sent), (1, &Placing::default(), &seq));
        assert_eq!(task.term_seq(), Some(&seq));
        let placed = CmdSpec { bring_back: true, term_seq: Some(seq.clone()), ..spec(3) };
        let ChunkTask::CmdTermSeq(_, placing, _) = job(placed).unwrap().chunk(0, 1, 0).task else {
            panic!()
        };
        assert!(placing.bring_back, "placing goes with it");
        assert_eq!(job(spec(3)).unwrap().chunk(0, 1, 0).task.term_seq(), None);
    }

    #[test]
    fn outputs_are_checked_against_their_chunk() {
        let job = job(spec(10)).unwrap();
        let ChunkTask::Cmd(task) = job.chunk(2, 4, 0).task else { panic!() };
        let good = ChunkOutput::Cmd { units: reports(2..4, UnitEnding::Exited(0)), spool: None };
        assert!(check(&task, 2, &good));
        assert!(!check(&task, 3, &good), "a unit missing");
        let shifted = ChunkOutput::Cmd { units: reports(3..5, UnitEnding::Exited(0)), spool: None };
        assert!(!check(&task, 2, &shifted), "other units");
        let mut bad = reports(2..4, UnitEnding::Exited(0));
        bad[1].stdout = u64::MAX;
        assert!(!check(&task, 2, &ChunkOutput::Cmd { units: bad, spool: None }));
        assert!(!check(&task, 2, &ChunkOutput::Pi { inside: 0 }));
        assert!(job_rejects_bad_specs());
    }

    fn job_rejects_bad_specs() -> bool {
        let e = job(CmdSpec { inputs: vec![], ..spec(1) }).err().unwrap();
        e.0.contains("no input")
    }
}
