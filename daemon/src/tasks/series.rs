//! Results a client takes chunk by chunk, in order (freefall heights, sweep rows), held on the
//! coordinator only within a window.
//!
//! The scheduler runs only chunks before [`Series::window`]; each chunk taken moves the window
//! one on. What waits for a slow client is thus at most [`SERIES_WINDOW`] chunks, however long
//! the series.

use crate::scheduler::ChunkIndex;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Chunks of a series a client may be behind by: what the coordinator holds for it is at most
/// this many chunks' results (8 MiB of heights), however long the series.
pub const SERIES_WINDOW: ChunkIndex = 16;

/// Chunk results held for the client of a series job.
#[derive(Default)]
pub struct Series {
    /// Reduced chunks not yet taken: index → (first unit, values).
    held: BTreeMap<ChunkIndex, (u64, Vec<f64>)>,
    /// Every chunk before this one was taken (or skipped by the client).
    taken: ChunkIndex,
    /// When the client last asked for a chunk.
    last_asked: Option<Instant>,
}

/// A chunk of a series, as the client takes it.
pub struct TakenChunk {
    pub first_unit: u64,
    pub values: Vec<f64>,
}

/// Why a chunk cannot be taken.
#[derive(Debug, PartialEq, Eq)]
pub enum TakeError {
    /// Taken before: a series goes to one client.
    AlreadyTaken,
}

impl Series {
    /// Holds chunk `chunk` (from unit `start`) for the client, unless it is past taking.
    pub fn hold(&mut self, chunk: ChunkIndex, start: u64, values: Vec<f64>) {
        if chunk >= self.taken {
            self.held.insert(chunk, (start, values));
        }
    }

    /// Takes chunk `chunk` if it is held (`Ok(None)`: not yet); the client asked, now.
    pub fn take(
        &mut self,
        chunk: ChunkIndex,
        now: Instant,
    ) -> Result<Option<TakenChunk>, TakeError> {
        self.last_asked = Some(now);
        if chunk < self.taken {
            return Err(TakeError::AlreadyTaken);
        }
        let Some((first_unit, values)) = self.held.remove(&chunk) else { return Ok(None) };
        self.taken = chunk + 1;
        // Chunks before this one were skipped by the client: nobody will take them.
        self.held = self.held.split_off(&self.taken);
        Ok(Some(TakenChunk { first_unit, values }))
    }

    /// The client took every chunk before `taken` before the coordinator restarted: a
    /// resumed job goes on from there.
    pub fn resume_at(&mut self, taken: ChunkIndex) {
        self.taken = self.taken.max(taken);
        self.held = self.held.split_off(&self.taken);
    }

    /// Every chunk before this one was taken (or skipped by the client).
    pub fn taken(&self) -> ChunkIndex {
        self.taken
    }

    /// Only chunks before this index may run.
    pub fn window(&self) -> ChunkIndex {
        self.taken.saturating_add(SERIES_WINDOW)
    }

    /// Whether results wait for a client that asked for none during `limit` (counted from
    /// `since`, the job's start, before its first request).
    pub fn abandoned(&self, since: Instant, now: Instant, limit: Duration) -> bool {
        let since = self.last_asked.unwrap_or(since);
        !self.held.is_empty() && now.saturating_duration_since(since) > limit
    }

    /// Nobody will take what is held (the job failed or was cancelled).
    pub fn clear(&mut self) {
        self.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_handed_out_once_in_any_order_of_arrival() {
        let (mut series, now) = (Series::default(), Instant::now());
        assert_eq!(series.window(), SERIES_WINDOW);
        series.hold(1, 10, vec![1.0; 10]);
        assert!(series.take(0, now).unwrap().is_none(), "chunk 0 has not arrived");
        series.hold(0, 0, vec![1.0; 10]);
        assert_eq!(series.take(0, now).unwrap().unwrap().first_unit, 0);
        assert_eq!(series.take(0, now).err(), Some(TakeError::AlreadyTaken));
        let second = series.take(1, now).unwrap().unwrap();
        assert_eq!((second.first_unit, second.values.len()), (10, 10));
        assert_eq!(series.window(), 2 + SERIES_WINDOW);
        series.hold(0, 0, vec![2.0]);
        assert!(series.held.is_empty(), "a chunk past taking is not held again");
        // A client may skip ahead: what it skipped is let go.
        for k in 2..6 {
            series.hold(k, 10 * u64::from(k), vec![1.0]);
        }
        assert_eq!(series.take(4, now).unwrap().unwrap().first_unit, 40);
        assert_eq!(series.held.keys().copied().collect::<Vec<_>>(), [5]);
        assert_eq!(series.take(3, now).err(), Some(TakeError::AlreadyTaken));
        assert_eq!(series.window(), 5 + SERIES_WINDOW);
    }

    #[test]
    fn a_series_whose_client_stops_asking_is_abandoned() {
        let (mut series, start) = (Series::default(), Instant::now());
        let limit = Duration::from_secs(180);
        let later = start + limit + Duration::from_secs(1);
        assert!(!series.abandoned(start, later, limit), "nothing waits for the client yet");
        series.hold(0, 0, vec![1.0]);
        assert!(!series.abandoned(start, start, limit));
        assert!(series.abandoned(start, later, limit));
        // A client that keeps asking (for a chunk not there yet) is not gone.
        series.hold(2, 20, vec![1.0]);
        assert!(series.take(0, later).unwrap().is_some());
        assert!(series.take(1, later).unwrap().is_none());
        assert!(!series.abandoned(start, later + limit, limit));
        assert!(series.abandoned(start, later + limit + Duration::from_secs(1), limit));
        series.clear();
        assert!(!series.abandoned(start, later + limit * 2, limit), "nothing held");
    }
}
