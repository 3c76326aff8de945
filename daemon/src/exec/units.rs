//! A `cmd` chunk on a worker: the files its units need that the cache lacks are fetched on
//! the chunk's stream, then each unit runs in a fresh directory ([`process`]) and its report,
//! stdout, stderr and results go back, one unit after another (the exchange is described at
//! [`CmdChunk`]).
//!
//! The coordinator cancels by resetting its side of the stream (or by losing the connection):
//! the reader sees that while a unit runs, and the unit's process group is stopped. A command
//! unit is never held through an outage as a kernel's result is: its processes would outlive
//! the session with nobody to hand their output to, so it is stopped and runs again.

use super::cache::{Arriving, CacheError, FileCache, Pinned};
use super::cgroup::Cgroups;
use super::process::{self, Ending, UnitCommand, UnitDir};
use super::results::Listing;
use anyhow::{Context, Result};
use proto::command::{FileRef, UnitEnding, UnitReport};
use proto::pieces::{self, Incoming, ReceiveError, SendError, PIECE};
use proto::wire::{ChunkData, CmdChunk, CmdMessage, CmdUnit};
use proto::{MessageReader, MessageWriter};
use quinn::{RecvStream, SendStream};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// What running units needs from the worker.
#[derive(Clone)]
pub struct Units {
    pub cache: Arc<FileCache>,
    /// Where units' directories are made (emptied when the worker starts).
    pub dir: PathBuf,
    /// The worker's name, for `$MARMOT_WORKER`.
    pub worker: String,
    /// `--no-exec`: decline every command chunk.
    pub exec: bool,
    /// Unit directories between chunks.
    pub dirs: Arc<DirPool>,
    /// Where each unit gets a cgroup of its own; `None` where this worker cannot make them
    /// (units then run in their process group alone).
    pub cgroups: Option<Arc<Cgroups>>,
    /// Files arriving ahead of their units: a chunk waits for them instead of asking again.
    pub ahead: Arc<super::arrivals::Arrivals>,
}

impl Units {
    /// Opens what units need under the worker's `state_dir`: the file cache (bounded by
    /// `cache_limit` bytes) and the dir for units' directories (emptied: a unit left there by
    /// a worker that died is gone). `exec` false declines every command chunk.
    pub fn open(state_dir: &Path, worker: &str, exec: bool, cache_limit: u64) -> Result<Units> {
        let dir = state_dir.join("units");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let cache_dir = state_dir.join("cache");
        std::fs::create_dir_all(&cache_dir)
            .with_context(|| format!("cannot create {}", cache_dir.display()))?;
        let cache =
            FileCache::open(&cache_dir, cache_limit).context("cannot open the file cache")?;
        let cgroups = match Cgroups::detect() {
            Ok(cgroups) => Some(Arc::new(cgroups)),
            Err(why) => {
                // Once per process: `marmotd local` runs several workers.
                static SAID: std::sync::Once = std::sync::Once::new();
                if exec {
                    SAID.call_once(|| {
                        tracing::warn!(
                            "commands' units run in their process group only ({why}): a unit \
                             that calls setsid can outlive its end. Under systemd the shipped \
                             unit delegates a cgroup (Delegate=yes); run by hand, run as root"
                        )
                    });
                }
                None
            }
        };
        Ok(Units {
            cache: Arc::new(cache),
            dir,
            worker: worker.into(),
            exec,
            dirs: Arc::default(),
            cgroups,
            ahead: Arc::default(),
        })
    }
}

/// Unit directories kept between chunks, emptied: a chunk takes its [`DIRS`] from here and
/// gives them back, so a short chunk makes none (on ext4, making a directory costs more than
/// running `true`; `tests/bench/commands.sh` measures it).
#[derive(Debug, Default)]
pub struct DirPool {
    idle: std::sync::Mutex<Vec<UnitDir>>,
}

/// The most directories kept idle; more are removed.
const IDLE_DIRS: usize = 64;

