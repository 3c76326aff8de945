//! A chunk's stream, from the coordinator to a worker: the request (and, for some tasks, its
//! input), then the reply, checked before it is reported to the driver.
//!
//! Cancelling resets and stops the stream with the `CANCELLED` code; the worker sees that and
//! raises its kernel's cancellation flag.

use super::driver::Cluster;
use super::units;
use crate::scheduler::AssignmentId;
use crate::tasks::{self, check_output, ChunkInput, DataSource};
use crate::transport::codes;
use anyhow::{anyhow, Context, Result};
use proto::wire::{ChunkData, ChunkReply, ChunkRequest, ChunkTask, CoordinatorOpen, PIECE};
use proto::{MessageReader, MessageWriter};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::sync::CancellationToken;

/// Bounds `open_bi`, which waits silently while the worker's stream limit is reached.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// One assignment's stream, as the driver opens it.
pub struct Stream {
    pub conn: quinn::Connection,
    /// The worker's name, for command units' reports.
    pub worker: String,
    pub assignment: AssignmentId,
    pub request: ChunkRequest,
    pub input: Option<ChunkInput>,
}

/// Runs one assignment and reports how it ended to the driver, unless cancelled first.
pub async fn run(cluster: Cluster, stream: Stream, cancel: CancellationToken) {
    let Stream { conn, worker, assignment, request, input } = stream;
    let spool = match &request.task {
        ChunkTask::Cmd(_) => {
            Some(tasks::cmd::spool_path(&cluster.spool_dir, request.job, assignment))
        }
        _ => None,
    };
    let opened = tokio::select! {
        _ = cancel.cancelled() => None,
        opened = tokio::time::timeout(OPEN_TIMEOUT, conn.open_bi()) => Some(opened),
    };
    let outcome = match opened {
        None => None,
        Some(Ok(Ok((send, recv)))) => {
            let (mut writer, mut reader) = (MessageWriter::new(send), MessageReader::new(recv));
            let talk = async {
                match (&request.task, &spool) {
                    (ChunkTask::Cmd(task), Some(spool)) => {
                        let (store, at) = (&cluster.files, (spool.as_path(), worker.as_str()));
                        units::exchange(&mut writer, &mut reader, &request, task, store, at).await
                    }
                    _ => exchange(&mut writer, &mut reader, &request, input).await,
                }
            };
            let outcome = tokio::select! {
                _ = cancel.cancelled() => None,
                outcome = talk => Some(outcome),
            };
            if outcome.is_none() {
                // Reset both ways, so the worker's kernel stops and a half-sent input is never
                // mistaken for a whole one.
                let _ = writer.get_mut().reset(codes::CANCELLED);
                let _ = reader.get_mut().stop(codes::CANCELLED);
            }
            outcome
        }
        Some(Ok(Err(e))) => Some(Err(e.into())),
        Some(Err(_)) => Some(Err(anyhow!("the worker accepts no more streams"))),
    };
    let report = match outcome {
        None => None,
        Some(Ok(ChunkReply::Done(output))) => {
            Some(check_output(&request.task, request.start, request.end, &output).map(|()| output))
        }
        // The worker's words reach logs and `marmotctl`: bounded and escaped.
        Some(Ok(ChunkReply::Failed { error })) => {
            Some(Err(proto::names::shown_at_most(&error, MAX_REASON)))
        }
        // A lost connection is the session's to report (as a lost worker, not a failure).
        Some(Err(_)) if conn.close_reason().is_some() => None,
        Some(Err(e)) => Some(Err(format!("{e:#}"))),
    };
    if let (Some(spool), false) = (&spool, matches!(report, Some(Ok(_)))) {
        // Not counted: what it spooled will never be read.
        let _ = tokio::fs::remove_file(spool).await;
    }
    cluster.chunk_ended(assignment, report).await;
}

/// Sends the request (and input), then reads the reply.
async fn exchange(
    writer: &mut MessageWriter<quinn::SendStream>,
    reader: &mut MessageReader<quinn::RecvStream>,
    request: &ChunkRequest,
    input: Option<ChunkInput>,
) -> Result<ChunkReply> {
    writer.send(&CoordinatorOpen::Chunk(request.clone())).await?;
    if let Some(input) = input {
        stream_input(writer, input).await?;
    }
    writer.get_mut().finish()?;
    let reply = reader.recv::<ChunkReply>().await?;
    reply.ok_or_else(|| anyhow!("the worker closed the chunk stream without a result"))
}

/// Sends a chunk's bytes in pieces, reading the source as it goes: memory stays at one piece
/// per chunk in flight, whatever the size of the file.
async fn stream_input(
    writer: &mut MessageWriter<quinn::SendStream>,
    input: ChunkInput,
) -> Result<()> {
    let len = input.stop.saturating_sub(input.start);
    match &*input.source {
        DataSource::Text(bytes) => {
            let (a, b) = (input.start as usize, input.stop as usize);
            let slice = bytes.get(a..b).context("chunk outside the text")?;
            for piece in slice.chunks(PIECE) {
                writer.send(&ChunkData { bytes: piece.to_vec() }).await?;
            }
        }
        DataSource::File(path) => send_file(writer, path, input.start, len).await?,
    }
    Ok(())
}

/// Sends bytes `start..start + len` of a file as [`ChunkData`] pieces, reading as it goes:
/// memory stays at one piece whatever the file's size. Used for `count --file` chunks and
/// for binaries on their way to an update.
pub async fn send_file(
    writer: &mut MessageWriter<quinn::SendStream>,
    path: &Path,
    start: u64,
    len: u64,
) -> Result<()> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let mut left = len;
    let mut piece = vec![0u8; PIECE];
    while left > 0 {
        let want = (left as usize).min(PIECE);
        file.read_exact(&mut piece[..want])
            .await
            .with_context(|| format!("{} changed while being sent", path.display()))?;
        writer.send(&ChunkData { bytes: piece[..want].to_vec() }).await?;
        left -= want as u64;
    }
    Ok(())
}

/// The longest failure reason of a worker's passed on, in characters.
const MAX_REASON: usize = 300;
