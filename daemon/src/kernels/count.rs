//! Counting one character's occurrences: in random letters made on the worker, or in bytes
//! streamed from the coordinator (inline text, a file).
//!
//! A chunk counts the occurrences that *start* in its range; the coordinator sends each chunk
//! the few bytes past its end that a multi-byte character starting inside may need, so counts
//! are exact across chunk boundaries. One-byte characters are counted with `bytecount` (SIMD,
//! dispatched at run time), longer ones with `memchr`'s substring search.
//!
//! Random letter i is byte i mod 8 of SplitMix64's draw i/8, mapped onto `a..=z` by
//! multiply-shift (`b·26 >> 8`): a pure function of (seed, i), so the count does not depend on
//! how the job was cut.

use super::pi::splitmix64;
use super::simd::{dispatch_by_level, Level};
use super::{Cancel, KernelError};

/// Random letters made per cancellation check (64 KiB: ~10 µs of work).
const BLOCK: usize = 1 << 16;

/// The byte sequences that count as the letter.
#[derive(Clone, Debug)]
pub struct Pattern {
    variants: Vec<Vec<u8>>,
}

impl Pattern {
    /// `letter` (one character) and, with `ignore_case`, its one-character upper and lower
    /// case forms. UTF-8 is prefix-free, so occurrences of different variants never overlap.
    pub fn new(letter: char, ignore_case: bool) -> Self {
        let mut chars = vec![letter];
        if ignore_case {
            for forms in
                [letter.to_lowercase().collect::<Vec<_>>(), letter.to_uppercase().collect()]
            {
                if let [one] = forms[..] {
                    chars.push(one);
                }
            }
        }
        chars.sort_unstable();
        chars.dedup();
        let variants = chars.iter().map(|c| c.to_string().into_bytes()).collect();
        Pattern { variants }
    }

    /// The longest variant, in bytes: a chunk needs `max_len() - 1` bytes past its end.
    pub fn max_len(&self) -> usize {
        self.variants.iter().map(Vec::len).max().unwrap_or(1)
    }

    /// Occurrences in `hay` that start before `limit`.
    pub fn count_starts(&self, hay: &[u8], limit: usize) -> u64 {
        let limit = limit.min(hay.len());
        self.variants
            .iter()
            .map(|v| match v[..] {
                [byte] => bytecount::count(&hay[..limit], byte) as u64,
                _ => memchr::memmem::find_iter(hay, v).take_while(|&p| p < limit).count() as u64,
            })
            .sum()
    }

    /// The one lowercase ASCII letter random text can hold, if this pattern is one.
    fn ascii_lowercase(&self) -> Option<u8> {
        self.variants.iter().find_map(|v| match v[..] {
            [b] if b.is_ascii_lowercase() => Some(b),
            _ => None,
        })
    }
}

/// Occurrences of `pattern` among random letters `start..end` of `seed`.
pub fn count_random(
    pattern: &Pattern,
    seed: u64,
    start: u64,
    end: u64,
    level: Level,
    cancel: &Cancel,
) -> Result<u64, KernelError> {
    let Some(target) = pattern.ascii_lowercase() else {
        cancel.check()?;
        return Ok(0); // random text holds only a..=z
    };
    let mut buf = vec![0u8; BLOCK];
    let mut count = 0;
    let mut at = start;
    while at < end {
        cancel.check()?;
        // Blocks start on a draw boundary; the first may begin mid-draw.
        let draw = at / 8;
        let skip = (at - draw * 8) as usize;
        let len = ((end - draw * 8) as usize).min(BLOCK);
        fill_letters_at(level, seed, draw, &mut buf[..len.next_multiple_of(8).min(BLOCK)]);
        count += bytecount::count(&buf[skip..len], target) as u64;
        at = draw * 8 + len as u64;
    }
    Ok(count)
}

/// Random letter `i` of `seed` (for tests and oracles: the kernel makes them in blocks).
pub fn random_letter(seed: u64, i: u64) -> u8 {
    let draw = splitmix64(seed, i / 8).to_le_bytes();
    to_letter(draw[(i % 8) as usize])
}

#[inline(always)]
fn to_letter(b: u8) -> u8 {
    b'a' + ((u16::from(b) * 26) >> 8) as u8
}

/// Fills `out` (a multiple of 8 bytes) with the letters of draws `first_draw..`.
#[inline(always)]
fn fill_letters(seed: u64, first_draw: u64, out: &mut [u8]) {
    for (k, bytes) in out.chunks_exact_mut(8).enumerate() {
        let draw = splitmix64(seed, first_draw.wrapping_add(k as u64)).to_le_bytes();
        for (o, b) in bytes.iter_mut().zip(draw) {
            *o = to_letter(b);
        }
    }
}

