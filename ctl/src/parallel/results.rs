//! `--results` and `--files`: where each job's output is kept instead of printed, named as
//! GNU parallel 20221122 names it (its man page's `--results`, checked against it).
//!
//! - `--results DIR` (no replacement string): a dir per job, `DIR/<column>/<value>/…` for
//!   each of the job's arguments, holding `seq`, `stdout` and `stderr`. `<column>` is the
//!   argument's place (1, 2, …) or its `--header` name; `<value>` the argument with `\`
//!   doubled and `/` written `\_`, cut to 255 bytes (a file name's most).
//! - `--results TEMPLATE` (replacement strings): filled in per job; ending in `/`, the job's
//!   dir as above; else the file its stdout goes to, with `.err` and `.seq` beside it.
//! - `--files`: the name of the file holding each job's stdout is printed in place of it: a
//!   new `parXXXXX.par` under `--tmpdir`, or the `stdout` `--results` says.

use std::path::{Path, PathBuf};

/// Where one job's output is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kept {
    /// A dir holding `seq`, `stdout`, `stderr`.
    Dir(PathBuf),
    /// Stdout in this file; stderr and seq beside it, with `.err` and `.seq` added.
    File(PathBuf),
}

impl Kept {
    /// The job's kept output for a `--results` value filled in for it: `text` is the value
    /// as given when it holds no replacement string (then the job's `args` name its dir).
    pub fn of(text: &str, plain: bool, columns: &[String], args: &[&str]) -> Kept {
        if !plain {
            return match text.strip_suffix('/') {
                Some(_) => Kept::Dir(PathBuf::from(text)),
                None => Kept::File(PathBuf::from(text)),
            };
        }
        let mut dir = PathBuf::from(text);
        for (n, arg) in args.iter().enumerate() {
            let column = columns.get(n).cloned().unwrap_or_else(|| (n + 1).to_string());
            dir.push(escape(&column));
            dir.push(escape(arg));
        }
        Kept::Dir(dir)
    }

    pub fn stdout(&self) -> PathBuf {
        self.with("stdout", "")
    }

    pub fn stderr(&self) -> PathBuf {
        self.with("stderr", ".err")
    }

    pub fn seq(&self) -> PathBuf {
        self.with("seq", ".seq")
    }

    fn with(&self, in_dir: &str, suffix: &str) -> PathBuf {
        match self {
            Kept::Dir(dir) => dir.join(in_dir),
            Kept::File(file) => {
                let mut name = file.clone().into_os_string();
                name.push(suffix);
                name.into()
            }
        }
    }

    /// The dir its files go in (made before they are written).
    pub fn parent(&self) -> Option<&Path> {
        match self {
            Kept::Dir(dir) => Some(dir),
            Kept::File(file) => file.parent(),
        }
    }
}

/// The longest name of a file or dir (in bytes) on the file systems people have.
const NAME_MAX: usize = 255;

/// An argument as a dir's name: `\` doubled, `/` as `\_`, at most [`NAME_MAX`] bytes (cut
/// at a character's boundary).
pub fn escape(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('/', "\\_");
    let mut end = escaped.len().min(NAME_MAX);
    while !escaped.is_char_boundary(end) {
        end -= 1;
    }
    escaped[..end].to_string()
}

/// Why a `--results` value cannot be taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResultsError {
    #[error(
        "--results {0}: a table (.csv, .tsv, .json) is not supported by marmotctl parallel \
         yet: give a dir"
    )]
    Table(String),
}

/// Checks a `--results` value: a dir or a template, not a table.
pub fn check(text: &str) -> Result<(), ResultsError> {
    let lower = text.to_ascii_lowercase();
    if [".csv", ".tsv", ".json"].iter().any(|end| lower.ends_with(end)) {
        return Err(ResultsError::Table(text.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_per_argument_named_by_its_column() {
        let kept = Kept::of("out", true, &[], &["A", "b/c"]);
        assert_eq!(kept, Kept::Dir("out/1/A/2/b\\_c".into()));
        assert_eq!(kept.stdout(), PathBuf::from("out/1/A/2/b\\_c/stdout"));
        assert_eq!(kept.stderr(), PathBuf::from("out/1/A/2/b\\_c/stderr"));
        assert_eq!(kept.seq(), PathBuf::from("out/1/A/2/b\\_c/seq"));
        let named = Kept::of("out", true, &["f1".into(), "f2".into()], &["A", "C"]);
        assert_eq!(named, Kept::Dir("out/f1/A/f2/C".into()));
        assert_eq!(named.parent(), Some(Path::new("out/f1/A/f2/C")));
    }

    #[test]
    fn a_template_names_a_file_or_a_dir() {
        let file = Kept::of("o/X", false, &[], &["X"]);
        assert_eq!(file.stdout(), PathBuf::from("o/X"));
        assert_eq!(file.stderr(), PathBuf::from("o/X.err"));
        assert_eq!(file.seq(), PathBuf::from("o/X.seq"));
        assert_eq!(file.parent(), Some(Path::new("o")));
        let dir = Kept::of("o/X/", false, &[], &["X"]);
        assert_eq!(dir.stdout(), PathBuf::from("o/X/stdout"));
    }

    #[test]
    fn values_are_escaped_and_cut_as_gnu_parallel_does() {
        assert_eq!(escape(r"a\b/c"), r"a\\b\_c");
        assert_eq!(escape(&"x".repeat(300)).len(), 255);
        // Cut at a character's boundary: 'é' is two bytes.
        assert_eq!(escape(&"é".repeat(200)).len(), 254);
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn tables_are_refused_dirs_taken() {
        assert!(check("out.csv").is_err());
        assert!(check("out.TSV").is_err());
        assert!(check("out.json").is_err());
        assert_eq!(check("out"), Ok(()));
        assert_eq!(check("out/{1}"), Ok(()));
    }
}
