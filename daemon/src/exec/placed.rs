//! A unit's files at their own paths in its work dir, on a worker (`marmotctl parallel`'s
//! arguments that name files): each put there from the cache with the original's mode and
//! modification time, so a program that records them (gzip's header does) makes what it
//! makes at home. After the unit, whatever it created or changed in its work dir is moved to
//! its `out/`, to go back as its results under the same paths, and each placed file it
//! removed or renamed away is marked gone there ([`proto::command::placed::gone_mark`]).

use super::cache::{CacheError, FileCache, Pinned};
use proto::command::placed::{gone_mark, Placed, GONE_PREFIX};
use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most entries a unit's work dir may hold when what it made there is gathered.
pub const MAX_ENTRIES: usize = super::results::MAX_ENTRIES;

/// What a unit's work dir held as it started: each file's relative path, size,
/// modification time and inode (a file still so when the unit ends did not change; one
/// renamed over it has another inode), and the dirs placed.
#[derive(Debug, Default)]
pub struct AsPlaced {
    files: HashMap<PathBuf, (u64, SystemTime, u64)>,
    dirs: HashSet<PathBuf>,
}

impl AsPlaced {
    /// Notes a file placed at `path` (relative to `work`) as it is now.
    pub fn note(&mut self, work: &Path, path: &Path) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(work.join(path))?;
        self.files.insert(path.to_path_buf(), (meta.len(), meta.modified()?, meta.ino()));
        Ok(())
    }

    fn unchanged(&self, path: &Path, meta: &std::fs::Metadata) -> bool {
        let now = meta.modified().ok().map(|modified| (meta.len(), modified, meta.ino()));
        meta.is_file() && now.is_some() && self.files.get(path).copied() == now
    }

    /// Every path placed (files and dirs), and the dirs that hold them: the dirs among them
    /// were not made by the unit.
    fn with_their_dirs(&self) -> HashSet<&Path> {
        let placed = self.files.keys().chain(&self.dirs).map(PathBuf::as_path);
        placed.flat_map(Path::ancestors).filter(|p| !p.as_os_str().is_empty()).collect()
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

/// Makes the placed dir `dir` in `work` (and its parents), with its permission bits but
/// always open to its owner (the unit, and gathering what it made there, go into it).
pub fn make_dir(work: &Path, dir: &Placed, noted: &mut AsPlaced) -> Result<(), PlaceError> {
    let failed = |source| PlaceError::Io { path: dir.file.name.clone(), source };
    let at = work.join(&dir.file.name);
    std::fs::create_dir_all(&at).map_err(failed)?;
    let mode = (dir.mode & 0o7777) | 0o700;
    std::fs::set_permissions(&at, std::fs::Permissions::from_mode(mode)).map_err(failed)?;
    noted.dirs.insert(PathBuf::from(&dir.file.name));
    Ok(())
}

/// The time `ns` nanoseconds from the Unix epoch (before it when negative).
fn time_of(ns: i64) -> SystemTime {
    match ns >= 0 {
        true => UNIX_EPOCH + Duration::from_nanos(ns as u64),
        false => UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs()),
    }
}

/// Moves what the unit created or changed under `work` (files and symbolic links, at any
/// depth; not the files it found there unchanged) to the same paths under `out`, makes
/// there the dirs it made, and marks there each placed file or dir that is no longer in
/// `work`. Returns how many moved, were made or were marked. A unit that made a name marks
/// use is an error.
pub fn gather(work: &Path, out: &Path, placed: &AsPlaced) -> io::Result<usize> {
    gather_at_most(work, out, placed, MAX_ENTRIES)
}

