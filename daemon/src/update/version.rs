//! This build's version, and how versions compare.
//!
//! The version is `CARGO_PKG_VERSION+BUILD`, BUILD being the build's UTC time as
//! YYYYMMDDhhmmss (see `proto/build.rs`). It is stored once, inside a stamp
//! `MARMOT-VERSION[...]` kept verbatim in the binary and made in `proto` (so `marmotctl` shows
//! the same): `--version`, the worker's `Hello` and the coordinator's status all read it from
//! there, and a coordinator finds it in the bytes of a binary built for another machine.
//! Versions order by semver precedence, then by build number (semver's own order of build
//! metadata compares numbers numerically).

use std::cmp::Ordering;

pub use proto::version::current;
use proto::version::OPEN;

/// The longest version a stamp may hold.
const MAX_LEN: usize = 64;

/// The version stamped in some bytes, if they hold one.
pub fn find_in(bytes: &[u8]) -> Option<String> {
    memchr::memmem::find_iter(bytes, OPEN).find_map(|at| {
        let rest = &bytes[at + OPEN.len()..];
        let end = rest.iter().take(MAX_LEN + 1).position(|&b| b == b']')?;
        let text = std::str::from_utf8(&rest[..end]).ok()?;
        semver::Version::parse(text).ok()?;
        Some(text.to_string())
    })
}

/// How version `a` compares with `b`; `None` when either is not a version.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (semver::Version::parse(a).ok()?, semver::Version::parse(b).ok()?);
    Some(a.cmp(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_build_has_a_version_with_a_build_number() {
        let v = semver::Version::parse(current()).unwrap();
        assert_eq!(v.to_string(), current());
        assert_eq!(v.build.as_str().len(), 14, "{v}");
    }

    #[test]
    fn versions_order_by_semver_then_build_number() {
        use Ordering::*;
        assert_eq!(compare("0.2.0+20260101000000", "0.1.9+20270101000000"), Some(Greater));
        assert_eq!(compare("0.1.0+20261127100000", "0.1.0+20261127090000"), Some(Greater));
        assert_eq!(compare("0.1.0+9", "0.1.0+10"), Some(Less), "build numbers are numbers");
        assert_eq!(compare("1.0.0-rc.1+5", "1.0.0+1"), Some(Less));
        assert_eq!(compare("0.1.0+1", "0.1.0+1"), Some(Equal));
        assert_eq!(compare("banana", "0.1.0"), None);
    }

    #[test]
    fn stamps_are_found_in_bytes_and_junk_is_not() {
        // Stamps made at run time: a literal one would sit in this test binary too.
        let stamp = |inner: &str| [OPEN, inner.as_bytes()].concat();
        let mut bytes = b"\x7fELF junk ".to_vec();
        bytes.extend(stamp("not a version] more "));
        bytes.extend(stamp("0.3.1+20261127120000]\0tail"));
        assert_eq!(find_in(&bytes).as_deref(), Some("0.3.1+20261127120000"));
        assert_eq!(find_in(&stamp("0.1.0")), None, "unterminated");
        assert_eq!(find_in(b"nothing here"), None);
        // This very binary carries its stamp.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(find_in(&exe).as_deref(), Some(current()));
    }
}
