//! GNU parallel's input sources: `:::` words, `::::` and `-a` files, stdin when none is
//! given; each read into records split at the delimiter (`\n`, `-0`, `-d`), up to the `-E`
//! string, empty ones dropped under `-r`, cut into columns under `--colsep`, their header
//! taken off under `--header`. [`combine`] makes the jobs' arguments of them: every
//! combination of the sources (the last one varying fastest), or linked ones side by side
//! (`--link` wraps the shorter ones around, `:::+` and `::::+` stop at the shortest).
//!
//! A `:::` word is read as GNU parallel reads it, as one record of a file: a word holding the
//! delimiter is several values.

use regex::Regex;
use std::io::Read;
use std::path::PathBuf;

/// Where one source's values come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The words after `:::`.
    Words(Vec<String>),
    /// A file (`::::`, `-a`); `-` is stdin.
    File(PathBuf),
}

/// One input source, and whether it is linked to the one before (`:::+`, `::::+`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub origin: Origin,
    pub linked: bool,
}

/// How records are read.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    /// Ends each record: `\n` unless `-0` or `-d` say otherwise.
    pub delimiter: Vec<u8>,
    /// `-E`: a record equal to it ends its source.
    pub eof: Option<String>,
    /// `-r`: records of blanks only are dropped.
    pub skip_blank: bool,
    /// `--colsep`: a record is cut into columns where this matches.
    pub colsep: Option<Regex>,
    /// `--header`: how many first records of each source name its columns.
    pub header_lines: usize,
}

/// One source's records, each cut into its columns; and its columns' names (`--header`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SourceRecords {
    pub records: Vec<Vec<String>>,
    pub names: Vec<String>,
}

/// A source that cannot be read, in words for the user.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read the input source {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the input source {0} is not UTF-8 text; marmotctl parallel takes text arguments")]
    NotText(String),
    #[error("an argument holds a NUL byte, which no command can receive: use -0 to split at NULs")]
    Nul,
}

/// Reads a source whole. `stdin` is read at most once by the caller's choice (GNU parallel
/// reads it for the first `-` only).
pub fn read(
    source: &Origin,
    how: &Reading,
    stdin: &mut dyn Read,
) -> Result<SourceRecords, SourceError> {
    let (bytes, shown) = match source {
        Origin::Words(words) => {
            let mut bytes = vec![];
            for word in words {
                bytes.extend_from_slice(word.as_bytes());
                bytes.extend_from_slice(&how.delimiter);
            }
            (bytes, ":::".to_string())
        }
        Origin::File(path) if path.as_os_str() == "-" => {
            let mut bytes = vec![];
            stdin
                .read_to_end(&mut bytes)
                .map_err(|source| SourceError::Read { path: "stdin".into(), source })?;
            (bytes, "stdin".to_string())
        }
        Origin::File(path) => {
            let shown = path.display().to_string();
            let bytes = std::fs::read(path)
                .map_err(|source| SourceError::Read { path: shown.clone(), source })?;
            (bytes, shown)
        }
    };
    let text = String::from_utf8(bytes).map_err(|_| SourceError::NotText(shown))?;
    let mut values = split_records(&text, &how.delimiter);
    if let Some(eof) = &how.eof {
        if let Some(at) = values.iter().position(|v| v == eof) {
            values.truncate(at);
        }
    }
    if how.skip_blank {
        values.retain(|v| !v.trim().is_empty());
    }
    if values.iter().any(|v| v.contains('\0')) {
        return Err(SourceError::Nul);
    }
    let cut = |record: &str| -> Vec<String> {
        match &how.colsep {
            Some(sep) => sep.split(record).map(String::from).collect(),
            None => vec![record.to_string()],
        }
    };
    let header = how.header_lines.min(values.len());
    let names = values.first().filter(|_| header > 0).map(|h| cut(h)).unwrap_or_default();
    let records = values[header..].iter().map(|v| cut(v)).collect();
    Ok(SourceRecords { records, names })
}

/// `text` cut at each `delimiter`; a last record without one counts.
fn split_records(text: &str, delimiter: &[u8]) -> Vec<String> {
    let delimiter = String::from_utf8_lossy(delimiter);
    if text.is_empty() {
        return vec![];
    }
    let mut values: Vec<String> = text.split(delimiter.as_ref()).map(String::from).collect();
    if text.ends_with(delimiter.as_ref()) {
        values.pop();
    }
    values
}

