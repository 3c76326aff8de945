//! A content-addressed file cache: the files of users' commands (`--file`, `--input-files`),
//! each stored once under its SHA-256. The coordinator keeps what `marmotctl` uploads in one
//! (`STATE_DIR/files/`), each worker what the coordinator sent it (`STATE_DIR/cache/`), so a
//! file a worker already has is never sent again.
//!
//! A file arrives in pieces into `files/incoming/`, is checked against the SHA-256 it was
//! announced with, and only then renamed into place: a cache entry is always whole and what its
//! name says. A transfer that a lost connection cut can be kept there (`<sha256>.part`, one
//! per file, until the process restarts) and resumed after its bytes. The cache is bounded
//! (default 2 GiB): adding a file evicts the least recently used ones not in use by a running
//! unit. The coordinator's store is bounded in files too, and its files are pinned for as
//! long as a job that needs them is queued or running ([`FileCache::pin`]): a file that cannot
//! fit beside pinned ones is refused rather than stored over the bound. A unit gets each file as an ordinary file of its own in its work dir (a reflink
//! where the file system shares extents, btrfs or XFS; a copy elsewhere: `std::fs::copy`'s
//! `copy_file_range` does whichever it can), writable, with the cached file's modification
//! time: whatever it does to it (`gzip` deletes it, `sed -i` rewrites it) cannot change what
//! later units read, and programs that refuse a file with other links take it. A cached file
//! changed in place anyway is caught when its unit ends, by its size and modification time, and
//! the entry is dropped rather than handed to the next unit.

use proto::command::spec::is_sha256;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The cache's default bound.
pub const DEFAULT_LIMIT: u64 = 2 << 30;
/// The coordinator's store's default bound in files (`--files-max`).
pub const DEFAULT_FILES: usize = 100_000;

/// Why the cache could not take or give a file.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{0} is not a SHA-256 in hex")]
    BadName(String),
    #[error("the file is {size} bytes, more than the whole cache ({limit} bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("the file's bytes do not match its SHA-256 (expected {expected}, got {actual})")]
    Mismatch { expected: String, actual: String },
    #[error("the file was announced as {announced} bytes but {received} arrived")]
    Size { announced: u64, received: u64 },
    #[error("the cache has no file {0}")]
    Missing(String),
    #[error(
        "the store is full of files that queued and running jobs need ({files} files, {bytes} \
         bytes; it holds at most {max_files} files, {limit} bytes): wait for jobs to end, or \
         start the coordinator with a larger --file-store or --files-max"
    )]
    Full { files: usize, bytes: u64, max_files: usize, limit: u64 },
    #[error("the file's writing thread stopped")]
    Gone,
    #[error("the file's writing thread failed: {0}")]
    Thread(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CacheError + 'a {
    move |source| CacheError::Io { what, path: path.to_path_buf(), source }
}

/// One cached file.
#[derive(Clone, Copy, Debug)]
struct Entry {
    size: u64,
    /// When it was last used, on the cache's own clock.
    used: u64,
    /// Running units that hold a link to it: not evicted while any does.
    pins: u32,
    /// Its modification time when stored, to notice a unit that wrote to it (linking
    /// changes the change time, so that cannot tell).
    mtime: (i64, i64),
}

#[derive(Debug, Default)]
struct Index {
    entries: HashMap<String, Entry>,
    total: u64,
    clock: u64,
}

impl Index {
    /// `sha256`'s entry, if there is one, counted as used now.
    fn touch(&mut self, sha256: &str) -> Option<&mut Entry> {
        self.clock += 1;
        let now = self.clock;
        let entry = self.entries.get_mut(sha256)?;
        entry.used = now;
        Some(entry)
    }
}

/// One cache: a worker's, or the coordinator's store.
#[derive(Debug)]
pub struct FileCache {
    dir: PathBuf,
    limit: u64,
    /// The most files it holds.
    max_files: usize,
    /// A file that cannot fit beside pinned ones is refused (the coordinator's store), rather
    /// than stored over the bound (a worker's cache, whose pins are running units').
    strict: bool,
    index: Mutex<Index>,
}

