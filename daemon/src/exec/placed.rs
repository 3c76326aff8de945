//! A unit's files at their own paths in its work dir, on a worker (`marmotctl parallel`'s
//! arguments that name files): each put there from the cache with the original's mode and
//! modification time, so a program that records them (gzip's header does) makes what it
//! makes at home. After the unit, whatever it created or changed in its work dir is moved to
//! its `out/`, to go back as its results under the same paths.

use super::cache::{CacheError, FileCache, Pinned};
use proto::command::placed::Placed;
use std::collections::HashMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most entries a unit's work dir may hold when what it made there is gathered.
pub const MAX_ENTRIES: usize = super::results::MAX_ENTRIES;

/// What a unit's work dir held as it started: each file's relative path, size and
/// modification time. A file still so when the unit ends did not change.
#[derive(Debug, Default)]
pub struct AsPlaced(HashMap<PathBuf, (u64, SystemTime)>);

impl AsPlaced {
    /// Notes a file placed at `path` (relative to `work`) as it is now.
    pub fn note(&mut self, work: &Path, path: &Path) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(work.join(path))?;
        self.0.insert(path.to_path_buf(), (meta.len(), meta.modified()?));
        Ok(())
    }

    fn unchanged(&self, path: &Path, meta: &std::fs::Metadata) -> bool {
        let now = meta.modified().ok().map(|modified| (meta.len(), modified));
        meta.is_file() && now.is_some() && self.0.get(path).copied() == now
    }
}

/// Why a file could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("{path}: {source}")]
    Cache { path: String, source: CacheError },
    #[error("cannot place {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Puts `placed` in `work` at its path from the cache, dated and moded as the original; the
/// cache entry is pinned until the caller releases it.
pub fn place(
    cache: &FileCache,
    work: &Path,
    placed: &Placed,
    noted: &mut AsPlaced,
) -> Result<Pinned, PlaceError> {
    let path = Path::new(&placed.file.name);
    let failed = |source| PlaceError::Io { path: placed.file.name.clone(), source };
    let dest = work.join(path);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    let pinned = cache
        .place(&placed.file.sha256, &dest)
        .map_err(|source| PlaceError::Cache { path: placed.file.name.clone(), source })?;
    let dated = (|| {
        let file = std::fs::OpenOptions::new().write(true).open(&dest)?;
        file.set_modified(time_of(placed.mtime_ns))?;
        drop(file);
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(placed.mode))?;
        noted.note(work, path)
    })();
    match dated {
        Ok(()) => Ok(pinned),
        Err(e) => {
            cache.release(pinned);
            Err(failed(e))
        }
    }
}

/// The time `ns` nanoseconds from the Unix epoch (before it when negative).
fn time_of(ns: i64) -> SystemTime {
    match ns >= 0 {
        true => UNIX_EPOCH + Duration::from_nanos(ns as u64),
        false => UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs()),
    }
}

/// Moves what the unit created or changed under `work` (files and symbolic links, at any
/// depth; not the files it found there unchanged, nor empty dirs) to the same paths under
/// `out`. Returns how many moved.
pub fn gather(work: &Path, out: &Path, placed: &AsPlaced) -> io::Result<usize> {
    gather_at_most(work, out, placed, MAX_ENTRIES)
}

