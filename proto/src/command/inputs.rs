//! The inputs of a command job, one per unit: from `::: a b c` arguments or from lines
//! (`--inputs FILE`, `-` for stdin), bounded so that a job's request stays a sane size.
//!
//! A line's end (`\n` or `\r\n`) is not part of the input; empty lines are inputs (an empty
//! argument), as in GNU parallel, except that a file's last newline does not make one more.

use std::io::BufRead;

/// The most units a job may have.
pub const MAX_INPUTS: usize = 1_000_000;
/// The longest input, in bytes.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// The most bytes all of a job's inputs may hold together.
pub const MAX_TOTAL_BYTES: usize = 64 << 20;

/// Inputs that cannot make a job, in words for the user (`what` names where they came from).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("no inputs: give them after `:::`, with `--inputs FILE` (`-` for stdin) or with `--input-files GLOB`")]
    None,
    #[error("more than {MAX_INPUTS} inputs; split the job")]
    TooMany,
    #[error("input {number} is {bytes} bytes; at most {MAX_INPUT_BYTES} are allowed")]
    TooLong { number: usize, bytes: usize },
    #[error("the inputs hold more than {} MiB together; split the job", MAX_TOTAL_BYTES >> 20)]
    TooLarge,
    #[error("input {number} is not UTF-8 text")]
    NotText { number: usize },
    #[error("input {number} holds a NUL byte, which no program can receive")]
    Nul { number: usize },
    #[error("cannot read the inputs from {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Inputs, checked one by one as they are added.
#[derive(Debug, Default)]
pub struct Inputs {
    items: Vec<String>,
    /// Inputs admitted, and their bytes.
    count: usize,
    bytes: usize,
}

impl Inputs {
    /// Adds one input.
    pub fn push(&mut self, input: String) -> Result<(), InputError> {
        self.admit(&input)?;
        self.items.push(input);
        Ok(())
    }

    /// Counts one more input if it is within the bounds.
    fn admit(&mut self, input: &str) -> Result<(), InputError> {
        let number = self.count + 1;
        if number > MAX_INPUTS {
            return Err(InputError::TooMany);
        }
        if input.len() > MAX_INPUT_BYTES {
            return Err(InputError::TooLong { number, bytes: input.len() });
        }
        if input.contains('\0') {
            return Err(InputError::Nul { number });
        }
        if self.bytes + input.len() > MAX_TOTAL_BYTES {
            return Err(InputError::TooLarge);
        }
        self.count = number;
        self.bytes += input.len();
        Ok(())
    }

    /// Adds one input per line of `reader`; `what` names it in errors.
    pub fn read_lines(&mut self, mut reader: impl BufRead, what: &str) -> Result<(), InputError> {
        let mut line = Vec::new();
        loop {
            line.clear();
            // Read a bounded line: a file with no newlines must not fill the memory.
            let limit = (MAX_INPUT_BYTES + 2) as u64;
            let read = std::io::Read::take(&mut reader, limit)
                .read_until(b'\n', &mut line)
                .map_err(|source| InputError::Read { what: what.to_string(), source })?;
            if read == 0 {
                return Ok(());
            }
            let number = self.count + 1;
            let ended = line.last() == Some(&b'\n');
            if !ended && read as u64 == limit {
                return Err(InputError::TooLong { number, bytes: read });
            }
            if ended {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            let text =
                String::from_utf8(line.clone()).map_err(|_| InputError::NotText { number })?;
            self.push(text)?;
        }
    }

    /// The inputs, at least one.
    pub fn finish(self) -> Result<Vec<String>, InputError> {
        if self.items.is_empty() {
            return Err(InputError::None);
        }
        Ok(self.items)
    }
}

/// Checks inputs that came over the network, as [`Inputs`] checks them when they are read.
pub fn check(inputs: &[String]) -> Result<(), InputError> {
    let mut checked = Inputs::default();
    for input in inputs {
        checked.admit(input)?;
    }
    if checked.count == 0 {
        return Err(InputError::None);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Result<Vec<String>, InputError> {
        let mut inputs = Inputs::default();
        inputs.read_lines(text, "test")?;
        inputs.finish()
    }

    #[test]
    fn lines_become_inputs_without_their_ends() {
        assert_eq!(read(b"a\nb c\r\n\nd").unwrap(), ["a", "b c", "", "d"]);
        assert_eq!(read(b"a\n").unwrap(), ["a"], "the last newline makes no empty input");
        assert_eq!(read(b"\n").unwrap(), [""]);
        assert!(matches!(read(b""), Err(InputError::None)));
        let mut inputs = Inputs::default();
        inputs.push("x".into()).unwrap();
        inputs.read_lines(&b"y\n"[..], "stdin").unwrap();
        assert_eq!(inputs.finish().unwrap(), ["x", "y"]);
    }

    #[test]
    fn bad_inputs_are_refused_by_number() {
        let e = read(b"ok\n\xff\n").unwrap_err();
        assert_eq!(e.to_string(), "input 2 is not UTF-8 text");
        let e = read(b"a\nb\0c\n").unwrap_err();
        assert_eq!(e.to_string(), "input 2 holds a NUL byte, which no program can receive");
        let longest = "x".repeat(MAX_INPUT_BYTES);
        assert_eq!(
            read(format!("{longest}\r\n").as_bytes()).unwrap(),
            std::slice::from_ref(&longest)
        );
        let e = read(format!("a\n{longest}y\n").as_bytes()).unwrap_err();
        assert!(matches!(e, InputError::TooLong { number: 2, .. }), "{e}");
        let e = read(format!("{longest}yy").as_bytes()).unwrap_err();
        assert!(matches!(e, InputError::TooLong { number: 1, .. }), "{e}");
        // A line without end is read only up to the bound, not into memory whole.
        let mut endless = Inputs::default();
        let e =
            endless.read_lines(std::io::BufReader::new(std::io::repeat(b'x')), "x").unwrap_err();
        assert!(
            matches!(e, InputError::TooLong { number: 1, bytes } if bytes == MAX_INPUT_BYTES + 2)
        );
        let e = read(format!("{longest}y").as_bytes()).unwrap_err();
        assert!(
            matches!(e, InputError::TooLong { number: 1, bytes } if bytes == MAX_INPUT_BYTES + 1)
        );
    }

    #[test]
    fn counts_and_total_size_are_bounded() {
        let mut inputs = Inputs::default();
        for _ in 0..MAX_INPUTS {
            inputs.push(String::new()).unwrap();
        }
        assert!(matches!(inputs.push(String::new()), Err(InputError::TooMany)));
        let mut inputs = Inputs::default();
        let big = "x".repeat(MAX_INPUT_BYTES);
        for _ in 0..MAX_TOTAL_BYTES / MAX_INPUT_BYTES {
            inputs.push(big.clone()).unwrap();
        }
        assert!(matches!(inputs.push("x".into()), Err(InputError::TooLarge)));
    }

    #[test]
    fn inputs_off_the_network_are_checked_alike() {
        assert!(check(&["a".into(), String::new()]).is_ok());
        assert!(matches!(check(&[]), Err(InputError::None)));
        assert!(matches!(check(&["a\0".into()]), Err(InputError::Nul { number: 1 })));
        let long = "x".repeat(MAX_INPUT_BYTES + 1);
        assert!(matches!(check(&["a".into(), long]), Err(InputError::TooLong { number: 2, .. })));
    }

    #[test]
    fn the_error_for_no_inputs_says_where_they_go() {
        let e = InputError::None.to_string();
        assert!(e.contains(":::") && e.contains("--inputs FILE") && e.contains("--input-files"));
    }
}
