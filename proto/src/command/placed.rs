//! Files that travel with `marmotctl parallel`'s units as GNU parallel users expect them to:
//! a word naming a file in the client's current dir appears in the unit's work dir under the
//! same relative path, with the original's mode and modification time ([`Placed`]; one naming
//! a dir brings the dir and what is in it); what a unit creates or changes in its work dir
//! comes back into that dir ([`Placing`]); and a placed file or dir the unit removed (or
//! renamed away) comes back as a mark ([`gone_mark`]), so that the client removes its
//! original as a local run would have.
//!
//! A relative path here is a handful of plain names joined by `/`: never absolute, never
//! `.` or `..`, so a unit's files stay inside its work dir whatever a client asks for.

use super::file::{check_file_name, is_sha256, FileRef};
use serde::{Deserialize, Serialize};

/// The most files one unit may find placed.
pub const MAX_PLACED_PER_UNIT: usize = 1024;
/// The most bytes of a placed file's relative path.
pub const MAX_PATH_BYTES: usize = 1024;
/// The most names in a placed file's relative path.
pub const MAX_PATH_NAMES: usize = 32;
/// The most units in a chunk of a job with placed files: a unit's list of files may take
/// about 230 KiB on the wire, and a chunk's request stays well inside a frame.
pub const MAX_PLACED_CHUNK_UNITS: u64 = 8;

/// A file a unit finds at `file.name`, a relative path in its work dir.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    /// By content; its name is the relative path.
    pub file: FileRef,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// Last modified, in nanoseconds since the Unix epoch (before it: negative).
    pub mtime_ns: i64,
}

/// The bit of [`Placed::mode`] that makes the entry a dir (as in `st_mode`): the dir is made
/// with the permission bits, and nothing is fetched for it.
pub const DIR_MODE: u32 = 0o040000;

/// The SHA-256 of no bytes: a dir's [`Placed::file`] carries it, with size 0.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

impl Placed {
    /// A dir at `name` with permission bits `mode`.
    pub fn dir(name: String, mode: u32) -> Placed {
        let file = FileRef { name, sha256: EMPTY_SHA256.into(), size: 0 };
        Placed { file, mode: DIR_MODE | (mode & 0o7777), mtime_ns: 0 }
    }

    /// Whether this is a dir rather than a file.
    pub fn is_dir(&self) -> bool {
        self.mode & DIR_MODE != 0
    }

    /// Whether the path is relative and plain, the hash one, and the mode permission bits
    /// (and [`DIR_MODE`] for a dir, of no bytes).
    pub fn check(&self) -> Result<(), String> {
        check_relative_path(&self.file.name)?;
        if !is_sha256(&self.file.sha256) {
            return Err(format!(
                "{}: {} is not a SHA-256 in lowercase hex",
                crate::names::shown(&self.file.name),
                crate::names::shown(&self.file.sha256)
            ));
        }
        if self.mode & !DIR_MODE > 0o7777 {
            return Err(format!("{}: mode {:o} is not permission bits", self.file.name, self.mode));
        }
        if self.is_dir() && (self.file.size != 0 || self.file.sha256 != EMPTY_SHA256) {
            return Err(format!("{}: a dir has no bytes", self.file.name));
        }
        Ok(())
    }
}

/// Whether `path` may name a placed file: plain names (see [`check_file_name`]) joined by
/// `/`, at most [`MAX_PATH_NAMES`] of them and [`MAX_PATH_BYTES`] bytes.
pub fn check_relative_path(path: &str) -> Result<(), String> {
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "{}: a path of {} bytes; at most {MAX_PATH_BYTES}",
            crate::names::shown(path),
            path.len()
        ));
    }
    let mut names = 0;
    for name in path.split('/') {
        check_file_name(name).map_err(|_| {
            format!(
                "{} is not a relative path of plain names (no `.`, `..`, empty names or a \
                 leading `/`)",
                crate::names::shown(path)
            )
        })?;
        names += 1;
    }
    if names > MAX_PATH_NAMES {
        return Err(format!(
            "{}: {names} names deep; at most {MAX_PATH_NAMES}",
            crate::names::shown(path)
        ));
    }
    Ok(())
}

/// What a command chunk's units do with files beyond `--file` and `--input-files`
/// (`marmotctl parallel`'s): each unit's placed files, and whether what it creates or changes
/// comes back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placing {
    /// One list per unit of the chunk, in order (or none at all).
    pub placed: Vec<Vec<Placed>>,
    /// Files a unit creates or changes in its work dir go back as its results, under their
    /// paths there (GNU parallel's `--return`, done for every file).
    pub bring_back: bool,
    /// The path (in its work dir) of the placed file each unit reads as its stdin
    /// (`marmotctl parallel --pipe`'s block); none: stdin is empty.
    pub stdin: Option<String>,
}

/// Checks one unit's placed files: each one, at most [`MAX_PLACED_PER_UNIT`] (dirs counted),
/// no path twice and none both a file and a dir.
pub fn check_unit(placed: &[Placed]) -> Result<(), String> {
    if placed.len() > MAX_PLACED_PER_UNIT {
        return Err(format!("{} files for one unit: at most {MAX_PLACED_PER_UNIT}", placed.len()));
    }
    let mut paths = std::collections::HashSet::new();
    let mut files = std::collections::HashSet::new();
    for file in placed {
        file.check()?;
        if !paths.insert(file.file.name.as_str()) {
            return Err(format!("{} is placed twice in one unit", file.file.name));
        }
        if !file.is_dir() {
            files.insert(file.file.name.as_str());
        }
    }
    for file in placed {
        let path = file.file.name.as_str();
        let mut dirs = path.match_indices('/').map(|(at, _)| &path[..at]);
        if let Some(dir) = dirs.find(|dir| files.contains(dir)) {
            return Err(format!("{dir} is placed as a file and as the dir of {path}"));
        }
    }
    Ok(())
}

