//! `marmotctl run cmd`: a user's command once per input on the cluster, in the manner of GNU
//! parallel. Checks everything it can before the job exists (the command, the inputs, that
//! every file is readable), uploads the files the coordinator's store lacks, submits, then
//! takes the units' output delivery by delivery and writes it out: stdout and stderr whole
//! per unit, results unpacked under `--results DIR/<n>/`, a joblog line per unit.
//!
//! Memory stays at a few pieces of output (4 MiB each at most) whatever the units print:
//! pieces are written out as they come, and a unit's results are unpacked as they arrive.

use crate::cli::CmdArgs;
use crate::follow::Interrupt;
use crate::known_hashes::KnownHashes;
use crate::parallel::progress::Tracker;
use crate::saving::{Open, Saving};
use anyhow::{bail, Context, Result};
use client::{Client, ClientError, Submit};
use proto::api::JobState;
use proto::command::inputs::Inputs;
use proto::command::joblog;
use proto::command::placed::Placed;
use proto::command::spool::Event;
use proto::command::{CmdSpec, FileRef, Template, UnitReport};
use proto::job::JobSpec;
use proto::result::JobResult;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::mpsc;

/// How long one request for output may wait on the coordinator before asking again.
/// The word that starts inputs, as in GNU parallel.
const INPUTS_MARK: &str = ":::";

pub async fn run(client: &Client, args: CmdArgs, how: Submit, json: bool) -> Result<ExitCode> {
    // Files are uploaded as they are hashed; the job is submitted once all are in.
    let (found, to_upload) = mpsc::channel(UPLOAD_QUEUE);
    let preparing = tokio::task::spawn_blocking(move || prepare(args, &found));
    let (prepared, uploaded) = tokio::join!(preparing, upload(client, to_upload));
    let (spec, CmdOptions { results, joblog }) = prepared??;
    uploaded?;
    if spec.units_to_run() == 0 {
        eprintln!("marmotctl: the joblog shows every unit done: nothing to run");
        return Ok(ExitCode::SUCCESS);
    }
    let out = Writer::new(&spec, Shown::default(), results.map(ResultsTo::PerUnit), joblog)?;
    run_spec(client, spec, out, how, json).await
}

