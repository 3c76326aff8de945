//! `--pipe` and `--pipepart`: input cut into blocks as GNU parallel 20221122 cuts it, each
//! block one job's stdin. [`Blocks`] follows GNU parallel's `spreadstdin` step by step (a
//! buffer filled to a multiple of `--block`, cut at the last record boundary in it, or
//! after every `-N` records or `-L` lines; a block grown by 30% when no boundary fits), so
//! that `wc` per block counts what GNU parallel's counts. [`part_positions`] is its
//! `find_split_positions` for `--pipepart`. Sans-IO: input is any reader.
//!
//! Under `--regexp`, `--recstart` and `--recend` are Perl regular expressions, matched by
//! `fancy-regex` (GNU parallel's patterns need look-around) on text: input that is not
//! UTF-8 is refused there, in one line.

use fancy_regex::Regex;
use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};

/// The largest block: GNU parallel grows a block for a long record up to 2 GiB - 1, and
/// reads on past it; here a record longer than [`MAX_BLOCK`] is refused, so that memory
/// stays bounded whatever the input.
const TWO_GB: usize = (1 << 31) - 1;
/// The most bytes a block may hold (its `--block`, or a record longer than that).
pub const MAX_BLOCK: usize = 1 << 30;
/// The most input read while looking for a `--header` before giving up.
const MAX_HEADER_SEARCH: usize = 64 << 20;

/// Where records start and end (`--recstart`, `--recend`, `--regexp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Separators {
    pub recstart: String,
    pub recend: String,
    pub regexp: bool,
}

impl Separators {
    /// From the options as given: records end with a newline unless one is given; without
    /// `--regexp`, `\n`, `\t`, `\r`, `\0`, `\'`, `\"` and `\\` are read as escapes.
    pub fn new(recstart: Option<&str>, recend: Option<&str>, regexp: bool) -> Separators {
        let (recstart, recend) = match (recstart, recend) {
            (None, None) => ("", "\n"),
            (Some(start), None) => (start, ""),
            (None, Some("")) if regexp => ("", "(?s:.)"),
            (start, end) => (start.unwrap_or(""), end.unwrap_or("")),
        };
        match regexp {
            true => Separators {
                recstart: format!("(?:(?-x:{recstart}))"),
                recend: format!("(?:(?-x:{recend}))"),
                regexp,
            },
            false => Separators { recstart: unescape(recstart), recend: unescape(recend), regexp },
        }
    }
}

/// GNU parallel's escapes in a literal `--recstart`/`--recend`.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let escaped = match (c, chars.peek()) {
            ('\\', Some('0')) => '\0',
            ('\\', Some('r')) => '\r',
            ('\\', Some('n')) => '\n',
            ('\\', Some('t')) => '\t',
            ('\\', Some(&q @ ('\'' | '"' | '\\'))) => q,
            _ => {
                out.push(c);
                continue;
            }
        };
        chars.next();
        out.push(escaped);
    }
    out
}

/// How many records make a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// As many whole records as fit in `--block` bytes.
    Fill,
    /// `-N n`: exactly `n` records (the last block fewer).
    Records(usize),
    /// `-L n`: `n` lines.
    Lines(usize),
}

/// How input is cut into blocks.
#[derive(Clone, Debug)]
pub struct Cutting {
    /// `--block`, in bytes.
    pub block: usize,
    pub separators: Separators,
    pub count: Count,
    /// `--rrs`: separators are removed from each block.
    pub remove_separators: bool,
    /// `--header`: a regular expression (`:` one line, `N` lines) whose match at the start
    /// of the input goes before every block.
    pub header: Option<String>,
    /// `-r`: blank lines are dropped.
    pub skip_blank: bool,
}

