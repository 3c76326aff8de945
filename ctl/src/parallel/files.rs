//! Which files travel with a job: GNU parallel runs a job where its files are, and
//! `marmotctl parallel` keeps that true on another machine. A word of the job (an argument,
//! or a word of its command line as the shell splits it) that names a regular file under the
//! current dir by a relative path (`a.txt`, `logs/b.log`, `./c`) has that file placed at the
//! same path in its unit's work dir, with the original's mode and modification time; one
//! that names a dir there brings the dir and everything in it (`mv {} destdir`, `ls {}`);
//! others (words, numbers, absolute paths, paths through `..`) are only words.

use crate::known_hashes::KnownHashes;
use anyhow::{Context, Result};
use proto::command::placed::{check_relative_path, Placed, MAX_PLACED_PER_UNIT};
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

/// A file's modification time in nanoseconds since the Unix epoch, as [`Placed`] carries it.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec())
}

/// The words of `job` that may name its files: its arguments, then its line's words as the
/// shell splits them (`grep -f - bigfile`, `mv log.{} ...`); none from a line the split
/// cannot read (its arguments still count).
pub fn names_of(job: &super::jobs::Job) -> Vec<String> {
    let words = shlex::split(&job.line).unwrap_or_default();
    job.args.iter().cloned().chain(words).collect()
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
        // Walked depth first: a dir, then what is in it. A word that names nothing stays a
        // word; a file (a link to one too) or a dir travels, and nothing else does.
        let mut to_walk = vec![path];
        while let Some(path) = to_walk.pop() {
            if placed.len() > MAX_PLACED_PER_UNIT {
                return Ok(placed); // refused by the caller, which says how many are allowed
            }
            if placed.iter().any(|p| p.file.name == path) {
                continue;
            }
            let at = dir.join(&path);
            let Ok(meta) = std::fs::metadata(&at) else { continue };
            if meta.is_dir() {
                let mut names = vec![];
                let listed = std::fs::read_dir(&at)
                    .with_context(|| format!("cannot read the dir {}", at.display()))?;
                for item in listed {
                    let item = item.with_context(|| format!("cannot read {}", at.display()))?;
                    let Some(name) = item.file_name().to_str().map(|n| format!("{path}/{n}"))
                    else {
                        continue; // a name that is not UTF-8 cannot be placed
                    };
                    if check_relative_path(&name).is_ok() {
                        names.push(name);
                    }
                }
                names.sort_unstable_by(|a, b| b.cmp(a));
                to_walk.extend(names);
                placed.push(Placed::dir(path, meta.mode()));
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            let mut file = std::fs::File::open(&at)
                .with_context(|| format!("cannot read {}", at.display()))?;
            let known = known.get_or_insert_with(KnownHashes::load);
            let (sha256, size) =
                known.sha256(&mut file).with_context(|| format!("cannot read {}", at.display()))?;
            let file = FileRef { name: path, sha256, size };
            found(at, &file);
            placed.push(Placed { file, mode: meta.mode() & 0o7777, mtime_ns: mtime_ns(&meta) });
        }
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
    fn a_jobs_words_are_its_arguments_and_its_lines_words() {
        let job = |line: &str, args: &[&str]| super::super::jobs::Job {
            seq: 1,
            line: line.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            skip: false,
        };
        let words = names_of(&job("grep -f - 'big file' x.log>out", &["x.log"]));
        assert_eq!(words, ["x.log", "grep", "-f", "-", "big file", "x.log>out"]);
        assert_eq!(names_of(&job("echo 'unclosed", &["a"])), ["a"], "arguments still count");
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
        let args: Vec<String> = ["./logs/b.log", "run.sh", "42", "logs/b.log", "/etc/hostname"]
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

    #[test]
    fn a_dir_travels_with_everything_in_it_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for path in ["d/b", "d/a", "d/sub/c"] {
            let at = dir.path().join(path);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::fs::write(at, path).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("d/empty")).unwrap();
        let perms = std::fs::Permissions::from_mode(0o750);
        std::fs::set_permissions(dir.path().join("d/sub"), perms).unwrap();
        let args = vec!["d".to_string(), "d/a".to_string()];
        let mut uploads = vec![];
        let mut known = Some(KnownHashes::load_from(None));
        let placed =
            of_args(&args, dir.path(), &mut known, &mut |path, _| uploads.push(path)).unwrap();
        let names: Vec<(&str, bool)> =
            placed.iter().map(|p| (p.file.name.as_str(), p.is_dir())).collect();
        assert_eq!(
            names,
            [
                ("d", true),
                ("d/a", false),
                ("d/b", false),
                ("d/empty", true),
                ("d/sub", true),
                ("d/sub/c", false)
            ]
        );
        assert_eq!(placed[4].mode, 0o40750);
        assert_eq!(uploads.len(), 3, "files are uploaded, dirs are made");
        assert_eq!(proto::command::placed::EMPTY_SHA256, hex_sha256(b""));
        // A dir of more than a unit may take stops being walked.
        for n in 0..MAX_PLACED_PER_UNIT + 5 {
            std::fs::write(dir.path().join(format!("d/empty/{n}")), b"").unwrap();
        }
        let placed = of_args(&args, dir.path(), &mut known, &mut |_, _| {}).unwrap();
        assert_eq!(placed.len(), MAX_PLACED_PER_UNIT + 1);
    }

    fn hex_sha256(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }
}
