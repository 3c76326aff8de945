//! Streams the coordinator opens to a worker: one per chunk, one per ping.
//!
//! A chunk stream carries the request (and, for some tasks, its input), then the reply.
//! Cancelling resets and stops the stream with the `CANCELLED` code; the worker sees that and
//! raises its kernel's cancellation flag.

use super::cluster::Cluster;
use super::jobs::{check_output, ChunkInput, DataSource};
use crate::scheduler::AssignmentId;
use crate::transport::codes;
use anyhow::{anyhow, bail, Context, Result};
use proto::wire::{BenchReply, ChunkData, ChunkReply, ChunkRequest, CoordinatorOpen, Pong};
use proto::{MessageReader, MessageWriter};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::sync::CancellationToken;

/// Bytes per data frame of a streamed chunk (well under the frame limit).
const PIECE: usize = 1 << 20;
/// Bounds `open_bi`, which waits silently while the worker's stream limit is reached.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one assignment and reports its outcome to the cluster, unless cancelled first.
pub async fn run(
    cluster: Arc<Cluster>,
    conn: quinn::Connection,
    assignment: AssignmentId,
    request: ChunkRequest,
    input: Option<ChunkInput>,
    cancel: CancellationToken,
) {
    let opened = tokio::select! {
        _ = cancel.cancelled() => return,
        opened = tokio::time::timeout(OPEN_TIMEOUT, conn.open_bi()) => opened,
    };
    let outcome = match opened {
        Ok(Ok((send, recv))) => {
            let (mut writer, mut reader) = (MessageWriter::new(send), MessageReader::new(recv));
            let talk = exchange(&mut writer, &mut reader, &request, input);
            let outcome = tokio::select! {
                _ = cancel.cancelled() => None,
                outcome = talk => Some(outcome),
            };
            let Some(outcome) = outcome else {
                // Reset both ways, so the worker's kernel stops and a half-sent input is never
                // mistaken for a whole one.
                let _ = writer.get_mut().reset(codes::CANCELLED);
                let _ = reader.get_mut().stop(codes::CANCELLED);
                return;
            };
            outcome
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(anyhow!("the worker accepts no more streams")),
    };
    match outcome {
        Ok(ChunkReply::Done(output)) => {
            match check_output(&request.task, request.start, request.end, &output) {
                Ok(()) => cluster.chunk_finished(assignment, output),
                Err(e) => cluster.chunk_failed(assignment, e),
            }
        }
        // The worker's words reach logs and `marmotctl`: bounded and escaped.
        Ok(ChunkReply::Failed { error }) => {
            cluster.chunk_failed(assignment, proto::names::shown_at_most(&error, MAX_REASON))
        }
        // A lost connection is the session's to report (as a lost worker, not a failure).
        Err(_) if conn.close_reason().is_some() => {}
        Err(e) => cluster.chunk_failed(assignment, format!("{e:#}")),
    }
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

/// A bench score above this (pi samples per second on one slot, some 50 times what a fast
/// core does) is a lie or a fault, not a machine.
pub const MAX_SLOT_RATE: f64 = 1e11;

/// Whether `rates` can be the bench scores of a worker with `slots` slots.
pub fn check_scores(rates: &[f64], slots: u32) -> Result<(), String> {
    if rates.len() != slots as usize {
        return Err(format!("{} scores for {slots} slots", rates.len()));
    }
    if let Some(bad) = rates.iter().find(|r| !(r.is_finite() && **r > 0.0 && **r <= MAX_SLOT_RATE))
    {
        return Err(format!("a score of {bad} samples per second is impossible"));
    }
    Ok(())
}

/// Runs the benchmark on one worker with `slots` slots: its slots' pi samples per second.
pub async fn bench(conn: &quinn::Connection, length: Duration, slots: u32) -> Result<Vec<f64>> {
    let (send, recv) = conn.open_bi().await?;
    let mut writer = MessageWriter::new(send);
    let millis = u32::try_from(length.as_millis()).unwrap_or(u32::MAX);
    writer.send(&CoordinatorOpen::Bench { millis }).await?;
    writer.get_mut().finish()?;
    let reply = MessageReader::new(recv).recv::<BenchReply>().await?;
    let rates = reply.context("the worker closed the bench stream")?.slot_rates;
    check_scores(&rates, slots).map_err(|e| anyhow!("the worker sent impossible scores: {e}"))?;
    Ok(rates)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_scores_must_fit_the_slots_and_a_machine() {
        assert_eq!(check_scores(&[1e9, 2e9], 2), Ok(()));
        assert_eq!(check_scores(&[MAX_SLOT_RATE], 1), Ok(()));
        assert_eq!(check_scores(&[1e9], 2), Err("1 scores for 2 slots".into()));
        assert_eq!(check_scores(&[], 0), Ok(()), "no slots, no scores");
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_SLOT_RATE * 1.01] {
            let e = check_scores(&[1e9, bad], 2).unwrap_err();
            assert!(e.contains("is impossible"), "{bad}: {e}");
        }
    }
}