fn gather_at_most(
    work: &Path,
    out: &Path,
    placed: &AsPlaced,
    max_entries: usize,
) -> io::Result<usize> {
    // Marked before anything moves: a changed file moved to `out` is not gone.
    let mut moved = 0;
    for path in placed.files.keys().chain(&placed.dirs) {
        if std::fs::symlink_metadata(work.join(path)).is_err() {
            let mark = out.join(gone_mark(&path.to_string_lossy()));
            if let Some(parent) = mark.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::File::create(mark)?;
            moved += 1;
        }
    }
    let not_made = placed.with_their_dirs();
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
                if !not_made.contains(path.as_path()) {
                    std::fs::create_dir_all(out.join(&path))?;
                    moved += 1;
                }
                dirs.push(path);
            } else if (kind.is_file() || kind.is_symlink()) && !placed.unchanged(&path, &meta) {
                if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(GONE_PREFIX)) {
                    return Err(io::Error::other(format!(
                        "the unit made {}: names starting {GONE_PREFIX} are marmot's own (they \
                         mark the files a unit removed)",
                        path.display()
                    )));
                }
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
        // Four files, and three dirs it made (`logs` held an input: not made).
        assert_eq!(gather(&work, &out, &noted).unwrap(), 7);
        assert_eq!(std::fs::read(out.join("logs/a.log.gz")).unwrap(), b"gz");
        assert_eq!(std::fs::read(out.join("new/deep/x")).unwrap(), b"x");
        assert_eq!(std::fs::read(out.join("b.log")).unwrap(), b"changed\n");
        assert!(std::fs::symlink_metadata(out.join("link")).unwrap().is_symlink());
        assert!(work.join("logs/a.log").exists(), "an unchanged input stays");
        assert!(!out.join("logs/a.log").exists(), "an unchanged input does not go back");
        assert!(out.join("empty").is_dir(), "an empty dir it made goes back");
        let marks = std::fs::read_dir(&out).unwrap().flatten();
        assert!(!marks.into_iter().any(|e| e.file_name().to_string_lossy().starts_with(".marmot")));
    }

    #[test]
    fn a_placed_dir_is_made_open_to_its_owner() {
        let root = tempfile::tempdir().unwrap();
        let dir = Placed::dir("a/b".into(), 0o555);
        let mut noted = AsPlaced::default();
        make_dir(root.path(), &dir, &mut noted).unwrap();
        assert!(noted.dirs.contains(Path::new("a/b")));
        let meta = std::fs::metadata(root.path().join("a/b")).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        make_dir(root.path(), &Placed::dir("a/b".into(), 0o750), &mut noted).unwrap();
        let meta = std::fs::metadata(root.path().join("a/b")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o750, "made again: its mode set");
        std::fs::write(root.path().join("f"), b"").unwrap();
        let e = make_dir(root.path(), &Placed::dir("f".into(), 0o700), &mut noted).unwrap_err();
        assert!(e.to_string().starts_with("cannot place f:"), "{e}");
    }

    #[test]
    fn a_placed_file_removed_or_renamed_away_is_marked_gone() {
        let root = tempfile::tempdir().unwrap();
        let (work, out) = (root.path().join("work"), root.path().join("out"));
        for dir in [work.join("logs"), out.clone()] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let mut noted = AsPlaced::default();
        let files = [("logs/a.log", "a"), ("b.log", "b"), ("c.log", "c"), ("d", "d"), ("e", "d")];
        for (path, text) in files {
            std::fs::write(work.join(path), text).unwrap();
            noted.note(&work, Path::new(path)).unwrap();
        }
        make_dir(&work, &Placed::dir("sub".into(), 0o755), &mut noted).unwrap();
        std::fs::rename(work.join("logs/a.log"), work.join("logs/new.log")).unwrap();
        std::fs::remove_file(work.join("b.log")).unwrap();
        std::fs::write(work.join("c.log"), "changed").unwrap();
        // Renamed over: the same size and time (`mv` keeps them), another file.
        let time = std::fs::metadata(work.join("e")).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(work.join("d"))
            .unwrap()
            .set_modified(time)
            .unwrap();
        std::fs::rename(work.join("d"), work.join("e")).unwrap();
        std::fs::rename(work.join("sub"), work.join("moved")).unwrap();
        // Marks for a.log, b.log, d and sub; new.log, c.log, e and the dir moved back.
        assert_eq!(gather(&work, &out, &noted).unwrap(), 8);
        assert_eq!(std::fs::read(out.join(".marmot-gone.d")).unwrap(), b"");
        assert_eq!(std::fs::read(out.join("e")).unwrap(), b"d", "renamed over: changed");
        assert_eq!(std::fs::read(out.join(".marmot-gone.sub")).unwrap(), b"");
        assert!(out.join("moved").is_dir());
        assert_eq!(std::fs::read(out.join("logs/.marmot-gone.a.log")).unwrap(), b"");
        assert_eq!(std::fs::read(out.join(".marmot-gone.b.log")).unwrap(), b"");
        assert_eq!(std::fs::read(out.join("logs/new.log")).unwrap(), b"a");
        assert_eq!(std::fs::read(out.join("c.log")).unwrap(), b"changed", "changed: not gone");
        assert!(!out.join(".marmot-gone.c.log").exists() && !out.join(".marmot-gone.e").exists());
        // A unit may not make a mark itself.
        std::fs::write(work.join(".marmot-gone.x"), b"").unwrap();
        let e = gather(&work, &out, &noted).unwrap_err().to_string();
        assert!(e.contains("the unit made .marmot-gone.x: names starting"), "{e}");
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
