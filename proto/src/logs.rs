//! Log lines that travel: a worker's records sent to the coordinator (so `marmotctl logs` and
//! the dashboard show every machine's log in one place), and the coordinator's own.
//!
//! A line from a worker is untrusted bytes: [`LogLine::check`] bounds its size and refuses
//! control characters, so a peer can neither forge lines in a terminal nor fill memory.

use serde::{Deserialize, Serialize};

/// The most lines in one batch a worker sends.
pub const MAX_BATCH: usize = 256;
/// The longest message, in bytes; a worker cuts longer ones before sending.
pub const MAX_MESSAGE: usize = 2048;
/// The longest target (the module that logged), in bytes.
pub const MAX_TARGET: usize = 128;

/// How serious a line is. Only these travel: DEBUG and TRACE stay on the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        })
    }
}

/// One log record, as it left the machine that logged it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Unix time, milliseconds, by the clock of the machine that logged it.
    pub unix_ms: u64,
    pub level: Level,
    /// The module that logged it (`marmotd::worker::session`).
    pub target: String,
    /// The message with its fields, one line.
    pub message: String,
}

impl LogLine {
    /// A line made from what a subscriber saw: cut to the limits, control characters (a
    /// newline in an error chain) escaped, so it passes [`LogLine::check`].
    pub fn new(unix_ms: u64, level: Level, target: &str, message: &str) -> Self {
        LogLine {
            unix_ms,
            level,
            target: clean(target, MAX_TARGET),
            message: clean(message, MAX_MESSAGE),
        }
    }

    /// Whether a peer's line is one a real worker sends: bounded, one line, no control
    /// characters.
    pub fn check(&self) -> Result<(), String> {
        for (what, text, max) in
            [("target", &self.target, MAX_TARGET), ("message", &self.message, MAX_MESSAGE)]
        {
            if text.len() > max {
                return Err(format!("a log {what} of {} bytes (at most {max})", text.len()));
            }
            if text.chars().any(char::is_control) {
                return Err(format!("a log {what} with control characters"));
            }
        }
        Ok(())
    }
}

/// How far ahead of the receiving machine's clock a peer's line may be dated (clocks
/// disagree a little); and how far behind (lines held through an outage are older).
pub const MAX_AHEAD_MS: u64 = 10 * 60 * 1000;
pub const MAX_BEHIND_MS: u64 = 24 * 60 * 60 * 1000;

/// Dates a peer's lines received at `now_ms`: one dated further ahead than [`MAX_AHEAD_MS`]
/// or behind than [`MAX_BEHIND_MS`] is dated `now_ms` instead (a broken clock, or a lie,
/// must not reorder the log or put a year no reader can write).
pub fn date_received(lines: &mut [LogLine], now_ms: u64) {
    let earliest = now_ms.saturating_sub(MAX_BEHIND_MS);
    let latest = now_ms.saturating_add(MAX_AHEAD_MS);
    for line in lines {
        if !(earliest..=latest).contains(&line.unix_ms) {
            line.unix_ms = now_ms;
        }
    }
}

/// Checks a batch from a peer: at most [`MAX_BATCH`] lines, each as [`LogLine::check`] says.
pub fn check_batch(lines: &[LogLine]) -> Result<(), String> {
    if lines.len() > MAX_BATCH {
        return Err(format!("{} log lines in one batch (at most {MAX_BATCH})", lines.len()));
    }
    lines.iter().try_for_each(LogLine::check)
}

/// `text` with control characters escaped, cut to at most `max` bytes on a char boundary.
fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let escaped: String =
            if c.is_control() { c.escape_default().collect() } else { c.to_string() };
        if out.len() + escaped.len() > max {
            break;
        }
        out.push_str(&escaped);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_lines_dated_out_of_reason_are_dated_when_received() {
        let now = 1_800_000_000_000;
        let at = |ms| LogLine::new(ms, Level::Info, "t", "m");
        let mut lines = [
            at(u64::MAX),
            at(0),
            at(now + MAX_AHEAD_MS),
            at(now + MAX_AHEAD_MS + 1),
            at(now - MAX_BEHIND_MS),
            at(now - MAX_BEHIND_MS - 1),
            at(now - 5),
        ];
        date_received(&mut lines, now);
        let dates: Vec<u64> = lines.iter().map(|l| l.unix_ms).collect();
        let kept = [now + MAX_AHEAD_MS, now - MAX_BEHIND_MS, now - 5];
        assert_eq!(dates, [now, now, kept[0], now, kept[1], now, kept[2]]);
    }

    #[test]
    fn a_made_line_passes_its_own_check_whatever_it_was_given() {
        let line = LogLine::new(1, Level::Warn, "t", "lost\nthe coordinator\u{1b}[31m");
        assert_eq!(line.message, "lost\\nthe coordinator\\u{1b}[31m");
        assert_eq!(line.check(), Ok(()));
        let long = LogLine::new(1, Level::Info, &"t".repeat(500), &"é".repeat(5000));
        assert_eq!(long.target.len(), MAX_TARGET);
        // Cut on a char boundary: 1024 two-byte chars.
        assert_eq!(long.message.len(), MAX_MESSAGE);
        assert_eq!(long.check(), Ok(()));
    }

    #[test]
    fn a_peers_forged_or_oversized_line_is_refused() {
        let good = LogLine::new(1, Level::Info, "t", "fine");
        let forged = LogLine { message: "a\nINFO forged".into(), ..good.clone() };
        assert!(forged.check().unwrap_err().contains("control characters"));
        let big = LogLine { message: "x".repeat(MAX_MESSAGE + 1), ..good.clone() };
        assert!(big.check().unwrap_err().contains("2049 bytes"));
        let target = LogLine { target: "x".repeat(MAX_TARGET + 1), ..good.clone() };
        assert!(target.check().unwrap_err().contains("target"));
        assert_eq!(check_batch(&vec![good.clone(); MAX_BATCH]), Ok(()));
        assert!(check_batch(&vec![good.clone(); MAX_BATCH + 1]).unwrap_err().contains("257"));
        assert!(check_batch(&[good, forged]).is_err());
    }

    #[test]
    fn levels_read_as_in_a_log() {
        assert_eq!(Level::Warn.to_string(), "WARN");
        assert!(Level::Error > Level::Warn && Level::Warn > Level::Info);
    }
}
