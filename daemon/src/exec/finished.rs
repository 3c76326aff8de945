//! Units that ran on a worker, their output waiting in their directories, and how it goes to
//! the coordinator: on the chunk's own stream, or, when that stream's connection was lost,
//! later on a stream of the next session ([`Kept`]).
//!
//! A chunk keeps every unit's directory until the coordinator has taken the whole chunk, so
//! that a connection lost before then (the coordinator restarting) costs no unit a second run:
//! the chunk is kept whole and delivered again.

use super::process::UnitDir;
use super::results::Listing;
use proto::command::UnitReport;
use proto::pieces::{self, SendError, PIECE};
use proto::wire::{ChunkData, CmdMessage};
use proto::{FrameError, MessageReader, MessageWriter};
use quinn::{RecvStream, SendStream};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Unit directories kept between chunks, emptied: a chunk takes one per unit from here and
/// gives them back when the coordinator has its output, so a short chunk makes none (on ext4,
/// making a directory costs more than running `true`; `tests/bench/commands.sh` measures it).
#[derive(Debug, Default)]
pub struct DirPool {
    idle: std::sync::Mutex<Vec<UnitDir>>,
}

/// The most directories kept idle; more are removed. A chunk holds one per unit (at most
/// [`proto::command::spec::MAX_CHUNK_UNITS`]) and one more: enough for a few slots' chunks.
const IDLE_DIRS: usize = 4 * proto::command::spec::MAX_CHUNK_UNITS as usize;

impl DirPool {
    /// An idle directory, or a new one under `parent`, lent until dropped.
    pub fn lend(self: &Arc<Self>, parent: &Path) -> std::io::Result<Lent> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let dir = idle.map_or_else(|| UnitDir::create(parent, "unit-"), Ok)?;
        Ok(Lent { dir: Some(dir), pool: self.clone() })
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

/// A directory lent by the pool, given back (emptied) when dropped.
#[derive(Debug)]
pub struct Lent {
    dir: Option<UnitDir>,
    pool: Arc<DirPool>,
}

impl std::ops::Deref for Lent {
    type Target = UnitDir;

    fn deref(&self) -> &UnitDir {
        self.dir.as_ref().expect("a lent directory is held until dropped")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            self.pool.give(dir);
        }
    }
}

/// A unit that ran, its output waiting in its directory.
#[derive(Debug)]
pub struct Finished {
    pub dir: Lent,
    pub report: UnitReport,
    /// What it left under `$MARMOT_OUT`, if its job keeps results.
    pub results: Option<Listing>,
}

/// Why a unit's output did not go.
#[derive(Debug, PartialEq, Eq)]
pub enum Unsent {
    /// The connection was lost (the coordinator restarting, a network gone): the coordinator
    /// is not done with the chunk, and may be back.
    Lost,
    /// The coordinator reset the stream: it wants nothing more of the chunk.
    Reset,
    /// This worker cannot read what it was to send, in these words.
    Failed(String),
}

impl From<FrameError> for Unsent {
    fn from(e: FrameError) -> Self {
        match is_lost(&e) {
            true => Unsent::Lost,
            false => Unsent::Reset,
        }
    }
}

/// Whether a stream's `error` is its connection lost by the coordinator's side (it closed,
/// restarted, or stopped answering), rather than the stream reset or stopped by it, a bad
/// message, or this worker closing the connection (stopping, updating: its units stop).
pub fn is_lost(error: &FrameError) -> bool {
    use quinn::{ConnectionError, ReadError, WriteError};
    let FrameError::Io(e) = error else { return false };
    let Some(inner) = e.get_ref() else { return false };
    let connection = match (inner.downcast_ref::<ReadError>(), inner.downcast_ref::<WriteError>()) {
        (Some(ReadError::ConnectionLost(c)), _) | (_, Some(WriteError::ConnectionLost(c))) => c,
        _ => return false,
    };
    !matches!(connection, ConnectionError::LocallyClosed)
}

