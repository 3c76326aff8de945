//! A `cmd` chunk's stream, on the coordinator: the request, the files the worker asks for
//! (from the file store), then each unit's report and output as the worker sends them,
//! written to the chunk's spool file as they come (the exchange is described at
//! [`CmdChunk`]).
//!
//! Everything the worker sends is checked before it is spooled: only files of the chunk may
//! be asked for, reports come one per unit in order with sizes within bounds, and exactly the
//! announced bytes follow each. Memory stays at one piece per stream, whatever the output.

use super::cache::FileCache;
use super::tries::Tries;
use anyhow::{anyhow, bail, Context, Result};
use proto::command::placed::Placing;
use proto::command::{spool, UnitEnding, UnitReport};
use proto::pieces::{self, Incoming, ReceiveError};
use proto::wire::{
    ChunkData, ChunkOutput, ChunkReply, ChunkRequest, CmdChunk, CmdMessage, CoordinatorOpen,
};
use proto::{MessageReader, MessageWriter};
use std::collections::HashMap;
use std::path::Path;
use tokio::io::{AsyncWriteExt, BufWriter};

/// Runs the exchange of a command chunk; its output lands in `spool`, each unit's record after
/// those of its earlier failed `tries`. A file the store no longer has, a failure the worker
/// reports, or a failed try (added to `tries`) is the chunk's failure.
pub async fn exchange(
    writer: &mut MessageWriter<quinn::SendStream>,
    reader: &mut MessageReader<quinn::RecvStream>,
    request: &ChunkRequest,
    (task, placing): (&CmdChunk, Option<&Placing>),
    (store, tries): (&FileCache, &Tries),
    (spool_path, worker): (&Path, &str),
) -> Result<ChunkReply> {
    writer.send(&CoordinatorOpen::Chunk(request.clone())).await?;
    let placed = placing.into_iter().flat_map(|p| p.placed.iter().flatten());
    let placed = placed.filter(|p| !p.is_dir()).map(|p| &p.file);
    let files: HashMap<&str, u64> = task
        .files
        .iter()
        .chain(task.units.iter().filter_map(|u| u.file.as_ref()))
        .chain(placed)
        .map(|f| (f.sha256.as_str(), f.size))
        .collect();
    let need: Vec<(String, u64)> = match next(reader).await? {
        CmdMessage::Need(need) => need.into_iter().map(|sha| (sha, 0)).collect(),
        CmdMessage::NeedFrom(need) => need,
        CmdMessage::Failed { error } => return Ok(ChunkReply::Failed { error }),
        CmdMessage::Tried(report) => return tried(task, 0, report, worker, tries),
        other => bail!("the worker sent {} before saying which files it needs", name(&other)),
    };
    if need.len() > files.len() {
        bail!("the worker asked for {} files of the chunk's {}", need.len(), files.len());
    }
    for (sha, from) in &need {
        let Some(&size) = files.get(sha.as_str()) else {
            bail!("the worker asked for a file that is not the chunk's");
        };
        if *from > size {
            bail!("the worker asked for a {size}-byte file after its first {from} bytes");
        }
        let Some(path) = store.path(sha) else {
            return Ok(ChunkReply::Failed {
                error: format!(
                    "file {sha} is no longer on the coordinator (newer uploads pushed it out \
                     of --file-store): run the job again"
                ),
            });
        };
        pieces::send_file::<ChunkData, _>(writer, &path, *from, size - from).await?;
    }
    receive(reader, task, tries, (spool_path, worker), true).await
}

/// Takes the units of a command chunk that a worker ran through a lost connection and now
/// delivers on a stream of its own ([`proto::wire::WorkerOpen::DeliverUnits`]), checked and
/// spooled as on the chunk's own stream; a failure or a failed try is no delivery. The
/// caller ends the stream once the delivery is counted and kept.
pub async fn take_delivered(
    reader: &mut MessageReader<quinn::RecvStream>,
    task: &CmdChunk,
    tries: &Tries,
    at: (&Path, &str),
) -> Result<ChunkReply> {
    receive(reader, task, tries, at, false).await
}

