//! `--termseq`: the signals a unit's processes get when it is stopped (timed out, cancelled,
//! halted), each followed by the longest wait for them to end, as GNU parallel's option
//! spells it (`INT,200,TERM,100,KILL,25`). Parsed on the client, checked again by the
//! coordinator and the worker (bytes from the network), sent by the worker.
//!
//! Whatever the sequence, a worker sends SIGKILL to what is left after its last wait: a
//! unit never outlives its stop (GNU parallel gives up instead).

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// The most signals in one sequence.
pub const MAX_STEPS: usize = 16;
/// The longest wait after one signal, in milliseconds.
pub const MAX_WAIT_MS: u32 = 60_000;

/// GNU parallel's own sequence, for `--termseq`'s help and the README.
pub const GNU_DEFAULT: &str = "TERM,200,TERM,100,TERM,50,KILL,25";

/// A stop's signals in order, each with the most milliseconds to wait after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermSeq {
    /// (signal number, wait in ms).
    pub steps: Vec<(i32, u32)>,
}

impl TermSeq {
    /// Reads GNU parallel's syntax: `SIGNAL,MS` pairs, comma-separated; a signal by name
    /// (`TERM`, `SIGTERM`) or number; a last signal without its wait waits 0 ms, as in GNU
    /// parallel.
    pub fn parse(text: &str) -> Result<TermSeq, String> {
        let fields: Vec<&str> = text.split(',').collect();
        let mut steps = Vec::new();
        for pair in fields.chunks(2) {
            let signal = signal_of(pair[0]).map_err(|why| format!("--termseq {text}: {why}"))?;
            let wait = match pair.get(1) {
                Some(ms) => ms.trim().parse::<u32>().map_err(|_| {
                    format!(
                        "--termseq {text}: `{ms}` is not a wait in milliseconds; give \
                         SIGNAL,MS pairs such as {GNU_DEFAULT}"
                    )
                })?,
                None => 0,
            };
            steps.push((signal as i32, wait));
        }
        let seq = TermSeq { steps };
        seq.check().map_err(|why| format!("--termseq {text}: {why}"))?;
        Ok(seq)
    }

    /// Checks a sequence from the network: 1 to [`MAX_STEPS`] signals this system knows,
    /// none waiting longer than [`MAX_WAIT_MS`].
    pub fn check(&self) -> Result<(), String> {
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(format!("give 1 to {MAX_STEPS} signals, not {}", self.steps.len()));
        }
        for &(number, wait) in &self.steps {
            Signal::try_from(number).map_err(|_| format!("{number} is not a signal"))?;
            if wait > MAX_WAIT_MS {
                return Err(format!("a wait of {wait} ms: at most {MAX_WAIT_MS} after a signal"));
            }
        }
        Ok(())
    }

    /// The signals and waits, checked.
    pub fn signals(&self) -> impl Iterator<Item = (Signal, std::time::Duration)> + '_ {
        self.steps.iter().filter_map(|&(number, wait)| {
            let signal = Signal::try_from(number).ok()?;
            Some((signal, std::time::Duration::from_millis(u64::from(wait))))
        })
    }
}

/// A signal by name (`TERM`, `SIGTERM`) or number (`15`).
fn signal_of(text: &str) -> Result<Signal, String> {
    let text = text.trim();
    let found = match text.parse::<i32>() {
        Ok(number) => Signal::try_from(number).ok(),
        Err(_) => match text.starts_with("SIG") {
            true => Signal::from_str(text).ok(),
            false => Signal::from_str(&format!("SIG{text}")).ok(),
        },
    };
    found.ok_or_else(|| match text.is_empty() {
        true => format!("a signal is missing; give SIGNAL,MS pairs such as {GNU_DEFAULT}"),
        false => format!("`{text}` is not a signal (kill -l lists them)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_parallels_sequences_read_as_signals_and_waits() {
        let seq = TermSeq::parse(GNU_DEFAULT).unwrap();
        assert_eq!(seq.steps, vec![(15, 200), (15, 100), (15, 50), (9, 25)]);
        let seq = TermSeq::parse("INT,200,SIGTERM,100,9,25").unwrap();
        assert_eq!(seq.steps, vec![(2, 200), (15, 100), (9, 25)]);
        let signals: Vec<_> = seq.signals().collect();
        assert_eq!(signals[0], (Signal::SIGINT, std::time::Duration::from_millis(200)));
        assert_eq!(signals.len(), 3);
        // A last signal without its wait waits 0 ms, as GNU parallel reads it.
        assert_eq!(TermSeq::parse("USR1,10,KILL").unwrap().steps, vec![(10, 10), (9, 0)]);
        let longest = format!("HUP,{MAX_WAIT_MS}");
        assert_eq!(TermSeq::parse(&longest).unwrap().steps, vec![(1, MAX_WAIT_MS)]);
        let most = vec!["TERM,1"; MAX_STEPS].join(",");
        assert_eq!(TermSeq::parse(&most).unwrap().steps.len(), MAX_STEPS);
    }

    #[test]
    fn what_is_not_a_sequence_is_refused_in_words() {
        let cases: &[(&str, &str)] = &[
            ("TERM,200,BOGUS,5", "`BOGUS` is not a signal"),
            ("term,200", "`term` is not a signal"),
            ("0,200", "`0` is not a signal"),
            ("99,200", "`99` is not a signal"),
            ("TERM,2.5", "`2.5` is not a wait in milliseconds"),
            ("TERM,-1", "`-1` is not a wait"),
            ("", "a signal is missing"),
            ("TERM,200,,5", "a signal is missing"),
            ("TERM,60001", "a wait of 60001 ms: at most 60000"),
        ];
        for (text, needle) in cases {
            let e = TermSeq::parse(text).unwrap_err();
            assert!(e.starts_with(&format!("--termseq {text}: ")), "{text}: {e}");
            assert!(e.contains(needle), "{text}: {e}");
        }
        let too_many = vec!["TERM,1"; MAX_STEPS + 1].join(",");
        assert!(TermSeq::parse(&too_many).unwrap_err().contains("give 1 to 16 signals, not 17"));
        // From the network: the same checks.
        assert!(TermSeq { steps: vec![] }.check().unwrap_err().contains("not 0"));
        assert!(TermSeq { steps: vec![(64 + 1, 0)] }.check().unwrap_err().contains("not a signal"));
        assert!(TermSeq { steps: vec![(15, MAX_WAIT_MS)] }.check().is_ok());
        let too_long = TermSeq { steps: vec![(15, MAX_WAIT_MS + 1)] };
        assert!(too_long.check().unwrap_err().contains("at most 60000"));
    }
}
