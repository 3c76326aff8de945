//! `--results` and `--files`: where each job's output is kept instead of printed, named as
//! GNU parallel 20221122 names it (its man page's `--results`, checked against it).
//!
//! - `--results DIR` (no replacement string): a dir per job, `DIR/<column>/<value>/…` for
//!   each of the job's arguments, holding `seq`, `stdout` and `stderr`. `<column>` is the
//!   argument's place (1, 2, …) or its `--header` name; `<value>` the argument with `\`
//!   doubled and `/` written `\_`, cut to 255 bytes (a file name's most).
//! - `--results TEMPLATE` (replacement strings): filled in per job; ending in `/`, the job's
//!   dir as above; else the file its stdout goes to, with `.err` and `.seq` beside it.
//! - `--results NAME.csv` (`.tsv`, `.json`): one table, a row per job with its times, exit
//!   status, command, arguments, stdout and stderr ([`Table`]).
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

/// `--results NAME.csv`, `.tsv`, `.json`: one file, a row per job, as GNU parallel writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Csv,
    Tsv,
    Json,
}

/// One job's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row<'a> {
    pub seq: u64,
    pub host: &'a str,
    /// When it started, in Unix milliseconds, and how long it ran.
    pub start_ms: u64,
    pub runtime_ms: u64,
    /// Bytes of its stdout.
    pub receive: u64,
    pub exit: i64,
    pub signal: i64,
    pub command: &'a str,
    /// Its arguments.
    pub values: &'a [String],
    pub stdout: &'a [u8],
    pub stderr: &'a [u8],
}

impl Table {
    /// The table a `--results` name asks for, by its extension.
    pub fn of(name: &str) -> Option<Table> {
        let lower = name.to_ascii_lowercase();
        [(".csv", Table::Csv), (".tsv", Table::Tsv), (".json", Table::Json)]
            .into_iter()
            .find_map(|(end, table)| lower.ends_with(end).then_some(table))
    }

    /// The first line: the columns, an argument's by its `--header` name or `V1`, `V2`, ...
    /// (none for JSON, whose rows name their fields).
    pub fn header(self, values: usize, names: &[String]) -> Vec<u8> {
        let sep = match self {
            Table::Csv => ",",
            Table::Tsv => "\t",
            Table::Json => return vec![],
        };
        let fixed = ["Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive", "Exitval"];
        let mut columns: Vec<String> = fixed.iter().map(|c| c.to_string()).collect();
        columns.extend(["Signal".into(), "Command".into()]);
        for n in 0..values {
            columns.push(names.get(n).cloned().unwrap_or_else(|| format!("V{}", n + 1)));
        }
        columns.extend(["Stdout".into(), "Stderr".into()]);
        format!("{}\n", columns.join(sep)).into_bytes()
    }

    /// A job's row, its line end included.
    pub fn row(self, row: &Row<'_>) -> Vec<u8> {
        let times = format!("{}.{:03}", row.start_ms / 1000, row.start_ms % 1000);
        let runtime = format!("{}.{:03}", row.runtime_ms / 1000, row.runtime_ms % 1000);
        let (seq, receive) = (row.seq.to_string(), row.receive.to_string());
        let (exit, signal) = (row.exit.to_string(), row.signal.to_string());
        if self == Table::Json {
            let values: Vec<String> = row.values.iter().map(|v| json(v.as_bytes())).collect();
            return format!(
                "{{ \"Seq\": {seq}, \"Host\": {}, \"Starttime\": {times}, \"JobRuntime\": \
                 {runtime}, \"Send\": 0, \"Receive\": {receive}, \"Exitval\": {exit}, \
                 \"Signal\": {signal}, \"Command\": {}, \"V\": [ {} ], \"Stdout\": {}, \
                 \"Stderr\": {} }}\n",
                json(row.host.as_bytes()),
                json(row.command.as_bytes()),
                values.join(","),
                json(row.stdout),
                json(row.stderr),
            )
            .into_bytes();
        }
        let sep = if self == Table::Csv { b',' } else { b'\t' };
        let mut fields: Vec<&[u8]> = vec![seq.as_bytes(), row.host.as_bytes(), times.as_bytes()];
        fields.extend([runtime.as_bytes(), b"0", receive.as_bytes(), exit.as_bytes()]);
        fields.extend([signal.as_bytes(), row.command.as_bytes()]);
        fields.extend(row.values.iter().map(|v| v.as_bytes()));
        fields.extend([row.stdout, row.stderr]);
        let mut out = vec![];
        for (n, field) in fields.into_iter().enumerate() {
            if n > 0 {
                out.push(sep);
            }
            out.extend(quoted(field, sep));
        }
        out.push(b'\n');
        out
    }
}

