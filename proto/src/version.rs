//! The version both binaries report: `CARGO_PKG_VERSION+BUILD`, BUILD being the build's UTC
//! time as YYYYMMDDhhmmss (see `build.rs`).
//!
//! It is kept once, as a stamp `MARMOT-VERSION[...]` stored verbatim in the binary, so a
//! coordinator can read the version of a `marmotd` built for another machine from its bytes
//! (`marmotd`'s `update::version::find_in`). Defined here, in the crate both binaries link,
//! so `marmotd --version` and `marmotctl --version` of one build agree.

/// The stamp's opening; the version and `]` follow.
pub const OPEN: &[u8] = b"MARMOT-VERSION[";

#[used]
static STAMP: &str =
    concat!("MARMOT-VERSION[", env!("CARGO_PKG_VERSION"), "+", env!("MARMOT_BUILD"), "]");

/// This build's version, as stamped.
pub fn current() -> &'static str {
    // Read through black_box so the bytes in the binary are what counts, not a copy the
    // compiler folded in elsewhere.
    let stamp: &'static str = std::hint::black_box(STAMP);
    stamp.strip_prefix("MARMOT-VERSION[").and_then(|s| s.strip_suffix(']')).unwrap_or(stamp)
}

/// The opening of a program stamp, `MARMOT-PROGRAM[marmotctl]`: each binary keeps one naming
/// itself, so a coordinator told to roll out a file can tell `marmotctl` from `marmotd` by its
/// bytes (binaries of releases before the stamp have none).
pub const PROGRAM_OPEN: &[u8] = b"MARMOT-PROGRAM[";

/// The program named by the first program stamp in `bytes`, if they hold one.
pub fn find_program(bytes: &[u8]) -> Option<&str> {
    memchr::memmem::find_iter(bytes, PROGRAM_OPEN).find_map(|at| {
        let rest = &bytes[at + PROGRAM_OPEN.len()..];
        let end = rest.iter().take(17).position(|&b| b == b']')?;
        let name = std::str::from_utf8(&rest[..end]).ok()?;
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase())).then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_stamps_are_found_in_bytes_and_junk_is_not() {
        // Made at run time: a literal stamp would sit in this test binary too.
        let stamp = |name: &str| [PROGRAM_OPEN, name.as_bytes(), b"]"].concat();
        let mut bytes = b"junk MARMOT-PROGRAM[ MARMOT-PROGRAM[Bad] ".to_vec();
        bytes.extend(stamp("marmotctl"));
        assert_eq!(find_program(&bytes), Some("marmotctl"));
        assert_eq!(find_program(&stamp("marmotd")), Some("marmotd"));
        assert_eq!(find_program(b"MARMOT-PROGRAM[]"), None);
        assert_eq!(find_program(&stamp(&"x".repeat(18))), None, "too long");
        assert_eq!(find_program(b"nothing here"), None);
    }
}