/// Submits a command job and writes its units' output out with `out` as it comes; its exit
/// status is GNU parallel's (the failed units, up to 101).
pub async fn run_spec(
    client: &Client,
    spec: CmdSpec,
    mut out: Writer,
    how: Submit,
    json: bool,
) -> Result<ExitCode> {
    let mut interrupt = Interrupt::listen()?;
    let spec = send_large_inputs(client, spec).await?;
    let job = super::submit::submit(client, &JobSpec::Cmd(Box::new(spec)), how).await?;
    let id = job.id;
    let taken = tokio::select! {
        taken = take_all(client, id, &mut out) => taken,
        signal = interrupt.recv() => {
            let _ = client.cancel(id).await;
            eprintln!("marmotctl: cancelled job {id} ({})", signal.name);
            return Ok(ExitCode::from(signal.status));
        }
    };
    if let Err(e) = taken {
        let _ = client.cancel(id).await;
        return Err(e);
    }
    out.finish()?;
    let view = crate::follow::ended(client, id).await?;
    let (JobState::Done, Some(JobResult::Cmd(result))) = (view.state, view.result) else {
        bail!("job {id} failed: {}", view.error.as_deref().unwrap_or("no reason given"));
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else if !out.shown.quiet
        && (std::io::stderr().is_terminal()
            || result.failed > 0
            || result.retried > 0
            || result.halted.is_some())
    {
        // Stdout is the units'; the summary goes beside it (said when something went wrong).
        eprint!("{result}");
    }
    // Units a perl expression skipped count as failed (a halt's status stands as it is).
    let skipped = out.shown.skipped.len() as u64;
    let status = match result.halt_status {
        Some(status) => status,
        None => proto::command::halt::exit_status(result.failed + skipped),
    };
    Ok(ExitCode::from(status))
}

/// Inputs larger than this together go as a file, in pieces, rather than inside the request.
const INLINE_INPUTS: usize = 1 << 20;

/// A spec whose inputs are too large for one request, with its inputs uploaded as a file
/// (one per line) instead; others as they are.
async fn send_large_inputs(client: &Client, mut spec: CmdSpec) -> Result<CmdSpec> {
    let bytes: usize = spec.inputs.iter().map(|i| i.len() + 1).sum();
    if bytes <= INLINE_INPUTS {
        return Ok(spec);
    }
    // The file holds one input per line.
    if let Some(at) = spec.inputs.iter().position(|i| i.contains('\n')) {
        bail!(
            "input {} holds a newline, and the inputs are more than {} MiB together: \
             split the job, or keep newlines out of the inputs",
            at + 1,
            INLINE_INPUTS >> 20
        );
    }
    let mut file = tempfile::NamedTempFile::new().context("cannot write the inputs down")?;
    let mut hasher = Sha256::new();
    for input in &spec.inputs {
        for piece in [input.as_bytes(), b"\n"] {
            hasher.update(piece);
            file.write_all(piece).context("cannot write the inputs down")?;
        }
    }
    file.flush()?;
    let sha256 = hex::encode(hasher.finalize());
    let size = bytes as u64;
    if !client.has_file(&sha256).await? {
        client.upload_file(file.path(), &sha256, size).await?;
    }
    spec.inputs_file = Some(FileRef { name: "inputs".into(), sha256, size });
    spec.inputs = vec![];
    Ok(spec)
}

/// How many hashed files may wait for their upload.
pub const UPLOAD_QUEUE: usize = 64;

/// Where results and the joblog go, checked before the job starts.
struct CmdOptions {
    results: Option<PathBuf>,
    joblog: Option<File>,
}

/// A file to upload and what it holds.
pub type Found = (PathBuf, FileRef);

/// Checks the request and reads what it names (inputs, files) before the job is submitted;
/// each file is handed to `found` for its upload once it is hashed.
fn prepare(args: CmdArgs, found: &mpsc::Sender<Found>) -> Result<(CmdSpec, CmdOptions)> {
    let mut command = args.command;
    let mut listed: Vec<String> = vec![];
    match args.inputs.split_first() {
        Some((mark, rest)) if mark == INPUTS_MARK => listed.extend(rest.iter().cloned()),
        Some((word, _)) => bail!(
            "`{word}` before the command: inputs follow `:::` (`marmotctl run cmd ::: a b -- \
             echo {{}}`), options start with `-`"
        ),
        None => {}
    }
    if let Some(at) = command.iter().position(|w| w == INPUTS_MARK) {
        listed.extend(command.split_off(at).into_iter().skip(1));
    }
    let template = Template::new(command)?;
    let sources = [!listed.is_empty() || !args.inputs.is_empty(), args.inputs_from.is_some()];
    if !args.input_files.is_empty() && sources.iter().any(|&s| s) {
        bail!("--input-files gives the inputs itself: drop `:::` and --inputs, or run two jobs");
    }
    let mut inputs = Inputs::default();
    for input in listed {
        inputs.push(input)?;
    }
    if let Some(path) = &args.inputs_from {
        if path.as_os_str() == "-" {
            inputs.read_lines(std::io::stdin().lock(), "stdin")?;
        } else {
            let file = File::open(path)
                .with_context(|| format!("cannot read the inputs: {}", path.display()))?;
            inputs.read_lines(std::io::BufReader::new(file), &path.display().to_string())?;
        }
    }
    let mut known = KnownHashes::load();
    let mut describe_and_upload = |path: &Path| {
        let file = describe(path, &mut known)?;
        // Nobody takes it only when uploading has failed: that is said after.
        let _ = found.blocking_send((path.to_path_buf(), file.clone()));
        anyhow::Ok(file)
    };
    let mut input_files = vec![];
    for path in expand_globs(&args.input_files)? {
        let file = describe_and_upload(&path)?;
        inputs.push(file.name.clone())?;
        input_files.push(file);
    }
    let inputs = inputs.finish()?;
    let files =
        args.files.iter().map(|path| describe_and_upload(path)).collect::<Result<Vec<_>>>()?;
    known.save();
    if let Some(dir) = &args.results {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the results dir {}", dir.display()))?;
    }
    let resume = match (args.resume, args.resume_failed) {
        (true, _) => Some(joblog::Resume::Logged),
        (_, true) => Some(joblog::Resume::Succeeded),
        _ => None,
    };
    let (joblog, skip) = match &args.joblog {
        Some(path) => open_joblog(path, resume, inputs.len() as u64)?,
        None => (None, vec![]),
    };
    let spec = CmdSpec {
        command: template,
        inputs,
        inputs_file: None,
        input_files,
        files,
        env: args.env,
        timeout_ms: args.timeout.map(|t| t.as_millis().max(1) as u64),
        timeout_percent: None,
        term_seq: None,
        delay_ms: None,
        retries: args.retries,
        halt: args.halt,
        slots_per_unit: args.slots_per_unit,
        max_slots: None,
        keep_order: args.keep_order,
        results: args.results.is_some(),
        skip,
        placed: vec![],
        bring_back: false,
        stdin: None,
    };
    if spec.units_to_run() == 0 {
        return Ok((spec, CmdOptions { results: args.results, joblog }));
    }
    spec.check().map_err(anyhow::Error::msg)?;
    Ok((spec, CmdOptions { results: args.results, joblog }))
}

/// Units not to run, as ranges of unit numbers from 0 ([`CmdSpec::skip`]).
type Skipped = Vec<(u64, u64)>;

/// Opens the joblog at `path` for this run's lines: a new one, or with `resume`, the earlier
/// run's, appended to. Returns it, and the units to skip (those the earlier run's shows done,
/// as ranges of unit numbers from 0) of a job of `units` units.
pub fn open_joblog(
    path: &Path,
    resume: Option<joblog::Resume>,
    units: u64,
) -> Result<(Option<File>, Skipped)> {
    let shown = path.display();
    let Some(resume) = resume else {
        let mut file =
            File::create(path).with_context(|| format!("cannot create the joblog {shown}"))?;
        writeln!(file, "{}", joblog::HEADER)?;
        return Ok((Some(file), vec![]));
    };
    let earlier = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        read => read.with_context(|| format!("cannot read the joblog {shown}"))?,
    };
    let done = joblog::done(&earlier[..], resume).map_err(|e| {
        anyhow::anyhow!(
            "the joblog {shown} cannot be resumed from: {e}. Give the --joblog an earlier \
             run of this job wrote"
        )
    })?;
    if let Some(&beyond) = done.range(units + 1..).next() {
        bail!(
            "the joblog {shown} has unit {beyond}, but this job has {units}: it is another \
             job's joblog (--resume needs the same command and inputs)"
        );
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open the joblog {shown}"))?;
    // A last line cut short (the earlier run was killed while writing it) goes.
    let whole = earlier.iter().rposition(|&b| b == b'\n').map_or(0, |at| at + 1);
    file.set_len(whole as u64)?;
    file.seek(std::io::SeekFrom::End(0))?;
    if whole == 0 {
        writeln!(file, "{}", joblog::HEADER)?;
    }
    let skip = proto::command::spec::ranges(done.into_iter().map(|seq| seq - 1));
    Ok((Some(file), skip))
}

/// The files `--input-files` names: each pattern's matches in order; a pattern that matches
/// nothing is a mistake.
fn expand_globs(patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut paths = vec![];
    for pattern in patterns {
        let matches = glob::glob(pattern)
            .with_context(|| format!("--input-files {pattern} is not a pattern"))?;
        let before = paths.len();
        for found in matches {
            let path = found.with_context(|| format!("cannot read what {pattern} matches"))?;
            if path.is_file() {
                paths.push(path);
            }
        }
        if paths.len() == before {
            bail!("--input-files {pattern} matches no file");
        }
    }
    Ok(paths)
}

/// A file by content: its name, SHA-256 and size (read whole unless `known` knows it).
pub fn describe(path: &Path, known: &mut KnownHashes) -> Result<FileRef> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no file name marmot can use", path.display()))?
        .to_string();
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !file.metadata()?.is_file() {
        bail!("{} is not a file", path.display());
    }
    let (sha256, size) =
        known.sha256(&mut file).with_context(|| format!("cannot read {}", path.display()))?;
    let file = FileRef { name, sha256, size };
    file.check().map_err(anyhow::Error::msg)?;
    Ok(file)
}

