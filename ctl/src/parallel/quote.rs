//! Shell quoting as GNU parallel quotes: a value pasted into a command line reaches the
//! command as one word, whatever it holds, and reads as GNU parallel's own `--dry-run` shows
//! it (the oracle the tests compare with, byte for byte).

/// `text` quoted for a Bourne shell (bash, sh, dash, zsh) exactly as GNU parallel's
/// `shell_quote_scalar_default`: as it is when made of `-_.+/`, ASCII letters and digits;
/// `''` when empty; else inside single quotes, each `'` written `'"'"'`, with the quotes
/// that would stand empty at either end dropped.
pub fn quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/');
    if text.is_empty() {
        return "''".into();
    }
    if text.chars().all(plain) {
        return text.into();
    }
    let quoted = format!("'{}'", text.replace('\'', "'\"'\"'"));
    let quoted = quoted.strip_prefix("''").unwrap_or(&quoted);
    quoted.strip_suffix("''").unwrap_or(quoted).to_string()
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn words_are_quoted_as_gnu_parallel_quotes_them() {
        // Each pair as `parallel --dry-run echo ::: WORD` prints it (GNU parallel 20221122).
        let cases = [
            ("plain", "plain"),
            ("", "''"),
            ("a b", "'a b'"),
            ("it's", "'it'\"'\"'s'"),
            ("'", "\"'\""),
            ("''x", "\"'\"''\"'\"'x'"),
            ("x$y", "'x$y'"),
            ("-n", "-n"),
            ("a+b/c_d.e", "a+b/c_d.e"),
            ("a=b", "'a=b'"),
            ("é", "'é'"),
            ("a\tb", "'a\tb'"),
        ];
        for (word, shown) in cases {
            assert_eq!(quote(word), shown, "{word:?}");
        }
    }
}
