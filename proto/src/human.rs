//! Numbers as people read them, shared by both binaries' output: counts with the right
//! plural ("1 chunk", "2 chunks") and rates scaled to a readable prefix ("512 B/s",
//! "1.23 GB/s") instead of "0.00 GB/s" for a tiny job.

/// A share written as a number from 0 to 1 (`--verify 0.05`), or the line that says what to
/// write instead: one parser for both binaries' flags.
pub fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a share: write a number from 0 to 1, like 0.05")),
    }
}

/// A duration as people write one (`2s`, `500ms`, `7days`), or the line that says what was
/// wrong and shows `like`, this flag's examples (humantime's own examples are left out: one
/// set, not two).
pub fn parse_duration(s: &str, like: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| {
        let e = e.to_string();
        let what = e.split(", for example").next().unwrap_or_default();
        format!("{what}: write it like {like}")
    })
}

/// A time in milliseconds since the Unix epoch as RFC 3339 in UTC with milliseconds
/// (`2026-12-01T10:53:08.123Z`); times past what RFC 3339 writes (year 9999) are written as
/// its last millisecond rather than stopping the program.
pub fn rfc3339_millis(unix_ms: u64) -> String {
    /// 9999-12-31T23:59:59.999Z.
    const LAST_MS: u64 = 253_402_300_799_999;
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms.min(LAST_MS));
    humantime::format_rfc3339_millis(at).to_string()
}

/// `n` and the noun: `count(1, "chunk", "chunks")` is "1 chunk".
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", noun(n, one, many))
}

/// The noun for `n` of a thing, for tables that print the number apart.
pub fn noun<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// A rate with an SI prefix chosen so that three significant digits show:
/// `rate(2.5e9, "B")` is "2.50 GB/s", `rate(40.0, "B")` is "40.0 B/s",
/// `rate(5.4e9, "samples")` is "5.40 G samples/s".
pub fn rate(per_second: f64, unit: &str) -> String {
    format!("{}/s", amount(per_second, unit))
}

/// An amount with an SI prefix and three significant digits: `amount(1234567.0, "B")` is
/// "1.23 MB", `amount(12.0, "points")` is "12.0 points". A symbol (one letter, like `B`)
/// takes the prefix glued on; a word takes it apart.
pub fn amount(x: f64, unit: &str) -> String {
    let prefixes = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    let (value, prefix) = prefixes
        .iter()
        .find(|(p, _)| x.is_finite() && x.abs() >= *p)
        .map_or((x, ""), |&(p, name)| (x / p, name));
    let digits = match value.abs() {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    let symbol = unit.chars().count() == 1;
    match (prefix, symbol) {
        ("", _) => format!("{value:.digits$} {unit}"),
        (p, true) => format!("{value:.digits$} {p}{unit}"),
        (p, false) => format!("{value:.digits$} {p} {unit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_up_to_its_last_year() {
        assert_eq!(rfc3339_millis(1_764_586_388_123), "2025-12-01T10:53:08.123Z");
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(u64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_millis(253_402_300_800_000), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn shares_are_numbers_from_0_to_1() {
        assert_eq!(super::parse_share("0.02"), Ok(0.02));
        assert_eq!(super::parse_share("1"), Ok(1.0));
        for bad in ["-0.1", "1.5", "NaN", "two"] {
            let e = super::parse_share(bad).unwrap_err();
            assert!(e.starts_with(&format!("'{bad}' is not a share")), "{e}");
        }
    }

    #[test]
    fn a_duration_that_does_not_parse_is_said_with_one_set_of_examples() {
        assert_eq!(parse_duration("2s", "2s or 500ms"), Ok(std::time::Duration::from_secs(2)));
        assert_eq!(
            parse_duration("2", "2s or 500ms").unwrap_err(),
            "time unit needed: write it like 2s or 500ms"
        );
        let e = parse_duration("2 fortnights", "2s").unwrap_err();
        assert!(
            e.starts_with("unknown time unit \"fortnights\"") && e.ends_with(": write it like 2s"),
            "{e}"
        );
    }

    #[test]
    fn plurals() {
        assert_eq!(count(0, "chunk", "chunks"), "0 chunks");
        assert_eq!(count(1, "chunk", "chunks"), "1 chunk");
        assert_eq!(count(2, "slot", "slots"), "2 slots");
        assert_eq!(count(1, "trajectory", "trajectories"), "1 trajectory");
    }

    #[test]
    fn rates_keep_three_digits_at_any_size() {
        assert_eq!(rate(2.5e9, "B"), "2.50 GB/s");
        assert_eq!(rate(40.0, "B"), "40.0 B/s");
        assert_eq!(rate(7.0, "B"), "7.00 B/s");
        assert_eq!(rate(123_456.0, "B"), "123 kB/s");
        assert_eq!(rate(5.4e9, "samples"), "5.40 G samples/s");
        assert_eq!(rate(999.0, "points"), "999 points/s");
        assert_eq!(rate(1.5e12, "B"), "1.50 TB/s");
        assert_eq!(amount(0.0, "B"), "0.00 B");
        assert_eq!(amount(12_345_678.0, "points"), "12.3 M points");
    }
}