impl Finished {
    /// Sends the unit's report, then its stdout, stderr and results.
    pub async fn send(&mut self, writer: &mut MessageWriter<SendStream>) -> Result<(), Unsent> {
        let Finished { dir, report, results } = self;
        writer.send(&CmdMessage::Unit(report.clone())).await?;
        send_file(writer, &dir.stdout(), report.stdout).await?;
        send_file(writer, &dir.stderr(), report.stderr).await?;
        if report.results > 0 {
            // Listed again if it went once already (packing it takes the listing).
            let listing = match results.take() {
                Some(listing) => Some(listing),
                None => list(&dir.out()).await?,
            };
            match listing {
                Some(listing) if listing.size == report.results => {
                    send_results(writer, listing).await?
                }
                _ => {
                    return Err(Unsent::Failed(
                        "a unit's $MARMOT_OUT changed after it ended".into(),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// A whole chunk's units, kept through a lost connection until a later session delivers them
/// (or the lease ends, and they are dropped, their directories given back).
#[derive(Debug)]
pub struct Kept(pub Vec<Finished>);

impl Kept {
    /// Sends every unit, in order, then the chunk's end ([`CmdMessage::Done`]).
    pub async fn send(&mut self, writer: &mut MessageWriter<SendStream>) -> Result<(), Unsent> {
        for unit in &mut self.0 {
            unit.send(writer).await?;
        }
        writer.send(&CmdMessage::Done).await?;
        Ok(())
    }
}

/// Ends a chunk's stream from the worker's side and waits, `within` at most, for the
/// coordinator to finish its own, which it does once it has read everything and its journal
/// keeps the chunk's count: the chunk is taken then (counted or not). A reset or a stop is a refusal; no answer in time counts as
/// a lost connection (the chunk is kept for another try).
pub async fn end(
    writer: &mut MessageWriter<SendStream>,
    reader: &mut MessageReader<RecvStream>,
    within: std::time::Duration,
) -> Result<(), Unsent> {
    writer.get_mut().finish().map_err(|_| Unsent::Reset)?;
    match tokio::time::timeout(within, reader.recv::<ChunkData>()).await {
        Ok(Ok(None)) => Ok(()),
        Ok(Ok(Some(_))) => Err(Unsent::Reset),
        Ok(Err(e)) => Err(Unsent::from(e)),
        Err(_) => Err(Unsent::Lost),
    }
}

/// What a unit left under `$MARMOT_OUT` (`out`), or `None` if nothing.
pub async fn list(out: &Path) -> Result<Option<Listing>, Unsent> {
    let out = out.to_path_buf();
    tokio::task::spawn_blocking(move || Listing::of(&out))
        .await
        .map_err(|e| Unsent::Failed(e.to_string()))?
        .map_err(|e| Unsent::Failed(format!("cannot pack $MARMOT_OUT: {e}")))
}

/// Sends `size` bytes of `path` as [`CmdMessage::Data`] pieces.
async fn send_file(
    writer: &mut MessageWriter<SendStream>,
    path: &Path,
    size: u64,
) -> Result<(), Unsent> {
    pieces::send_file::<CmdMessage, _>(writer, path, 0, size).await.map_err(|e| match e {
        SendError::Read { source, .. } => {
            Unsent::Failed(format!("cannot read a unit's output: {source}"))
        }
        SendError::Send(e) => Unsent::from(e),
    })
}

/// Sends the unit's results as [`CmdMessage::Data`] pieces, packed by a blocking task as they
/// go: at most [`RESULT_PIECES`] packed pieces wait to be sent.
async fn send_results(
    writer: &mut MessageWriter<SendStream>,
    results: Listing,
) -> Result<(), Unsent> {
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
        Ok(()) => Err(Unsent::Failed(format!(
            "$MARMOT_OUT packed to {sent} bytes, not the {size} announced"
        ))),
        Err(e) => Err(Unsent::Failed(format!("cannot pack $MARMOT_OUT: {e}"))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_lent_emptied_and_kept_between_chunks_up_to_a_bound() {
        let parent = tempfile::tempdir().unwrap();
        let pool = Arc::new(DirPool::default());
        let dir = pool.lend(parent.path()).unwrap();
        let work = dir.work();
        std::fs::write(dir.out().join("x"), "x").unwrap();
        drop(dir);
        assert_eq!(pool.idle(), 1, "given back when the chunk lets it go");
        let again = pool.lend(parent.path()).unwrap();
        assert_eq!((again.work(), pool.idle()), (work, 0), "the same dir, lent again");
        assert_eq!(std::fs::read_dir(again.out()).unwrap().count(), 0, "emptied");
        let many: Vec<Lent> =
            (0..IDLE_DIRS + 2).map(|_| pool.lend(parent.path()).unwrap()).collect();
        drop(many);
        drop(again);
        assert_eq!(pool.idle(), IDLE_DIRS);
        let left = std::fs::read_dir(parent.path()).unwrap().count();
        assert_eq!(left, IDLE_DIRS, "the ones not kept are removed");
    }

    #[test]
    fn only_a_connection_lost_on_the_coordinators_side_is_lost() {
        use quinn::{ConnectionError, ReadError, VarInt, WriteError};
        let read = |e: ReadError| FrameError::Io(e.into());
        let write = |e: WriteError| FrameError::Io(e.into());
        let timed_out = || ConnectionError::TimedOut;
        assert_eq!(Unsent::from(read(ReadError::ConnectionLost(timed_out()))), Unsent::Lost);
        assert_eq!(Unsent::from(write(WriteError::ConnectionLost(timed_out()))), Unsent::Lost);
        assert!(is_lost(&read(ReadError::ConnectionLost(ConnectionError::Reset))));
        let here = ReadError::ConnectionLost(ConnectionError::LocallyClosed);
        assert_eq!(Unsent::from(read(here)), Unsent::Reset, "this worker closed it");
        let reset = ReadError::Reset(VarInt::from_u32(1));
        assert_eq!(Unsent::from(read(reset)), Unsent::Reset, "the coordinator cancelled it");
        assert_eq!(Unsent::from(write(WriteError::Stopped(VarInt::from_u32(1)))), Unsent::Reset);
        assert!(!is_lost(&write(WriteError::ClosedStream)));
        let bare = FrameError::Io(std::io::Error::from(std::io::ErrorKind::NotConnected));
        assert!(!is_lost(&bare));
        assert!(!is_lost(&FrameError::Malformed("x".into())));
    }
}