/// Why input cannot be cut.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    #[error("cannot read the input: {0}")]
    Read(#[from] io::Error),
    #[error("{what} {pattern} is not a regular expression marmotctl parallel reads: {why}")]
    Pattern { what: &'static str, pattern: String, why: String },
    #[error("--regexp matches text: the input is not UTF-8 near byte {0}")]
    NotText(u64),
    #[error("--header {0} did not match in the first {MAX_HEADER_SEARCH} bytes of the input")]
    NoHeader(String),
    #[error("a regular expression of --regexp failed on the input: {0}")]
    Matching(String),
    #[error(
        "a record at byte {0} of the input is longer than {1} bytes (no record separator in \
         it): give --recend/--recstart that split it"
    )]
    TooLong(u64, usize),
}

/// The patterns of `--regexp`, GNU parallel's own with the user's inside.
struct Patterns {
    /// The last boundary in a buffer (no `-N`).
    last: Regex,
    /// `-N n`: `n` records from the start.
    records: Option<Regex>,
    /// What comes before the first record, if the input does not start with one.
    garbage: Regex,
    starts: Regex,
    /// `--rrs`: each boundary, the first start and the last end.
    boundary: Regex,
    last_end: Regex,
}

impl Patterns {
    fn new(separators: &Separators, count: Count) -> Result<Patterns, PipeError> {
        let (rs, re) = (&separators.recstart, &separators.recend);
        let compile = |pattern: String| {
            Regex::new(&pattern).map_err(|e| PipeError::Pattern {
                what: "--recstart/--recend",
                pattern: format!("{rs} {re}"),
                why: e.to_string(),
            })
        };
        let records = match count {
            Count::Records(n) => Some(compile(format!(
                "(?m)(?s:^)((?:{rs}(?:(?!{re}{rs})(?s:.))*?{re}){{{n}}})(?={rs})"
            ))?),
            _ => None,
        };
        Ok(Patterns {
            last: compile(format!("(?m)^((?s:.)*{re}){rs}(?s:.)*?$"))?,
            records,
            garbage: compile(format!("(?m)(?s:^)((?:(?:(?!{re}{rs})(?s:.))*?{re}))(?={rs})"))?,
            starts: compile(format!("^{rs}"))?,
            boundary: compile(format!("(?m){re}{rs}"))?,
            last_end: compile(format!("(?s){re}(?=\\n?\\z)"))?,
        })
    }
}

/// The blocks of an input, in order: each with the header before it.
pub struct Blocks<R> {
    input: R,
    cutting: Cutting,
    patterns: Option<Patterns>,
    buf: Vec<u8>,
    /// Bytes at the start of `buf` already cut into blocks (dropped when it is filled
    /// again, not as each block is cut: `-N 1` cuts thousands of records off one buffer).
    head: usize,
    /// Bytes of the input before what is left of `buf`.
    offset: u64,
    blocksize: usize,
    header: Vec<u8>,
    started: bool,
    eof: bool,
    done: bool,
    garbage_read: bool,
    ready: VecDeque<Vec<u8>>,
    /// The most the buffer may hold with no block cut off it.
    max_block: usize,
}

impl<R: Read> Blocks<R> {
    pub fn new(input: R, cutting: Cutting) -> Result<Blocks<R>, PipeError> {
        let patterns = match cutting.separators.regexp {
            true => Some(Patterns::new(&cutting.separators, cutting.count)?),
            false => None,
        };
        let blocksize = cutting.block.clamp(1, TWO_GB);
        Ok(Blocks {
            input,
            cutting,
            patterns,
            buf: vec![],
            head: 0,
            offset: 0,
            blocksize,
            header: vec![],
            started: false,
            eof: false,
            done: false,
            garbage_read: false,
            ready: VecDeque::new(),
            max_block: MAX_BLOCK,
        })
    }

