//! The command of `marmotctl run cmd -- COMMAND ARGS…` as a template with GNU parallel's
//! replacement strings, checked once where it is typed and expanded per unit where it runs.
//!
//! | string | stands for                              | `dir/clip.tar.gz`, unit 3 |
//! |--------|-----------------------------------------|---------------------------|
//! | `{}`   | the input                               | `dir/clip.tar.gz`         |
//! | `{#}`  | the unit's number, from 1               | `3`                       |
//! | `{.}`  | the input without its extension         | `dir/clip.tar`            |
//! | `{/}`  | the input's base name                   | `clip.tar.gz`             |
//! | `{//}` | the input's directory (`.` if none)     | `dir`                     |
//! | `{/.}` | the base name without its extension     | `clip.tar`                |
//!
//! A command with none of them gets the input as one more argument, as GNU parallel does.
//! One difference, on purpose: a base name that starts with its only dot (`.bashrc`) has no
//! extension here, where GNU parallel's `{/.}` makes it empty.
//! Commands run without a shell: each argument stays one argument whatever the input holds
//! (spaces, quotes, `;`), so an input cannot inject words. A command that wants a shell runs
//! one (`sh -c '…'`) and should read its input from `$MARMOT_INPUT`, not from `{}` pasted into
//! shell code. Any other `{…}` is literal text (`awk '{print $1}'`), but a replacement string
//! cut off at the end of an argument (`{/.`) is a mistake, refused with the fix.

use serde::{Deserialize, Serialize};

/// The most arguments a command may have, and the longest one may be (bytes).
pub const MAX_ARGS: usize = 4096;
pub const MAX_ARG_BYTES: usize = 128 * 1024;

/// A command template: the program and its arguments, replacement strings kept as typed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Template {
    argv: Vec<String>,
}

/// Why a command cannot be a template, in words for the user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("no command given: put it after `--`, e.g. `marmotctl run cmd ::: a b -- echo {{}}`")]
    Empty,
    #[error("the command's program name is empty")]
    EmptyProgram,
    #[error("the replacement string `{0}` in `{1}` is not closed: write `{0}}}`")]
    NotClosed(String, String),
    #[error("a command may have at most {MAX_ARGS} arguments, not {0}")]
    TooManyArgs(usize),
    #[error("an argument of the command is {0} bytes long; at most {MAX_ARG_BYTES} are allowed")]
    ArgTooLong(usize),
    #[error("an argument of the command holds a NUL byte, which no program can receive")]
    Nul,
}

/// One piece of an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Input,
    Number,
    NoExtension,
    Basename,
    Dirname,
    BasenameNoExtension,
}

