//! `--joblog FILE`: one line per unit, in GNU parallel's tab-separated columns, so the tools
//! people already point at a parallel joblog read marmot's too.
//!
//! `Seq  Host  Starttime  JobRuntime  Send  Receive  Exitval  Signal  Command`: the unit's
//! number (from 1), the worker that ran it, its start (Unix seconds) and run time (seconds),
//! the bytes of files sent for it and of output received, its exit status and the signal
//! that killed it (0 if none), and the command as run, quoted for a shell (its input is in
//! it). Tabs and line ends inside the command are written as `\t`, `\n`, `\r`: one unit,
//! one line.

use std::fmt;
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
    pub command: &'a [String],
}

impl fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let started = self.started.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let command = quoted(self.command);
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
            command: &command,
        };
        assert_eq!(
            entry.to_string(),
            "7\tattic\t1700000000.123\t     2.346\t1024\t12\t3\t0\tgzip -9 'my file.txt'"
        );
        assert_eq!(HEADER.split('\t').count(), entry.to_string().split('\t').count());
    }

    #[test]
    fn a_command_with_tabs_and_newlines_stays_on_one_line() {
        let command = argv(&["printf", "a\tb\nc\r"]);
        let entry = Entry {
            seq: 1,
            worker: "w\t1",
            started: SystemTime::UNIX_EPOCH,
            runtime: Duration::ZERO,
            sent: 0,
            received: 0,
            exit: 0,
            signal: 9,
            command: &command,
        };
        let line = entry.to_string();
        assert!(!line.contains('\n') && !line.contains('\r'));
        assert_eq!(line.split('\t').count(), 9, "{line}");
        assert!(line.starts_with("1\tw\\t1\t0.000\t     0.000\t0\t0\t0\t9\tprintf "), "{line}");
        assert!(line.ends_with("a\\tb\\nc\\r'"), "{line}");
    }
}