    /// One round of GNU parallel's loop: the buffer filled, blocks cut off it.
    fn round(&mut self) -> Result<(), PipeError> {
        if !self.started {
            self.started = true;
            if let Some(header) = &self.cutting.header {
                let chunk = self.blocksize.min(1 << 20);
                self.header = read_header(&mut self.input, &mut self.buf, header, chunk)?;
                self.offset = self.header.len() as u64;
            }
        }
        self.read_block()?;
        if self.cutting.skip_blank {
            self.buf = drop_blank_lines(&self.buf);
            if self.buf.is_empty() {
                if self.eof {
                    self.done = true;
                }
                return Ok(());
            }
        }
        let written = match (self.cutting.count, self.patterns.is_some()) {
            (Count::Lines(n), _) => self.pass_lines(n),
            (Count::Records(_), true) => self.pass_n_regexps()?,
            (Count::Fill, true) => self.pass_regexp()?,
            (Count::Records(n), false) => self.pass_n(n),
            (Count::Fill, false) => self.pass(),
        };
        if self.eof {
            let rest = self.rest().len();
            self.write(rest);
            self.done = true;
        } else if !written && self.rest().len() >= self.max_block {
            return Err(PipeError::TooLong(self.offset, self.max_block));
        } else if !written {
            // A record longer than the block: GNU parallel grows it by 30%.
            let grown = (self.blocksize as f64 * 1.3 + 1.0).ceil() as usize;
            self.blocksize = grown.min(TWO_GB);
        }
        Ok(())
    }

