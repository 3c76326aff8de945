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
//! slot's worth each. A command chunk's units are held the same way, their output in their
//! directories, and delivered on a stream of their own ([`WorkerOpen::DeliverUnits`]).
//!
//! As each session starts, the worker tells the coordinator which chunks it still runs or
//! holds ([`WorkerOpen::Holding`]): a coordinator back from a restart waits for those, and
//! runs again at once what it gave this member that is not among them.

use crate::exec::finished::{Kept, Unsent};
use proto::wire::{ChunkKey, ChunkOutput, ChunkRequest, WorkerOpen, MAX_HOLDING};
use proto::MessageWriter;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// The results held, the chunks still running from lost connections, and a signal for each
/// result added.
pub struct Held {
    results: Mutex<Vec<HeldResult>>,
    added: Notify,
    /// Chunks whose streams are open (on this session's connection or a lost one), by how
    /// many streams run each.
    running: Mutex<BTreeMap<ChunkKey, usize>>,
    /// Whether the worker has a session now: command units running through a lost
    /// connection stop once there has been none for the lease.
    pub connected: watch::Sender<bool>,
}

impl Default for Held {
    fn default() -> Self {
        Held {
            results: Mutex::default(),
            added: Notify::new(),
            running: Mutex::default(),
            connected: watch::Sender::new(false),
        }
    }
}

struct HeldResult {
    request: ChunkRequest,
    output: Output,
    /// The end of its lease: not delivered after this.
    until: Instant,
}

/// A held chunk's result.
#[derive(Debug)]
pub enum Output {
    /// A kernel's.
    Kernel(ChunkOutput),
    /// A command chunk's units, their output in their directories.
    Units(Kept),
}

impl Held {
    /// Holds a kernel's result until `until`.
    pub fn hold(&self, request: ChunkRequest, output: ChunkOutput, until: Instant) {
        self.add(request, Output::Kernel(output), until);
    }

    /// Holds a command chunk's units until `until`.
    pub fn keep(&self, request: ChunkRequest, units: Kept, until: Instant) {
        self.add(request, Output::Units(units), until);
    }

    fn add(&self, request: ChunkRequest, output: Output, until: Instant) {
        let (job, chunk) = (request.job, request.chunk);
        tracing::info!("holding the result of chunk {chunk} of job {job} for the coordinator");
        self.lock().push(HeldResult { request, output, until });
        self.added.notify_one();
    }

    /// Takes every result whose lease has not ended at `now`; drops the others.
    pub fn take(&self, now: Instant) -> Vec<(ChunkRequest, Output)> {
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

    /// Marks the worker as having a session until the guard is dropped.
    pub fn session(&self) -> Session<'_> {
        self.connected.send_replace(true);
        Session(self)
    }

    /// Counts a chunk's stream open until the guard is dropped.
    pub fn running(&self, key: ChunkKey) -> Running<'_> {
        *self.running_lock().entry(key).or_default() += 1;
        Running { held: self, key }
    }

    /// The chunks running or held now (at most [`MAX_HOLDING`]): as a session starts, those
    /// of lost connections.
    pub fn holding(&self) -> Vec<ChunkKey> {
        let mut keys: Vec<ChunkKey> = self.running_lock().keys().copied().collect();
        keys.extend(
            self.lock().iter().map(|h| ChunkKey { job: h.request.job, chunk: h.request.chunk }),
        );
        keys.sort_unstable();
        keys.dedup();
        keys.truncate(MAX_HOLDING);
        keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<HeldResult>> {
        self.results.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn running_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ChunkKey, usize>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A session, while it lasts ([`Held::session`]).
pub struct Session<'a>(&'a Held);

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.0.connected.send_replace(false);
    }
}

/// A chunk's stream, counted in [`Held::holding`] while it lives.
pub struct Running<'a> {
    held: &'a Held,
    key: ChunkKey,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = self.held.running_lock();
        if let Some(n) = running.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.key);
            }
        }
    }
}

