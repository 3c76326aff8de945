//! Counting a letter over bytes that arrive in pieces: wherever the pieces are cut (inside a
//! UTF-8 character too), the count is the count over the whole.

#![no_main]

use libfuzzer_sys::fuzz_target;
use marmotd::kernels::count::{Pattern, StreamCounter};

fuzz_target!(|data: &[u8]| {
    let [choice, cuts @ ..] = data else { return };
    let Some((&cut_bytes, hay)) = cuts.split_first() else { return };
    let letters = ['e', 'E', 'é', 'ß', '€', '😀', 'ς'];
    let letter = letters[usize::from(choice % letters.len() as u8)];
    let pattern = || Pattern::new(letter, choice & 0x80 != 0);
    let limit = hay.len() as u64;
    let mut whole = StreamCounter::new(pattern(), limit);
    whole.feed(hay);
    let whole = whole.finish();
    assert_eq!(whole, pattern().count_starts(hay, hay.len()));
    // Pieces of 1 to 16 bytes, their sizes drawn from `cut_bytes`.
    let mut pieces = StreamCounter::new(pattern(), limit);
    let (mut at, mut seed) = (0, cut_bytes);
    while at < hay.len() {
        seed = seed.wrapping_mul(31).wrapping_add(7);
        let len = usize::from(seed % 16 + 1).min(hay.len() - at);
        pieces.feed(&hay[at..at + len]);
        at += len;
    }
    assert_eq!(pieces.finish(), whole, "cut at {cut_bytes}");
});