/// Uploads the files the coordinator's store lacks, each content once, as they are found.
/// After a failure the rest are let go by, so that preparing ends and says first what was
/// wrong with the request, if anything.
pub async fn upload(client: &Client, mut found: mpsc::Receiver<Found>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let mut failed = None;
    while let Some((path, file)) = found.recv().await {
        if failed.is_some() || !seen.insert(file.sha256.clone()) {
            continue;
        }
        let stored = match client.has_file(&file.sha256).await {
            Ok(true) => continue,
            Ok(false) => client
                .upload_file(&path, &file.sha256, file.size)
                .await
                .with_context(|| format!("cannot upload {}", path.display())),
            Err(e) => Err(e.into()),
        };
        failed = stored.err();
    }
    failed.map_or(Ok(()), Err)
}

/// Takes every delivery of job `id`, in turn, piece by piece.
async fn take_all(client: &Client, id: u64, out: &mut Writer) -> Result<()> {
    let lost = |e: &ClientError, wait, said| crate::follow::lost(None, id, e, wait, said);
    Ok(client::follow::take_output(client, id, |event| out.write(event), lost).await?)
}

/// How units' output is shown besides their bytes: GNU parallel's `--tag`, `-v`, and
/// whether marmot's own lines about failed units are said.
#[derive(Default)]
pub struct Shown {
    /// The joblog's command is the input itself (a line of shell code), not the template
    /// filled in.
    pub input_is_command: bool,
    /// Per unit: its tag, put before each line of its output with a tab.
    pub tags: Option<Vec<String>>,
    /// Print each unit's command before its output: on stdout (`Some(true)`) or stderr.
    pub verbose: Option<bool>,
    /// Say nothing about failed units (GNU parallel does not); the exit status does.
    pub quiet: bool,
    /// Units not run because a perl expression called `skip()` (numbers from 0): each
    /// counts as failed and has its joblog line, Exitval -2, as in GNU parallel.
    pub skipped: Vec<u64>,
    /// Output kept in files instead of printed (`--results`, `--files`).
    pub saving: Option<Saving>,
    /// Progress shown on stderr (`--bar`, `--eta`, `--progress`).
    pub progress: Option<crate::parallel::Progress>,
}