/// How long to wait for a delivery stream to open before keeping the result for the next
/// session, and for the coordinator to take a command chunk's units once sent.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers every held result on `conn`, one stream each; what cannot be sent is held again
/// (until its lease ends).
pub async fn deliver(held: &Held, conn: &quinn::Connection, lease: Duration) {
    for (request, output) in held.take(Instant::now()) {
        let output = match output {
            Output::Kernel(output) => match deliver_output(conn, &request, &output).await {
                Ok(()) => continue,
                Err(_) => Output::Kernel(output),
            },
            Output::Units(mut units) => match deliver_units(conn, &request, &mut units).await {
                Err(Unsent::Lost) => Output::Units(units),
                Ok(()) | Err(Unsent::Reset) => continue,
                Err(Unsent::Failed(e)) => {
                    let (job, chunk) = (request.job, request.chunk);
                    tracing::warn!("dropped the units of chunk {chunk} of job {job}: {e}");
                    continue;
                }
            },
        };
        held.add(request, output, Instant::now() + lease);
    }
}

async fn deliver_output(
    conn: &quinn::Connection,
    request: &ChunkRequest,
    output: &ChunkOutput,
) -> anyhow::Result<()> {
    let (send, _recv) = tokio::time::timeout(OPEN_TIMEOUT, conn.open_bi()).await??;
    let mut writer = MessageWriter::new(send);
    let message = WorkerOpen::Deliver { request: request.clone(), output: output.clone() };
    writer.send(&message).await?;
    writer.get_mut().finish()?;
    Ok(())
}

/// Sends a command chunk's units on a stream of their own; done once the coordinator has
/// finished its side (it took them) or stopped the stream (it wants none of them).
async fn deliver_units(
    conn: &quinn::Connection,
    request: &ChunkRequest,
    units: &mut Kept,
) -> Result<(), Unsent> {
    let opened = tokio::time::timeout(OPEN_TIMEOUT, conn.open_bi()).await;
    let (send, recv) = opened.map_err(|_| Unsent::Lost)?.map_err(|_| Unsent::Lost)?;
    let (mut writer, mut reader) = (MessageWriter::new(send), proto::MessageReader::new(recv));
    writer.send(&WorkerOpen::DeliverUnits { request: request.clone() }).await?;
    units.send(&mut writer).await?;
    crate::exec::finished::end(&mut writer, &mut reader, OPEN_TIMEOUT).await
}

/// Tells the coordinator, as a session starts, which chunks this worker still runs or holds
/// (`holding`, from [`Held::holding`]).
pub async fn tell_holding(holding: Vec<ChunkKey>, conn: quinn::Connection) {
    let sent = async {
        let (send, _recv) = tokio::time::timeout(OPEN_TIMEOUT, conn.open_bi()).await??;
        let mut writer = MessageWriter::new(send);
        writer.send(&WorkerOpen::Holding(holding)).await?;
        writer.get_mut().finish()?;
        anyhow::Ok(())
    };
    if let Err(e) = sent.await {
        tracing::debug!("could not tell the coordinator which chunks this worker holds: {e:#}");
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
        assert_eq!(taken.len(), 1, "the second's lease ended");
        assert!(matches!(&taken[0], (r, Output::Kernel(o)) if *r == request(1) && *o == output));
        assert!(held.is_empty(), "taken results are no longer held");
        assert!(held.take(now).is_empty());
    }

    #[test]
    fn holding_names_chunks_running_and_held_once_each() {
        let (held, now) = (Held::default(), Instant::now());
        let key = |job, chunk| ChunkKey { job, chunk };
        let first = held.running(key(7, 3));
        let second = held.running(key(7, 3));
        let other = held.running(key(2, 0));
        held.hold(request(1), ChunkOutput::Pi { inside: 8 }, now + Duration::from_secs(60));
        assert_eq!(held.holding(), [key(2, 0), key(7, 1), key(7, 3)]);
        drop((first, other));
        assert_eq!(held.holding(), [key(7, 1), key(7, 3)], "one stream of 7/3 still runs");
        drop(second);
        held.take(now);
        assert!(held.holding().is_empty());
    }
}