/// Receives each unit's report and output into `spool_path`, up to the chunk's end; a
/// failed try is the chunk's failure if `tried` may be reported here. The caller ends the
/// stream (the worker keeps the chunk until then).
async fn receive(
    reader: &mut MessageReader<quinn::RecvStream>,
    task: &CmdChunk,
    tries: &Tries,
    (spool_path, worker): (&Path, &str),
    may_try: bool,
) -> Result<ChunkReply> {
    let dir = spool_path.parent().context("a spool file has a dir")?;
    tokio::fs::create_dir_all(dir).await?;
    let mut out = BufWriter::new(tokio::fs::File::create(spool_path).await?);
    let mut reports = Vec::with_capacity(task.units.len());
    loop {
        match next(reader).await? {
            CmdMessage::Unit(mut report) => {
                let expected = task.units.get(reports.len()).map(|u| u.unit);
                if expected != Some(report.unit) {
                    bail!("the worker reported unit {} out of turn", report.unit);
                }
                report.worker = worker.to_string();
                report.check().map_err(|e| anyhow!("the worker sent a bad report: {e}"))?;
                if report.ending == UnitEnding::Lost {
                    bail!(
                        "the worker reported unit {} lost, which only the coordinator says",
                        report.unit
                    );
                }
                for earlier in tries.of(report.unit) {
                    out.write_all(&spool::header(&earlier)?).await?;
                }
                out.write_all(&spool::header(&report)?).await?;
                copy_body(reader, &mut out, report.body()).await?;
                reports.push(report);
            }
            CmdMessage::Done if reports.len() == task.units.len() => break,
            CmdMessage::Done => bail!("the worker ended the chunk with units not run"),
            CmdMessage::Failed { error } => return Ok(ChunkReply::Failed { error }),
            CmdMessage::Tried(report) if may_try => {
                return tried(task, reports.len(), report, worker, tries);
            }
            other => bail!("the worker sent {} out of turn", name(&other)),
        }
    }
    // Not synced (an fsync a chunk would cost small units a third of their rate): after a
    // power cut, a spool file the journal names but the disk lost runs again
    // ([`super::spool::Spool::holds`]).
    out.flush().await?;
    // The stream is left open: the worker lets the chunk go when it ends, which the caller
    // does once the chunk's count is in the journal (a coordinator killed before then has
    // the chunk delivered again rather than run again).
    let spool = Some(spool_path.to_path_buf());
    Ok(ChunkReply::Done(ChunkOutput::Cmd { units: reports, spool }))
}

/// A failed try of the chunk's unit at `index`, checked as a report is (in turn, within
/// bounds), and a failure besides, with no output: kept in `tries`; the chunk fails.
fn tried(
    task: &CmdChunk,
    index: usize,
    mut report: UnitReport,
    worker: &str,
    tries: &Tries,
) -> Result<ChunkReply> {
    if task.units.get(index).map(|u| u.unit) != Some(report.unit) {
        bail!("the worker reported a try of unit {} out of turn", report.unit);
    }
    let lost = report.ending == UnitEnding::Lost;
    if !task.retry_failed || report.ending.success() || lost || report.body() != 0 {
        bail!("the worker reported a try of unit {} that is not a failed one", report.unit);
    }
    report.worker = worker.to_string();
    report.check().map_err(|e| anyhow!("the worker sent a bad report: {e}"))?;
    let error = format!("unit {} {}; it runs again", report.unit + 1, report.ending.describe());
    tries.add(report);
    Ok(ChunkReply::Failed { error })
}

/// The worker's next message; the stream ending here is an error.
async fn next(reader: &mut MessageReader<quinn::RecvStream>) -> Result<CmdMessage> {
    reader.recv::<CmdMessage>().await?.ok_or_else(|| anyhow!("the worker closed the chunk stream"))
}

/// Copies exactly `size` bytes of [`CmdMessage::Data`] pieces into the spool.
async fn copy_body(
    reader: &mut MessageReader<quinn::RecvStream>,
    out: &mut BufWriter<tokio::fs::File>,
    size: u64,
) -> Result<()> {
    let mut incoming = Incoming::<_, CmdMessage>::new(reader, 0, size);
    while let Some(piece) = incoming.next().await.map_err(|e| match e {
        ReceiveError::TooMuch { .. } => anyhow!("the worker sent more output than it announced"),
        _ => anyhow!("the worker sent less output than it announced"),
    })? {
        out.write_all(&piece).await?;
    }
    Ok(())
}

fn name(msg: &CmdMessage) -> &'static str {
    match msg {
        CmdMessage::Need(_) | CmdMessage::NeedFrom(_) => "a list of files",
        CmdMessage::Unit(_) => "a unit's report",
        CmdMessage::Data(_) => "output",
        CmdMessage::Done => "its end",
        CmdMessage::Failed { .. } => "a failure",
        CmdMessage::Tried(_) => "a failed try",
    }
}
