//! What a `cmd` job's units printed, on its way to the client: each counted chunk's spool file
//! (its units' reports, stdout, stderr and results, written by the chunk's stream as they
//! came), handed out as numbered deliveries, as chunks finish or in input order.
//!
//! Sans-IO: the outbox holds paths and says which spool files nobody will read again; the
//! coordinator's API reads and removes them. A client asking for delivery `n` has everything
//! before it: those are let go. In input order (`--keep-order`), chunks that finished early
//! wait for the ones before them, and the scheduler runs only [`SERIES_WINDOW`] chunks past
//! the last one delivered, so what waits is bounded however slow the client.

use crate::scheduler::ChunkIndex;
use crate::tasks::series::SERIES_WINDOW;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One counted chunk's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub spool: PathBuf,
    /// Its first unit's place among the units the job runs (from 0), and how many.
    pub first_unit: u64,
    pub units: u64,
    /// What its units printed and left as results, in bytes: what it holds of the spool.
    pub bytes: u64,
}

/// A job's deliveries.
#[derive(Debug)]
pub struct Outbox {
    keep_order: bool,
    /// Finished chunks waiting for earlier units (in input order only), by first unit.
    waiting: BTreeMap<u64, (ChunkIndex, Delivery)>,
    /// In input order: the first unit not yet delivered.
    next_unit: u64,
    /// Deliveries not yet let go; the first is number `base`.
    ready: VecDeque<Delivery>,
    base: u64,
    /// The chunk (of the current phase) of the last delivery in input order: the window.
    delivered_chunk: Option<ChunkIndex>,
    /// Set when a phase starts: chunk indices count from 0 again.
    phase_base_unit: u64,
    last_asked: Option<Instant>,
    /// Deliveries added so far, and the last.
    added: u64,
    last_added: Option<Delivery>,
    /// Bytes of the deliveries not let go.
    bytes: u64,
}

/// What asking for delivery `n` gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    Ready(Delivery),
    /// Not yet: it may come.
    NotYet,
    /// Let go before: the client asked for a later one.
    Gone,
}

impl Outbox {
    pub fn new(keep_order: bool) -> Self {
        Outbox {
            keep_order,
            waiting: BTreeMap::new(),
            next_unit: 0,
            ready: VecDeque::new(),
            base: 0,
            delivered_chunk: None,
            phase_base_unit: 0,
            last_asked: None,
            added: 0,
            last_added: None,
            bytes: 0,
        }
    }

    /// A new phase starts at unit `first_unit`: its chunks count from 0.
    pub fn phase_started(&mut self, first_unit: u64) {
        self.phase_base_unit = first_unit;
        self.delivered_chunk = None;
    }

    /// Chunk `chunk` of the current phase was counted.
    pub fn add(&mut self, chunk: ChunkIndex, delivery: Delivery) {
        self.added += 1;
        self.bytes += delivery.bytes;
        self.last_added = Some(delivery.clone());
        if !self.keep_order {
            self.ready.push_back(delivery);
            return;
        }
        self.waiting.insert(delivery.first_unit, (chunk, delivery));
        while let Some(entry) = self.waiting.first_entry() {
            if *entry.key() != self.next_unit {
                break;
            }
            let (chunk, delivery) = entry.remove();
            self.next_unit = delivery.first_unit + delivery.units;
            if delivery.first_unit >= self.phase_base_unit {
                self.delivered_chunk = Some(chunk);
            }
            self.ready.push_back(delivery);
        }
    }

    /// The job ended: what waited for units that will never run is delivered as it is.
    pub fn flush(&mut self) {
        let waiting = std::mem::take(&mut self.waiting);
        self.ready.extend(waiting.into_values().map(|(_, delivery)| delivery));
    }

    /// Delivery `n`, asked for at `now`, and the spool files of those before it, which the
    /// client has: nobody reads them again.
    pub fn take(&mut self, n: u64, now: Instant) -> (Take, Vec<PathBuf>) {
        self.last_asked = Some(now);
        if n < self.base {
            return (Take::Gone, vec![]);
        }
        let done = usize::try_from(n - self.base).unwrap_or(usize::MAX).min(self.ready.len());
        let gone: Vec<Delivery> = self.ready.drain(..done).collect();
        self.bytes -= gone.iter().map(|d| d.bytes).sum::<u64>();
        let let_go: Vec<PathBuf> = gone.into_iter().map(|d| d.spool).collect();
        self.base += let_go.len() as u64;
        // Those before `n` are gone: the front, if any, is delivery `n`.
        match self.ready.front() {
            Some(delivery) => (Take::Ready(delivery.clone()), let_go),
            None => (Take::NotYet, let_go),
        }
    }

    /// Every spool file held: the job's record is going.
    pub fn drain(&mut self) -> Vec<PathBuf> {
        self.flush();
        self.base += self.ready.len() as u64;
        self.bytes = 0;
        self.ready.drain(..).map(|d| d.spool).collect()
    }

    /// Bytes of the deliveries not let go: what the job holds of the spool.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// How many deliveries were added, and the last: what the journal keeps of each.
    pub fn added(&self) -> (u64, Option<&Delivery>) {
        (self.added, self.last_added.as_ref())
    }

