//! `--joblog FILE`: one line per unit, in GNU parallel's tab-separated columns, so the tools
//! people already point at a parallel joblog read marmot's too.
//!
//! `Seq  Host  Starttime  JobRuntime  Send  Receive  Exitval  Signal  Command`: the unit's
//! number (from 1), the worker that ran it, its start (Unix seconds) and run time (seconds),
//! the bytes of files sent for it and of output received, its exit status and the signal
//! that killed it (0 if none), and the command as run, quoted for a shell (its input is in
//! it). Tabs and line ends inside the command are written as `\t`, `\n`, `\r`: one unit,
//! one line.

//!
//! [`done`] reads one back for `--resume` and `--resume-failed`, [`last_lines`] for
//! `--retry-failed`: GNU parallel's joblogs too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::BufRead;
use std::time::{Duration, SystemTime};

/// The joblog's first line.
pub const HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand";

/// One unit's line.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub seq: u64,
    pub worker: &'a str,
    pub started: SystemTime,
    pub runtime: Duration,
    pub sent: u64,
    pub received: u64,
    pub exit: i32,
    pub signal: i32,
    pub command: Command<'a>,
}

/// A unit's command as its joblog line shows it.
#[derive(Clone, Copy, Debug)]
pub enum Command<'a> {
    /// A program and its arguments, quoted as a shell would need them typed.
    Argv(&'a [String]),
    /// A line of shell code, as it is (`marmotctl parallel`).
    Line(&'a str),
}

impl fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let started = self.started.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let command = match self.command {
            Command::Argv(argv) => quoted(argv),
            Command::Line(line) => one_field(line),
        };
        let worker = one_field(self.worker);
        write!(
            f,
            "{}\t{worker}\t{:.3}\t{:10.3}\t{}\t{}\t{}\t{}\t{command}",
            self.seq,
            started.as_secs_f64(),
            self.runtime.as_secs_f64(),
            self.sent,
            self.received,
            self.exit,
            self.signal,
        )
    }
}

/// Which units of an earlier run count as done, as GNU parallel's options say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// `--resume`: every unit with a line, however it ended.
    Logged,
    /// `--resume-failed`: every unit whose last line says it succeeded (exit 0, no signal);
    /// the failed ones run again.
    Succeeded,
}

/// Why a joblog cannot be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("its first line is not a joblog's header (Seq, Host, Starttime, ...)")]
    Header,
    #[error("line {line} is not a joblog line ({why})")]
    Line { line: usize, why: &'static str },
    #[error("cannot read it: {0}")]
    Io(String),
}

/// The numbers (`Seq`, from 1) of the units `log` shows done. An empty log shows none. A last
/// line without its line end (the run was killed while writing it) is not counted.
pub fn done(log: impl BufRead, resume: Resume) -> Result<BTreeSet<u64>, ReadError> {
    let last = last_lines(log)?;
    let done = last.into_iter().filter(|(_, l)| l.succeeded || resume == Resume::Logged);
    Ok(done.map(|(seq, _)| seq).collect())
}

/// A unit's last line in a joblog: how it ended, and its command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// Exit 0, no signal.
    pub succeeded: bool,
    /// The `Command` column as written (GNU parallel's and marmot's agree but for a command
    /// holding a tab or a line end, which marmot writes `\t`, `\n`).
    pub command: String,
}