    /// What is left of the buffer.
    fn rest(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// Fills the buffer (what is left of it) up to the next multiple of the block size, or
    /// to the input's end, reading straight into it.
    fn read_block(&mut self) -> io::Result<()> {
        self.buf.drain(..self.head);
        self.head = 0;
        let start = self.buf.len();
        let end = start + (self.blocksize - start % self.blocksize);
        self.buf.resize(end, 0);
        let mut filled = start;
        let read = loop {
            match self.input.read(&mut self.buf[filled..end]) {
                Ok(n) => {
                    filled += n;
                    if n == 0 || filled == end {
                        self.eof = n == 0;
                        break Ok(());
                    }
                }
                Err(e) => break Err(e),
            }
        };
        self.buf.truncate(filled);
        read
    }

    /// The first `end` bytes of what is left are a block (none if `end` is 0).
    fn write(&mut self, end: usize) -> bool {
        if end == 0 {
            return false;
        }
        let cut = &self.buf[self.head..self.head + end];
        let removed = match (self.cutting.remove_separators, &self.patterns) {
            (false, _) => None,
            (true, Some(patterns)) => Some(remove_matched(cut, patterns)),
            (true, None) => Some(remove_literal(cut, &self.cutting.separators)),
        };
        let block = match (self.header.is_empty(), removed) {
            (true, Some(block)) => block,
            (true, None) => cut.to_vec(),
            (false, removed) => [&self.header[..], removed.as_deref().unwrap_or(cut)].concat(),
        };
        self.head += end;
        self.offset += end as u64;
        self.ready.push_back(block);
        true
    }

    fn boundary(&self) -> Vec<u8> {
        let Separators { recstart, recend, .. } = &self.cutting.separators;
        [recend.as_bytes(), recstart.as_bytes()].concat()
    }

    /// Cut at the last boundary in the buffer (none at the input's end: the rest goes whole).
    fn pass(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let boundary = self.boundary();
        match rindex(self.rest(), &boundary) {
            Some(at) => self.write(at + self.cutting.separators.recend.len()),
            None => false,
        }
    }

    /// `-N n`: cut after every `n` records.
    fn pass_n(&mut self, n: usize) -> bool {
        let boundary = self.boundary();
        let mut written = false;
        while let Some(at) = nindex(self.rest(), &boundary, n) {
            if self.rest().is_empty() {
                break;
            }
            written |= self.write(at + self.cutting.separators.recend.len());
        }
        written
    }

    /// `-L n`: cut after the last whole group of `n` lines.
    fn pass_lines(&mut self, n: usize) -> bool {
        let rest = self.rest();
        let mut lines = rest.iter().filter(|&&b| b == b'\n').count();
        let mut last = rindex(rest, b"\n");
        while lines % n != 0 {
            lines -= 1;
            last = last.and_then(|at| rest[..at].iter().rposition(|&b| b == b'\n'));
        }
        self.write(last.map_or(0, |at| at + 1))
    }

    /// `--regexp`: cut at the last boundary.
    fn pass_regexp(&mut self) -> Result<bool, PipeError> {
        if self.eof {
            return Ok(false);
        }
        let patterns = self.patterns.as_ref().expect("--regexp has patterns");
        let text = text_prefix(self.rest(), self.offset, false)?;
        let end = group_end(&patterns.last, text)?;
        Ok(self.write(end.unwrap_or(0)))
    }

    /// `--regexp -N`: what comes before the first record as a block of its own, then
    /// blocks of the pattern's records. The text is read once; the blocks are cut after.
    fn pass_n_regexps(&mut self) -> Result<bool, PipeError> {
        let patterns = self.patterns.as_ref().expect("--regexp has patterns");
        let records = patterns.records.as_ref().expect("-N has its pattern");
        let text = text_prefix(self.rest(), self.offset, self.eof)?;
        let mut ends = vec![];
        let mut at = 0;
        if !self.garbage_read && !patterns.starts.is_match(text).map_err(matching)? {
            if let Some(end) = group_end(&patterns.garbage, text)?.filter(|&end| end > 0) {
                ends.push(end);
                at = end;
            }
        }
        while let Some(end) = group_end(records, &text[at..])?.filter(|&end| end > 0) {
            ends.push(end);
            at += end;
        }
        self.garbage_read = true;
        let mut written = false;
        for end in ends {
            written |= self.write(end);
        }
        Ok(written)
    }
}

impl<R: Read> Iterator for Blocks<R> {
    type Item = Result<Vec<u8>, PipeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(block) = self.ready.pop_front() {
                return Some(Ok(block));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.round() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}

/// `--header`: reads `input` into `buf` (`chunk` bytes at a time) until the header's
/// pattern (`:` one line, `N` lines, or a regular expression) matches at its start, and
/// takes the match off `buf`. No match by the input's end: no header, all of it in `buf`.
pub fn read_header(
    input: &mut impl Read,
    buf: &mut Vec<u8>,
    header: &str,
    chunk: usize,
) -> Result<Vec<u8>, PipeError> {
    let pattern = match header {
        ":" => "(.*\n)".to_string(),
        n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            "(.*\n)".repeat(n.parse::<usize>().unwrap_or(1))
        }
        other => other.to_string(),
    };
    let regex = Regex::new(&format!("^({pattern})")).map_err(|e| PipeError::Pattern {
        what: "--header",
        pattern: header.to_string(),
        why: e.to_string(),
    })?;
    let mut piece = vec![0; chunk.max(1)];
    loop {
        let n = input.read(&mut piece)?;
        if n == 0 {
            return Ok(vec![]);
        }
        buf.extend_from_slice(&piece[..n]);
        let text = text_prefix(buf, 0, false)?;
        if let Some(len) = group_end(&regex, text)? {
            return Ok(buf.drain(..len).collect());
        }
        if buf.len() > MAX_HEADER_SEARCH {
            return Err(PipeError::NoHeader(header.to_string()));
        }
    }
}

fn matching(e: fancy_regex::Error) -> PipeError {
    PipeError::Matching(e.to_string())
}

/// Where group 1 of `regex`'s first match in `text` ends, if it matches.
fn group_end(regex: &Regex, text: &str) -> Result<Option<usize>, PipeError> {
    let found = regex.captures(text).map_err(matching)?;
    Ok(found.and_then(|c| c.get(1)).map(|m| m.end()))
}

/// The buffer as text: all of it, or (mid-input) up to a character cut by the block's end.
fn text_prefix(buf: &[u8], offset: u64, at_end: bool) -> Result<&str, PipeError> {
    match std::str::from_utf8(buf) {
        Ok(text) => Ok(text),
        Err(e) if e.error_len().is_none() && !at_end => {
            Ok(std::str::from_utf8(&buf[..e.valid_up_to()]).expect("valid up to there"))
        }
        Err(e) => Err(PipeError::NotText(offset + e.valid_up_to() as u64)),
    }
}

/// Perl's `rindex`: where the last `needle` starts (the end for an empty one).
fn rindex(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(hay.len());
    }
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// GNU parallel's `nindex`: where the `n`th `needle` starts, each searched from one past the
/// last (so one at the very start does not count).
fn nindex(hay: &[u8], needle: &[u8], n: usize) -> Option<usize> {
    let mut at = 0;
    for _ in 0..n {
        let from = at + 1;
        at = match needle.is_empty() {
            true => from.min(hay.len()),
            false if from > hay.len() => return None,
            false => from + hay[from..].windows(needle.len()).position(|w| w == needle)?,
        };
    }
    Some(at)
}

/// `-r`: lines of only blanks dropped (Perl's `s/^\s*\n//gm`).
fn drop_blank_lines(buf: &[u8]) -> Vec<u8> {
    static BLANK: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
        regex::bytes::Regex::new(r"(?m)^[\t\n\x0b\x0c\r ]*\n").expect("a fixed pattern")
    });
    BLANK.replace_all(buf, &b""[..]).into_owned()
}