    /// The spool files of every delivery not let go, ready or waiting.
    pub fn files(&self) -> impl Iterator<Item = &std::path::Path> {
        let waiting = self.waiting.values().map(|(_, delivery)| delivery);
        self.ready.iter().chain(waiting).map(|delivery| delivery.spool.as_path())
    }

    /// How many deliveries were handed out or are ready: the number the next one will have.
    pub fn count(&self) -> u64 {
        self.base + self.ready.len() as u64
    }

    /// In input order, only chunks of the current phase before this one may run.
    pub fn window(&self) -> Option<ChunkIndex> {
        self.keep_order.then(|| {
            let next = self.delivered_chunk.map_or(0, |c| c.saturating_add(1));
            next.saturating_add(SERIES_WINDOW)
        })
    }

    /// Whether deliveries wait for a client that asked for none during `limit` (counted from
    /// `since`, the job's start, before its first request).
    pub fn abandoned(&self, since: Instant, now: Instant, limit: Duration) -> bool {
        let since = self.last_asked.unwrap_or(since);
        !self.ready.is_empty() && now.saturating_duration_since(since) > limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(first_unit: u64, units: u64) -> Delivery {
        Delivery { spool: format!("s{first_unit}").into(), first_unit, units, bytes: units * 10 }
    }

    #[test]
    fn as_units_finish_deliveries_are_numbered_as_they_come_and_let_go_once_read() {
        let (mut outbox, now) = (Outbox::new(false), Instant::now());
        assert_eq!(outbox.window(), None);
        assert_eq!(outbox.take(0, now), (Take::NotYet, vec![]));
        outbox.add(3, delivery(30, 10));
        outbox.add(0, delivery(0, 10));
        assert_eq!(outbox.count(), 2);
        assert_eq!(outbox.take(0, now), (Take::Ready(delivery(30, 10)), vec![]));
        assert_eq!(outbox.take(0, now), (Take::Ready(delivery(30, 10)), vec![]), "asked again");
        assert_eq!(outbox.take(1, now), (Take::Ready(delivery(0, 10)), vec!["s30".into()]));
        assert_eq!(outbox.take(2, now), (Take::NotYet, vec!["s0".into()]));
        assert_eq!(outbox.take(0, now), (Take::Gone, vec![]));
        assert_eq!(outbox.take(5, now), (Take::NotYet, vec![]), "not yet, and nothing to let go");
        outbox.add(1, delivery(10, 10));
        assert_eq!(outbox.take(2, now).0, Take::Ready(delivery(10, 10)));
        assert_eq!(outbox.drain(), vec![PathBuf::from("s10")]);
        assert_eq!(outbox.count(), 3);
    }

    #[test]
    fn in_input_order_a_chunk_waits_for_those_before_it_within_a_window() {
        let (mut outbox, now) = (Outbox::new(true), Instant::now());
        assert_eq!(outbox.window(), Some(SERIES_WINDOW));
        // A probe phase of units 0..2, then the rest from unit 2 in chunks of 4.
        outbox.add(1, delivery(1, 1));
        assert_eq!(outbox.take(0, now).0, Take::NotYet, "unit 0 comes first");
        outbox.add(0, delivery(0, 1));
        assert_eq!(outbox.window(), Some(2 + SERIES_WINDOW));
        outbox.phase_started(2);
        assert_eq!(outbox.window(), Some(SERIES_WINDOW), "chunks count from 0 again");
        outbox.add(1, delivery(6, 4));
        assert_eq!(outbox.take(0, now).0, Take::Ready(delivery(0, 1)));
        assert_eq!(outbox.take(1, now).0, Take::Ready(delivery(1, 1)));
        assert_eq!(outbox.take(2, now).0, Take::NotYet);
        assert_eq!(outbox.window(), Some(SERIES_WINDOW));
        outbox.add(0, delivery(2, 4));
        assert_eq!(outbox.window(), Some(2 + SERIES_WINDOW));
        assert_eq!(outbox.take(2, now).0, Take::Ready(delivery(2, 4)));
        assert_eq!(outbox.take(3, now).0, Take::Ready(delivery(6, 4)));
        // A halted job: what waits behind a unit that never ran is delivered at the end.
        outbox.add(3, delivery(14, 4));
        assert_eq!(outbox.take(4, now).0, Take::NotYet);
        outbox.flush();
        assert_eq!(outbox.take(4, now).0, Take::Ready(delivery(14, 4)));
    }

    #[test]
    fn an_outbox_whose_client_stops_asking_is_abandoned() {
        let (mut outbox, start) = (Outbox::new(false), Instant::now());
        let limit = Duration::from_secs(180);
        let later = start + limit + Duration::from_secs(1);
        assert!(!outbox.abandoned(start, later, limit), "nothing waits");
        outbox.add(0, delivery(0, 1));
        assert!(!outbox.abandoned(start, start + limit, limit));
        assert!(outbox.abandoned(start, later, limit));
        outbox.take(0, later);
        assert!(!outbox.abandoned(start, later + limit, limit), "it asked");
    }
}