impl DirPool {
    /// An idle directory, or a new one under `parent`.
    fn take(&self, parent: &Path) -> std::io::Result<UnitDir> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        idle.map_or_else(|| UnitDir::create(parent, "unit-"), Ok)
    }

    /// Keeps `dir` for another chunk once reset, or removes it (dropped) if that fails or
    /// enough are kept.
    fn give(&self, dir: UnitDir) {
        if let Err(e) = dir.reset() {
            tracing::warn!("a unit directory could not be emptied, so it goes: {e}");
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_DIRS {
            idle.push(dir);
        }
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.idle.lock().unwrap().len()
    }
}

/// A directory lent to a chunk by the pool, given back however the chunk ends.
#[derive(Debug)]
struct Lent<'a> {
    dir: Option<UnitDir>,
    pool: &'a DirPool,
}

impl std::ops::Deref for Lent<'_> {
    type Target = UnitDir;

    fn deref(&self) -> &UnitDir {
        self.dir.as_ref().expect("a lent directory is held until dropped")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            self.pool.give(dir);
        }
    }
}

/// How serving a chunk ended early.
#[derive(Debug)]
pub enum Stop {
    /// The coordinator cancelled it or went away: nobody waits for an answer.
    Gone,
    /// The chunk cannot run here: the answer to send.
    Failed(String),
    /// A unit that may be retried failed: how this try ended, to report.
    Tried(Box<UnitReport>),
}

impl From<proto::FrameError> for Stop {
    fn from(_: proto::FrameError) -> Self {
        Stop::Gone
    }
}

/// Serves a command chunk to its end: `Done`, `Failed`, or nothing when the coordinator is
/// gone.
/// `task` is the chunk, or why it cannot be one.
pub async fn serve(
    task: Result<&CmdChunk, String>,
    reader: &mut MessageReader<RecvStream>,
    writer: &mut MessageWriter<SendStream>,
    units: &Units,
) {
    let outcome = match (task, units.exec) {
        (_, false) => {
            Err(Stop::Failed("this worker runs no commands (it was started with --no-exec)".into()))
        }
        (Err(error), true) => Err(Stop::Failed(error)),
        (Ok(task), true) => run(task, reader, writer, units).await,
    };
    let last = match outcome {
        Ok(()) => CmdMessage::Done,
        Err(Stop::Failed(error)) => CmdMessage::Failed { error },
        Err(Stop::Tried(report)) => CmdMessage::Tried(*report),
        Err(Stop::Gone) => return,
    };
    if writer.send(&last).await.is_ok() {
        let _ = writer.get_mut().finish();
        // Wait for the coordinator to have read it (it finishes its side then), so the
        // stream is not torn down under the last bytes.
        let _ = tokio::time::timeout(Duration::from_secs(10), reader.recv::<ChunkData>()).await;
    }
}

/// A unit that ran, its output waiting in its directory to be sent.
struct Finished<'a> {
    dir: Lent<'a>,
    report: UnitReport,
    results: Option<Listing>,
}

