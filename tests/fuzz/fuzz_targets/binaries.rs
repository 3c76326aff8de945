//! Uploaded bytes inspected as a marmotd binary: the ELF header check, the version stamp
//! search and the program stamp search (marmotd, not marmotctl) take anything.

#![no_main]

use libfuzzer_sys::fuzz_target;
use marmotd::update::{binary, version};

fuzz_target!(|data: &[u8]| {
    let _ = binary::elf_arch(data);
    if let Some(found) = version::find_in(data) {
        assert_eq!(version::compare(&found, &found), Some(std::cmp::Ordering::Equal));
    }
    if let Some(program) = proto::version::find_program(data) {
        assert!(!program.is_empty() && program.len() <= 16, "{program:?}");
        assert!(program.bytes().all(|b| b.is_ascii_lowercase()), "{program:?}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some((a, b)) = text.split_once('\n') {
            let _ = version::compare(a, b);
        }
    }
});