dispatch_by_level! {
    fn fill_letters_at(seed: u64, first_draw: u64, out: &mut [u8]) -> () {
        scalar: fill_letters,
        avx2: fill_letters,
        avx512: fill_letters,
    }
}

/// Counts a chunk's occurrences from its bytes as they arrive in pieces: the chunk's own
/// `limit` bytes (where occurrences may start) plus up to `max_len - 1` bytes after them.
pub struct StreamCounter {
    pattern: Pattern,
    /// Bytes kept from the previous piece: a character may straddle two pieces.
    carry: Vec<u8>,
    /// Offset in the chunk of `carry[0]`.
    offset: u64,
    limit: u64,
    count: u64,
}

impl StreamCounter {
    pub fn new(pattern: Pattern, limit: u64) -> Self {
        StreamCounter { pattern, carry: Vec::new(), offset: 0, limit, count: 0 }
    }

    /// Counts what can be counted so far.
    pub fn feed(&mut self, piece: &[u8]) {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(piece);
        // Starts this close to the end may belong to a character not complete yet.
        let settled = buf.len().saturating_sub(self.pattern.max_len() - 1);
        self.count_upto(&buf, settled);
        self.carry = buf[settled..].to_vec();
        self.offset += settled as u64;
    }

    /// Counts the rest; the chunk's occurrences.
    pub fn finish(mut self) -> u64 {
        let buf = std::mem::take(&mut self.carry);
        self.count_upto(&buf, buf.len());
        self.count
    }

    fn count_upto(&mut self, buf: &[u8], settled: usize) {
        let room = self.limit.saturating_sub(self.offset).min(settled as u64) as usize;
        self.count += self.pattern.count_starts(buf, room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_counts_match_letter_by_letter_at_every_level_and_split() {
        let (seed, n) = (9, 200_003u64);
        let letters: Vec<u8> = (0..n).map(|i| random_letter(seed, i)).collect();
        assert!(letters.iter().all(u8::is_ascii_lowercase));
        let pattern = Pattern::new('e', false);
        let plain = letters.iter().filter(|&&b| b == b'e').count() as u64;
        let cancel = Cancel::default();
        for level in Level::available() {
            assert_eq!(count_random(&pattern, seed, 0, n, level, &cancel).unwrap(), plain);
            let split = count_random(&pattern, seed, 0, 13, level, &cancel).unwrap()
                + count_random(&pattern, seed, 13, 70_001, level, &cancel).unwrap()
                + count_random(&pattern, seed, 70_001, n, level, &cancel).unwrap();
            assert_eq!(split, plain, "{level:?}");
        }
        // Every letter shows up about 1/26 of the time.
        assert!((plain as f64 / n as f64 - 1.0 / 26.0).abs() < 0.003);
        let upper = Pattern::new('E', true);
        assert_eq!(count_random(&upper, seed, 0, n, Level::detect(), &cancel).unwrap(), plain);
        assert_eq!(
            count_random(&Pattern::new('E', false), seed, 0, n, Level::Scalar, &cancel),
            Ok(0)
        );
    }

    #[test]
    fn streamed_counts_are_exact_across_pieces_and_chunks() {
        let text = "1eMyWordToCountE ééé café ÉÉ naïve e".repeat(50);
        let bytes = text.as_bytes();
        for (letter, ignore_case) in
            [('e', false), ('e', true), ('é', false), ('é', true), ('E', false)]
        {
            let pattern = Pattern::new(letter, ignore_case);
            let expected = text
                .chars()
                .filter(|c| {
                    *c == letter
                        || ignore_case
                            && (c.to_lowercase().eq(letter.to_lowercase())
                                || c.to_uppercase().eq(letter.to_uppercase()))
                })
                .count() as u64;
            // Cut into chunks at every byte offset class, each fed in 3-byte pieces.
            for chunk in [1usize, 2, 5, 64, bytes.len()] {
                let mut total = 0;
                for start in (0..bytes.len()).step_by(chunk) {
                    let end = (start + chunk).min(bytes.len());
                    let with_tail = (end + pattern.max_len() - 1).min(bytes.len());
                    let mut counter = StreamCounter::new(pattern.clone(), (end - start) as u64);
                    for piece in bytes[start..with_tail].chunks(3) {
                        counter.feed(piece);
                    }
                    total += counter.finish();
                }
                assert_eq!(total, expected, "{letter:?} ignore_case={ignore_case} chunk={chunk}");
            }
        }
    }
}
