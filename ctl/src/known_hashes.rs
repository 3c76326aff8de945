//! The SHA-256 of files marmotctl has read before, so running a command again over the same
//! inputs does not read them all again (50 GB of videos take minutes to hash; finding them
//! unchanged takes a `stat` each).
//!
//! A file is known by its device and inode, and is taken as unchanged while its size, its
//! modification time and its status-change time (ctime, which no user can set back) are the
//! ones seen when it was hashed, to the nanosecond: the test git's index makes. A file changed
//! within [`SETTLED`] of being hashed might be changed again within its timestamps' grain,
//! so it is not remembered. The list lives in the user's cache dir (`~/.cache/marmot/
//! known-hashes.json`), holds at most [`MAX_KNOWN`] files, and is only ever a shortcut: a list
//! that is missing, unreadable or from another version is started again, silently.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How many files the list remembers; those not used for the most runs go first.
pub const MAX_KNOWN: usize = 100_000;
/// How long a file must have been left alone before its hash is remembered.
pub const SETTLED: Duration = Duration::from_secs(2);

/// What identifies a file's content without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file was last changed at least [`SETTLED`] before `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let now = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let changed = self.mtime_ns.max(self.ctime_ns);
        i128::try_from(now).is_ok_and(|now| now - changed >= SETTLED.as_nanos() as i128)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Known {
    stamp: Stamp,
    sha256: String,
    /// The run that last used it.
    run: u64,
}

/// The list as stored.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    run: u64,
    known: Vec<Known>,
}

/// Files' hashes by [`Stamp`], loaded from and saved to one file.
#[derive(Debug)]
pub struct KnownHashes {
    path: Option<PathBuf>,
    run: u64,
    known: HashMap<(u64, u64), Known>,
    changed: bool,
    /// How many files this run read whole.
    read: usize,
}

impl KnownHashes {
    /// The user's list, or an empty one that is never saved when there is no cache dir.
    pub fn load() -> KnownHashes {
        KnownHashes::load_from(dirs::cache_dir().map(|d| d.join("marmot/known-hashes.json")))
    }

    /// The list kept at `path` (none: kept nowhere).
    pub fn load_from(path: Option<PathBuf>) -> KnownHashes {
        let stored: Stored = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let known = stored.known.into_iter().map(|k| ((k.stamp.dev, k.stamp.ino), k)).collect();
        KnownHashes { path, run: stored.run + 1, known, changed: false, read: 0 }
    }

    /// The SHA-256 (hex) and size of `file`, read whole only when the list does not know it
    /// as it is now.
    pub fn sha256(&mut self, file: &mut File) -> std::io::Result<(String, u64)> {
        self.sha256_at(file, SystemTime::now())
    }

    fn sha256_at(&mut self, file: &mut File, now: SystemTime) -> std::io::Result<(String, u64)> {
        let stamp = Stamp::of(&file.metadata()?);
        if let Some(known) = self.known.get_mut(&(stamp.dev, stamp.ino)) {
            if known.stamp == stamp {
                known.run = self.run;
                self.changed = true;
                return Ok((known.sha256.clone(), stamp.size));
            }
        }
        let (sha256, size) = hash(file)?;
        self.read += 1;
        // Read while it was being written, or changed since: hashed, not remembered.
        let after = Stamp::of(&file.metadata()?);
        if after == stamp && size == stamp.size && stamp.settled(now) {
            let known = Known { stamp, sha256: sha256.clone(), run: self.run };
            self.known.insert((stamp.dev, stamp.ino), known);
            self.changed = true;
        }
        Ok((sha256, size))
    }

    /// Writes the list back (the most recently used [`MAX_KNOWN`]), as a whole new file so
    /// that a run beside it reads either list, never half of one. A list that cannot be
    /// written costs the next run its reading, nothing else.
    pub fn save(self) {
        let Some(path) = self.path.filter(|_| self.changed) else { return };
        let mut known: Vec<Known> = self.known.into_values().collect();
        known.sort_unstable_by_key(|k| std::cmp::Reverse(k.run));
        known.truncate(MAX_KNOWN);
        let stored = Stored { run: self.run, known };
        let Some(dir) = path.parent() else { return };
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| tempfile::NamedTempFile::new_in(dir))
            .and_then(|mut file| {
                serde_json::to_writer(std::io::BufWriter::new(file.as_file_mut()), &stored)?;
                file.persist(&path).map_err(|e| e.error)?;
                Ok(())
            });
        if let Err(e) = written {
            eprintln!("marmotctl: cannot keep the known files' hashes in {}: {e}", path.display());
        }
    }
}