/// Runs the chunk's units as a pipeline of three parts on the one stream, so the slot is not
/// left idle while bytes move:
/// - reading: the files the cache lacks arrive in the order asked for, and a unit starts as
///   soon as its own are in, while the rest still arrive; after the last, anything from the
///   coordinator (an end, a reset) means the chunk is over;
/// - running: one unit after another, each in a directory of its own ([`DIRS`] in turn);
/// - sending: a unit's report and output go back while the next unit runs.
async fn run(
    task: &CmdChunk,
    reader: &mut MessageReader<RecvStream>,
    writer: &mut MessageWriter<SendStream>,
    units: &Units,
) -> Result<(), Stop> {
    task.command.check().map_err(|e| Stop::Failed(e.to_string()))?;
    let files = wanted(task).map_err(Stop::Failed)?;
    units.ahead.wait_for(&files).await;
    let need: Vec<&FileRef> = files.iter().filter(|f| !units.cache.has(&f.sha256)).collect();
    // What cut transfers kept of them: only the rest is asked for.
    let from: Vec<u64> = need.iter().map(|f| units.cache.kept(&f.sha256).min(f.size)).collect();
    let shas = need.iter().map(|f| f.sha256.clone());
    let asked = match from.iter().all(|&n| n == 0) {
        true => CmdMessage::Need(shas.collect()),
        false => CmdMessage::NeedFrom(shas.zip(from.iter().copied()).collect()),
    };
    writer.send(&asked).await?;
    let first_runs = ready_after(task, &need);
    let (fetched, mut fetched_rx) = watch::channel(0usize);
    let reading = async {
        for (file, &from) in need.iter().zip(&from) {
            if let Err(stop) = fetch(file, from, reader, &units.cache).await {
                return stop;
            }
            fetched.send_modify(|n| *n += 1);
        }
        let _ = reader.recv::<ChunkData>().await;
        Stop::Gone
    };
    let cancel = &CancellationToken::new();
    let (free, mut free_rx) = mpsc::channel(DIRS);
    for _ in 0..DIRS {
        let dir = units.dirs.take(&units.dir).map_err(dir_failed)?;
        let _ = free.try_send(Lent { dir: Some(dir), pool: &units.dirs });
    }
    let (finished, mut finished_rx) = mpsc::channel::<Finished>(1);
    let running = async move {
        for (unit, after) in task.units.iter().zip(first_runs) {
            let Some(dir) = free_rx.recv().await else { return Err(Stop::Gone) };
            let ready = tokio::select! {
                fetched = fetched_rx.wait_for(|n| *n >= after) => fetched.is_ok(),
                () = cancel.cancelled() => false,
            };
            if !ready {
                return Err(Stop::Gone);
            }
            let (report, results) = run_unit(task, unit, &dir, units, cancel).await?;
            if finished.send(Finished { dir, report, results }).await.is_err() {
                return Err(Stop::Gone);
            }
        }
        Ok(())
    };
    // Owns the way back for directories and the way in for finished units, so that running
    // stops waiting on either once sending has stopped. A directory goes back emptied, while
    // the next unit runs.
    let sending = async move {
        while let Some(mut unit) = finished_rx.recv().await {
            let sent = send_unit(writer, &mut unit).await;
            if let Err(stop) = sent.and_then(|()| unit.dir.reset().map_err(dir_failed)) {
                cancel.cancel();
                return Err(stop);
            }
            let _ = free.send(unit.dir).await;
        }
        Ok(())
    };
    let working = async {
        match tokio::join!(running, sending) {
            (Err(Stop::Failed(e)), _) | (_, Err(Stop::Failed(e))) => Err(Stop::Failed(e)),
            (ran, sent) => ran.and(sent),
        }
    };
    tokio::pin!(reading, working);
    tokio::select! {
        worked = &mut working => worked,
        stop = &mut reading => {
            cancel.cancel();
            let _ = working.await;
            Err(stop)
        }
    }
}

/// How many directories a chunk's units run in, in turn: one for the unit running, one for
/// the unit whose output is being sent.
const DIRS: usize = 2;

fn dir_failed(e: std::io::Error) -> Stop {
    Stop::Failed(format!("cannot make a unit's directory: {e}"))
}

/// For each unit, how many of the files asked for (`need`, in the order they arrive) must be
/// in before it can start: up to the last one it uses.
fn ready_after(task: &CmdChunk, need: &[&FileRef]) -> Vec<usize> {
    let arrives =
        |file: &FileRef| need.iter().position(|n| n.sha256 == file.sha256).map_or(0, |at| at + 1);
    let common = task.files.iter().map(arrives).max().unwrap_or(0);
    task.units.iter().map(|u| u.file.as_ref().map_or(0, arrives).max(common)).collect()
}

