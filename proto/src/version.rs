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
