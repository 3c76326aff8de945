//! A chunk's stream, from the coordinator to a worker: the request (and, for some tasks, its
//! input), then the reply, checked before it is reported to the driver; or the conversation
//! the chunk's task leads itself ([`Talk`]).
//!
//! Cancelling resets and stops the stream with the `CANCELLED` code; the worker sees that and
//! raises its kernel's cancellation flag.

use crate::scheduler::AssignmentId;
use crate::tasks::{check_output, ChunkInput, DataSource, Stores, Talk};
use crate::transport::codes;
use anyhow::{anyhow, Context, Result};
use proto::pieces;
use proto::wire::{ChunkData, ChunkOutput, ChunkReply, ChunkRequest, CoordinatorOpen};
use proto::{MessageReader, MessageWriter};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
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
    pub talk: Talk,
}

/// How a chunk's stream ended, for the driver: the worker's output or why not (`None`:
/// nothing to report, the stream was cancelled or its connection lost).
pub struct Ended {
    pub assignment: AssignmentId,
    pub outcome: Option<Result<ChunkOutput, Failure>>,
    /// Told once the output's count is in the journal: only then is the stream ended, so the
    /// worker keeps a chunk whose count a coordinator killed in between never kept, and
    /// delivers it again rather than have it run again. Dropped: not counted.
    pub kept: oneshot::Sender<()>,
}

/// Why a chunk's stream gave no output.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The chunk failed, in these words: it may run again.
    Chunk(String),
    /// The coordinator's own disk is full (it could not keep what the chunk sent): running it
    /// again cannot help, so its job fails, in these words.
    DiskFull(String),
}

/// Runs one assignment and reports how it ended on `report` (the driver's channel, whose
/// messages can be made of an [`Ended`]), unless cancelled first.
pub async fn run<M: From<Ended>>(
    report: mpsc::Sender<M>,
    stream: Stream,
    stores: Arc<Stores>,
    cancel: CancellationToken,
) {
    let Stream { conn, worker, assignment, request, mut talk } = stream;
    let opened = tokio::select! {
        _ = cancel.cancelled() => None,
        opened = tokio::time::timeout(OPEN_TIMEOUT, conn.open_bi()) => Some(opened),
    };
    // Kept open until the output's count is kept (dropped, it ends).
    let mut open_writer = None;
    let outcome = match opened {
        None => None,
        Some(Ok(Ok((send, recv)))) => {
            let (mut writer, mut reader) = (MessageWriter::new(send), MessageReader::new(recv));
            let talking = async {
                match &mut talk {
                    Talk::Plain(input) => {
                        exchange(&mut writer, &mut reader, &request, input.take()).await
                    }
                    Talk::Own(own) => {
                        let (writer, reader, request) = (&mut writer, &mut reader, &request);
                        let stores = &stores;
                        let worker = worker.as_str();
                        let stream = crate::tasks::Stream {
                            writer,
                            reader,
                            request,
                            via: crate::tasks::Via::Assignment(assignment),
                            worker,
                            stores,
                        };
                        own.converse(stream).await
                    }
                }
            };
            let outcome = tokio::select! {
                _ = cancel.cancelled() => None,
                outcome = talking => Some(outcome),
            };
            if outcome.is_none() {
                // Reset both ways, so the worker's kernel stops and a half-sent input is never
                // mistaken for a whole one.
                let _ = writer.get_mut().reset(codes::CANCELLED);
                let _ = reader.get_mut().stop(codes::CANCELLED);
            }
            open_writer = Some(writer);
            outcome
        }
        Some(Ok(Err(e))) => Some(Err(e.into())),
        Some(Err(_)) => Some(Err(anyhow!("the worker accepts no more streams"))),
    };
    let outcome = match outcome {
        None => None,
        Some(Ok(ChunkReply::Done(output))) => Some(
            check_output(&request.task, request.start, request.end, &output)
                .map(|()| output)
                .map_err(Failure::Chunk),
        ),
        // The worker's words reach logs and `marmotctl`: bounded and escaped.
        Some(Ok(ChunkReply::Failed { error })) => {
            Some(Err(Failure::Chunk(proto::names::shown_at_most(&error, MAX_REASON))))
        }
        Some(Err(e)) if disk_full(&e) => Some(Err(Failure::DiskFull(format!(
            "the coordinator's disk is full, so it cannot keep what the units print ({e:#}): \
             free space in its state dir, then run the job again (with --resume and the \
             --joblog, only the units not done)"
        )))),
        // A lost connection is the session's to report (as a lost worker, not a failure).
        Some(Err(_)) if conn.close_reason().is_some() => None,
        Some(Err(e)) => Some(Err(Failure::Chunk(format!("{e:#}")))),
    };
    if let (Talk::Own(own), false) = (&mut talk, matches!(outcome, Some(Ok(_)))) {
        own.abandoned().await;
    }
    let (kept, counted) = oneshot::channel();
    let _ = report.send(M::from(Ended { assignment, outcome, kept })).await;
    if let Some(mut writer) = open_writer {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = counted => {}
        }
        let _ = writer.get_mut().finish();
    }
}

/// Whether `error` is the coordinator's own disk being full (out of space or of quota).
fn disk_full(error: &anyhow::Error) -> bool {
    error.chain().filter_map(|e| e.downcast_ref::<std::io::Error>()).any(|e| {
        e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(nix::libc::EDQUOT)
    })
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
            pieces::send_bytes::<ChunkData, _>(writer, slice).await?;
        }
        DataSource::File(path) => {
            pieces::send_file::<ChunkData, _>(writer, path, input.start, len).await?
        }
    }
    Ok(())
}

/// The longest failure reason of a worker's passed on, in characters.
const MAX_REASON: usize = 300;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_coordinators_own_full_disk_fails_a_job_for_good() {
        let io = |e: std::io::Error| anyhow::Error::new(e).context("cannot spool");
        assert!(disk_full(&io(std::io::Error::from(std::io::ErrorKind::StorageFull))));
        assert!(disk_full(&io(std::io::Error::from_raw_os_error(nix::libc::ENOSPC))));
        assert!(disk_full(&io(std::io::Error::from_raw_os_error(nix::libc::EDQUOT))));
        assert!(!disk_full(&io(std::io::Error::from_raw_os_error(nix::libc::EIO))));
        assert!(!disk_full(&anyhow!("the worker closed the chunk stream")));
    }
}