/// Each unit's last line in `log`, by `Seq`; read as [`done`] reads it.
pub fn last_lines(mut log: impl BufRead) -> Result<BTreeMap<u64, Logged>, ReadError> {
    let mut text = String::new();
    log.read_to_string(&mut text).map_err(|e| ReadError::Io(e.to_string()))?;
    let mut lines: Vec<&str> = text.split('\n').collect();
    // What follows the last line end: nothing, or a line cut short.
    lines.pop();
    let Some((header, lines)) = lines.split_first() else { return Ok(BTreeMap::new()) };
    if header.trim_end_matches('\r') != HEADER {
        return Err(ReadError::Header);
    }
    let mut last = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let at = i + 2;
        let bad = |why| ReadError::Line { line: at, why };
        let fields: Vec<&str> = line.trim_end_matches('\r').splitn(9, '\t').collect();
        if fields.len() != 9 {
            return Err(bad("it has fewer than 9 tab-separated columns"));
        }
        let seq: u64 = fields[0].parse().map_err(|_| bad("its Seq is not a number"))?;
        if seq == 0 {
            return Err(bad("its Seq is 0; units count from 1"));
        }
        let exit: i64 = fields[6].trim().parse().map_err(|_| bad("its Exitval is not a number"))?;
        let signal: i64 =
            fields[7].trim().parse().map_err(|_| bad("its Signal is not a number"))?;
        // As GNU parallel reads it back: the rest of the line as it is.
        let command = fields[8].to_string();
        last.insert(seq, Logged { succeeded: exit == 0 && signal == 0, command });
    }
    Ok(last)
}

/// `argv` as a shell would need it typed, on one line.
fn quoted(argv: &[String]) -> String {
    let joined = shlex::try_join(argv.iter().map(String::as_str))
        // Only a NUL cannot be quoted, and a checked command has none.
        .unwrap_or_else(|_| argv.join(" "));
    one_field(&joined)
}