/// The replacement strings, longest first where one starts another.
const STRINGS: [(&str, Piece<'static>); 6] = [
    ("{}", Piece::Input),
    ("{#}", Piece::Number),
    ("{.}", Piece::NoExtension),
    ("{//}", Piece::Dirname),
    ("{/.}", Piece::BasenameNoExtension),
    ("{/}", Piece::Basename),
];

impl Template {
    /// Checks a command as typed: a program, sizes within bounds, replacement strings closed.
    pub fn new(argv: Vec<String>) -> Result<Template, TemplateError> {
        let template = Template { argv };
        template.check()?;
        Ok(template)
    }

    /// Checks a template that came over the network (deserialized without [`Template::new`]).
    pub fn check(&self) -> Result<(), TemplateError> {
        let program = self.argv.first().ok_or(TemplateError::Empty)?;
        if program.is_empty() {
            return Err(TemplateError::EmptyProgram);
        }
        if self.argv.len() > MAX_ARGS {
            return Err(TemplateError::TooManyArgs(self.argv.len()));
        }
        for arg in &self.argv {
            if arg.len() > MAX_ARG_BYTES {
                return Err(TemplateError::ArgTooLong(arg.len()));
            }
            if arg.contains('\0') {
                return Err(TemplateError::Nul);
            }
            if let Some(cut) = cut_off(arg) {
                return Err(TemplateError::NotClosed(cut.to_string(), arg.clone()));
            }
        }
        Ok(())
    }

    /// The command as typed.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// Whether any argument holds a replacement string (if none, the input is appended).
    pub fn replaces(&self) -> bool {
        self.argv.iter().any(|arg| pieces(arg).iter().any(|p| !matches!(p, Piece::Text(_))))
    }

    /// The command for unit `number` (from 1) over `input`.
    pub fn expand(&self, input: &str, number: u64) -> Vec<String> {
        let mut replaced = false;
        let mut argv: Vec<String> =
            self.argv.iter().map(|arg| expand(arg, input, number, &mut replaced)).collect();
        if !replaced {
            argv.push(input.to_string());
        }
        argv
    }
}

/// `arg` with its replacement strings filled in; `replaced` set if it had any.
fn expand(arg: &str, input: &str, number: u64, replaced: &mut bool) -> String {
    let mut out = String::with_capacity(arg.len() + input.len());
    for piece in pieces(arg) {
        *replaced |= !matches!(piece, Piece::Text(_));
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Input => out.push_str(input),
            Piece::Number => out.push_str(&number.to_string()),
            Piece::NoExtension => out.push_str(without_extension(input)),
            Piece::Basename => out.push_str(basename(input)),
            Piece::Dirname => out.push_str(dirname(input)),
            Piece::BasenameNoExtension => out.push_str(without_extension(basename(input))),
        }
    }
    out
}