/// The name that marks a placed file gone, beside where it was: `logs/a.log` is marked by an
/// empty `logs/.marmot-gone.a.log` in the unit's results. Names so made are marmot's own: a
/// unit that makes one fails rather than have it misread.
pub const GONE_PREFIX: &str = ".marmot-gone.";

/// The mark that says the placed file `path` is gone (see [`GONE_PREFIX`]).
pub fn gone_mark(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/{GONE_PREFIX}{name}"),
        None => format!("{GONE_PREFIX}{path}"),
    }
}

/// The placed file a results path marks gone, if it is a mark.
pub fn marked_gone(path: &str) -> Option<String> {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (Some(dir), name),
        None => (None, path),
    };
    let name = name.strip_prefix(GONE_PREFIX).filter(|name| !name.is_empty())?;
    Some(match dir {
        Some(dir) => format!("{dir}/{name}"),
        None => name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_file_is_marked_beside_where_it_was() {
        for path in ["a.log", "logs/a.log", "a/b/c"] {
            let mark = gone_mark(path);
            assert_eq!(marked_gone(&mark).as_deref(), Some(path), "{mark}");
        }
        assert_eq!(gone_mark("logs/a.log"), "logs/.marmot-gone.a.log");
        assert_eq!(gone_mark("a"), ".marmot-gone.a");
        for other in ["a.log", "logs/a.log", ".marmot-gone.", "d/.marmot-gone.", "x.marmot-gone.a"]
        {
            assert_eq!(marked_gone(other), None, "{other}");
        }
    }

    fn placed(path: &str) -> Placed {
        let file = FileRef { name: path.into(), sha256: "a".repeat(64), size: 1 };
        Placed { file, mode: 0o644, mtime_ns: 0 }
    }

    #[test]
    fn relative_paths_of_plain_names_are_placed_and_nothing_else() {
        for good in ["a.txt", "dir/a.txt", "a/b/c", ".hidden/x", "..x"] {
            assert_eq!(check_relative_path(good), Ok(()), "{good}");
        }
        for bad in ["", "/etc/passwd", "a/../../b", "./a", "a//b", "a/", "..", "a\0b"] {
            assert!(check_relative_path(bad).is_err(), "{bad:?} taken");
        }
        let deep = vec!["d"; MAX_PATH_NAMES].join("/");
        assert_eq!(check_relative_path(&deep), Ok(()));
        assert!(check_relative_path(&format!("{deep}/d")).unwrap_err().contains("deep"));
        let long = vec!["x".repeat(200); 5].join("/") + "/" + &"y".repeat(MAX_PATH_BYTES - 1005);
        assert_eq!(long.len(), MAX_PATH_BYTES);
        assert_eq!(check_relative_path(&long), Ok(()));
        assert!(check_relative_path(&format!("{long}y")).unwrap_err().contains("bytes"));
    }

    #[test]
    fn a_unit_finds_each_path_once_and_a_file_is_never_a_dir() {
        assert_eq!(check_unit(&[placed("a"), placed("b/a"), placed("b/c")]), Ok(()));
        assert!(check_unit(&[placed("a"), placed("a")]).unwrap_err().contains("twice"));
        let both = check_unit(&[placed("b/c/d"), placed("b/c")]).unwrap_err();
        assert!(both.contains("b/c is placed as a file and as the dir of b/c/d"), "{both}");
        let many: Vec<Placed> =
            (0..=MAX_PLACED_PER_UNIT).map(|n| placed(&format!("f{n}"))).collect();
        assert!(check_unit(&many).unwrap_err().contains("at most"));
        assert_eq!(check_unit(&many[1..]), Ok(()));
        let mut all = placed("a");
        all.mode = 0o7777;
        assert_eq!(check_unit(&[all]), Ok(()));
        let mut bad = placed("a");
        bad.mode = 0o10000;
        assert!(check_unit(&[bad]).unwrap_err().contains("mode"));
        let mut bad = placed("a");
        bad.file.sha256 = "A".repeat(64);
        assert!(check_unit(&[bad]).unwrap_err().contains("SHA-256"));
    }

    #[test]
    fn a_dir_is_placed_with_what_is_in_it_and_has_no_bytes() {
        let dir = Placed::dir("d".into(), 0o40750);
        assert!(dir.is_dir() && !placed("d").is_dir());
        assert_eq!(dir.mode, 0o40750);
        assert_eq!(
            check_unit(&[dir.clone(), placed("d/x"), Placed::dir("d/e".into(), 0o700)]),
            Ok(())
        );
        assert!(check_unit(&[dir.clone(), placed("d")]).unwrap_err().contains("twice"));
        let mut full = dir.clone();
        full.file.size = 1;
        assert!(full.check().unwrap_err().contains("a dir has no bytes"));
        let mut hashed = dir.clone();
        hashed.file.sha256 = "a".repeat(64);
        assert!(hashed.check().unwrap_err().contains("a dir has no bytes"));
        let mut odd = dir;
        odd.mode = DIR_MODE | 0o10000;
        assert!(odd.check().unwrap_err().contains("mode"));
    }
}