/// Where units' results are unpacked.
pub enum ResultsTo {
    /// `--results DIR`: each unit's under `DIR/<n>/`.
    PerUnit(PathBuf),
    /// `marmotctl parallel`: every unit's into this dir (where it was run), at the paths they
    /// have in the unit's work dir; and the files each unit was given from there (by unit),
    /// removed there when the unit removed them ([`proto::command::placed::gone_mark`]).
    InPlace(PathBuf, std::sync::Arc<Vec<Vec<Placed>>>),
}

/// Where the units' output goes.
pub struct Writer {
    template: Template,
    inputs: Vec<String>,
    shown: Shown,
    /// Whether the stream written last (stdout, stderr) is at the start of a line.
    line_start: [bool; 2],
    results: Option<ResultsTo>,
    joblog: Option<BufWriter<File>>,
    /// The unit being written, and its results while they are unpacked.
    unit: Option<(UnitReport, Option<Unpacking>)>,
    /// The last unit that failed, and the line that says so, held until the next record
    /// shows whether that was a try the unit made again (its records come one after another).
    failed: Option<(u64, String)>,
    /// The current unit's files, when output is kept in files.
    open: Option<Open>,
    tracker: Option<Tracker>,
    stdout: std::io::Stdout,
    stderr: std::io::Stderr,
}

impl Writer {
    pub fn new(
        spec: &CmdSpec,
        shown: Shown,
        results: Option<ResultsTo>,
        joblog: Option<File>,
    ) -> Result<Self> {
        let mut joblog = joblog.map(BufWriter::new);
        if let Some(log) = &mut joblog {
            for &unit in &shown.skipped {
                let line = spec.inputs.get(unit as usize).map_or("", String::as_str);
                let entry = joblog::Entry {
                    seq: unit + 1,
                    worker: ":",
                    started: std::time::SystemTime::now(),
                    runtime: Duration::ZERO,
                    sent: 0,
                    received: 0,
                    exit: -2,
                    signal: 0,
                    command: joblog::Command::Line(line),
                };
                writeln!(log, "{entry}")?;
            }
            log.flush()?;
        }
        let now = std::time::Instant::now();
        let tracker = shown.progress.map(|show| Tracker::new(show, spec.units_to_run(), now));
        if let Some(tracker) = &tracker {
            std::io::stderr().lock().write_all(tracker.header(now).as_bytes())?;
        }
        Ok(Writer {
            template: spec.command.clone(),
            inputs: spec.inputs.clone(),
            shown,
            line_start: [true; 2],
            results,
            joblog,
            unit: None,
            failed: None,
            open: None,
            tracker,
            stdout: std::io::stdout(),
            stderr: std::io::stderr(),
        })
    }