/// Runs one unit in `dir` to its end; a failed unit ends the chunk when it is to run again
/// elsewhere, and a cancelled one ends it with nobody to tell.
async fn run_unit(
    task: &CmdChunk,
    unit: &CmdUnit,
    dir: &UnitDir,
    units: &Units,
    cancel: &CancellationToken,
) -> Result<(UnitReport, Option<Listing>), Stop> {
    let pinned = place_files(task, unit, dir, &units.cache)?;
    let command = UnitCommand {
        argv: task.command.expand(&unit.input, unit.unit + 1),
        env: environment(task, unit, &units.worker),
        timeout: task.timeout_ms.map(Duration::from_millis),
    };
    let cgroup = units.cgroups.as_ref().and_then(|cgroups| match cgroups.unit() {
        Ok(cgroup) => Some(cgroup),
        Err(e) => {
            tracing::warn!("cannot make a cgroup for a unit ({e}): it runs in its process group");
            None
        }
    });
    let ran = process::run(&command, dir, cgroup.as_ref(), cancel).await;
    // Removed once empty, off the runtime: its processes may take a moment to go.
    if let Some(cgroup) = cgroup {
        let _ = tokio::task::spawn_blocking(move || drop(cgroup)).await;
    }
    for pin in pinned {
        units.cache.release(pin);
    }
    let ending = match ran.ending {
        Ending::Exited(code) => UnitEnding::Exited(code),
        Ending::Signalled(signal) => UnitEnding::Signalled(signal),
        Ending::TimedOut => UnitEnding::TimedOut,
        Ending::NotStarted(why) => UnitEnding::NotStarted(why),
        Ending::Cancelled => return Err(Stop::Gone),
    };
    if cancel.is_cancelled() {
        return Err(Stop::Gone);
    }
    let tried = UnitReport {
        unit: unit.unit,
        ending,
        started_ms: ran.started.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64,
        duration_ms: ran.duration.as_millis() as u64,
        stdout: 0,
        stderr: 0,
        results: 0,
        worker: String::new(),
    };
    if task.retry_failed && !tried.ending.success() {
        return Err(Stop::Tried(Box::new(tried)));
    }
    let results = match task.results {
        true => list_results(dir).await.map_err(Stop::Failed)?,
        false => None,
    };
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let report = UnitReport {
        stdout: size(&dir.stdout()),
        stderr: size(&dir.stderr()),
        results: results.as_ref().map_or(0, |r| r.size),
        ..tried
    };
    Ok((report, results))
}

/// A unit's report, then its stdout, stderr and results.
async fn send_unit(
    writer: &mut MessageWriter<SendStream>,
    unit: &mut Finished<'_>,
) -> Result<(), Stop> {
    let Finished { dir, report, results } = unit;
    writer.send(&CmdMessage::Unit(report.clone())).await?;
    send_file(writer, &dir.stdout(), report.stdout).await?;
    send_file(writer, &dir.stderr(), report.stderr).await?;
    if let Some(results) = results.take() {
        send_results(writer, results).await?;
    }
    Ok(())
}

/// Every file the chunk's units need, each once: the job's files and the units' own.
fn wanted(task: &CmdChunk) -> Result<Vec<FileRef>, String> {
    let mut seen = HashSet::new();
    let mut files = vec![];
    for file in task.files.iter().chain(task.units.iter().filter_map(|u| u.file.as_ref())) {
        file.check()?;
        if seen.insert(file.sha256.clone()) {
            files.push(file.clone());
        }
    }
    Ok(files)
}

/// Receives one file into the cache: `file.size` bytes of [`ChunkData`] pieces, after the
/// first `from` that a cut transfer kept. Cut again, it keeps what came whole, if anything
/// came (a coordinator of an earlier release takes no resumed request: nothing comes, and
/// what was kept goes).
pub(super) async fn fetch(
    file: &FileRef,
    from: u64,
    reader: &mut MessageReader<RecvStream>,
    cache: &Arc<FileCache>,
) -> Result<(), Stop> {
    let failed = |e: CacheError| Stop::Failed(format!("{}: {e}", file.name));
    let mut arriving =
        Arriving::open(cache, &file.sha256, file.size, from).await.map_err(failed)?;
    if from > 0 {
        tracing::info!("resuming the transfer of {} after the {from} bytes kept", file.name);
    }
    let mut pieces = Incoming::<_, ChunkData>::new(reader, from, file.size);
    let cut = loop {
        match pieces.next().await {
            Ok(Some(piece)) => arriving.write(piece.into()).await.map_err(failed)?,
            Ok(None) => break false,
            Err(e @ ReceiveError::TooMuch { .. }) => {
                return Err(Stop::Failed(format!("{}: {e}", file.name)))
            }
            Err(_) => break true,
        }
    };
    if cut {
        // What came whole is kept for a later try of the same file.
        let incoming = arriving.end().await.map_err(failed)?;
        let kept = incoming.received();
        if kept > from {
            let name = file.name.clone();
            let _ = tokio::task::spawn_blocking(move || match incoming.keep() {
                Ok(()) => tracing::info!("kept {kept} bytes of {name} for later"),
                Err(e) => tracing::warn!("could not keep part of {name}: {e}"),
            })
            .await;
        }
        return Err(Stop::Gone);
    }
    arriving.finish().await.map_err(failed)?;
    tracing::info!(
        "fetched {} ({} bytes, {}) into the file cache",
        file.name,
        file.size,
        file.sha256
    );
    Ok(())
}

