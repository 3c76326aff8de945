//! What each member's cache of command files holds, as the coordinator knows it: every input
//! file a chunk took to it is there (the worker had it, or was sent it), the least recently
//! used out past the size of a worker's cache (`--file-cache`'s default), as the worker's own
//! cache does.
//!
//! A guess, for the scheduler's locality ([`crate::scheduler::Homes`]), never for what runs:
//! a worker asks for the files it lacks whatever this says, so a wrong guess costs one
//! transfer. Memory is bounded: as many files a member as a worker's cache holds by default.

use std::collections::{BTreeMap, HashMap};

/// Every member's remembered files.
#[derive(Debug)]
pub struct Holdings {
    members: HashMap<String, Held>,
    /// The bytes a member's cache holds at most.
    limit: u64,
    max_files: usize,
    /// Counts uses, all members together: the most recent use of a file is the highest.
    clock: u64,
}

#[derive(Debug, Default)]
struct Held {
    /// By SHA-256: size and last use.
    files: HashMap<String, (u64, u64)>,
    /// By last use: the SHA-256.
    by_use: BTreeMap<u64, String>,
    bytes: u64,
}

impl Holdings {
    /// Remembers, for each member, files of `limit` bytes and `max_files` files at most.
    pub fn new(limit: u64, max_files: usize) -> Self {
        Holdings { members: HashMap::new(), limit, max_files, clock: 0 }
    }

    /// Bounded as a worker's cache is by default (`--file-cache`).
    pub fn of_default_caches() -> Self {
        Holdings::new(crate::exec::cache::DEFAULT_LIMIT, crate::exec::cache::DEFAULT_FILES)
    }

    /// A chunk took file `sha256` of `size` bytes to `member`: its cache has it now.
    pub fn took(&mut self, member: &str, sha256: &str, size: u64) {
        if size > self.limit {
            return; // a worker's cache does not keep it either
        }
        self.clock += 1;
        let held = self.members.entry(member.to_string()).or_default();
        if let Some((old_size, old_use)) = held.files.insert(sha256.to_string(), (size, self.clock))
        {
            held.by_use.remove(&old_use);
            held.bytes -= old_size;
        }
        held.by_use.insert(self.clock, sha256.to_string());
        held.bytes += size;
        while held.bytes > self.limit || held.files.len() > self.max_files {
            let Some((_, oldest)) = held.by_use.pop_first() else { break };
            if let Some((size, _)) = held.files.remove(&oldest) {
                held.bytes -= size;
            }
        }
    }

    /// The member whose cache holds `sha256`, the one that used it last if several do.
    pub fn holder(&self, sha256: &str) -> Option<&str> {
        let uses = self.members.iter().filter_map(|(member, held)| {
            held.files.get(sha256).map(|&(_, used)| (used, member.as_str()))
        });
        uses.max().map(|(_, member)| member)
    }

    /// Whether nobody is known to hold anything.
    pub fn is_empty(&self) -> bool {
        self.members.values().all(|held| held.files.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_a_file_went_to_last_holds_it_until_its_cache_is_full() {
        let mut holdings = Holdings::new(100, 3);
        assert!(holdings.is_empty());
        assert_eq!(holdings.holder("f1"), None);
        holdings.took("a", "f1", 40);
        holdings.took("b", "f2", 40);
        assert!(!holdings.is_empty());
        assert_eq!((holdings.holder("f1"), holdings.holder("f2")), (Some("a"), Some("b")));
        holdings.took("b", "f1", 40);
        assert_eq!(holdings.holder("f1"), Some("b"), "both hold it: the last one");
        // a: f1 (40) then f3 (40) then f4 (40): 120 > 100, f1 goes; f3 used again stays.
        holdings.took("a", "f3", 40);
        holdings.took("a", "f3", 40);
        holdings.took("a", "f4", 40);
        let held = |holdings: &Holdings, name: &str| {
            let mut files: Vec<String> = holdings.members[name].files.keys().cloned().collect();
            files.sort();
            files
        };
        let a = held(&holdings, "a");
        assert_eq!(a, ["f3", "f4"]);
        assert_eq!(holdings.members["a"].bytes, 80);
        assert_eq!(holdings.members["a"].by_use.len(), 2);
        // A count bound too: b holds f1, f2 and three more of 1 byte -> the oldest go.
        for f in ["g1", "g2", "g3"] {
            holdings.took("b", f, 1);
        }
        let b = held(&holdings, "b");
        assert_eq!(b, ["g1", "g2", "g3"]);
        assert_eq!(holdings.members["b"].bytes, 3);
        // A file larger than a whole cache is kept by nobody.
        holdings.took("c", "huge", 101);
        assert_eq!(holdings.holder("huge"), None);
        holdings.took("c", "full", 100);
        assert_eq!(holdings.holder("full"), Some("c"));
    }
}