/// `arg` cut into text and replacement strings.
fn pieces(arg: &str) -> Vec<Piece<'_>> {
    let mut pieces = vec![];
    let mut text_from = 0;
    let mut at = 0;
    while at < arg.len() {
        let rest = &arg[at..];
        match STRINGS.iter().find(|(s, _)| rest.starts_with(s)) {
            Some((s, piece)) => {
                if text_from < at {
                    pieces.push(Piece::Text(&arg[text_from..at]));
                }
                pieces.push(*piece);
                at += s.len();
                text_from = at;
            }
            // `{` is one byte: the next char starts right after it.
            None => at += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    if text_from < arg.len() {
        pieces.push(Piece::Text(&arg[text_from..]));
    }
    pieces
}

/// A replacement string cut off by the end of `arg` (`{#`, `{/.`), if there is one.
fn cut_off(arg: &str) -> Option<&str> {
    let start = arg.rfind('{')?;
    let tail = &arg[start..];
    let started = tail.len() > 1 && STRINGS.iter().any(|(s, _)| s.starts_with(tail) && *s != tail);
    started.then_some(tail)
}

/// The part after the last `/` (the whole input if there is none).
fn basename(input: &str) -> &str {
    input.rsplit_once('/').map_or(input, |(_, base)| base)
}

/// The part before the last `/`; `.` if there is none, `/` for a file at the root.
fn dirname(input: &str) -> &str {
    match input.rsplit_once('/') {
        None => ".",
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
    }
}

/// The input without the extension of its base name: the last `.` and what follows, unless
/// the base name starts with it (`.bashrc` has none).
fn without_extension(input: &str) -> &str {
    let base_at = input.len() - basename(input).len();
    match input[base_at..].rfind('.') {
        Some(dot) if dot > 0 => &input[..base_at + dot],
        _ => input,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(argv: &[&str]) -> Template {
        Template::new(argv.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    #[test]
    fn every_replacement_string_as_gnu_parallel_fills_it() {
        let t = template(&["x", "{}", "{#}", "{.}", "{/}", "{//}", "{/.}"]);
        assert!(t.replaces());
        assert_eq!(t.argv(), ["x", "{}", "{#}", "{.}", "{/}", "{//}", "{/.}"], "kept as typed");
        assert_eq!(
            t.expand("dir/clip.tar.gz", 3),
            ["x", "dir/clip.tar.gz", "3", "dir/clip.tar", "clip.tar.gz", "dir", "clip.tar"]
        );
        assert_eq!(t.expand("clip", 12), ["x", "clip", "12", "clip", "clip", ".", "clip"]);
        assert_eq!(
            t.expand("a.d/b/.hidden", 1),
            ["x", "a.d/b/.hidden", "1", "a.d/b/.hidden", ".hidden", "a.d/b", ".hidden"]
        );
        assert_eq!(t.expand("/top.txt", 1)[3..], ["/top", "top.txt", "/", "top"]);
        assert_eq!(t.expand("a.d/noext", 1)[3..], ["a.d/noext", "noext", "a.d", "noext"]);
    }

    #[test]
    fn replacement_strings_inside_words_and_several_in_one() {
        let t = template(&["convert", "{}", "-resize", "50%", "out/{/.}-{#}.png"]);
        assert_eq!(
            t.expand("in/cat.jpg", 7),
            ["convert", "in/cat.jpg", "-resize", "50%", "out/cat-7.png"]
        );
        let t = template(&["echo", "{}{}", "é{#}é"]);
        assert_eq!(t.expand("ab", 2), ["echo", "abab", "é2é"]);
    }

    #[test]
    fn a_command_without_replacement_strings_gets_the_input_appended() {
        let t = template(&["gzip", "-9"]);
        assert!(!t.replaces());
        assert_eq!(t.expand("a file; rm -rf /", 1), ["gzip", "-9", "a file; rm -rf /"]);
    }

    #[test]
    fn other_braces_are_text() {
        let t = template(&["awk", "{print $1}", "{x}", "{", "}", "{/x}", "a{b"]);
        assert!(!t.replaces());
        assert_eq!(t.expand("in", 1), ["awk", "{print $1}", "{x}", "{", "}", "{/x}", "a{b", "in"]);
    }

    #[test]
    fn an_input_is_never_expanded_again() {
        let t = template(&["echo", "{}"]);
        assert_eq!(t.expand("{#}{.}", 5), ["echo", "{#}{.}"]);
    }

    #[test]
    fn bad_commands_are_refused_with_the_fix() {
        let new = |argv: &[&str]| Template::new(argv.iter().map(|s| s.to_string()).collect());
        assert_eq!(new(&[]), Err(TemplateError::Empty));
        assert_eq!(new(&[""]), Err(TemplateError::EmptyProgram));
        for cut in ["{#", "{.", "{/", "{//", "{/."] {
            let arg = format!("out/{cut}");
            let e = new(&["echo", &arg]).unwrap_err();
            assert_eq!(e, TemplateError::NotClosed(cut.into(), arg.clone()));
            assert_eq!(
                e.to_string(),
                format!("the replacement string `{cut}` in `{arg}` is not closed: write `{cut}}}`")
            );
        }
        assert!(new(&["echo", "{"]).is_ok(), "a lone brace is text");
        assert!(new(&["echo", "{}", "{/.}x{"]).is_ok());
        assert_eq!(new(&["echo", "a\0b"]), Err(TemplateError::Nul));
        let long = "x".repeat(MAX_ARG_BYTES + 1);
        assert_eq!(new(&["echo", &long]), Err(TemplateError::ArgTooLong(MAX_ARG_BYTES + 1)));
        assert!(new(&["echo", &long[1..]]).is_ok());
        let many: Vec<&str> = std::iter::repeat_n("a", MAX_ARGS + 1).collect();
        assert_eq!(new(&many), Err(TemplateError::TooManyArgs(MAX_ARGS + 1)));
        assert!(new(&many[1..]).is_ok());
        assert!(TemplateError::Empty.to_string().contains("after `--`"));
    }

    #[test]
    fn a_template_from_the_network_is_checked_again() {
        let t: Template = serde_json::from_str(r#"["echo","{/"]"#).unwrap();
        assert!(matches!(t.check(), Err(TemplateError::NotClosed(..))));
        let t: Template = serde_json::from_str("[]").unwrap();
        assert_eq!(t.check(), Err(TemplateError::Empty));
    }
}