/// Gives the unit the job's files and its own in its work dir, pinned in the cache while the
/// unit runs.
fn place_files(
    task: &CmdChunk,
    unit: &CmdUnit,
    dir: &UnitDir,
    cache: &FileCache,
) -> Result<Vec<Pinned>, Stop> {
    let mut pinned = vec![];
    for file in task.files.iter().chain(unit.file.as_ref()) {
        match cache.place(&file.sha256, &dir.work().join(&file.name)) {
            Ok(pin) => pinned.push(pin),
            Err(e) => {
                for pin in pinned {
                    cache.release(pin);
                }
                return Err(Stop::Failed(format!("{}: {e}", file.name)));
            }
        }
    }
    Ok(pinned)
}

/// Marmot's variables for a unit, then the job's `--env`.
fn environment(task: &CmdChunk, unit: &CmdUnit, worker: &str) -> Vec<(String, String)> {
    let mut env = vec![
        ("MARMOT_UNIT".to_string(), (unit.unit + 1).to_string()),
        ("MARMOT_INPUT".to_string(), unit.input.clone()),
        ("MARMOT_WORKER".to_string(), worker.to_string()),
    ];
    env.extend(task.env.iter().cloned());
    env
}

/// What the unit wrote under `$MARMOT_OUT`, or `None` if nothing.
async fn list_results(dir: &UnitDir) -> Result<Option<Listing>, String> {
    let out = dir.out();
    tokio::task::spawn_blocking(move || Listing::of(&out))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot pack $MARMOT_OUT: {e}"))
}

/// Sends the unit's results as [`CmdMessage::Data`] pieces, packed by a blocking task as they
/// go: at most [`RESULT_PIECES`] packed pieces wait to be sent.
async fn send_results(
    writer: &mut MessageWriter<SendStream>,
    results: Listing,
) -> Result<(), Stop> {
    let size = results.size;
    let (pieces, mut packed) = mpsc::channel(RESULT_PIECES);
    let packing = tokio::task::spawn_blocking(move || results.pack(Pieces::to(pieces)));
    let mut sent = 0u64;
    // Ends when packing has: done, or failed. Stopping here (the coordinator gone) drops
    // `packed`, and packing fails at its next piece.
    while let Some(bytes) = packed.recv().await {
        sent += bytes.len() as u64;
        writer.send(&CmdMessage::Data(ChunkData { bytes })).await?;
    }
    match packing.await.map_err(std::io::Error::other).and_then(|packed| packed) {
        Ok(()) if sent == size => Ok(()),
        Ok(()) => Err(Stop::Failed(format!(
            "$MARMOT_OUT packed to {sent} bytes, not the {size} announced"
        ))),
        Err(e) => Err(Stop::Failed(format!("cannot pack $MARMOT_OUT: {e}"))),
    }
}

/// How many packed pieces of results may wait to be sent.
const RESULT_PIECES: usize = 2;

/// Packed bytes, handed on in pieces of [`PIECE`].
struct Pieces {
    piece: Vec<u8>,
    to: mpsc::Sender<Vec<u8>>,
}

impl Pieces {
    fn to(to: mpsc::Sender<Vec<u8>>) -> Self {
        Pieces { piece: Vec::with_capacity(PIECE), to }
    }
}