    fn write(&mut self, event: Event<'_>) -> std::io::Result<()> {
        match event {
            Event::Unit(report) => {
                self.say_failed(Some(report.unit))?;
                let unpacking = match (&self.results, report.results) {
                    (Some(ResultsTo::PerUnit(dir)), 1..) => {
                        let into = dir.join((report.unit + 1).to_string());
                        std::fs::create_dir_all(&into)?;
                        Some(Unpacking::into(into, vec![]))
                    }
                    (Some(ResultsTo::InPlace(dir, given)), 1..) => {
                        let given = given.get(report.unit as usize).cloned().unwrap_or_default();
                        Some(Unpacking::into(dir.clone(), given))
                    }
                    _ => None,
                };
                self.line_start = [true; 2];
                if let Some(saving) = &self.shown.saving {
                    self.open = Some(saving.open(report.unit)?);
                }
                if let Some(to_stdout) = self.shown.verbose {
                    let command = self.command_of(report.unit);
                    match to_stdout {
                        true => writeln!(self.stdout.lock(), "{command}")?,
                        false => writeln!(self.stderr.lock(), "{command}")?,
                    }
                }
                self.unit = Some((report, unpacking));
            }
            Event::Stdout(bytes) => self.output(0, bytes)?,
            Event::Stderr(bytes) => self.output(1, bytes)?,
            Event::Results(bytes) => {
                if let Some((_, Some(unpacking))) = &mut self.unit {
                    unpacking.feed(bytes);
                }
            }
            Event::UnitEnd => {
                if let Some((report, unpacking)) = self.unit.take() {
                    self.stdout.lock().flush()?;
                    self.unit_ended(&report, unpacking)?;
                }
            }
        }
        Ok(())
    }

    /// Writes a piece of the current unit's stdout (0) or stderr (1), its tag before each
    /// line.
    fn output(&mut self, stream: usize, bytes: &[u8]) -> std::io::Result<()> {
        let tag = match (&self.shown.tags, &self.unit) {
            (Some(tags), Some((report, _))) => tags.get(report.unit as usize).map(String::as_str),
            _ => None,
        };
        let mut sink: Box<dyn Write> = match (stream, &mut self.open) {
            (0, Some(open)) => Box::new(&mut open.stdout),
            (_, Some(Open { stderr: Some(file), .. })) => Box::new(file),
            (0, _) => Box::new(self.stdout.lock()),
            _ => Box::new(self.stderr.lock()),
        };
        let Some(tag) = tag else { return sink.write_all(bytes) };
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if self.line_start[stream] {
                sink.write_all(tag.as_bytes())?;
                sink.write_all(b"\t")?;
            }
            sink.write_all(line)?;
            self.line_start[stream] = line.ends_with(b"\n");
        }
        Ok(())
    }

    /// The command unit `unit` (from 0) runs, as `-v` shows it.
    fn command_of(&self, unit: u64) -> String {
        let input = self.inputs.get(unit as usize).map_or("", String::as_str);
        match self.shown.input_is_command {
            true => input.to_string(),
            false => self.template.expand(input, unit + 1).join(" "),
        }
    }

    /// Finishes unpacking a unit's results, logs it, and says if it failed.
    fn unit_ended(
        &mut self,
        report: &UnitReport,
        unpacking: Option<Unpacking>,
    ) -> std::io::Result<()> {
        let number = report.unit + 1;
        let input = self.inputs.get(report.unit as usize).map_or("", String::as_str);
        if let (Some(open), Some(saving)) = (self.open.take(), &mut self.shown.saving) {
            if let Some(name) = saving.close(open, report, input)? {
                writeln!(self.stdout.lock(), "{}", name.display())?;
            }
        }
        if let Some(tracker) = &mut self.tracker {
            let runtime = Duration::from_millis(report.duration_ms);
            let now = std::time::Instant::now();
            let line = tracker.unit_ended(report.unit, &report.worker, runtime, input, now);
            self.stderr.lock().write_all(line.as_bytes())?;
        }
        if let Some(unpacking) = unpacking {
            unpacking.finish().map_err(|e| {
                std::io::Error::other(format!("cannot unpack unit {number}'s results: {e}"))
            })?;
        }
        if let Some(log) = &mut self.joblog {
            let (exit, signal) = report.ending.exit_and_signal();
            let argv = self.template.expand(input, number);
            let command = match self.shown.input_is_command {
                true => joblog::Command::Line(input),
                false => joblog::Command::Argv(&argv),
            };
            let entry = joblog::Entry {
                seq: number,
                worker: &report.worker,
                started: UNIX_EPOCH + Duration::from_millis(report.started_ms),
                runtime: Duration::from_millis(report.duration_ms),
                sent: 0,
                // As GNU parallel's: the bytes of stdout.
                received: report.stdout,
                exit,
                signal,
                command,
            };
            writeln!(log, "{entry}")?;
            // Line by line: a run killed now is resumed after its last unit logged.
            log.flush()?;
        }
        if !report.ending.success() && !self.shown.quiet {
            let shown = proto::names::shown(input);
            let line = format!(
                "marmotctl: unit {number} ({shown}) {} on {}",
                report.ending.describe(),
                report.worker
            );
            self.failed = Some((report.unit, line));
        }
        Ok(())
    }

    /// Says the held failure, if any, knowing the next record's unit (`None`: no more).
    fn say_failed(&mut self, next: Option<u64>) -> std::io::Result<()> {
        let Some((unit, line)) = self.failed.take() else { return Ok(()) };
        let again = if next == Some(unit) { "; it runs again" } else { "" };
        writeln!(self.stderr.lock(), "{line}{again}")
    }

    fn finish(&mut self) -> Result<()> {
        if self.tracker.is_some() {
            self.stderr.lock().write_all(b"\n")?;
        }
        self.say_failed(None)?;
        self.stdout.lock().flush()?;
        if let Some(log) = &mut self.joblog {
            log.flush().context("cannot write the joblog")?;
        }
        Ok(())
    }
}

