//! Worker names: what a name may be, checked by the worker (its `--name`), by the coordinator
//! (in every join request and hello, before the name reaches a log line), and by the
//! installer; and how a string from a peer is shown in a log line when it is refused.

/// The longest name (a DNS name's limit).
pub const MAX_NAME: usize = 253;

/// Whether `name` is a worker name: 1 to 253 ASCII letters, digits, `-`, `_` or `.`. No
/// spaces or control characters, so a name can never forge or break a log line, a terminal
/// line or a unit's command line.
pub fn check_worker_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(allowed) {
        return Err(format!(
            "{} is not a worker name: use 1 to {MAX_NAME} letters, digits, '-', '_' or '.' \
             (like a host name)",
            shown(name)
        ));
    }
    Ok(())
}

/// A string from a peer, made safe for one log line: quoted, control characters escaped,
/// and cut at 64 characters.
pub fn shown(untrusted: &str) -> String {
    shown_at_most(untrusted, 64)
}

/// Like [`shown`], for longer texts (a peer's error message): at most `max` characters.
pub fn shown_at_most(untrusted: &str, max: usize) -> String {
    let mut text: String = untrusted.chars().take(max).collect::<String>().escape_debug().collect();
    if untrusted.chars().nth(max).is_some() {
        text.push_str("...");
    }
    format!("'{text}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_like_names_pass_and_nothing_else() {
        for good in ["w1", "laptop-2.lan", "attic_pc", &"a".repeat(MAX_NAME)] {
            assert_eq!(check_worker_name(good), Ok(()), "{good}");
        }
        for bad in ["", "two words", "a\nb", "tab\t", "café", "quote'", &"a".repeat(MAX_NAME + 1)]
        {
            let e = check_worker_name(bad).unwrap_err();
            assert!(e.contains("is not a worker name"), "{bad:?}: {e}");
            assert!(!e.contains('\n') && !e.contains('\t'), "one clean line: {e:?}");
        }
    }

    #[test]
    fn untrusted_strings_are_shown_escaped_quoted_and_short() {
        assert_eq!(shown("w1"), "'w1'");
        assert_eq!(shown("a\nINFO forged"), "'a\\nINFO forged'");
        assert_eq!(shown("\u{1b}[31mred"), "'\\u{1b}[31mred'");
        let long = "x".repeat(100);
        assert_eq!(shown(&long), format!("'{}...'", "x".repeat(64)));
        assert_eq!(shown(&"y".repeat(64)), format!("'{}'", "y".repeat(64)));
    }
}
