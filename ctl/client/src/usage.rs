//! Usage errors as one line, for both command-line programs.
//!
//! clap prints a usage error over several lines (the error, the usage, a hint). marmot's
//! binaries promise one line per mistake, so the rendered error is folded into one.

/// Folds clap's rendered usage error into `"<what was wrong> (see --help)"`.
pub fn one_line(rendered: &str) -> String {
    let what: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    let what = what.join(" ");
    let what = what.strip_prefix("error: ").unwrap_or(&what);
    format!("{what} (see --help)")
}

#[cfg(test)]
mod tests {
    #[test]
    fn folds_clap_output() {
        let rendered = "error: the following required arguments were not provided:\n  <SAMPLES>\n\nUsage: marmotctl run pi <SAMPLES>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::one_line(rendered),
            "the following required arguments were not provided: <SAMPLES> (see --help)"
        );
    }
}