/// A unit's results being unpacked as they arrive: a thread reads the tar from a bounded
/// channel of pieces, so neither a copy on disk nor more than [`UNPACK_PIECES`] pieces in
/// memory.
struct Unpacking {
    /// `None` once unpacking has stopped early (it says why when finished).
    pieces: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

/// How many pieces of results may wait for the unpacking thread.
const UNPACK_PIECES: usize = 2;

impl Unpacking {
    /// Unpacks into `dir` a unit that was `given` these files from there.
    fn into(dir: PathBuf, given: Vec<Placed>) -> Self {
        let (pieces, taken) = std::sync::mpsc::sync_channel(UNPACK_PIECES);
        let reader = PieceReader { pieces: taken, piece: vec![], at: 0 };
        let thread = std::thread::spawn(move || unpack(reader, &dir, &given));
        Unpacking { pieces: Some(pieces), thread }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let stopped = self.pieces.as_ref().is_some_and(|p| p.send(bytes.to_vec()).is_err());
        if stopped {
            self.pieces = None;
        }
    }

    /// Waits for the unpacking to end: every piece fed was read, or why not.
    fn finish(mut self) -> std::io::Result<()> {
        self.pieces = None;
        self.thread.join().unwrap_or_else(|_| Err(std::io::Error::other("unpacking panicked")))
    }
}

/// Unpacks the tar `reader` reads into `dir`; a mark that a file `given` to the unit is gone
/// removes that file from `dir` if it is still as it was sent (else says so and keeps it), as
/// a local run would have removed it. A mark for any other file is dropped: a unit cannot
/// make one, so only a worker that lies sends it.
fn unpack(reader: impl std::io::Read, dir: &Path, given: &[Placed]) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    let mut dirs_gone = vec![];
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        if let Some(gone) = proto::command::placed::marked_gone(&path) {
            match given.iter().find(|p| p.file.name == gone) {
                Some(sent) if sent.is_dir() => dirs_gone.push(gone),
                Some(sent) => remove_as_sent(&dir.join(&gone), sent)?,
                None => {}
            }
            continue;
        }
        entry.unpack_in(dir)?;
    }
    // Once what was in them is gone, deepest first; one still holding something stays.
    dirs_gone.sort_by_key(|path| std::cmp::Reverse(path.matches('/').count()));
    for gone in dirs_gone {
        let path = dir.join(&gone);
        if std::fs::remove_dir(&path).is_err() && path.is_dir() {
            eprintln!(
                "marmotctl: {} holds files its unit was not given: kept, though the unit \
                 removed its copy",
                path.display()
            );
        }
    }
    Ok(())
}

