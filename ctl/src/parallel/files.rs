//! Which of a job's arguments are files that travel with it: GNU parallel runs a job where
//! its files are, and `marmotctl parallel` keeps that true on another machine. An argument
//! that names a regular file under the current dir by a relative path (`a.txt`,
//! `logs/b.log`, `./c`) has that file placed at the same path in its unit's work dir, with
//! the original's mode and modification time; others (words, numbers, absolute paths, paths
//! through `..`, dirs) are only words.

use crate::known_hashes::KnownHashes;
use anyhow::{Context, Result};
use proto::command::placed::{check_relative_path, Placed};
use proto::command::FileRef;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// The path an argument names relative to the current dir, in plain names joined by `/`
/// (`./a/./b` is `a/b`), if it can name a file placed in a work dir.
pub fn relative(arg: &str) -> Option<String> {
    let mut names = vec![];
    for component in Path::new(arg).components() {
        match component {
            Component::CurDir => {}
            Component::Normal(name) => names.push(name.to_str()?),
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    let path = names.join("/");
    check_relative_path(&path).ok().map(|()| path)
}

/// The files a job's `args` name under `dir` (the current dir), each once, hashed (with
/// `known` remembering hashes of files that did not change, loaded at the first file: most
/// jobs name none) and handed to `found` to upload.
pub fn of_args(
    args: &[String],
    dir: &Path,
    known: &mut Option<KnownHashes>,
    found: &mut dyn FnMut(PathBuf, &FileRef),
) -> Result<Vec<Placed>> {
    let mut placed: Vec<Placed> = vec![];
    for path in args.iter().filter_map(|arg| relative(arg)) {
        if placed.iter().any(|p| p.file.name == path) {
            continue;
        }
        let at = dir.join(&path);
        // Only what is a file (a link to one too) travels; a word that names nothing stays
        // a word.
        let Ok(meta) = std::fs::metadata(&at) else { continue };
        if !meta.is_file() {
            continue;
        }
        let mut file =
            std::fs::File::open(&at).with_context(|| format!("cannot read {}", at.display()))?;
        let known = known.get_or_insert_with(KnownHashes::load);
        let (sha256, size) =
            known.sha256(&mut file).with_context(|| format!("cannot read {}", at.display()))?;
        let file = FileRef { name: path, sha256, size };
        found(at, &file);
        let mtime_ns = meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec());
        placed.push(Placed { file, mode: meta.mode() & 0o7777, mtime_ns });
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn an_argument_is_a_relative_path_of_plain_names_or_no_file() {
        assert_eq!(relative("a.txt").as_deref(), Some("a.txt"));
        assert_eq!(relative("./logs/./b.log").as_deref(), Some("logs/b.log"));
        assert_eq!(relative("dir/").as_deref(), Some("dir"));
        for word in ["/etc/passwd", "../x", "a/../b", "", ".", "./"] {
            assert_eq!(relative(word), None, "{word:?}");
        }
    }

    #[test]
    fn files_named_by_arguments_travel_with_their_mode_and_time_and_words_do_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("logs/b.log"), b"bee\n").unwrap();
        std::fs::write(dir.path().join("run.sh"), b"echo\n").unwrap();
        let perms = std::fs::Permissions::from_mode(0o751);
        std::fs::set_permissions(dir.path().join("run.sh"), perms).unwrap();
        let when = std::time::UNIX_EPOCH + std::time::Duration::new(1_500_000_000, 7);
        let file = std::fs::File::options().write(true).open(dir.path().join("run.sh")).unwrap();
        file.set_modified(when).unwrap();
        let args: Vec<String> =
            ["./logs/b.log", "logs", "run.sh", "42", "logs/b.log", "/etc/hostname"]
                .map(String::from)
                .to_vec();
        let mut known = Some(KnownHashes::load_from(None));
        let mut uploads = vec![];
        let placed = of_args(&args, dir.path(), &mut known, &mut |path, file| {
            uploads.push((path, file.clone()))
        })
        .unwrap();
        let names: Vec<&str> = placed.iter().map(|p| p.file.name.as_str()).collect();
        assert_eq!(names, ["logs/b.log", "run.sh"]);
        assert_eq!(placed[1].mode, 0o751);
        assert_eq!(placed[1].mtime_ns, 1_500_000_000_000_000_007);
        assert_eq!(placed[0].file.size, 4);
        assert_eq!(placed[0].file.sha256, hex_sha256(b"bee\n"));
        assert_eq!(uploads.len(), 2);
        assert_eq!(uploads[0].0, dir.path().join("logs/b.log"));
    }

    fn hex_sha256(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }
}
