//! A `cmd` chunk on a worker: the files its units need that the cache lacks are fetched on
//! the chunk's stream, then each unit runs in a fresh directory ([`exec`]) and its report,
//! stdout, stderr and results go back, one unit after another (the exchange is described at
//! [`CmdChunk`]).
//!
//! The coordinator cancels by resetting its side of the stream (or by losing the connection):
//! the reader sees that while a unit runs, and the unit's process group is stopped. A command
//! unit is never held through an outage as a kernel's result is: its processes would outlive
//! the session with nobody to hand their output to, so it is stopped and runs again.

use super::exec::{self, Ending, UnitCommand, UnitDir};
use crate::cache::{FileCache, Pinned};
use proto::command::{FileRef, UnitEnding, UnitReport};
use proto::wire::{ChunkData, CmdChunk, CmdMessage, CmdUnit, PIECE};
use proto::{MessageReader, MessageWriter};
use quinn::{RecvStream, SendStream};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use tokio::io::AsyncReadExt;
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
}

/// How serving a chunk ended early.
#[derive(Debug)]
pub enum Stop {
    /// The coordinator cancelled it or went away: nobody waits for an answer.
    Gone,
    /// The chunk cannot run here: the answer to send.
    Failed(String),
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
        Err(Stop::Gone) => return,
    };
    if writer.send(&last).await.is_ok() {
        let _ = writer.get_mut().finish();
        // Wait for the coordinator to have read it (it finishes its side then), so the
        // stream is not torn down under the last bytes.
        let _ = tokio::time::timeout(Duration::from_secs(10), reader.recv::<ChunkData>()).await;
    }
}

