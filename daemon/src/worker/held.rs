//! Chunk results held through a lost connection, until they are delivered or their lease ends.
//!
//! When the coordinator goes out of reach while a chunk runs (it restarts, crashes, or the
//! network drops), the chunk keeps running for the worker's lease (`--lease`, 60 s by
//! default), and its result is held here until then. Every session delivers what is held as
//! soon as it is welcomed, and whatever a leased chunk finishes later while it lasts: the
//! coordinator counts a delivered result if it gave the chunk to this member and the chunk
//! still waits for one (exactly once: another worker may have run it meanwhile), so an outage
//! shorter than the lease costs no work (the coordinator's journal keeps whom it gave which
//! chunk, across its own restarts). Results are bounded by the chunks that were running: a
//! slot's worth each.

use proto::wire::{ChunkOutput, ChunkRequest, WorkerOpen};
use proto::MessageWriter;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The results held, and a signal for each one added.
#[derive(Default)]
pub struct Held {
    results: Mutex<Vec<HeldResult>>,
    added: Notify,
}

struct HeldResult {
    request: ChunkRequest,
    output: ChunkOutput,
    /// The end of its lease: not delivered after this.
    until: Instant,
}

impl Held {
    /// Holds a chunk's result until `until`.
    pub fn hold(&self, request: ChunkRequest, output: ChunkOutput, until: Instant) {
        let (job, chunk) = (request.job, request.chunk);
        tracing::info!("holding the result of chunk {chunk} of job {job} for the coordinator");
        self.lock().push(HeldResult { request, output, until });
        self.added.notify_one();
    }

    /// Takes every result whose lease has not ended at `now`; drops the others.
    pub fn take(&self, now: Instant) -> Vec<(ChunkRequest, ChunkOutput)> {
        let results = std::mem::take(&mut *self.lock());
        results
            .into_iter()
            .filter(|held| {
                let live = held.until > now;
                if !live {
                    let (job, chunk) = (held.request.job, held.request.chunk);
                    tracing::warn!("dropped the result of chunk {chunk} of job {job}: its lease ended before the coordinator was back");
                }
                live
            })
            .map(|held| (held.request, held.output))
            .collect()
    }

    /// How many results are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves when a result was added since the last time it resolved.
    pub async fn added(&self) {
        self.added.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<HeldResult>> {
        self.results.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How long to wait for a delivery stream to open before keeping the result for the next
/// session.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers every held result on `conn`, one stream each; what cannot be sent is held again
/// (until its lease ends).
pub async fn deliver(held: &Held, conn: &quinn::Connection, lease: Duration) {
    for (request, output) in held.take(Instant::now()) {
        let sent = async {
            let (send, _recv) = tokio::time::timeout(OPEN_TIMEOUT, conn.open_bi()).await??;
            let mut writer = MessageWriter::new(send);
            let message = WorkerOpen::Deliver { request: request.clone(), output: output.clone() };
            writer.send(&message).await?;
            writer.get_mut().finish()?;
            anyhow::Ok(())
        };
        if sent.await.is_err() {
            held.hold(request, output, Instant::now() + lease);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::wire::ChunkTask;

    fn request(chunk: u32) -> ChunkRequest {
        let task = ChunkTask::Pi { samples: 100, seed: 1 };
        ChunkRequest { job: 7, chunk, task, start: 0, end: 10 }
    }

    #[test]
    fn results_are_taken_once_and_only_within_their_lease() {
        let (held, now) = (Held::default(), Instant::now());
        let output = ChunkOutput::Pi { inside: 8 };
        held.hold(request(1), output.clone(), now + Duration::from_secs(60));
        held.hold(request(2), output.clone(), now + Duration::from_secs(1));
        assert_eq!(held.len(), 2);
        let taken = held.take(now + Duration::from_secs(1));
        assert_eq!(taken, vec![(request(1), output)], "the second's lease ended");
        assert!(held.is_empty(), "taken results are no longer held");
        assert!(held.take(now).is_empty());
    }
}