/// `--rrs` with literal separators: every boundary, the first start, the last end (before
/// a final newline, as Perl's `$` matches there too).
fn remove_literal(block: &[u8], separators: &Separators) -> Vec<u8> {
    let (start, end) = (separators.recstart.as_bytes(), separators.recend.as_bytes());
    let boundary = [end, start].concat();
    let mut out = match boundary.is_empty() {
        true => block.to_vec(),
        false => {
            let mut out = Vec::with_capacity(block.len());
            let mut rest = block;
            while let Some(at) = rest.windows(boundary.len()).position(|w| w == boundary) {
                out.extend_from_slice(&rest[..at]);
                rest = &rest[at + boundary.len()..];
            }
            out.extend_from_slice(rest);
            out
        }
    };
    if !start.is_empty() && out.starts_with(start) {
        out.drain(..start.len());
    }
    if !end.is_empty() {
        if out.ends_with(end) {
            out.truncate(out.len() - end.len());
        } else if out.ends_with(&[end, b"\n"].concat()) {
            let at = out.len() - 1 - end.len();
            out.drain(at..at + end.len());
        }
    }
    out
}

/// `--rrs` under `--regexp`.
fn remove_matched(block: &[u8], patterns: &Patterns) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(block) else { return block.to_vec() };
    let replaced = patterns.boundary.replace_all(text, "");
    let replaced = patterns.starts.replace(&replaced, "").into_owned();
    patterns.last_end.replace(&replaced, "").into_owned().into_bytes()
}

/// `--pipepart`: where a file of `size` bytes is cut into parts of about `block` bytes after
/// its first `skip` (its header), each cut moved forward to the next record boundary.
pub fn part_positions(
    file: &mut (impl Read + Seek),
    size: u64,
    block: u64,
    skip: u64,
    separators: &Separators,
) -> Result<Vec<u64>, PipeError> {
    const READ: usize = 131_072;
    let boundary = [separators.recend.as_bytes(), separators.recstart.as_bytes()].concat();
    let last = match separators.regexp {
        true => Some(
            Regex::new(&format!("(?s)^(.*{}){}", separators.recend, separators.recstart)).map_err(
                |e| PipeError::Pattern {
                    what: "--recstart/--recend",
                    pattern: format!("{} {}", separators.recstart, separators.recend),
                    why: e.to_string(),
                },
            )?,
        ),
        false => None,
    };
    let block = block.max(1);
    let mut positions = vec![skip];
    let mut pos = block + skip;
    while pos < size {
        if boundary.is_empty() {
            positions.push(pos);
        } else {
            file.seek(SeekFrom::Start(pos))?;
            let mut buf = vec![];
            let mut chunk = vec![0; READ];
            loop {
                let n = file.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let found = match &last {
                    Some(regex) => group_end(regex, text_prefix(&buf, pos, false)?)?,
                    None => buf
                        .windows(boundary.len())
                        .position(|w| w == boundary)
                        .map(|at| at + separators.recend.len()),
                };
                if let Some(end) = found {
                    pos += end as u64;
                    positions.push(pos);
                    break;
                }
            }
        }
        pos += block;
    }
    if positions.last() != Some(&size) {
        positions.push(size);
    }
    Ok(positions)
}