impl std::io::Write for Pieces {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(PIECE - self.piece.len());
        self.piece.extend_from_slice(&buf[..n]);
        if self.piece.len() == PIECE {
            self.flush()?;
        }
        Ok(n)
    }

    /// Hands on the piece so far, if any.
    fn flush(&mut self) -> std::io::Result<()> {
        if self.piece.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(PIECE));
        self.to.blocking_send(piece).map_err(|_| std::io::Error::other("nobody takes them"))
    }
}

/// Sends `size` bytes of `path` as [`CmdMessage::Data`] pieces.
async fn send_file(
    writer: &mut MessageWriter<SendStream>,
    path: &Path,
    size: u64,
) -> Result<(), Stop> {
    pieces::send_file::<CmdMessage, _>(writer, path, 0, size).await.map_err(|e| match e {
        SendError::Read { source, .. } => {
            Stop::Failed(format!("cannot read a unit's output: {source}"))
        }
        SendError::Send(_) => Stop::Gone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::command::Template;

    fn task() -> CmdChunk {
        let file = |name: &str, c: char| FileRef {
            name: name.into(),
            sha256: c.to_string().repeat(64),
            size: 1,
        };
        CmdChunk {
            command: Template::new(vec!["sh".into()]).unwrap(),
            units: vec![
                CmdUnit { unit: 4, input: "a".into(), file: Some(file("a", 'b')) },
                CmdUnit { unit: 5, input: "b".into(), file: Some(file("b", 'a')) },
            ],
            files: vec![file("run.sh", 'a')],
            env: vec![("K".into(), "V".into())],
            timeout_ms: None,
            retry_failed: false,
            results: false,
        }
    }

    #[test]
    fn each_file_is_wanted_once_and_names_are_checked() {
        let files = wanted(&task()).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["run.sh", "a"], "b has run.sh's content");
        let mut bad = task();
        bad.files[0].name = "../../etc/passwd".into();
        assert!(wanted(&bad).is_err());
    }

    #[test]
    fn a_unit_starts_once_its_own_files_and_the_jobs_are_in() {
        let mut task = task();
        let files = wanted(&task).unwrap();
        // The cache has run.sh's content (which is also b's): only a arrives.
        let need = vec![&files[1]];
        assert_eq!(ready_after(&task, &need), [1, 0]);
        let all: Vec<&FileRef> = files.iter().collect();
        assert_eq!(ready_after(&task, &all), [2, 1], "the job's file comes first");
        task.files.clear();
        task.units.push(CmdUnit { unit: 6, input: "c".into(), file: None });
        assert_eq!(ready_after(&task, &all), [2, 1, 0]);
    }

    #[test]
    fn directories_are_lent_emptied_and_kept_between_chunks_up_to_a_bound() {
        let parent = tempfile::tempdir().unwrap();
        let pool = DirPool::default();
        let dir = pool.take(parent.path()).unwrap();
        let work = dir.work();
        std::fs::write(dir.out().join("x"), "x").unwrap();
        drop(Lent { dir: Some(dir), pool: &pool });
        assert_eq!(pool.idle(), 1, "given back when the chunk lets it go");
        let again = pool.take(parent.path()).unwrap();
        assert_eq!((again.work(), pool.idle()), (work, 0), "the same dir, lent again");
        assert_eq!(std::fs::read_dir(again.out()).unwrap().count(), 0, "emptied");
        let many: Vec<UnitDir> =
            (0..IDLE_DIRS + 2).map(|_| pool.take(parent.path()).unwrap()).collect();
        for dir in many {
            pool.give(dir);
        }
        drop(again);
        assert_eq!(pool.idle(), IDLE_DIRS);
        let left = std::fs::read_dir(parent.path()).unwrap().count();
        assert_eq!(left, IDLE_DIRS, "the ones not kept are removed");
    }

    #[test]
    fn a_unit_sees_marmots_variables_then_the_jobs() {
        let task = task();
        let env = environment(&task, &task.units[1], "w1");
        let keys: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(keys, ["MARMOT_UNIT=6", "MARMOT_INPUT=b", "MARMOT_WORKER=w1", "K=V"]);
    }
}