async fn run(
    task: &CmdChunk,
    reader: &mut MessageReader<RecvStream>,
    writer: &mut MessageWriter<SendStream>,
    units: &Units,
) -> Result<(), Stop> {
    task.command.check().map_err(|e| Stop::Failed(e.to_string()))?;
    let files = wanted(task).map_err(Stop::Failed)?;
    let need: Vec<&FileRef> = files.iter().filter(|f| !units.cache.has(&f.sha256)).collect();
    writer.send(&CmdMessage::Need(need.iter().map(|f| f.sha256.clone()).collect())).await?;
    for file in need {
        fetch(file, reader, &units.cache).await?;
    }
    // From here the coordinator sends nothing until it finishes or resets its side: a
    // message, an end or an error means the chunk is over.
    let cancel = CancellationToken::new();
    let gone = async {
        let _ = reader.recv::<ChunkData>().await;
    };
    tokio::pin!(gone);
    let mut cancelled = false;
    let dir_failed =
        |e: std::io::Error| Stop::Failed(format!("cannot make a unit's directory: {e}"));
    let first = task.units.first().map_or(0, |u| u.unit);
    let dir = UnitDir::create(&units.dir, &format!("unit-{first}-")).map_err(dir_failed)?;
    for (i, unit) in task.units.iter().enumerate() {
        if i > 0 {
            dir.reset().map_err(dir_failed)?;
        }
        let pinned = link_files(task, unit, &dir, &units.cache);
        let ran = async {
            let pinned = pinned?;
            let command = UnitCommand {
                argv: task.command.expand(&unit.input, unit.unit + 1),
                env: environment(task, unit, &units.worker),
                timeout: task.timeout_ms.map(Duration::from_millis),
            };
            let ran = exec::run(&command, &dir, &cancel).await;
            for pin in pinned {
                units.cache.release(pin);
            }
            Ok::<_, Stop>(ran)
        };
        tokio::pin!(ran);
        let ran = loop {
            tokio::select! {
                ran = &mut ran => break ran?,
                () = &mut gone, if !cancelled => {
                    cancelled = true;
                    cancel.cancel();
                }
            }
        };
        let ending = match ran.ending {
            Ending::Exited(code) => UnitEnding::Exited(code),
            Ending::Signalled(signal) => UnitEnding::Signalled(signal),
            Ending::TimedOut => UnitEnding::TimedOut,
            Ending::NotStarted(why) => UnitEnding::NotStarted(why),
            Ending::Cancelled => return Err(Stop::Gone),
        };
        if cancelled {
            return Err(Stop::Gone);
        }
        if task.retry_failed && !ending.success() {
            return Err(Stop::Failed(format!(
                "unit {} {}; it runs again",
                unit.unit + 1,
                ending.describe()
            )));
        }
        let results = match task.results {
            true => pack_results(&dir).await.map_err(Stop::Failed)?,
            false => None,
        };
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        let report = UnitReport {
            unit: unit.unit,
            ending,
            started_ms: ran.started.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
                as u64,
            duration_ms: ran.duration.as_millis() as u64,
            stdout: size(&dir.stdout()),
            stderr: size(&dir.stderr()),
            results: results.as_deref().map_or(0, size),
            worker: String::new(),
        };
        writer.send(&CmdMessage::Unit(report.clone())).await?;
        send_file(writer, &dir.stdout(), report.stdout).await?;
        send_file(writer, &dir.stderr(), report.stderr).await?;
        if let Some(results) = results {
            send_file(writer, &results, report.results).await?;
        }
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

/// Receives one file into the cache: `file.size` bytes of [`ChunkData`] pieces.
async fn fetch(
    file: &FileRef,
    reader: &mut MessageReader<RecvStream>,
    cache: &FileCache,
) -> Result<(), Stop> {
    let failed = |e: crate::cache::CacheError| Stop::Failed(format!("{}: {e}", file.name));
    let mut incoming = cache.receive(&file.sha256, file.size).map_err(failed)?;
    let mut received = 0u64;
    while received < file.size {
        let Some(piece) = reader.recv::<ChunkData>().await? else {
            return Err(Stop::Gone);
        };
        received += piece.bytes.len() as u64;
        if received > file.size {
            return Err(Stop::Failed(format!("{}: more bytes than announced", file.name)));
        }
        incoming.write(&piece.bytes).map_err(failed)?;
    }
    incoming.finish().map_err(failed)?;
    tracing::info!(
        "fetched {} ({} bytes, {}) into the file cache",
        file.name,
        file.size,
        file.sha256
    );
    Ok(())
}

/// Links the job's files and the unit's own into its work dir, pinned in the cache while the
/// unit runs.
fn link_files(
    task: &CmdChunk,
    unit: &CmdUnit,
    dir: &UnitDir,
    cache: &FileCache,
) -> Result<Vec<Pinned>, Stop> {
    let mut pinned = vec![];
    for file in task.files.iter().chain(unit.file.as_ref()) {
        match cache.link(&file.sha256, &dir.work().join(&file.name)) {
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

/// The unit's `$MARMOT_OUT` as a tar beside it, or `None` if it wrote nothing there.
async fn pack_results(dir: &UnitDir) -> Result<Option<PathBuf>, String> {
    let (out, tar_path) = (dir.out(), dir.out().with_extension("tar"));
    tokio::task::spawn_blocking(move || {
        let empty = std::fs::read_dir(&out).map_or(true, |mut items| items.next().is_none());
        if empty {
            return Ok(None);
        }
        let file = std::fs::File::create(&tar_path).map_err(|e| e.to_string())?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
        tar.follow_symlinks(false);
        tar.append_dir_all(".", &out).map_err(|e| format!("cannot pack $MARMOT_OUT: {e}"))?;
        tar.into_inner()
            .and_then(|mut w| std::io::Write::flush(&mut w))
            .map_err(|e| e.to_string())?;
        Ok(Some(tar_path))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Sends `size` bytes of `path` as [`CmdMessage::Data`] pieces.
async fn send_file(
    writer: &mut MessageWriter<SendStream>,
    path: &Path,
    size: u64,
) -> Result<(), Stop> {
    if size == 0 {
        return Ok(());
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Stop::Failed(format!("cannot read a unit's output: {e}")))?;
    let mut file = file.take(size);
    let mut left = size;
    let mut piece = vec![0u8; PIECE];
    while left > 0 {
        let want = (left as usize).min(PIECE);
        file.read_exact(&mut piece[..want])
            .await
            .map_err(|e| Stop::Failed(format!("cannot read a unit's output: {e}")))?;
        writer.send(&CmdMessage::Data(ChunkData { bytes: piece[..want].to_vec() })).await?;
        left -= want as u64;
    }
    Ok(())
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
    fn a_unit_sees_marmots_variables_then_the_jobs() {
        let task = task();
        let env = environment(&task, &task.units[1], "w1");
        let keys: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(keys, ["MARMOT_UNIT=6", "MARMOT_INPUT=b", "MARMOT_WORKER=w1", "K=V"]);
    }
}
