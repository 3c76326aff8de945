//! A `cmd` chunk on a worker: the files its units need that the cache lacks are fetched on
//! the chunk's stream, then each unit runs in a fresh directory ([`process`]) and its report,
//! stdout, stderr and results go back, one unit after another (the exchange is described at
//! [`CmdChunk`]).
//!
//! The coordinator cancels by resetting its side of the stream: the reader sees that while a
//! unit runs, and the unit's process group is stopped. A lost connection is different (the
//! coordinator restarting, a network gone): the units run on under the worker's lease, as a
//! kernel does, and the whole chunk is kept ([`Kept`]) for the next session to deliver. Every
//! unit's directory is kept until the coordinator has taken the chunk, so no unit of it runs
//! twice for a restart.

use super::cache::{Arriving, CacheError, FileCache, Pinned};
use super::cgroup::Cgroups;
use super::finished::{DirPool, Finished, Kept, Unsent};
use super::placed::{self, AsPlaced};
use super::process::{self, Ending, UnitCommand, UnitDir};
use super::results::Listing;
use anyhow::{Context, Result};
use proto::command::placed::{Placed, Placing};
use proto::command::termseq::TermSeq;
use proto::command::{FileRef, UnitEnding, UnitReport};
use proto::pieces::{Incoming, ReceiveError};
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
    /// How long a chunk's units run on without a coordinator (`--lease`).
    pub lease: Duration,
    /// Whether the worker has a session now (its sessions say): a chunk running through a
    /// lost connection stops once there has been none for `lease` in a row.
    pub connected: watch::Receiver<bool>,
    /// The worker stopping: a chunk running through a lost connection stops with it.
    pub stopping: CancellationToken,
    /// Whether the worker gives no slot now (its laptop's rules): a running unit is
    /// suspended (SIGSTOP) until it gives one again, and no unit starts meanwhile.
    pub paused: watch::Receiver<bool>,
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
            lease: Duration::from_secs(60),
            connected: watch::Sender::new(false).subscribe(),
            stopping: CancellationToken::new(),
            paused: watch::Sender::new(false).subscribe(),
        })
    }
}

/// How serving a chunk ended early.
#[derive(Debug)]
pub enum Stop {
    /// The coordinator cancelled it (or its lease ran out): nobody waits for an answer.
    Gone,
    /// The connection was lost: the coordinator is not done with the chunk.
    Lost,
    /// The chunk cannot run here: the answer to send.
    Failed(String),
    /// A unit that may be retried failed: how this try ended, to report.
    Tried(Box<UnitReport>),
}

impl From<proto::FrameError> for Stop {
    fn from(e: proto::FrameError) -> Self {
        Stop::from(Unsent::from(e))
    }
}

impl From<Unsent> for Stop {
    fn from(unsent: Unsent) -> Self {
        match unsent {
            Unsent::Lost => Stop::Lost,
            Unsent::Reset => Stop::Gone,
            Unsent::Failed(error) => Stop::Failed(error),
        }
    }
}

/// How long the coordinator may take to finish its side of a chunk's stream once it has the
/// chunk's end; past that, the chunk is kept for the next session.
const TAKEN_WITHIN: Duration = Duration::from_secs(10);

/// Serves a command chunk to its end: `Done`, `Failed`, or nothing when the coordinator is
/// gone. `task` is the chunk, or why it cannot be one. Returns the chunk's units, whole, if
/// they ran through a lost connection (or ended as it was lost): the next session delivers
/// them.
pub async fn serve(
    task: Result<(&CmdChunk, &Placing, Option<&TermSeq>), String>,
    reader: &mut MessageReader<RecvStream>,
    writer: &mut MessageWriter<SendStream>,
    units: &Units,
) -> Option<Kept> {
    let outcome = match (task, units.exec) {
        (_, false) => {
            Err(Stop::Failed("this worker runs no commands (it was started with --no-exec)".into()))
        }
        (Err(error), true) => Err(Stop::Failed(error)),
        (Ok((task, placing, seq)), true) => run(task, (placing, seq), reader, writer, units).await,
    };
    let (last, ran) = match outcome {
        Ok(Ran { units, lost: true }) => return Some(Kept(units)),
        Ok(Ran { units, lost: false }) => (CmdMessage::Done, Some(units)),
        Err(Stop::Failed(error)) => (CmdMessage::Failed { error }, None),
        Err(Stop::Tried(report)) => (CmdMessage::Tried(*report), None),
        Err(Stop::Gone | Stop::Lost) => return None,
    };
    let taken = async {
        writer.send(&last).await?;
        super::finished::end(writer, reader, TAKEN_WITHIN).await
    };
    match (taken.await, ran) {
        (Err(Unsent::Lost), Some(units)) => Some(Kept(units)),
        _ => None,
    }
}