/// The jobs' arguments of sources read: each record of the result holds one record of each
/// source (its columns, in source order). `link` is `--link`.
pub fn combine(sources: Vec<(Vec<Vec<String>>, bool)>, link: bool) -> Vec<Vec<String>> {
    // Groups of linked sources: each group's records side by side, then every combination
    // of the groups.
    let mut groups: Vec<Vec<Vec<Vec<String>>>> = vec![];
    for (records, linked) in sources {
        match groups.last_mut() {
            Some(group) if link || linked => group.push(records),
            _ => groups.push(vec![records]),
        }
    }
    let zipped: Vec<Vec<Vec<String>>> = groups.into_iter().map(|g| zip(g, link)).collect();
    let mut combined: Vec<Vec<String>> = vec![vec![]];
    for group in zipped {
        let mut next = Vec::with_capacity(combined.len() * group.len());
        for prefix in &combined {
            for record in &group {
                let mut joined = prefix.clone();
                joined.extend(record.iter().cloned());
                next.push(joined);
            }
        }
        combined = next;
    }
    combined
}

/// Linked sources side by side: as long as the longest, the others wrapped around (`wrap`,
/// `--link`), or as the shortest (`:::+`).
fn zip(sources: Vec<Vec<Vec<String>>>, wrap: bool) -> Vec<Vec<String>> {
    let lengths = sources.iter().map(Vec::len);
    let len = if wrap { lengths.max() } else { lengths.min() }.unwrap_or(0);
    if sources.iter().any(Vec::is_empty) {
        return vec![];
    }
    (0..len)
        .map(|i| sources.iter().flat_map(|s| s[i % s.len()].iter().cloned()).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Origin {
        Origin::Words(w.iter().map(|s| s.to_string()).collect())
    }

    fn lines() -> Reading {
        Reading { delimiter: b"\n".to_vec(), ..Reading::default() }
    }

    fn records(origin: &Origin, how: &Reading) -> Vec<Vec<String>> {
        read(origin, how, &mut std::io::empty()).unwrap().records
    }

    #[test]
    fn words_are_read_as_records_of_a_file() {
        let r = records(&words(&["a", "b\nc", ""]), &lines());
        assert_eq!(r, [["a"], ["b"], ["c"], [""]]);
        let comma = Reading { delimiter: b",".to_vec(), ..Reading::default() };
        assert_eq!(records(&words(&["a,b"]), &comma), [["a"], ["b"]]);
    }

    #[test]
    fn a_dash_is_stdin_and_a_file_is_read_whole() {
        let mut stdin = std::io::Cursor::new(b"a\nb".to_vec());
        let read_stdin = read(&Origin::File("-".into()), &lines(), &mut stdin).unwrap();
        assert_eq!(read_stdin.records, [["a"], ["b"]]);
        assert!(read_stdin.names.is_empty(), "no header asked for, none taken");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "x\ny\n").unwrap();
        let file = Origin::File(dir.path().join("f"));
        let mut unused = std::io::Cursor::new(b"not read".to_vec());
        assert_eq!(read(&file, &lines(), &mut unused).unwrap().records, [["x"], ["y"]]);
        assert_eq!(unused.position(), 0, "stdin untouched");
        let missing = read(&Origin::File(dir.path().join("none")), &lines(), &mut unused);
        assert!(missing.unwrap_err().to_string().contains("cannot read the input source"));
    }

    #[test]
    fn eof_blank_columns_and_header() {
        let how = Reading { eof: Some("b".into()), ..lines() };
        assert_eq!(records(&words(&["a", "b", "c"]), &how), [["a"]]);
        let how = Reading { skip_blank: true, ..lines() };
        assert_eq!(records(&words(&["a", " ", "", " b"]), &how), [["a"], [" b"]]);
        let how = Reading { colsep: Some(Regex::new(",").unwrap()), header_lines: 1, ..lines() };
        let read = read(&words(&["x,y", "1,2,,"]), &how, &mut std::io::empty()).unwrap();
        assert_eq!(read.names, ["x", "y"]);
        assert_eq!(read.records, [["1", "2", "", ""]]);
    }

    #[test]
    fn sources_combine_as_gnu_parallel_combines_them() {
        let s = |v: &[&str]| v.iter().map(|x| vec![x.to_string()]).collect::<Vec<_>>();
        let flat = |r: Vec<Vec<String>>| r.into_iter().map(|r| r.join(" ")).collect::<Vec<_>>();
        let all = combine(vec![(s(&["A", "B"]), false), (s(&["1", "2", "3"]), false)], false);
        assert_eq!(flat(all), ["A 1", "A 2", "A 3", "B 1", "B 2", "B 3"]);
        let link = combine(vec![(s(&["a", "b", "c"]), false), (s(&["1", "2"]), false)], true);
        assert_eq!(flat(link), ["a 1", "b 2", "c 1"]);
        let plus = combine(vec![(s(&["a", "b", "c"]), false), (s(&["1", "2"]), true)], false);
        assert_eq!(flat(plus), ["a 1", "b 2"]);
        let none = combine(vec![(s(&["a"]), false), (s(&[]), false)], false);
        assert!(none.is_empty());
    }
}