/// A CSV or TSV field as GNU parallel writes it: in `"`, each `"` doubled, when it holds
/// white space (Perl's `\s`), the separator or a `"`.
fn quoted(field: &[u8], sep: u8) -> Vec<u8> {
    let special = |b: &u8| b" \t\n\r\x0b\x0c\"".contains(b) || *b == sep;
    if !field.iter().any(special) {
        return field.to_vec();
    }
    let mut out = vec![b'"'];
    for &b in field {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

/// A JSON string as GNU parallel writes it: `"` and `\` escaped, control characters as
/// `\u00XX`; other bytes as they are.
fn json(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => out.extend([b'\\', b]),
            0..=0x1f => out.extend(format!("\\u{b:04x}").bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
    String::from_utf8_lossy(&out).into_owned()
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
    fn a_table_is_named_by_its_extension() {
        assert_eq!(Table::of("out.csv"), Some(Table::Csv));
        assert_eq!(Table::of("out.TSV"), Some(Table::Tsv));
        assert_eq!(Table::of("a/out.json"), Some(Table::Json));
        assert_eq!(Table::of("out"), None);
        assert_eq!(Table::of("csv"), None);
    }

    fn row<'a>(values: &'a [String], stdout: &'a [u8]) -> Row<'a> {
        Row {
            seq: 7,
            host: "w1",
            start_ms: 1_796_648_952_981,
            runtime_ms: 2,
            receive: 4,
            exit: 1,
            signal: 0,
            command: "echo 'b,c'",
            values,
            stdout,
            stderr: b"",
        }
    }

    #[test]
    fn rows_are_written_as_gnu_parallel_writes_them() {
        // Each as GNU parallel 20221122 wrote it for the same job.
        let values = ["b,c".to_string(), "x'y".into()];
        let csv = Table::Csv.row(&row(&values, b"b\"c\n"));
        let want = "7,w1,1796648952.981,0.002,0,4,1,0,\"echo 'b,c'\",\"b,c\",x'y,\"b\"\"c\n\",\n";
        assert_eq!(String::from_utf8(csv).unwrap(), want);
        let tsv = Table::Tsv.row(&row(&values, b"a b"));
        let want =
            "7\tw1\t1796648952.981\t0.002\t0\t4\t1\t0\t\"echo 'b,c'\"\tb,c\tx'y\t\"a b\"\t\n";
        assert_eq!(String::from_utf8(tsv).unwrap(), want);
        let values = ["a".to_string(), "b\\\"".into()];
        let json = Table::Json.row(&row(&values, b"t\tx\x01\n"));
        let want = "{ \"Seq\": 7, \"Host\": \"w1\", \"Starttime\": 1796648952.981, \"JobRuntime\": 0.002, \"Send\": 0, \"Receive\": 4, \"Exitval\": 1, \"Signal\": 0, \"Command\": \"echo 'b,c'\", \"V\": [ \"a\",\"b\\\\\\\"\" ], \"Stdout\": \"t\\u0009x\\u0001\\u000a\", \"Stderr\": \"\" }\n";
        assert_eq!(String::from_utf8(json).unwrap(), want);
    }

    #[test]
    fn a_header_names_the_arguments_by_header_or_place() {
        let csv = Table::Csv.header(2, &["n1".into()]);
        let want = "Seq,Host,Starttime,JobRuntime,Send,Receive,Exitval,Signal,Command,n1,V2,Stdout,Stderr\n";
        assert_eq!(String::from_utf8(csv).unwrap(), want);
        assert!(Table::Tsv.header(1, &[]).starts_with(b"Seq\tHost\t"));
        assert!(Table::Json.header(1, &[]).is_empty());
    }
}