/// `--block`'s size: a number with GNU parallel's prefixes (`k` 1000, `K` or `ki` 1024, up
/// to `x`/`X`), negative for a share of `--pipepart`'s file per job slot.
pub fn parse_size(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let split = digits.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(digits.len());
    let (number, suffix) = digits.split_at(split);
    let number: f64 = number.parse().ok()?;
    let letters = "kmgtpezyx";
    let mut chars = suffix.chars();
    let factor = match (chars.next(), chars.next(), chars.next()) {
        (None, ..) => 1.0,
        (Some(c), binary, None) => {
            let power = letters.find(c.to_ascii_lowercase())? as i32 + 1;
            let base = match (binary, c.is_ascii_uppercase()) {
                (Some('i' | 'I'), _) | (None, true) => 1024.0,
                (None, false) => 1000.0,
                _ => return None,
            };
            f64::powi(base, power)
        }
        _ => return None,
    };
    let value = (number * factor) as i64;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cutting(block: usize) -> Cutting {
        Cutting {
            block,
            separators: Separators::new(None, None, false),
            count: Count::Fill,
            remove_separators: false,
            header: None,
            skip_blank: false,
        }
    }

    fn blocks(input: &str, cutting: Cutting) -> Vec<String> {
        let blocks = Blocks::new(input.as_bytes(), cutting).unwrap();
        blocks.map(|b| String::from_utf8(b.unwrap()).unwrap()).collect()
    }

    #[test]
    fn blocks_end_at_the_last_record_that_fits_and_grow_for_a_long_one() {
        assert_eq!(blocks("1\n2\n3\n4\n5\n", cutting(5)), ["1\n2\n", "3\n4\n", "5\n"]);
        assert_eq!(blocks("1\n2\n3", cutting(100)), ["1\n2\n3"]);
        assert_eq!(blocks("", cutting(4)), Vec::<String>::new());
        // 10 bytes without a newline in a block of 4: it grows 4 -> 7 -> 11.
        assert_eq!(blocks("0123456789\nab\n", cutting(4)), ["0123456789\n", "ab\n"]);
    }

    #[test]
    fn a_record_longer_than_a_block_may_be_is_refused_not_read_on() {
        let endless = std::io::repeat(b'x');
        let mut blocks = Blocks::new(endless, cutting(10)).unwrap();
        blocks.max_block = 1000;
        let Some(Err(e)) = blocks.next() else { panic!("an endless record is refused") };
        assert!(matches!(e, PipeError::TooLong(0, 1000)), "{e}");
        assert!(blocks.buf.len() < 2000, "read on to {}", blocks.buf.len());
        assert!(blocks.next().is_none());
    }

    #[test]
    fn n_records_or_lines_make_a_block() {
        let n = |n| Cutting { count: Count::Records(n), ..cutting(1000) };
        assert_eq!(blocks("a\nb\nc\nd\ne\n", n(2)), ["a\nb\n", "c\nd\n", "e\n"]);
        let lines = Cutting { count: Count::Lines(3), ..cutting(1000) };
        assert_eq!(blocks("a\nb\nc\nd\ne\n", lines), ["a\nb\nc\n", "d\ne\n"]);
    }

    #[test]
    fn separators_header_and_blank_lines() {
        let sep = |start: Option<&str>, end: Option<&str>| Cutting {
            separators: Separators::new(start, end, false),
            count: Count::Records(1),
            ..cutting(1000)
        };
        assert_eq!(blocks("a, b, c", sep(None, Some(", "))), ["a, ", "b, ", "c"]);
        assert_eq!(blocks("/a/b/c", sep(Some("/"), None)), ["/a", "/b", "/c"]);
        let rrs = Cutting { remove_separators: true, ..sep(None, Some(", ")) };
        assert_eq!(blocks("a, b, c, ", rrs), ["a", "b", "c"]);
        let header = Cutting { header: Some(":".into()), count: Count::Records(2), ..cutting(100) };
        assert_eq!(blocks("h\n1\n2\n3\n", header), ["h\n1\n2\n", "h\n3\n"]);
        let blank = Cutting { skip_blank: true, ..cutting(100) };
        assert_eq!(blocks("a\n\n \nb\n", blank), ["a\nb\n"]);
        assert_eq!(Separators::new(None, Some("\\t"), false).recend, "\t");
    }

    #[test]
    fn regexp_separators_cut_as_perl_matches() {
        let re = |end: &str, n| Cutting {
            separators: Separators::new(None, Some(end), true),
            count: n,
            ..cutting(1000)
        };
        assert_eq!(blocks("a,_b,__c", re(",_+", Count::Records(1))), ["a,_", "b,__", "c"]);
        assert_eq!(blocks("a,_b,__c", re(",_+", Count::Fill)), ["a,_b,__c"]);
        let rrs = Cutting { remove_separators: true, ..re(",_+", Count::Records(1)) };
        assert_eq!(blocks("a,_b,__c", rrs), ["a", "b", "c"]);
        let bad = Blocks::new(&b""[..], re("(", Count::Fill)).err().unwrap();
        assert!(bad.to_string().contains("not a regular expression"), "{bad}");
        let mut binary = Blocks::new(&b"a\xff,_b"[..], re(",_", Count::Records(1))).unwrap();
        assert!(matches!(binary.next(), Some(Err(PipeError::NotText(1)))));
    }

    #[test]
    fn helpers_as_perls() {
        assert_eq!(nindex(b"\nab\ncd\n", b"\n", 1), Some(3), "one at the start is passed over");
        assert_eq!(nindex(b"a\nb\n", b"\n", 2), Some(3));
        assert_eq!(nindex(b"a\nb\n", b"\n", 3), None);
        assert_eq!(rindex(b"a\nb\n", b"\n"), Some(3));
        assert_eq!(rindex(b"ab", b""), Some(2));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("10m"), Some(10_000_000));
        assert_eq!(parse_size("3ki"), Some(3072));
        assert_eq!(parse_size("1.5K"), Some(1536));
        assert_eq!(parse_size("-10"), Some(-10));
        assert_eq!(parse_size("12"), Some(12));
        for bad in ["", "M", "1Q", "1MB", "x1"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        let seps = Separators::new(None, None, false);
        assert_eq!(remove_literal(b"a\nb\n", &seps), b"ab");
        let commas = Separators::new(None, Some(","), false);
        assert_eq!(remove_literal(b"a,b,\n", &commas), b"ab\n");
    }

    #[test]
    fn pipepart_cuts_after_each_block_at_the_next_boundary() {
        let text = b"aaa\nbb\ncccc\nd\n";
        let seps = Separators::new(None, None, false);
        let mut file = std::io::Cursor::new(&text[..]);
        let cuts = part_positions(&mut file, text.len() as u64, 5, 0, &seps).unwrap();
        assert_eq!(cuts, [0, 7, 14]);
        let cuts = part_positions(&mut file, text.len() as u64, 2, 0, &seps).unwrap();
        assert_eq!(cuts, [0, 4, 7, 12, 14]);
    }
}