/// A file being received, written to `incoming/` until it is whole and checked. It holds its
/// cache, so it can be handed to a blocking thread ([`Arriving`]).
pub struct Incoming {
    cache: Arc<FileCache>,
    sha256: String,
    size: u64,
    path: PathBuf,
    file: std::fs::File,
    hasher: Sha256,
    received: u64,
}

/// A file a unit holds: its entry cannot be evicted until this is given back with
/// [`FileCache::release`].
#[derive(Debug)]
pub struct Pinned {
    sha256: String,
}

impl FileCache {
    /// Opens (or makes) the cache in `dir`: entries already there are kept, most recently
    /// modified counted as most recently used; partial files and strays are removed.
    pub fn open(dir: &Path, limit: u64) -> Result<FileCache, CacheError> {
        let incoming = dir.join("incoming");
        let _ = std::fs::remove_dir_all(&incoming);
        std::fs::create_dir_all(&incoming).map_err(io("cannot create", &incoming))?;
        let mut found = vec![];
        for item in std::fs::read_dir(dir).map_err(io("cannot read", dir))? {
            let item = item.map_err(io("cannot read", dir))?;
            let name = item.file_name().to_string_lossy().into_owned();
            let path = item.path();
            if name == "incoming" {
                continue;
            }
            let meta = item.metadata().map_err(io("cannot read", &path))?;
            if !is_sha256(&name) || !meta.is_file() {
                tracing::warn!(
                    "removing {} from the file cache: not a cached file",
                    path.display()
                );
                let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
                continue;
            }
            found.push((meta.mtime(), name, meta));
        }
        found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut index = Index::default();
        for (_, name, meta) in found {
            index.clock += 1;
            let entry = Entry { size: meta.len(), used: index.clock, pins: 0, mtime: mtime(&meta) };
            index.total += entry.size;
            index.entries.insert(name, entry);
        }
        let cache = FileCache {
            dir: dir.to_path_buf(),
            limit,
            max_files: usize::MAX,
            strict: false,
            index: Mutex::new(index),
        };
        cache.evict(0, 0);
        Ok(cache)
    }

    /// Makes this cache the coordinator's store: at most `max_files` files, and strict.
    pub fn as_store(mut self, max_files: usize) -> FileCache {
        self.max_files = max_files.max(1);
        self.strict = true;
        self.evict(0, 0);
        self
    }

    /// The most bytes and files it holds.
    pub fn bounds(&self) -> (u64, usize) {
        (self.limit, self.max_files)
    }

    /// Pins `sha256` (a queued job needs it) until released, if the cache has it.
    pub fn pin(&self, sha256: &str) -> Option<Pinned> {
        let mut index = self.lock();
        index.touch(sha256)?.pins += 1;
        Some(Pinned { sha256: sha256.to_string() })
    }

    /// Bytes stored, and how many files.
    pub fn usage(&self) -> (u64, usize) {
        let index = self.lock();
        (index.total, index.entries.len())
    }

    /// Whether the cache has `sha256` whole: then it need not be sent.
    pub fn has(&self, sha256: &str) -> bool {
        self.lock().entries.contains_key(sha256)
    }

    /// Where `sha256` is stored, if it is (counted as a use, for eviction): for reading it
    /// whole, to send it on.
    pub fn path(&self, sha256: &str) -> Option<PathBuf> {
        self.lock().touch(sha256)?;
        Some(self.dir.join(sha256))
    }

    /// How many first bytes of `sha256` a cut transfer kept (0 if none).
    pub fn kept(&self, sha256: &str) -> u64 {
        if !is_sha256(sha256) {
            return 0;
        }
        std::fs::metadata(self.part(sha256)).map_or(0, |meta| meta.len())
    }

    fn part(&self, sha256: &str) -> PathBuf {
        self.dir.join("incoming").join(format!("{sha256}.part"))
    }