fn gather_at_most(
    work: &Path,
    out: &Path,
    placed: &AsPlaced,
    max_entries: usize,
) -> io::Result<usize> {
    let mut moved = 0;
    let mut seen = 0;
    let mut dirs = vec![PathBuf::new()];
    while let Some(dir) = dirs.pop() {
        for item in std::fs::read_dir(work.join(&dir))? {
            seen += 1;
            if seen > max_entries {
                return Err(io::Error::other(format!(
                    "the unit left more than {max_entries} entries in its work dir"
                )));
            }
            let path = dir.join(item?.file_name());
            let meta = std::fs::symlink_metadata(work.join(&path))?;
            let kind = meta.file_type();
            if kind.is_dir() {
                dirs.push(path);
            } else if (kind.is_file() || kind.is_symlink()) && !placed.unchanged(&path, &meta) {
                let to = out.join(&path);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::rename(work.join(&path), to)?;
                moved += 1;
            }
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::command::FileRef;
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::MetadataExt;

    fn cached(cache: &std::sync::Arc<FileCache>, bytes: &[u8]) -> FileRef {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let mut incoming = cache.receive(&sha256, bytes.len() as u64).unwrap();
        incoming.write(bytes).unwrap();
        incoming.finish().unwrap();
        FileRef { name: String::new(), sha256, size: bytes.len() as u64 }
    }

    #[test]
    fn a_placed_file_has_its_path_mode_and_time_and_only_what_a_unit_made_goes_back() {
        let root = tempfile::tempdir().unwrap();
        let cache = FileCache::open(&root.path().join("cache"), 1 << 20).unwrap();
        let cache = std::sync::Arc::new(cache);
        let (work, out) = (root.path().join("work"), root.path().join("out"));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        let file = cached(&cache, b"some text\n");
        let at = |name: &str, mode, mtime_ns| Placed {
            file: FileRef { name: name.into(), ..file.clone() },
            mode,
            mtime_ns,
        };
        let mut noted = AsPlaced::default();
        let when = 1_600_000_000_123_456_789;
        let placed = [at("logs/a.log", 0o640, when), at("b.log", 0o755, -1_000_000_000)];
        let pins: Vec<Pinned> =
            placed.iter().map(|p| place(&cache, &work, p, &mut noted).unwrap()).collect();
        let meta = std::fs::metadata(work.join("logs/a.log")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!((meta.mtime(), meta.mtime_nsec()), (1_600_000_000, 123_456_789));
        assert_eq!(std::fs::read(work.join("logs/a.log")).unwrap(), b"some text\n");
        let meta = std::fs::metadata(work.join("b.log")).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.mtime()), (0o755, -1));
        for pin in pins {
            cache.release(pin);
        }
        // The unit: a new file beside an input, a new dir, an input changed, one removed.
        std::fs::write(work.join("logs/a.log.gz"), b"gz").unwrap();
        std::fs::create_dir_all(work.join("new/deep")).unwrap();
        std::fs::write(work.join("new/deep/x"), b"x").unwrap();
        std::fs::create_dir_all(work.join("empty")).unwrap();
        std::fs::write(work.join("b.log"), b"changed\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", work.join("link")).unwrap();
        assert_eq!(gather(&work, &out, &noted).unwrap(), 4);
        assert_eq!(std::fs::read(out.join("logs/a.log.gz")).unwrap(), b"gz");
        assert_eq!(std::fs::read(out.join("new/deep/x")).unwrap(), b"x");
        assert_eq!(std::fs::read(out.join("b.log")).unwrap(), b"changed\n");
        assert!(std::fs::symlink_metadata(out.join("link")).unwrap().is_symlink());
        assert!(work.join("logs/a.log").exists(), "an unchanged input stays");
        assert!(!out.join("logs/a.log").exists() && !out.join("empty").exists());
    }

    #[test]
    fn a_file_whose_time_alone_changed_goes_back_and_bad_paths_are_never_reached() {
        let root = tempfile::tempdir().unwrap();
        let (work, out) = (root.path().join("work"), root.path().join("out"));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(work.join("t"), b"same").unwrap();
        let mut noted = AsPlaced::default();
        noted.note(&work, Path::new("t")).unwrap();
        assert_eq!(gather(&work, &out, &noted).unwrap(), 0);
        let file = std::fs::OpenOptions::new().write(true).open(work.join("t")).unwrap();
        file.set_modified(time_of(5)).unwrap();
        assert_eq!(gather(&work, &out, &noted).unwrap(), 1);
        // Entries are counted at every depth: three here (a dir, two files).
        std::fs::create_dir(work.join("d")).unwrap();
        std::fs::write(work.join("d/x"), b"x").unwrap();
        std::fs::write(work.join("y"), b"y").unwrap();
        let e = gather_at_most(&work, &out, &noted, 2).unwrap_err();
        assert!(e.to_string().contains("more than 2 entries"), "{e}");
        gather_at_most(&work, &out, &noted, 3).unwrap();
        assert!(out.join("d/x").exists() && out.join("y").exists());
        assert_eq!(time_of(-1), UNIX_EPOCH - Duration::from_nanos(1));
        assert_eq!(time_of(i64::MIN), UNIX_EPOCH - Duration::from_nanos(1 << 63));
    }
}
