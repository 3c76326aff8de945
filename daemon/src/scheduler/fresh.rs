//! A job's fresh chunks (never started), and where each would rather run: *locality*.
//!
//! A chunk whose units' input files a member's cache already holds (it ran them before, or
//! they were sent to it ahead) costs nothing to send there and their whole size anywhere
//! else. So a free slot takes, first, a chunk whose files its worker holds; then one whose
//! files no connected worker holds, in order; and only then one another worker holds, the
//! last of that worker's (its own next ones stay where they are). No slot idles while a chunk
//! waits: the preference only chooses among the chunks a slot could run.
//!
//! Without homes (most jobs: kernels, commands over no files, a first run) the chunks go in
//! index order and nothing is held per chunk: a job of 10^10 units costs two numbers here.

use super::ChunkIndex;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Where a job's units' input files already are: for each member, the units (of the phase,
/// counted from 0) whose files its cache holds, as far as the coordinator knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Homes(pub BTreeMap<String, Vec<u64>>);

impl Homes {
    /// No unit has a home: chunks go in order.
    pub fn none() -> Self {
        Homes::default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }

    /// Each chunk's home, for chunks of `chunk_units` units: the member holding the most of
    /// its units' files (on a tie, the first by name); chunks none of whose units has one are
    /// left out.
    fn of_chunks(&self, chunk_units: u64, chunks: ChunkIndex) -> HashMap<ChunkIndex, String> {
        let mut counts: HashMap<ChunkIndex, BTreeMap<&str, u64>> = HashMap::new();
        for (member, units) in &self.0 {
            for &unit in units {
                let Ok(chunk) = ChunkIndex::try_from(unit / chunk_units.max(1)) else { continue };
                if chunk < chunks {
                    *counts.entry(chunk).or_default().entry(member).or_default() += 1;
                }
            }
        }
        let most = |members: BTreeMap<&str, u64>| {
            let best = members.values().copied().max().unwrap_or(0);
            members.into_iter().find(|&(_, n)| n == best).map(|(m, _)| m.to_string())
        };
        counts.into_iter().filter_map(|(chunk, members)| Some((chunk, most(members)?))).collect()
    }
}

/// The chunks of a job's phase not started yet. Held sparsely: two numbers for the chunks in
/// order, plus an entry for each chunk started out of order or with a home.
#[derive(Debug)]
pub struct Fresh {
    /// Every chunk before it was started; it was not.
    next: ChunkIndex,
    end: ChunkIndex,
    /// Chunks after `next` started out of order.
    taken: BTreeSet<ChunkIndex>,
    /// Fresh chunks whose files a member holds, by member, and the member of each.
    homes: BTreeMap<String, BTreeSet<ChunkIndex>>,
    home_of: HashMap<ChunkIndex, String>,
    /// No fresh chunk before it is without a home (chunks only ever gain a home or start: it
    /// only moves forward), so the first one without is found in time linear in the job.
    unhomed_from: Cell<ChunkIndex>,
}

impl Fresh {
    /// Chunks `next..end`, in order.
    pub fn in_order(next: ChunkIndex, end: ChunkIndex) -> Self {
        Fresh {
            next,
            end,
            taken: BTreeSet::new(),
            homes: BTreeMap::new(),
            home_of: HashMap::new(),
            unhomed_from: Cell::new(next),
        }
    }

    /// Chunks `0..end` of `chunk_units` units each, going where `homes` says their files are.
    pub fn placed(end: ChunkIndex, chunk_units: u64, homes: &Homes) -> Self {
        let mut fresh = Fresh::in_order(0, end);
        for (chunk, member) in homes.of_chunks(chunk_units, end) {
            fresh.home(chunk, &member);
        }
        fresh
    }

    /// Whether `chunk` was never started.
    pub fn contains(&self, chunk: ChunkIndex) -> bool {
        (self.next..self.end).contains(&chunk) && !self.taken.contains(&chunk)
    }

    /// How many chunks were never started.
    pub fn len(&self) -> u64 {
        u64::from(self.end.saturating_sub(self.next)) - self.taken.len() as u64
    }

    /// Whether some fresh chunk has a home: then chunks go by where their files are.
    pub fn has_homes(&self) -> bool {
        !self.home_of.is_empty()
    }

    /// The first fresh chunk, by index.
    pub fn first(&self) -> Option<ChunkIndex> {
        (self.next < self.end).then_some(self.next)
    }

    /// The first fresh chunk before `below` whose files `member` holds.
    pub fn first_at(&self, member: &str, below: ChunkIndex) -> Option<ChunkIndex> {
        self.homes.get(member)?.first().copied().filter(|&c| c < below)
    }

    /// The first fresh chunk before `below` whose files no member in `present` holds.
    pub fn first_unhomed(
        &self,
        present: impl Fn(&str) -> bool,
        below: ChunkIndex,
    ) -> Option<ChunkIndex> {
        let mut from = self.unhomed_from.get().max(self.next);
        while from < self.end && (self.taken.contains(&from) || self.home_of.contains_key(&from)) {
            from += 1;
        }
        self.unhomed_from.set(from);
        let nobodys = (from < self.end).then_some(from);
        let away = self.homes.iter().filter(|(member, _)| !present(member));
        let absent = away.filter_map(|(_, set)| set.first().copied()).min();
        nobodys.into_iter().chain(absent).min().filter(|&c| c < below)
    }

    /// The chunk a worker that holds none of the fresh chunks' files takes, before `below`:
    /// the first one whose files no member in `present` holds, or else the last one of the
    /// member holding the most.
    pub fn first_elsewhere(
        &self,
        present: impl Fn(&str) -> bool,
        below: ChunkIndex,
    ) -> Option<ChunkIndex> {
        if let Some(chunk) = self.first_unhomed(present, below) {
            return Some(chunk);
        }
        // Counted inside the window only when there is one (it is short): a whole set's
        // count is its length, so a job of many homed chunks pays no scan per steal.
        let inside = |set: &BTreeSet<ChunkIndex>| match below {
            ChunkIndex::MAX => set.len(),
            _ => set.range(..below).count(),
        };
        let busiest = self.homes.values().max_by_key(|set| inside(set))?;
        busiest.range(..below).next_back().copied()
    }

    /// Gives fresh chunk `chunk` the home `member` (its files were sent there ahead).
    pub fn home(&mut self, chunk: ChunkIndex, member: &str) {
        if !self.contains(chunk) {
            return;
        }
        self.unhome(chunk);
        self.homes.entry(member.to_string()).or_default().insert(chunk);
        self.home_of.insert(chunk, member.to_string());
    }

    /// Marks `chunk` started (a chunk that is not fresh is left alone).
    pub fn take(&mut self, chunk: ChunkIndex) {
        if !self.contains(chunk) {
            return;
        }
        self.unhome(chunk);
        if chunk != self.next {
            self.taken.insert(chunk);
            return;
        }
        self.next += 1;
        while self.taken.remove(&self.next) {
            self.next += 1;
        }
    }

    fn unhome(&mut self, chunk: ChunkIndex) {
        let Some(member) = self.home_of.remove(&chunk) else { return };
        if let Some(set) = self.homes.get_mut(&member) {
            set.remove(&chunk);
            if set.is_empty() {
                self.homes.remove(&member);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn homes(of: &[(&str, &[u64])]) -> Homes {
        Homes(of.iter().map(|(m, units)| (m.to_string(), units.to_vec())).collect())
    }

    #[test]
    fn without_homes_chunks_go_in_order_and_one_taken_early_is_skipped() {
        let mut fresh = Fresh::placed(4, 1, &Homes::none());
        assert!(!fresh.has_homes());
        assert_eq!((fresh.first(), fresh.first_at("a", 4), fresh.len()), (Some(0), None, 4));
        assert_eq!(fresh.first_elsewhere(|_| true, 4), Some(0));
        fresh.take(2); // out of order
        assert_eq!((fresh.first(), fresh.len()), (Some(0), 3));
        assert!(fresh.contains(0) && fresh.contains(1) && !fresh.contains(2));
        fresh.take(0);
        fresh.take(0);
        fresh.take(9);
        assert_eq!((fresh.first(), fresh.len()), (Some(1), 2));
        assert_eq!(fresh.first_elsewhere(|_| true, 1), None, "outside the window");
        fresh.take(1);
        assert_eq!((fresh.first(), fresh.len()), (Some(3), 1), "2 was taken: skipped");
        assert_eq!(fresh.first_unhomed(|_| true, 4), Some(3));
        fresh.take(3);
        assert_eq!((fresh.first(), fresh.len()), (None, 0));
        assert_eq!(fresh.first_unhomed(|_| true, 4), None);
        let resumed = Fresh::in_order(2, 5);
        assert!(!resumed.contains(1) && resumed.contains(2) && !resumed.contains(5));
        assert_eq!(resumed.len(), 3);
    }

    #[test]
    fn a_chunk_sent_ahead_gets_a_home_and_the_first_without_one_moves_on() {
        let mut fresh = Fresh::in_order(0, 5);
        assert_eq!(fresh.first_unhomed(|_| true, 5), Some(0));
        fresh.home(0, "a");
        fresh.home(1, "b");
        assert!(fresh.has_homes());
        assert_eq!(fresh.first_unhomed(|_| true, 5), Some(2));
        assert_eq!(fresh.first_unhomed(|m| m != "a", 5), Some(0), "a is gone: 0 is anybody's");
        fresh.home(1, "a"); // sent ahead to another: moved
        assert_eq!((fresh.first_at("a", 5), fresh.first_at("b", 5)), (Some(0), None));
        fresh.take(0);
        assert_eq!(fresh.first_at("a", 5), Some(1));
        fresh.home(0, "b"); // started already: no home
        assert_eq!(fresh.first_at("b", 5), None);
        fresh.take(1);
        assert!(!fresh.has_homes());
        assert_eq!((fresh.first(), fresh.first_unhomed(|_| true, 5)), (Some(2), Some(2)));
    }

    #[test]
    fn a_chunk_goes_home_first_then_unhomed_ones_then_the_last_of_another() {
        // Units 0..6, chunks of one: a holds 0, 2, 4; b holds 1, 3; 5 is nobody's.
        let mut fresh = Fresh::placed(6, 1, &homes(&[("a", &[0, 2, 4]), ("b", &[1, 3])]));
        assert!(fresh.has_homes());
        assert_eq!(fresh.first_at("a", 6), Some(0));
        assert_eq!(fresh.first_at("b", 6), Some(1));
        assert_eq!(fresh.first_at("b", 1), None, "the window ends before b's");
        assert_eq!(fresh.first_at("c", 6), None);
        assert_eq!(fresh.first_elsewhere(|_| true, 6), Some(5), "nobody's first");
        // A member not connected holds nothing that counts: its chunks are anybody's.
        assert_eq!(fresh.first_elsewhere(|m| m == "a", 6), Some(1));
        fresh.take(5);
        // Then the last of the member holding the most (a's next ones stay a's).
        assert_eq!(fresh.first_elsewhere(|_| true, 6), Some(4));
        assert_eq!(fresh.first_elsewhere(|_| true, 4), Some(3), "b holds more below 4");
        for chunk in [0, 2, 4] {
            fresh.take(chunk);
        }
        assert_eq!(fresh.first_at("a", 6), None);
        assert_eq!((fresh.first(), fresh.len()), (Some(1), 2));
        assert!(fresh.contains(3) && !fresh.contains(4) && !fresh.contains(5));
        fresh.take(1);
        fresh.take(3);
        assert_eq!((fresh.first(), fresh.len()), (None, 0));
        assert_eq!(fresh.first_elsewhere(|_| true, 6), None);
    }

    #[test]
    fn a_chunk_of_several_units_goes_where_most_of_its_files_are() {
        let homes = homes(&[("a", &[0, 1, 5]), ("b", &[2, 4, 3]), ("c", &[6, 99])]);
        let chunks = homes.of_chunks(3, 3);
        assert_eq!(chunks.get(&0).map(String::as_str), Some("a"), "two of three");
        assert_eq!(chunks.get(&1).map(String::as_str), Some("b"));
        assert_eq!(chunks.get(&2).map(String::as_str), Some("c"), "unit 99 is past the end");
        let tie = Homes(BTreeMap::from([("b".into(), vec![0]), ("a".into(), vec![1])]));
        assert_eq!(tie.of_chunks(2, 1).get(&0).map(String::as_str), Some("a"));
        assert!(!homes.is_empty() && Homes(BTreeMap::from([("a".into(), vec![])])).is_empty());
    }
}
