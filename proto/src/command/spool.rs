//! The spool format: how a chunk's units' output is laid out in the coordinator's spool file
//! and in the bytes `marmotctl` reads back (`GET /v1/jobs/{id}/output/{n}`).
//!
//! Per unit, in the order they ran: a little-endian `u32` length, that many bytes of a
//! bincode [`UnitReport`] (with its worker's name), then `stdout`, `stderr` and `results`
//! bytes as the report announces them. [`SpoolReader`] takes the bytes in pieces of any size
//! and hands back what they hold, so a reader's memory stays at one piece, whatever the
//! output's size.

use super::spec::UnitReport;
use crate::frame::{self, FrameError};

/// A unit's report as it opens the unit's record in a spool.
pub fn header(report: &UnitReport) -> Result<Vec<u8>, FrameError> {
    let body = frame::encode(report)?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// What a spool holds, piece by piece.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A unit's record starts.
    Unit(UnitReport),
    Stdout(&'a [u8]),
    Stderr(&'a [u8]),
    Results(&'a [u8]),
    /// The unit's record is complete.
    UnitEnd,
}

/// Reads a spool fed in pieces.
#[derive(Debug, Default)]
pub struct SpoolReader {
    /// Header bytes gathered so far (length prefix included).
    header: Vec<u8>,
    /// The unit being read, and how much of each stream is left.
    current: Option<Left>,
}

#[derive(Debug)]
struct Left {
    stdout: u64,
    stderr: u64,
    results: u64,
}

impl SpoolReader {
    /// Feeds `piece`, calling `each` for what it holds, in order.
    pub fn feed(
        &mut self,
        mut piece: &[u8],
        mut each: impl FnMut(Event<'_>) -> std::io::Result<()>,
    ) -> Result<(), SpoolError> {
        loop {
            if let Some(left) = &mut self.current {
                for stream in 0..3 {
                    let remaining = match stream {
                        0 => &mut left.stdout,
                        1 => &mut left.stderr,
                        _ => &mut left.results,
                    };
                    if *remaining > 0 {
                        let n = piece.len().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                        if n == 0 {
                            return Ok(());
                        }
                        let bytes = &piece[..n];
                        each(match stream {
                            0 => Event::Stdout(bytes),
                            1 => Event::Stderr(bytes),
                            _ => Event::Results(bytes),
                        })?;
                        *remaining -= n as u64;
                        piece = &piece[n..];
                        if *remaining > 0 {
                            return Ok(());
                        }
                    }
                }
                self.current = None;
                each(Event::UnitEnd)?;
            }
            if piece.is_empty() {
                return Ok(());
            }
            // A header: its length first, then its bytes.
            let n = 4usize.saturating_sub(self.header.len()).min(piece.len());
            self.header.extend_from_slice(&piece[..n]);
            piece = &piece[n..];
            if self.header.len() < 4 {
                return Ok(());
            }
            let len = u32::from_le_bytes([
                self.header[0],
                self.header[1],
                self.header[2],
                self.header[3],
            ]) as usize;
            if len > crate::MAX_FRAME {
                return Err(SpoolError::Corrupt(format!("a unit header of {len} bytes")));
            }
            let n = (4 + len - self.header.len()).min(piece.len());
            self.header.extend_from_slice(&piece[..n]);
            piece = &piece[n..];
            if self.header.len() < 4 + len {
                return Ok(());
            }
            let report: UnitReport =
                frame::decode(&self.header[4..]).map_err(|e| SpoolError::Corrupt(e.to_string()))?;
            self.header.clear();
            self.current = Some(Left {
                stdout: report.stdout,
                stderr: report.stderr,
                results: report.results,
            });
            each(Event::Unit(report))?;
        }
    }

    /// Whether the bytes fed so far end where a unit's record ends.
    pub fn at_boundary(&self) -> bool {
        self.header.is_empty() && self.current.is_none()
    }
}

/// Why a spool cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the units' output came back damaged: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::spec::UnitEnding;

    fn report(unit: u64, stdout: u64, stderr: u64, results: u64) -> UnitReport {
        UnitReport {
            unit,
            ending: UnitEnding::Exited(0),
            started_ms: 1,
            duration_ms: 2,
            stdout,
            stderr,
            results,
            worker: "w1".into(),
        }
    }

    fn spool() -> Vec<u8> {
        let mut bytes = header(&report(0, 3, 2, 0)).unwrap();
        bytes.extend_from_slice(b"abcde");
        bytes.extend(header(&report(1, 0, 0, 4)).unwrap());
        bytes.extend_from_slice(b"tar!");
        bytes.extend(header(&report(2, 0, 0, 0)).unwrap());
        bytes
    }

    /// What a reader makes of `bytes` fed in pieces of `size`.
    fn read(bytes: &[u8], size: usize) -> (Vec<String>, bool) {
        let mut reader = SpoolReader::default();
        let mut seen = vec![];
        for piece in bytes.chunks(size) {
            reader
                .feed(piece, |event| {
                    seen.push(match event {
                        Event::Unit(r) => format!("unit {}", r.unit),
                        Event::Stdout(b) => format!("out {}", String::from_utf8_lossy(b)),
                        Event::Stderr(b) => format!("err {}", String::from_utf8_lossy(b)),
                        Event::Results(b) => format!("res {}", String::from_utf8_lossy(b)),
                        Event::UnitEnd => "end".into(),
                    });
                    Ok(())
                })
                .unwrap();
        }
        (seen, reader.at_boundary())
    }

    #[test]
    fn a_spool_reads_the_same_in_pieces_of_any_size() {
        let bytes = spool();
        let (whole, done) = read(&bytes, bytes.len());
        assert!(done);
        assert_eq!(
            whole,
            ["unit 0", "out abc", "err de", "end", "unit 1", "res tar!", "end", "unit 2", "end"]
        );
        for size in 1..bytes.len() {
            let (seen, done) = read(&bytes, size);
            assert!(done, "pieces of {size}");
            let joined = |events: &[String]| {
                let mut text = String::new();
                for e in events {
                    text.push_str(e.split_once(' ').map_or(e.as_str(), |(_, rest)| rest));
                }
                text
            };
            assert_eq!(joined(&seen), joined(&whole), "pieces of {size}");
            assert_eq!(seen.iter().filter(|e| e.starts_with("unit")).count(), 3);
        }
        let (_, done) = read(&bytes[..bytes.len() - 1], 7);
        assert!(!done, "a spool cut short ends inside a record");
    }

    #[test]
    fn a_damaged_spool_is_an_error_not_a_panic() {
        let mut reader = SpoolReader::default();
        let e = reader.feed(&u32::MAX.to_le_bytes(), |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
        let mut reader = SpoolReader::default();
        let largest = (crate::MAX_FRAME as u32).to_le_bytes();
        assert!(reader.feed(&largest, |_| Ok(())).is_ok(), "a frame's size is allowed");
        assert!(!reader.at_boundary(), "and waited for");
        let mut reader = SpoolReader::default();
        let over = (crate::MAX_FRAME as u32 + 1).to_le_bytes();
        assert!(reader.feed(&over, |_| Ok(())).is_err());
        let mut reader = SpoolReader::default();
        let e = reader.feed(&[2, 0, 0, 0, 0xff, 0xff], |_| Ok(())).unwrap_err();
        assert!(matches!(e, SpoolError::Corrupt(_)));
    }
}