/// How a chunk's units all ran.
struct Ran {
    /// Every unit, its output still in its directory.
    units: Vec<Finished>,
    /// The connection was lost on the way: the coordinator may not have their output.
    lost: bool,
}

/// Runs the chunk's units as a pipeline of three parts on the one stream, so the slot is not
/// left idle while bytes move:
/// - reading: the files the cache lacks arrive in the order asked for, and a unit starts as
///   soon as its own are in, while the rest still arrive; after the last, anything from the
///   coordinator (an end, a reset) means the chunk is over;
/// - running: one unit after another, each in a directory of its own;
/// - sending: a unit's report and output go back while the next unit runs; its directory is
///   kept until the coordinator has taken the whole chunk.
///
/// A connection lost once every file is in does not stop the chunk: its units run on, for as
/// long as the worker has been without a coordinator for less than its lease, and the chunk
/// is returned whole, to be delivered by the next session.
async fn run(
    task: &CmdChunk,
    (placing, term_seq): (&Placing, Option<&TermSeq>),
    reader: &mut MessageReader<RecvStream>,
    writer: &mut MessageWriter<SendStream>,
    units: &Units,
) -> Result<Ran, Stop> {
    task.command.check().map_err(|e| Stop::Failed(e.to_string()))?;
    let files = wanted(task, placing).map_err(Stop::Failed)?;
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
    let first_runs = ready_after(task, placing, &need);
    let (fetched, mut fetched_rx) = watch::channel(0usize);
    let reading = async {
        for (file, &from) in need.iter().zip(&from) {
            if let Err(stop) = fetch(file, from, reader, &units.cache).await {
                return stop;
            }
            fetched.send_modify(|n| *n += 1);
        }
        match reader.recv::<ChunkData>().await {
            Err(e) => Stop::from(e),
            Ok(_) => Stop::Gone,
        }
    };
    let cancel = &CancellationToken::new();
    let lost = &watch::Sender::new(false);
    let (free, mut free_rx) = mpsc::channel(DIRS);
    for _ in 0..DIRS {
        let _ = free.try_send(units.dirs.lend(&units.dir).map_err(dir_failed)?);
    }
    let (finished, mut finished_rx) = mpsc::channel::<Finished>(1);
    let running = async move {
        for (n, (unit, after)) in task.units.iter().zip(first_runs).enumerate() {
            let Some(dir) = free_rx.recv().await else { return Err(Stop::Gone) };
            let ready = tokio::select! {
                fetched = fetched_rx.wait_for(|n| *n >= after) => fetched.is_ok(),
                () = cancel.cancelled() => false,
            };
            if !ready {
                return Err(Stop::Gone);
            }
            let placed = placing.placed.get(n).map_or(&[][..], Vec::as_slice);
            let unit = (unit, placed, placing);
            let (report, results) = run_unit(task, unit, term_seq, &dir, units, cancel).await?;
            if finished.send(Finished { dir, report, results }).await.is_err() {
                return Err(Stop::Gone);
            }
        }
        Ok(())
    };
    // Owns the way back for directories and the way in for finished units, so that running
    // stops waiting on either once sending has stopped. Each unit sent is kept, and the next
    // one runs in a directory of its own.
    let sending = async move {
        let mut sent = Vec::with_capacity(task.units.len());
        while let Some(mut unit) = finished_rx.recv().await {
            if !*lost.borrow() {
                match unit.send(writer).await.map_err(Stop::from) {
                    Ok(()) => {}
                    Err(Stop::Lost) => {
                        lost.send_replace(true);
                    }
                    Err(stop) => {
                        cancel.cancel();
                        return Err(stop);
                    }
                }
            }
            sent.push(unit);
            let next = units.dirs.lend(&units.dir).map_err(dir_failed);
            match next {
                Ok(dir) => {
                    let _ = free.send(dir).await;
                }
                Err(stop) => {
                    cancel.cancel();
                    return Err(stop);
                }
            }
        }
        Ok(sent)
    };
    let working = async {
        match tokio::join!(running, sending) {
            (Err(Stop::Failed(e)), _) | (_, Err(Stop::Failed(e))) => Err(Stop::Failed(e)),
            (ran, sent) => ran.and(sent),
        }
    };
    let lapsed = async {
        let mut lost = lost.subscribe();
        let _ = lost.wait_for(|lost| *lost).await;
        tokio::select! {
            () = outage_of(units.connected.clone(), units.lease) => {
                tracing::warn!(
                    "stopped a command chunk: no coordinator for {:?} (--lease)",
                    units.lease
                );
            }
            () = units.stopping.cancelled() => {}
        }
    };
    tokio::pin!(reading, working, lapsed);
    let mut reading_on = true;
    loop {
        tokio::select! {
            worked = &mut working => {
                return worked.map(|units| Ran { units, lost: *lost.borrow() });
            }
            stop = &mut reading, if reading_on => match stop {
                Stop::Lost => {
                    reading_on = false;
                    lost.send_replace(true);
                }
                stop => {
                    cancel.cancel();
                    let _ = working.await;
                    return Err(stop);
                }
            },
            () = &mut lapsed => {
                cancel.cancel();
                let _ = working.await;
                return Err(Stop::Gone);
            }
        }
    }
}