/// Reads `file` whole: its SHA-256 (hex) and size.
fn hash(file: &mut File) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), size));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn later() -> SystemTime {
        SystemTime::now() + SETTLED
    }

    #[test]
    fn a_settled_file_is_read_once_across_runs_and_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (list, data) = (dir.path().join("cache/known.json"), dir.path().join("data"));
        std::fs::write(&data, "abc").unwrap();
        let mut known = KnownHashes::load_from(Some(list.clone()));
        let mut file = File::open(&data).unwrap();
        assert_eq!(known.sha256_at(&mut file, later()).unwrap(), (ABC.to_string(), 3));
        assert_eq!(known.sha256_at(&mut file, later()).unwrap(), (ABC.to_string(), 3));
        assert_eq!(known.read, 1);
        known.save();

        let mut known = KnownHashes::load_from(Some(list.clone()));
        assert_eq!(known.run, 2);
        assert_eq!(known.sha256_at(&mut file, later()).unwrap(), (ABC.to_string(), 3));
        assert_eq!(known.read, 0, "known from the last run");
        // Same size, new content: its ctime moved.
        let mut writing = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
        writing.write_all(b"abd").unwrap();
        drop(writing);
        file.rewind().unwrap();
        let (sha256, _) = known.sha256_at(&mut file, later()).unwrap();
        assert_ne!(sha256, ABC);
        assert_eq!(known.read, 1);
    }

    #[test]
    fn a_file_changed_just_now_is_hashed_but_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, "abc").unwrap();
        let mut known = KnownHashes::load_from(None);
        let mut file = File::open(&data).unwrap();
        let now = SystemTime::now();
        assert_eq!(known.sha256_at(&mut file, now).unwrap().0, ABC);
        file.rewind().unwrap();
        assert_eq!(known.sha256_at(&mut file, now).unwrap().0, ABC);
        assert_eq!(known.read, 2);
        assert!(!known.changed);
        known.save(); // kept nowhere: nothing to do
    }

    #[test]
    fn a_broken_list_starts_again_and_the_list_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("known.json");
        std::fs::write(&list, "{not json").unwrap();
        let mut known = KnownHashes::load_from(Some(list.clone()));
        assert!(known.known.is_empty());
        assert_eq!(known.run, 1);
        let stamp = |ino| Stamp { dev: 1, ino, size: 0, mtime_ns: 0, ctime_ns: 0 };
        for ino in 0..(MAX_KNOWN as u64 + 5) {
            let k = Known { stamp: stamp(ino), sha256: String::new(), run: ino };
            known.known.insert((1, ino), k);
        }
        known.changed = true;
        known.save();
        let known = KnownHashes::load_from(Some(list));
        assert_eq!(known.known.len(), MAX_KNOWN);
        assert!(!known.known.contains_key(&(1, 4)), "the least recently used go first");
        assert!(known.known.contains_key(&(1, 5)));
    }

    #[test]
    fn a_stamp_holds_the_times_to_the_nanosecond() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, "abc").unwrap();
        let mut file = std::fs::OpenOptions::new().read(true).write(true).open(&data).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789))
            .unwrap();
        let stamp = Stamp::of(&file.metadata().unwrap());
        assert_eq!(stamp.mtime_ns, 1_700_000_000_123_456_789);
        assert_eq!(stamp.size, 3);
        // Just changed: read, right, and not remembered.
        let mut known = KnownHashes::load_from(None);
        assert_eq!(known.sha256(&mut file).unwrap(), (ABC.to_string(), 3));
        assert!(known.known.is_empty());
    }

    #[test]
    fn settled_means_left_alone_for_two_seconds() {
        let stamp = Stamp { dev: 0, ino: 0, size: 0, mtime_ns: 5_000_000_000, ctime_ns: 0 };
        let at = |ns| SystemTime::UNIX_EPOCH + Duration::from_nanos(ns);
        assert!(!stamp.settled(at(6_999_999_999)));
        assert!(stamp.settled(at(7_000_000_000)));
        let stamp = Stamp { ctime_ns: 6_000_000_000, ..stamp };
        assert!(!stamp.settled(at(7_000_000_000)), "the later of the two times counts");
        assert!(stamp.settled(at(8_000_000_000)));
    }
}
