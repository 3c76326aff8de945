//! Streams the coordinator opens to a worker: one per chunk, one per ping.
//!
//! A chunk stream carries the request, then the reply. Cancelling drops the stream, which stops
//! the worker's side (quinn sends STOP_SENDING for a receive stream dropped unread); the worker
//! sees that and raises its kernel's cancellation flag.

use super::cluster::Cluster;
use super::jobs::check_output;
use crate::scheduler::AssignmentId;
use anyhow::{anyhow, bail, Context, Result};
use proto::wire::{ChunkReply, ChunkRequest, CoordinatorOpen, Pong};
use proto::{MessageReader, MessageWriter};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Bounds `open_bi`, which waits silently while the worker's stream limit is reached.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one assignment and reports its outcome to the cluster, unless cancelled first.
pub async fn run(
    cluster: Arc<Cluster>,
    conn: quinn::Connection,
    assignment: AssignmentId,
    request: ChunkRequest,
    cancel: CancellationToken,
) {
    let outcome = tokio::select! {
        _ = cancel.cancelled() => return,
        outcome = exchange(&conn, &request) => outcome,
    };
    match outcome {
        Ok(ChunkReply::Done(output)) => {
            match check_output(&request.task, request.start, request.end, &output) {
                Ok(()) => cluster.chunk_finished(assignment, output),
                Err(e) => cluster.chunk_failed(assignment, e),
            }
        }
        Ok(ChunkReply::Failed { error }) => cluster.chunk_failed(assignment, error),
        // A lost connection is the session's to report (as a lost worker, not a failure).
        Err(_) if conn.close_reason().is_some() => {}
        Err(e) => cluster.chunk_failed(assignment, format!("{e:#}")),
    }
}

async fn exchange(conn: &quinn::Connection, request: &ChunkRequest) -> Result<ChunkReply> {
    let (send, recv) = tokio::time::timeout(OPEN_TIMEOUT, conn.open_bi())
        .await
        .context("the worker accepts no more streams")??;
    let mut writer = MessageWriter::new(send);
    writer.send(&CoordinatorOpen::Chunk(request.clone())).await?;
    writer.get_mut().finish()?;
    let reply = MessageReader::new(recv).recv::<ChunkReply>().await?;
    reply.ok_or_else(|| anyhow!("the worker closed the chunk stream without a result"))
}

/// One ping round trip on a stream of its own.
pub async fn ping(conn: &quinn::Connection) -> Result<Duration> {
    let started = Instant::now();
    let nonce = rand::random::<u64>();
    let (send, recv) = conn.open_bi().await?;
    let mut writer = MessageWriter::new(send);
    writer.send(&CoordinatorOpen::Ping { nonce }).await?;
    writer.get_mut().finish()?;
    match MessageReader::new(recv).recv::<Pong>().await? {
        Some(Pong { nonce: echoed }) if echoed == nonce => Ok(started.elapsed()),
        Some(_) => bail!("the worker answered another ping"),
        None => bail!("the worker closed the ping stream"),
    }
}