/// `text` with tabs and line ends escaped.
fn one_field(text: &str) -> String {
    text.replace('\t', "\\t").replace('\n', "\\n").replace('\r', "\\r")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    /// A unit that started at the epoch and took no time, with nothing sent or received.
    fn quick<'a>(seq: u64, worker: &'a str, signal: i32, command: &'a [String]) -> Entry<'a> {
        let (started, runtime) = (SystemTime::UNIX_EPOCH, Duration::ZERO);
        let command = Command::Argv(command);
        Entry { seq, worker, started, runtime, sent: 0, received: 0, exit: 0, signal, command }
    }

    #[test]
    fn a_line_has_gnu_parallels_columns() {
        let command = argv(&["gzip", "-9", "my file.txt"]);
        let entry = Entry {
            seq: 7,
            worker: "attic",
            started: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            runtime: Duration::from_micros(2_345_600),
            sent: 1024,
            received: 12,
            exit: 3,
            signal: 0,
            command: Command::Argv(&command),
        };
        assert_eq!(
            entry.to_string(),
            "7\tattic\t1700000000.123\t     2.346\t1024\t12\t3\t0\tgzip -9 'my file.txt'"
        );
        assert_eq!(HEADER.split('\t').count(), entry.to_string().split('\t').count());
    }

    /// A joblog in GNU parallel's columns (its `Host` is `:` for the local machine): a failed
    /// unit, a killed one, one that failed then succeeded on a rerun, and a line cut short.
    /// (e2e `resumed::` resumes from one GNU parallel itself wrote.)
    const GNU_LOG: &str =
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand
1\t:\t1733500000.000\t     0.002\t0\t0\t0\t0\texit 0
2\t:\t1733500000.001\t     0.002\t0\t0\t1\t0\texit 1
3\t:\t1733500000.002\t     0.002\t0\t0\t0\t0\texit 0
4\t:\t1733500000.003\t     0.002\t0\t0\t0\t9\tsleep 9
5\t:\t1733500000.004\t     0.002\t0\t0\t1\t0\texit 1
5\t:\t1733500001.004\t     0.002\t0\t0\t0\t0\texit 0
6\t:\t1733500001.0";

    #[test]
    fn a_joblog_read_back_says_which_units_are_done() {
        let set = |seqs: &[u64]| seqs.iter().copied().collect::<BTreeSet<u64>>();
        let logged = done(GNU_LOG.as_bytes(), Resume::Logged).unwrap();
        assert_eq!(logged, set(&[1, 2, 3, 4, 5]), "unit 6's line was cut short");
        let succeeded = done(GNU_LOG.as_bytes(), Resume::Succeeded).unwrap();
        assert_eq!(succeeded, set(&[1, 3, 5]), "2 failed, 4 was killed, 5 succeeded last");
        assert_eq!(done(&b""[..], Resume::Logged).unwrap(), set(&[]));
        assert_eq!(done(format!("{HEADER}\n").as_bytes(), Resume::Logged).unwrap(), set(&[]));
        // What this module writes reads back.
        let command = argv(&["echo", "a\tb"]);
        let ours = format!("{HEADER}\r\n{}\r\n", quick(3, "w", 0, &command));
        assert_eq!(done(ours.as_bytes(), Resume::Succeeded).unwrap(), set(&[3]));
    }

    #[test]
    fn each_units_last_line_is_read_with_its_command_as_written() {
        let log = format!(
            "{HEADER}\n1\t:\t0\t0\t0\t0\t1\t0\tprintf '%s\\n' 'a\tb'\n2\t:\t0\t0\t0\t0\t0\t0\ttrue\n\
             1\t:\t0\t0\t0\t0\t0\t0\tprintf again\n3\t:\t0\t0\t0\t0\t0\t9\tkilled\n4\t:\t0\t0"
        );
        let last = last_lines(log.as_bytes()).unwrap();
        let logged = |succeeded, command: &str| Logged { succeeded, command: command.into() };
        assert_eq!(last.get(&1), Some(&logged(true, "printf again")), "the last line counts");
        assert_eq!(last.get(&2), Some(&logged(true, "true")));
        assert_eq!(last.get(&3), Some(&logged(false, "killed")), "a signal is a failure");
        assert_eq!(last.len(), 3, "a line cut short is not read");
        let first = format!("{HEADER}\n1\t:\t0\t0\t0\t0\t1\t0\tprintf '%s\\n' 'a\tb'\n");
        let tab = last_lines(first.as_bytes()).unwrap();
        assert_eq!(tab[&1].command, "printf '%s\\n' 'a\tb'", "GNU parallel's raw tab kept");
        assert!(last_lines(&b""[..]).unwrap().is_empty());
    }

    #[test]
    fn what_is_not_a_joblog_is_refused() {
        let read = |text: &str| done(text.as_bytes(), Resume::Logged).unwrap_err();
        assert_eq!(read("a\tb\n"), ReadError::Header);
        let line = |body: &str| read(&format!("{HEADER}\n1\t:\t0\t0\t0\t0\t0\t0\tok\n{body}\n"));
        assert_eq!(
            line("7\t:\t0\t0\t0\t0"),
            ReadError::Line { line: 3, why: "it has fewer than 9 tab-separated columns" }
        );
        assert!(
            matches!(line("x\t:\t0\t0\t0\t0\t0\t0\tc"), ReadError::Line { why, .. } if why.contains("Seq"))
        );
        assert!(
            matches!(line("0\t:\t0\t0\t0\t0\t0\t0\tc"), ReadError::Line { why, .. } if why.contains("from 1"))
        );
        assert!(
            matches!(line("2\t:\t0\t0\t0\t0\tx\t0\tc"), ReadError::Line { why, .. } if why.contains("Exitval"))
        );
        assert!(
            matches!(line("2\t:\t0\t0\t0\t0\t0\t-\tc"), ReadError::Line { why, .. } if why.contains("Signal"))
        );
    }

    #[test]
    fn a_command_with_tabs_and_newlines_stays_on_one_line() {
        let command = argv(&["printf", "a\tb\nc\r"]);
        let entry = quick(1, "w\t1", 9, &command);
        let line = entry.to_string();
        assert!(!line.contains('\n') && !line.contains('\r'));
        assert_eq!(line.split('\t').count(), 9, "{line}");
        assert!(line.starts_with("1\tw\\t1\t0.000\t     0.000\t0\t0\t0\t9\tprintf "), "{line}");
        assert!(line.ends_with("a\\tb\\nc\\r'"), "{line}");
    }
}
