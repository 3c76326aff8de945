//! The environment files the units read (`/etc/marmot/ROLE.env`): written from the
//! installer's settings, and read back so that running `marmotd install` again keeps a token
//! it was not given.
//!
//! systemd reads these files itself: a value is taken literally up to the end of the line,
//! and the units split the `*_FLAGS` values on white space. So every value is checked to be
//! one word of plain characters before it is written; nothing needs quoting.

use crate::state_dir::Role;

/// One setting refused, with why.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadValue(pub String);

/// What `marmotd install ROLE` was told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settings {
    Coordinator { sans: Vec<String> },
    Worker { coordinator: String, token: Option<String>, name: Option<String>, slots: Option<u32> },
}

impl Settings {
    pub fn role(&self) -> Role {
        match self {
            Settings::Coordinator { .. } => Role::Coordinator,
            Settings::Worker { .. } => Role::Worker,
        }
    }
}

/// A value that systemd and the unit's word splitting pass on unchanged.
fn check(what: &str, value: &str) -> Result<(), BadValue> {
    let plain = |c: char| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '$' | '%');
    if value.is_empty() || !value.chars().all(plain) {
        return Err(BadValue(format!(
            "{what} '{}' must be one word of letters, digits and punctuation such as . - _ : [ ] \
             (no spaces, quotes, $, % or \\)",
            value.escape_default()
        )));
    }
    Ok(())
}

/// The file's text for these settings; `token` is the join token to keep (given now, or
/// found in the file written before).
pub fn render(settings: &Settings, token: Option<&str>) -> Result<String, BadValue> {
    let role = settings.role().name();
    let mut text =
        format!("# Written by `marmotd install {role}`: run it again to change these settings.\n");
    match settings {
        Settings::Coordinator { sans } => {
            let mut flags = Vec::new();
            for san in sans {
                check("--san", san)?;
                flags.push(format!("--san {san}"));
            }
            text += &format!("MARMOT_COORDINATOR_FLAGS={}\n", flags.join(" "));
        }
        Settings::Worker { coordinator, name, slots, .. } => {
            check("--coordinator", coordinator)?;
            text += &format!("MARMOT_COORDINATOR={coordinator}\n");
            if let Some(token) = token {
                check("--token", token)?;
                text += "# The join token is needed until the worker has joined once.\n";
                text += &format!("MARMOT_TOKEN={token}\n");
            }
            let mut flags = Vec::new();
            if let Some(name) = name {
                check("--name", name)?;
                flags.push(format!("--name {name}"));
            }
            if let Some(slots) = slots {
                flags.push(format!("--slots {slots}"));
            }
            text += &format!("MARMOT_WORKER_FLAGS={}\n", flags.join(" "));
        }
    }
    Ok(text)
}

/// The value of `key` in an environment file's text (the last assignment wins, as in systemd).
pub fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|line| line.trim().split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').trim_matches('\''))
        .next_back()
        .filter(|v| !v.is_empty())
}

/// The text with the token's secret hidden, for `--dry-run` and logs.
pub fn redacted(text: &str) -> String {
    text.lines()
        .map(|line| match line.split_once('=') {
            Some(("MARMOT_TOKEN", _)) => "MARMOT_TOKEN=<the join token>".to_string(),
            _ => line.to_string(),
        })
        .map(|line| line + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(name: Option<&str>, slots: Option<u32>) -> Settings {
        Settings::Worker {
            coordinator: "192.168.1.25:7070".into(),
            token: None,
            name: name.map(Into::into),
            slots,
        }
    }

    #[test]
    fn worker_files_carry_address_token_and_flags() {
        let text = render(&worker(Some("attic"), Some(3)), Some("marmot1-ab-cd")).unwrap();
        assert_eq!(value(&text, "MARMOT_COORDINATOR"), Some("192.168.1.25:7070"));
        assert_eq!(value(&text, "MARMOT_TOKEN"), Some("marmot1-ab-cd"));
        assert_eq!(value(&text, "MARMOT_WORKER_FLAGS"), Some("--name attic --slots 3"));
        assert!(text.starts_with("# Written by `marmotd install worker`"), "{text}");
        let plain = render(&worker(None, None), None).unwrap();
        assert!(plain.contains("MARMOT_WORKER_FLAGS=\n"), "{plain}");
        assert!(!plain.contains("MARMOT_TOKEN"), "{plain}");
        let hidden = redacted(&text);
        assert!(!hidden.contains("cd"), "{hidden}");
        assert!(hidden.contains("MARMOT_TOKEN=<the join token>\n"), "{hidden}");
        assert!(hidden.contains("MARMOT_WORKER_FLAGS=--name attic --slots 3\n"), "{hidden}");
    }

    #[test]
    fn coordinator_files_carry_the_sans() {
        let settings = Settings::Coordinator { sans: vec!["nas.lan".into(), "10.0.0.2".into()] };
        let text = render(&settings, None).unwrap();
        assert_eq!(value(&text, "MARMOT_COORDINATOR_FLAGS"), Some("--san nas.lan --san 10.0.0.2"));
        assert_eq!(settings.role(), Role::Coordinator);
        let none = render(&Settings::Coordinator { sans: vec![] }, None).unwrap();
        assert!(none.ends_with("MARMOT_COORDINATOR_FLAGS=\n"), "{none}");
    }

    #[test]
    fn values_that_would_split_or_expand_are_refused() {
        for bad in ["two words", "quo\"te", "dollar$HOME", "100%", "new\nline", "", "back\\s"] {
            let e = render(&worker(Some(bad), None), None).unwrap_err();
            assert!(e.0.contains("--name") && e.0.contains("one word"), "{bad}: {e}");
            assert!(!e.0.contains('\n'), "one line: {e}");
        }
        let e = render(&Settings::Coordinator { sans: vec!["a b".into()] }, None).unwrap_err();
        assert!(e.0.starts_with("--san 'a b'"), "{e}");
        assert!(render(&worker(None, None), Some("tok en")).is_err());
        assert!(render(&worker(Some("laptop-2.lan"), None), None).is_ok());
    }

    #[test]
    fn values_are_read_back_as_systemd_reads_them() {
        let text = "# comment\nMARMOT_TOKEN=old\n MARMOT_TOKEN = \"new\" \nOTHER=x\nEMPTY=\n";
        assert_eq!(value(text, "MARMOT_TOKEN"), Some("new"));
        assert_eq!(value(text, "OTHER"), Some("x"));
        assert_eq!(value(text, "EMPTY"), None);
        assert_eq!(value(text, "MISSING"), None);
        assert_eq!(value("#MARMOT_TOKEN=x\n", "MARMOT_TOKEN"), None);
    }
}