    /// Starts receiving a file, resuming after the first `from` bytes a cut transfer of it
    /// kept (0: from the start). The kept bytes are hashed again and taken: a concurrent
    /// receive of the same file starts from its own beginning.
    pub fn receive_from(
        self: &Arc<Self>,
        sha256: &str,
        size: u64,
        from: u64,
    ) -> Result<Incoming, CacheError> {
        let mut incoming = self.receive(sha256, size)?;
        if from == 0 {
            return Ok(incoming);
        }
        let part = self.part(sha256);
        if self.kept(sha256) < from || from > size {
            return Err(CacheError::Missing(format!("{sha256}'s first {from} bytes")));
        }
        std::fs::rename(&part, &incoming.path).map_err(io("cannot take", &part))?;
        let path = incoming.path.clone();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io("cannot open", &path))?;
        file.set_len(from).map_err(io("cannot truncate", &path))?;
        std::io::copy(&mut (&file).take(from), &mut incoming.hasher)
            .map_err(io("cannot read", &path))?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))
            .map_err(io("cannot read", &path))?;
        incoming.file = file;
        incoming.received = from;
        Ok(incoming)
    }

    /// Starts receiving a file of `size` bytes that should hash to `sha256`.
    pub fn receive(self: &Arc<Self>, sha256: &str, size: u64) -> Result<Incoming, CacheError> {
        if !is_sha256(sha256) {
            return Err(CacheError::BadName(sha256.to_string()));
        }
        if size > self.limit {
            return Err(CacheError::TooLarge { size, limit: self.limit });
        }
        let file = tempfile::Builder::new()
            .tempfile_in(self.dir.join("incoming"))
            .map_err(io("cannot create a file in", &self.dir))?;
        let (file, path) = file.keep().map_err(|e| io("cannot keep", &self.dir)(e.error))?;
        Ok(Incoming {
            cache: self.clone(),
            sha256: sha256.to_string(),
            size,
            path,
            file,
            hasher: Sha256::new(),
            received: 0,
        })
    }

    /// Gives a unit cached `sha256` as its own file `dest` (in its work dir), and pins the
    /// entry until released.
    pub fn place(&self, sha256: &str, dest: &Path) -> Result<Pinned, CacheError> {
        let mut index = self.lock();
        index.clock += 1;
        let now = index.clock;
        let entry =
            index.entries.get_mut(sha256).ok_or_else(|| CacheError::Missing(sha256.into()))?;
        let cached = self.dir.join(sha256);
        std::fs::copy(&cached, dest).map_err(io("cannot copy into", dest))?;
        // Its own: writable, runnable (a script given as a file), dated as the cached one.
        let dated = std::fs::metadata(&cached).and_then(|meta| {
            let file = std::fs::OpenOptions::new().write(true).open(dest)?;
            file.set_permissions(std::fs::Permissions::from_mode(0o755))?;
            file.set_modified(meta.modified()?)
        });
        dated.map_err(io("cannot date", dest))?;
        entry.used = now;
        entry.pins += 1;
        Ok(Pinned { sha256: sha256.to_string() })
    }

    /// A unit is done with a file: unpinned, and dropped if the unit changed it.
    pub fn release(&self, pinned: Pinned) {
        let path = self.dir.join(&pinned.sha256);
        let mut index = self.lock();
        let Some(entry) = index.entries.get_mut(&pinned.sha256) else { return };
        entry.pins = entry.pins.saturating_sub(1);
        let unchanged = std::fs::metadata(&path)
            .is_ok_and(|meta| meta.len() == entry.size && mtime(&meta) == entry.mtime);
        if !unchanged {
            tracing::warn!(
                "a unit changed the cached file {}: dropped from the cache",
                pinned.sha256
            );
            let size = entry.size;
            index.entries.remove(&pinned.sha256);
            index.total -= size;
            let _ = std::fs::remove_file(&path);
        }
    }

    /// Evicts least recently used, unpinned entries until `files` more files of `bytes` more
    /// bytes fit; whether they do.
    fn evict(&self, bytes: u64, files: usize) -> bool {
        let mut index = self.lock();
        while index.total + bytes > self.limit || index.entries.len() + files > self.max_files {
            let oldest = index
                .entries
                .iter()
                .filter(|(_, e)| e.pins == 0)
                .min_by_key(|(_, e)| e.used)
                .map(|(name, e)| (name.clone(), e.size));
            let Some((name, size)) = oldest else { return false };
            index.entries.remove(&name);
            index.total -= size;
            if let Err(e) = std::fs::remove_file(self.dir.join(&name)) {
                tracing::warn!("cannot remove {name} from the file cache: {e}");
            }
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Incoming {
    /// The bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Keeps what was received of a cut transfer, for [`FileCache::receive_from`] (in place
    /// of an earlier one of the same file).
    pub fn keep(self) -> Result<(), CacheError> {
        let part = self.cache.part(&self.sha256);
        std::fs::rename(&self.path, &part).map_err(io("cannot keep", &part))
    }

    /// Writes the next piece; more bytes than announced is refused.
    pub fn write(&mut self, piece: &[u8]) -> Result<(), CacheError> {
        let received = self.received + piece.len() as u64;
        if received > self.size {
            return Err(CacheError::Size { announced: self.size, received });
        }
        self.file.write_all(piece).map_err(io("cannot write", &self.path))?;
        self.hasher.update(piece);
        self.received = received;
        Ok(())
    }

    /// Checks the whole file against its name and stores it, making room if needed.
    pub fn finish(mut self) -> Result<(), CacheError> {
        let (cache, size, received) = (self.cache.clone(), self.size, self.received);
        let sha256 = std::mem::take(&mut self.sha256);
        let path = self.path.clone();
        let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
        // Dropped on every path below: an error removes the partial file, a success has
        // renamed it first.
        let _incoming = self;
        if received != size {
            return Err(CacheError::Size { announced: size, received });
        }
        if actual != sha256 {
            return Err(CacheError::Mismatch { expected: sha256, actual });
        }
        // Read-only, and runnable: `--file` brings scripts and programs too.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555))
            .map_err(io("cannot set permissions of", &path))?;
        if !cache.evict(size, 1) && cache.strict && !cache.has(&sha256) {
            let index = cache.lock();
            let (files, bytes) = (index.entries.len(), index.total);
            let (max_files, limit) = (cache.max_files, cache.limit);
            return Err(CacheError::Full { files, bytes, max_files, limit });
        }
        let dest = cache.dir.join(&sha256);
        std::fs::rename(&path, &dest).map_err(io("cannot store", &dest))?;
        let meta = std::fs::metadata(&dest).map_err(io("cannot read", &dest))?;
        let mut index = cache.lock();
        index.clock += 1;
        let entry = Entry { size, used: index.clock, pins: 0, mtime: mtime(&meta) };
        if let Some(old) = index.entries.insert(sha256, entry) {
            index.total -= old.size; // Received twice at once: stored once.
        }
        index.total += size;
        Ok(())
    }
}

impl Drop for Incoming {
    /// A transfer given up: its partial file goes (after `finish`, it has been renamed).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A file arriving in pieces, written (and hashed) by a blocking thread as they come, so the
/// async side only moves bytes: at most [`ARRIVING`] pieces wait for the thread.
pub struct Arriving {
    pieces: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
    writer: tokio::task::JoinHandle<(Incoming, Result<(), CacheError>)>,
}

/// Pieces that may wait for the writing thread.
const ARRIVING: usize = 2;

impl Arriving {
    /// Hands `incoming` to a blocking thread that writes the pieces given to [`Self::write`].
    pub fn start(mut incoming: Incoming) -> Arriving {
        let (pieces, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(ARRIVING);
        let writer = tokio::task::spawn_blocking(move || {
            while let Some(piece) = rx.blocking_recv() {
                if let Err(e) = incoming.write(&piece) {
                    return (incoming, Err(e));
                }
            }
            (incoming, Ok(()))
        });
        Arriving { pieces: Some(pieces), writer }
    }

    /// Starts receiving `sha256` into `cache` (after the first `from` bytes a cut transfer
    /// kept, as [`FileCache::receive_from`]), off the async runtime, and hands it to a
    /// writing thread.
    pub async fn open(
        cache: &Arc<FileCache>,
        sha256: &str,
        size: u64,
        from: u64,
    ) -> Result<Arriving, CacheError> {
        let (cache, sha256) = (cache.clone(), sha256.to_string());
        let incoming = tokio::task::spawn_blocking(move || cache.receive_from(&sha256, size, from))
            .await
            .map_err(|e| CacheError::Thread(e.to_string()))??;
        Ok(Arriving::start(incoming))
    }

    /// Passes on the next piece; a piece the thread refused (more bytes than announced, a
    /// failed write) ends the transfer with its error.
    pub async fn write(&mut self, piece: bytes::Bytes) -> Result<(), CacheError> {
        let sent = match &self.pieces {
            Some(pieces) => pieces.send(piece).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The thread stopped on an error: it is the answer.
        self.pieces = None;
        match (&mut self.writer).await {
            Ok((_, Err(e))) => Err(e),
            Ok((_, Ok(()))) => Err(CacheError::Gone),
            Err(e) => Err(CacheError::Thread(e.to_string())),
        }
    }

    /// Every piece was passed on: waits for the thread and hands back the file, to finish or
    /// to keep.
    pub async fn end(mut self) -> Result<Incoming, CacheError> {
        self.pieces = None;
        match self.writer.await {
            Ok((incoming, Ok(()))) => Ok(incoming),
            Ok((_, Err(e))) => Err(e),
            Err(e) => Err(CacheError::Thread(e.to_string())),
        }
    }

    /// Every piece was passed on: checks the whole file and stores it, off the async runtime.
    pub async fn finish(self) -> Result<(), CacheError> {
        let incoming = self.end().await?;
        tokio::task::spawn_blocking(move || incoming.finish())
            .await
            .map_err(|e| CacheError::Thread(e.to_string()))?
    }
}

fn mtime(meta: &std::fs::Metadata) -> (i64, i64) {
    (meta.mtime(), meta.mtime_nsec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn put(cache: &Arc<FileCache>, bytes: &[u8]) -> String {
        let name = sha(bytes);
        let mut incoming = cache.receive(&name, bytes.len() as u64).unwrap();
        for piece in bytes.chunks(3) {
            incoming.write(piece).unwrap();
        }
        incoming.finish().unwrap();
        name
    }

    #[test]
    fn a_file_is_stored_once_checked_and_given_to_each_unit_as_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(FileCache::open(&dir.path().join("files"), DEFAULT_LIMIT).unwrap());
        let name = put(&cache, b"#!/bin/sh\necho hi\n");
        assert!(cache.has(&name));
        assert_eq!(cache.usage(), (18, 1));
        let work = tempfile::tempdir().unwrap();
        let dest = work.path().join("run.sh");
        let pinned = cache.place(&name, &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"#!/bin/sh\necho hi\n");
        let meta = std::fs::metadata(&dest).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o755, "its own, and runnable");
        assert_eq!(meta.nlink(), 1, "an ordinary file, not a link into the cache");
        let cached = std::fs::metadata(dir.path().join("files").join(&name)).unwrap();
        assert_eq!(meta.modified().unwrap(), cached.modified().unwrap(), "dated as the cached one");
        // Whatever the unit does to its file, the cached one stays as it was.
        std::fs::write(&dest, b"#!/bin/sh\necho HI\n").unwrap();
        std::fs::remove_file(&dest).unwrap();
        cache.release(pinned);
        assert!(cache.has(&name), "an untouched file stays");
        let again = work.path().join("again.sh");
        cache.release(cache.place(&name, &again).unwrap());
        assert_eq!(std::fs::read(&again).unwrap(), b"#!/bin/sh\necho hi\n");
        // Nothing left in incoming/.
        let left = std::fs::read_dir(dir.path().join("files/incoming")).unwrap().count();
        assert_eq!(left, 0);
    }

    #[test]
    fn a_cut_transfer_is_kept_and_resumed_after_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(FileCache::open(dir.path(), DEFAULT_LIMIT).unwrap());
        let bytes: Vec<u8> = (0..100u8).collect();
        let name = sha(&bytes);
        assert_eq!(cache.kept(&name), 0);
        let mut cut = cache.receive(&name, 100).unwrap();
        cut.write(&bytes[..40]).unwrap();
        assert_eq!(cut.received(), 40);
        cut.keep().unwrap();
        assert_eq!(cache.kept(&name), 40);
        assert_eq!(cache.kept("../x"), 0, "names are checked");
        // Asked for more than was kept: refused, and what was kept stays.
        assert!(matches!(cache.receive_from(&name, 100, 41), Err(CacheError::Missing(_))));
        // Resumed after 30 of the 40: the rest of the kept bytes are cut off, the first
        // hashed again, so the whole file checks.
        let mut resumed = cache.receive_from(&name, 100, 30).unwrap();
        assert_eq!((resumed.received(), cache.kept(&name)), (30, 0), "taken");
        resumed.write(&bytes[30..]).unwrap();
        resumed.finish().unwrap();
        assert!(cache.has(&name));
        assert_eq!(std::fs::read(dir.path().join(&name)).unwrap(), bytes);
        // Kept bytes that are not the file's fail its check, and leave nothing.
        let other: Vec<u8> = bytes.iter().rev().copied().collect();
        let other_name = sha(&other);
        let mut cut = cache.receive(&other_name, 100).unwrap();
        cut.write(&bytes[..50]).unwrap();
        cut.keep().unwrap();
        let mut resumed = cache.receive_from(&other_name, 100, 50).unwrap();
        resumed.write(&other[50..]).unwrap();
        assert!(matches!(resumed.finish(), Err(CacheError::Mismatch { .. })));
        assert_eq!(std::fs::read_dir(dir.path().join("incoming")).unwrap().count(), 0);
        // From 0, a receive ignores what was kept.
        let mut cut = cache.receive(&other_name, 100).unwrap();
        cut.write(&other[..10]).unwrap();
        cut.keep().unwrap();
        let mut fresh = cache.receive_from(&other_name, 100, 0).unwrap();
        fresh.write(&other).unwrap();
        fresh.finish().unwrap();
        assert!(cache.has(&other_name));
    }

    #[test]
    fn wrong_bytes_sizes_and_names_are_refused_and_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(FileCache::open(dir.path(), 100).unwrap());
        let name = sha(b"right");
        let mut incoming = cache.receive(&name, 5).unwrap();
        incoming.write(b"wrong").unwrap();
        assert!(matches!(incoming.finish(), Err(CacheError::Mismatch { .. })));
        let mut incoming = cache.receive(&name, 5).unwrap();
        incoming.write(b"righ").unwrap();
        let e = incoming.finish().unwrap_err();
        assert_eq!(e.to_string(), "the file was announced as 5 bytes but 4 arrived");
        let mut incoming = cache.receive(&name, 5).unwrap();
        assert!(matches!(incoming.write(b"right!"), Err(CacheError::Size { received: 6, .. })));
        drop(incoming);
        assert!(matches!(cache.receive("../../etc/passwd", 1), Err(CacheError::BadName(_))));
        assert!(matches!(cache.receive(&name.to_uppercase(), 1), Err(CacheError::BadName(_))));
        let e = cache.receive(&name, 101).err().unwrap();
        assert_eq!(e.to_string(), "the file is 101 bytes, more than the whole cache (100 bytes)");
        assert!(cache.receive(&name, 100).is_ok());
        assert!(!cache.has(&name));
        assert_eq!(cache.usage(), (0, 0));
        assert_eq!(std::fs::read_dir(dir.path().join("incoming")).unwrap().count(), 0);
        let e = cache.place(&name, &dir.path().join("x")).unwrap_err();
        assert!(matches!(e, CacheError::Missing(_)));
    }

    #[test]
    fn the_least_recently_used_unpinned_files_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(FileCache::open(dir.path(), 30).unwrap());
        let a = put(&cache, &[b'a'; 10]);
        let b = put(&cache, &[b'b'; 10]);
        let c = put(&cache, &[b'c'; 10]);
        let used = |name: &String| cache.lock().entries[name].used;
        assert!(used(&a) < used(&b) && used(&b) < used(&c), "stored in order");
        let work = tempfile::tempdir().unwrap();
        // a used last, b pinned by a running unit: c is the one to go.
        cache.release(cache.place(&a, &work.path().join("a")).unwrap());
        assert!(used(&a) > used(&c) && used(&c) > used(&b), "a link counts as a use");
        let pinned_b = cache.place(&b, &work.path().join("b")).unwrap();
        let d = put(&cache, &[b'd'; 10]);
        assert!(cache.has(&a) && cache.has(&b) && cache.has(&d) && !cache.has(&c));
        assert_eq!(cache.usage(), (30, 3));
        // A file as large as the cache evicts all that is not pinned, and fits anyway (the
        // pinned one is let go once released; the bound holds again on the next add).
        let e = put(&cache, &[b'e'; 20]);
        assert!(cache.has(&b) && cache.has(&e) && !cache.has(&a) && !cache.has(&d));
        cache.release(pinned_b);
        let f = put(&cache, &[b'f'; 5]);
        assert!(cache.has(&e) && cache.has(&f) && !cache.has(&b));
        assert_eq!(cache.usage(), (25, 2));
    }

    #[tokio::test]
    async fn a_file_arrives_through_a_writing_thread_and_is_stored_when_whole() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(FileCache::open(dir.path(), 100).unwrap());
        let name = sha(b"hello world");
        let mut arriving = Arriving::start(cache.receive(&name, 11).unwrap());
        for piece in [&b"hello"[..], b" ", b"world"] {
            arriving.write(bytes::Bytes::copy_from_slice(piece)).await.unwrap();
        }
        assert!(!cache.has(&name), "not before it is finished");
        arriving.finish().await.unwrap();
        assert!(cache.has(&name));
        assert_eq!(std::fs::read(cache.path(&name).unwrap()).unwrap(), b"hello world");

        // More than announced: the thread refuses the piece, and says why at the next one.
        let other = sha(b"abc");
        let mut arriving = Arriving::start(cache.receive(&other, 3).unwrap());
        arriving.write(bytes::Bytes::from_static(b"abcd")).await.unwrap();
        let e = loop {
            match arriving.write(bytes::Bytes::from_static(b"x")).await {
                Ok(()) => continue,
                Err(e) => break e,
            }
        };
        assert!(matches!(e, CacheError::Size { announced: 3, received: 4 }), "{e}");
        assert!(!cache.has(&other));

        // Cut: what came is handed back to keep for later.
        let mut arriving = Arriving::start(cache.receive(&other, 3).unwrap());
        arriving.write(bytes::Bytes::from_static(b"ab")).await.unwrap();
        let incoming = arriving.end().await.unwrap();
        assert_eq!(incoming.received(), 2);
        incoming.keep().unwrap();
        assert_eq!(cache.kept(&other), 2);
        // A wrong hash is refused when finished.
        let mut arriving = Arriving::start(cache.receive(&other, 3).unwrap());
        arriving.write(bytes::Bytes::from_static(b"abd")).await.unwrap();
        let e = arriving.finish().await.unwrap_err();
        assert!(matches!(e, CacheError::Mismatch { .. }), "{e}");
    }

    #[test]
    fn a_file_received_twice_at_once_is_stored_and_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(FileCache::open(dir.path(), 100).unwrap());
        let name = sha(b"twice");
        let mut first = cache.receive(&name, 5).unwrap();
        let mut second = cache.receive(&name, 5).unwrap();
        first.write(b"twice").unwrap();
        second.write(b"twice").unwrap();
        first.finish().unwrap();
        second.finish().unwrap();
        assert_eq!(cache.usage(), (5, 1));
    }

    #[test]
    fn the_store_keeps_pinned_files_and_refuses_what_cannot_fit_beside_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileCache::open(dir.path(), 10).unwrap().as_store(2));
        let (a, b) = (put(&store, b"aaaa"), put(&store, b"bbbb"));
        assert!(store.pin(&sha(b"never sent")).is_none());
        let pinned = store.pin(&a).unwrap();
        // A third file: over the count, so the least recently used unpinned one goes.
        let c = put(&store, b"cc");
        assert!(store.has(&a) && !store.has(&b) && store.has(&c), "b went, not pinned a");
        let pinned_c = store.pin(&c).unwrap();
        let name = sha(b"dd");
        let mut d = store.receive(&name, 2).unwrap();
        d.write(b"dd").unwrap();
        let e = d.finish().unwrap_err();
        assert!(matches!(e, CacheError::Full { files: 2, bytes: 6, max_files: 2, limit: 10 }));
        assert!(e.to_string().contains("--files-max"), "{e}");
        assert!(!store.has(&name) && store.has(&a) && store.has(&c));
        store.release(pinned);
        store.release(pinned_c);
        put(&store, b"dd");
        assert!(store.has(&name) && store.usage().1 == 2, "room once unpinned");
        // By bytes too; a worker's cache (not a store) goes over its bound instead.
        let bytes = Arc::new(FileCache::open(&dir.path().join("w"), 4).unwrap());
        let held = bytes.pin(&put(&bytes, b"1234")).unwrap();
        put(&bytes, b"56");
        assert_eq!(bytes.usage(), (6, 2));
        bytes.release(held);
    }

    #[test]
    fn a_file_a_unit_changed_is_dropped_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(FileCache::open(dir.path(), 100).unwrap());
        let name = put(&cache, b"data");
        let dest = dir.path().join("unit-copy");
        let pinned = cache.place(&name, &dest).unwrap();
        // Changed where it is cached (a unit that went looking for it).
        let cached = dir.path().join(&name);
        std::fs::set_permissions(&cached, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&cached, b"DATA!").unwrap();
        cache.release(pinned);
        assert!(!cache.has(&name));
        assert_eq!(cache.usage(), (0, 0));
        assert!(!dir.path().join(&name).exists());
    }

    #[test]
    fn a_reopened_cache_keeps_its_files_and_drops_strays() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let cache = Arc::new(FileCache::open(dir.path(), 100).unwrap());
            (put(&cache, b"first"), put(&cache, b"second"))
        };
        // The older file by modification time counts as the less recently used.
        let aged = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::open(dir.path().join(&b)).unwrap().set_modified(aged).unwrap();
        std::fs::write(dir.path().join("stray.txt"), b"?").unwrap();
        std::fs::write(dir.path().join("incoming/partial"), b"half").unwrap();
        let cache = Arc::new(FileCache::open(dir.path(), 100).unwrap());
        assert!(cache.has(&a) && cache.has(&b));
        assert_eq!(cache.usage(), (11, 2));
        let used = |name: &String| cache.lock().entries[name].used;
        assert!(used(&b) < used(&a));
        assert!(!dir.path().join("stray.txt").exists());
        assert!(!dir.path().join("incoming/partial").exists());
        // A smaller bound on reopening evicts down to it.
        drop(cache);
        let cache = Arc::new(FileCache::open(dir.path(), 6).unwrap());
        assert!(cache.has(&a) && !cache.has(&b), "the older one went");
        assert_eq!(cache.usage(), (5, 1));
    }
}