/// Resolves once the worker has been without a session (`connected` false) for `lease` in a
/// row.
async fn outage_of(mut connected: watch::Receiver<bool>, lease: Duration) {
    loop {
        if connected.wait_for(|up| !*up).await.is_err() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(lease) => return,
            back = connected.wait_for(|up| *up) => if back.is_err() { return },
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
fn ready_after(task: &CmdChunk, placing: &Placing, need: &[&FileRef]) -> Vec<usize> {
    let arrives =
        |file: &FileRef| need.iter().position(|n| n.sha256 == file.sha256).map_or(0, |at| at + 1);
    let common = task.files.iter().map(arrives).max().unwrap_or(0);
    let own = |(n, u): (usize, &CmdUnit)| {
        let placed = placing.placed.get(n).into_iter().flatten().map(|p| &p.file);
        u.file.iter().chain(placed).map(arrives).max().unwrap_or(0)
    };
    task.units.iter().enumerate().map(|unit| own(unit).max(common)).collect()
}

/// Runs one unit in `dir` to its end; a failed unit ends the chunk when it is to run again
/// elsewhere, and a cancelled one ends it with nobody to tell.
async fn run_unit(
    task: &CmdChunk,
    (unit, placed, placing): (&CmdUnit, &[Placed], &Placing),
    term_seq: Option<&TermSeq>,
    dir: &UnitDir,
    units: &Units,
    cancel: &CancellationToken,
) -> Result<(UnitReport, Option<Listing>), Stop> {
    // No unit starts while the worker is paused (a chunk it was given before, the next unit
    // of a chunk); a cancel still ends the wait.
    let mut paused = units.paused.clone();
    tokio::select! {
        _ = paused.wait_for(|paused| !paused) => {}
        () = cancel.cancelled() => return Err(Stop::Gone),
    }
    // The file a unit reads as its stdin is read where the cache keeps it (pinned), not
    // copied into its dir: under --pipe, that is every byte of the input.
    let stdin_name = placing.stdin.as_deref();
    let (mut pinned, as_placed) = place_files(task, (unit, placed, stdin_name), dir, &units.cache)?;
    let fed = placed.iter().find(|p| Some(p.file.name.as_str()) == stdin_name);
    let stdin = match fed.map(|p| p.file.sha256.as_str()) {
        Some(sha256) => match (units.cache.pin(sha256), units.cache.path(sha256)) {
            (Some(pin), Some(path)) => {
                pinned.push(pin);
                Some(path)
            }
            (pin, _) => {
                for pin in pinned.into_iter().chain(pin) {
                    units.cache.release(pin);
                }
                return Err(Stop::Failed(format!("the unit's stdin {sha256} left the cache")));
            }
        },
        None => None,
    };
    let command = UnitCommand {
        argv: task.command.expand(&unit.input, unit.unit + 1),
        env: environment(task, unit, &units.worker),
        timeout: task.timeout_ms.map(Duration::from_millis),
        stdin,
        stop: term_seq.map(|seq| seq.signals().collect()).unwrap_or_default(),
    };
    let cgroup = units.cgroups.as_ref().and_then(|cgroups| match cgroups.unit() {
        Ok(cgroup) => Some(cgroup),
        Err(e) => {
            tracing::warn!("cannot make a cgroup for a unit ({e}): it runs in its process group");
            None
        }
    });
    let ran = process::run_pausable(&command, dir, cgroup.as_ref(), cancel, paused).await;
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
    let bring_back = placing.bring_back;
    if bring_back {
        let (work, out) = (dir.work(), dir.out());
        let gathered =
            tokio::task::spawn_blocking(move || placed::gather(&work, &out, &as_placed)).await;
        let gathered = gathered.map_err(|e| Stop::Failed(e.to_string()))?;
        gathered.map_err(|e| Stop::Failed(format!("cannot gather what a unit made: {e}")))?;
    }
    let results = match task.results || bring_back {
        true => super::finished::list(&dir.out()).await?,
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

/// Every file the chunk's units need, each once: the job's files and the units' own.
fn wanted(task: &CmdChunk, placing: &Placing) -> Result<Vec<FileRef>, String> {
    let mut seen = HashSet::new();
    let mut files = vec![];
    for placed in &placing.placed {
        proto::command::placed::check_unit(placed)?;
    }
    // A dir is made, not fetched.
    let placed = placing.placed.iter().flatten().filter(|p| !p.is_dir()).map(|p| &p.file);
    let own = task.units.iter().filter_map(|u| u.file.as_ref());
    for file in task.files.iter().chain(own.clone()) {
        file.check()?;
    }
    for file in task.files.iter().chain(own).chain(placed) {
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

/// Gives the unit the job's files and its own in its work dir (but the one it reads as its
/// stdin, `stdin_name`), pinned in the cache while the unit runs.
fn place_files(
    task: &CmdChunk,
    (unit, placed, stdin_name): (&CmdUnit, &[Placed], Option<&str>),
    dir: &UnitDir,
    cache: &FileCache,
) -> Result<(Vec<Pinned>, AsPlaced), Stop> {
    let (mut pinned, mut noted) = (vec![], AsPlaced::default());
    let work = dir.work();
    let mut place = || -> Result<(), String> {
        for file in task.files.iter().chain(unit.file.as_ref()) {
            let failed = |e: &dyn std::fmt::Display| format!("{}: {e}", file.name);
            pinned.push(cache.place(&file.sha256, &work.join(&file.name)).map_err(|e| failed(&e))?);
            noted.note(&work, Path::new(&file.name)).map_err(|e| failed(&e))?;
        }
        let (dirs, files): (Vec<&Placed>, Vec<&Placed>) = placed.iter().partition(|p| p.is_dir());
        for file in files.into_iter().filter(|p| Some(p.file.name.as_str()) != stdin_name) {
            pinned.push(placed::place(cache, &work, file, &mut noted).map_err(|e| e.to_string())?);
        }
        // Dirs last: their own modes are set once what is in them is placed.
        for dir in dirs {
            placed::make_dir(&work, dir, &mut noted).map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    match place() {
        Ok(()) => Ok((pinned, noted)),
        Err(e) => {
            for pin in pinned {
                cache.release(pin);
            }
            Err(Stop::Failed(e))
        }
    }
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

    fn placed(path: &str, c: char) -> Placed {
        let file = FileRef { name: path.into(), sha256: c.to_string().repeat(64), size: 1 };
        Placed { file, mode: 0o644, mtime_ns: 0 }
    }

    #[test]
    fn each_file_is_wanted_once_and_names_are_checked() {
        let none = Placing::default();
        let files = wanted(&task(), &none).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["run.sh", "a"], "b has run.sh's content");
        let mut bad = task();
        bad.files[0].name = "../../etc/passwd".into();
        assert!(wanted(&bad, &none).is_err());
        let placing = Placing {
            placed: vec![vec![placed("d/x", 'c'), placed("y", 'a')], vec![placed("z", 'c')]],
            bring_back: true,
            stdin: None,
        };
        let files = wanted(&task(), &placing).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["run.sh", "a", "d/x"], "placed files are wanted, each content once");
        let mut bad = placing.clone();
        bad.placed[1][0].file.name = "../z".into();
        assert!(wanted(&task(), &bad).unwrap_err().contains("../z"));
    }

    #[test]
    fn a_unit_starts_once_its_own_files_and_the_jobs_are_in() {
        let mut task = task();
        let none = Placing::default();
        let files = wanted(&task, &none).unwrap();
        // The cache has run.sh's content (which is also b's): only a arrives.
        let need = vec![&files[1]];
        assert_eq!(ready_after(&task, &none, &need), [1, 0]);
        let all: Vec<&FileRef> = files.iter().collect();
        assert_eq!(ready_after(&task, &none, &all), [2, 1], "the job's file comes first");
        // A placed file counts as the unit's own.
        let c = placed("d/x", 'c');
        let with_c = [&files[0], &files[1], &c.file];
        let placing =
            Placing { placed: vec![vec![], vec![c.clone()]], bring_back: false, stdin: None };
        assert_eq!(ready_after(&task, &placing, &with_c), [2, 3]);
        task.files.clear();
        task.units.push(CmdUnit { unit: 6, input: "c".into(), file: None });
        assert_eq!(ready_after(&task, &none, &all), [2, 1, 0]);
    }

    #[test]
    fn a_unit_sees_marmots_variables_then_the_jobs() {
        let task = task();
        let env = environment(&task, &task.units[1], "w1");
        let keys: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(keys, ["MARMOT_UNIT=6", "MARMOT_INPUT=b", "MARMOT_WORKER=w1", "K=V"]);
    }
}