/// Removes `path` if it is still the file `sent` was made from (its size and time); says so
/// and keeps it if it changed since.
fn remove_as_sent(path: &Path, sent: &Placed) -> std::io::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    let as_sent = crate::parallel::files::mtime_ns(&meta) == sent.mtime_ns;
    if meta.is_file() && meta.len() == sent.file.size && as_sent {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    eprintln!(
        "marmotctl: {} changed since its unit took it: kept, though the unit removed its copy",
        path.display()
    );
    Ok(())
}

/// The bytes of a channel of pieces, as a reader; the end when the channel closes.
struct PieceReader {
    pieces: std::sync::mpsc::Receiver<Vec<u8>>,
    piece: Vec<u8>,
    at: usize,
}

impl std::io::Read for PieceReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.piece.len() {
            match self.pieces.recv() {
                Ok(piece) => (self.piece, self.at) = (piece, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(vec![]);
        for (name, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            tar.append_data(&mut header, name, *bytes).unwrap();
        }
        tar.into_inner().unwrap()
    }

    #[test]
    fn results_are_unpacked_from_pieces_of_any_size() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![9u8; 100_000];
        let tar = tar_of(&[("a", b"alpha"), ("sub/b", &big)]);
        let mut unpacking = Unpacking::into(dir.path().to_path_buf(), vec![]);
        for piece in tar.chunks(777) {
            unpacking.feed(piece);
        }
        unpacking.finish().unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"alpha");
        assert_eq!(std::fs::read(dir.path().join("sub/b")).unwrap(), big);
    }

    #[test]
    fn a_file_its_unit_removed_is_removed_here_if_still_as_sent() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let sent = |name: &str| {
            let meta = std::fs::metadata(dir.path().join(name)).unwrap();
            let file = FileRef { name: name.into(), sha256: "a".repeat(64), size: meta.len() };
            let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
            Placed { file, mode: 0o644, mtime_ns }
        };
        std::fs::create_dir(dir.path().join("d")).unwrap();
        for name in ["gone", "d/gone", "changed", "kept", "other"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("e/f")).unwrap();
        std::fs::create_dir_all(dir.path().join("full")).unwrap();
        std::fs::write(dir.path().join("full/not-given"), "x").unwrap();
        let mut given = vec![sent("gone"), sent("d/gone"), sent("changed"), sent("kept")];
        given.extend(["e", "e/f", "full"].map(|d| Placed::dir(d.into(), 0o755)));
        std::fs::write(dir.path().join("changed"), "changed since").unwrap();
        let tar = tar_of(&[
            (".marmot-gone.gone", b""),
            ("d/.marmot-gone.gone", b""),
            (".marmot-gone.changed", b""),
            (".marmot-gone.other", b""),
            (".marmot-gone.e", b""),
            ("e/.marmot-gone.f", b""),
            (".marmot-gone.full", b""),
            ("new", b"made"),
        ]);
        let mut unpacking = Unpacking::into(dir.path().to_path_buf(), given);
        unpacking.feed(&tar);
        unpacking.finish().unwrap();
        let left = |name: &str| std::fs::read_to_string(dir.path().join(name)).ok();
        assert_eq!(left("gone"), None);
        assert_eq!(left("d/gone"), None);
        assert_eq!(left("changed").as_deref(), Some("changed since"), "changed since sent");
        assert_eq!(left("kept").as_deref(), Some("kept"), "not marked");
        assert_eq!(left("other").as_deref(), Some("other"), "a mark for a file never given");
        assert_eq!(left("new").as_deref(), Some("made"));
        assert_eq!(left(".marmot-gone.other"), None, "marks are never written");
        assert!(!dir.path().join("e").exists(), "dirs gone, the deepest first");
        assert!(dir.path().join("full/not-given").exists(), "a dir holding more stays");
    }

    #[test]
    fn results_that_are_no_tar_are_refused_and_the_rest_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut unpacking = Unpacking::into(dir.path().to_path_buf(), vec![]);
        // More pieces than the channel holds: feeding must not block once unpacking stopped.
        for _ in 0..UNPACK_PIECES + 3 {
            unpacking.feed(&[b'x'; 1024]);
        }
        assert!(unpacking.finish().is_err());
        let mut cut = Unpacking::into(dir.path().join("cut"), vec![]);
        cut.feed(&tar_of(&[("a", &[1u8; 2000])])[..1000]);
        assert!(cut.finish().is_err(), "results cut short are an error");
    }
}
