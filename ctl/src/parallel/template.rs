//! The command of `marmotctl parallel` as GNU parallel reads it: its words joined by spaces
//! (quoted first under `-q`) into one line of shell code, with GNU parallel's replacement
//! strings found in it. [`Template::line`] fills them in for one job: each value shell-quoted
//! (see [`super::quote`]), so that a job's line is what `parallel --dry-run` prints.
//!
//! | string            | stands for                                         |
//! |-------------------|----------------------------------------------------|
//! | `{}`              | the job's arguments, quoted, between spaces        |
//! | `{.}` `{/}` `{//}` `{/.}` | without extension, base name, directory, base name without extension |
//! | `{#}`             | the job's sequence number, from 1                  |
//! | `{n}` `{-n}`      | the n-th argument (from the end: -1 the last); `{n.}`, `{n/}`, `{n//}`, `{n/.}` |
//! | `{name}`          | under `--header`, the column of that name           |
//!
//! `-I`, `--er`, `--bnr`, `--dnr`, `--bner` and `--seqreplace` rename them. A command with
//! none gets ` {}` appended. Under `-X`, a word holding `{}` (or a renamed one) is repeated
//! once per argument.

use super::quote::quote;

/// What an argument is turned into before it is quoted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    Whole,
    NoExtension,
    Basename,
    Dirname,
    BasenameNoExtension,
}

impl Transform {
    /// The suffix that makes a positional string of it (`{3.}`) and the default string.
    const ALL: [(Transform, &'static str); 5] = [
        (Transform::Whole, ""),
        (Transform::NoExtension, "."),
        (Transform::Basename, "/"),
        (Transform::Dirname, "//"),
        (Transform::BasenameNoExtension, "/."),
    ];

    /// `arg` transformed, as GNU parallel's perl expressions do.
    pub fn apply(self, arg: &str) -> String {
        match self {
            Transform::Whole => arg.to_string(),
            Transform::NoExtension => without_extension(arg).to_string(),
            Transform::Basename => basename(arg).to_string(),
            Transform::Dirname => dirname(arg),
            Transform::BasenameNoExtension => without_extension(basename(arg)).to_string(),
        }
    }
}

/// `s:\.[^/.]*$::`: the last `.` and what follows it, when no `/` follows.
fn without_extension(arg: &str) -> &str {
    match arg.rfind(['.', '/']) {
        Some(at) if arg.as_bytes()[at] == b'.' => &arg[..at],
        _ => arg,
    }
}

/// `s:.*/::`: what follows the last `/`.
fn basename(arg: &str) -> &str {
    arg.rfind('/').map_or(arg, |at| &arg[at + 1..])
}

/// Perl's `File::Basename::dirname` on Unix: trailing slashes do not count; `.` for a name
/// without a directory, `/` for one under the root.
fn dirname(arg: &str) -> String {
    let trimmed = arg.trim_end_matches('/');
    if trimmed.is_empty() {
        return if arg.starts_with('/') { "/".into() } else { ".".into() };
    }
    match trimmed.rfind('/') {
        None => ".".into(),
        Some(at) => {
            let dir = trimmed[..at].trim_end_matches('/');
            if dir.is_empty() {
                "/".into()
            } else {
                dir.into()
            }
        }
    }
}

/// One piece of the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// Every argument of the job (`{}` and its kin), or under `-X` one at a time.
    All(Transform),
    /// One argument by position from 1 (negative: from the end).
    At(i64, Transform),
    Seq,
}

/// The names of the replacement strings, as `-I` and its kin may rename them.
#[derive(Clone, Debug)]
pub struct Names {
    pub input: String,
    pub no_extension: String,
    pub basename: String,
    pub dirname: String,
    pub basename_no_extension: String,
    pub seq: String,
    pub slot: String,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            input: "{}".into(),
            no_extension: "{.}".into(),
            basename: "{/}".into(),
            dirname: "{//}".into(),
            basename_no_extension: "{/.}".into(),
            seq: "{#}".into(),
            slot: "{%}".into(),
        }
    }
}

/// Why a command cannot be run as given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("no command given: `marmotctl parallel echo ::: a b` runs `echo a` and `echo b`")]
    Empty,
    #[error(
        "`{{= … =}}` (a perl expression) is not supported by marmotctl parallel yet: \
         compute the value beforehand, e.g. in the input"
    )]
    Perl,
    #[error(
        "`{0}` (the job slot) is not supported by marmotctl parallel yet: use \
         $MARMOT_WORKER or {{#}} to tell jobs apart"
    )]
    Slot(String),
}

/// A command with its replacement strings found.
#[derive(Clone, Debug)]
pub struct Template {
    /// Words and the spaces between them, each word cut into pieces: under `-X` a word
    /// holding [`Piece::All`] is repeated per argument.
    words: Vec<Vec<Piece>>,
    /// Text between words, kept as typed (one space, unless the command held more).
    gaps: Vec<String>,
    /// `-q`: values go in as they are and each word is quoted whole.
    quoted: bool,
    /// No command given: each job's arguments are its line, as they are.
    verbatim: bool,
}

impl Template {
    /// Reads `command` (the words after the options) as GNU parallel does; `header` names
    /// columns by position.
    pub fn new(
        command: &[String],
        quoted: bool,
        names: &Names,
        header: &[String],
    ) -> Result<Template, TemplateError> {
        if command.is_empty() {
            return Err(TemplateError::Empty);
        }
        let line = command.join(" ");
        if line.contains("{=") && line[line.find("{=").unwrap_or(0)..].contains("=}") {
            return Err(TemplateError::Perl);
        }
        if line.contains(names.slot.as_str()) || has_positional_slot(&line) {
            return Err(TemplateError::Slot(names.slot.clone()));
        }
        // Under -q each word stays one word (quoted whole once filled in); else the line
        // is shell code, cut at blanks only to find the words -X repeats.
        let (words, mut gaps) = match quoted {
            true => (command.to_vec(), vec![" ".to_string(); command.len() - 1]),
            false => split_words(&line),
        };
        let mut pieces: Vec<Vec<Piece>> = words.iter().map(|w| pieces(w, names, header)).collect();
        let replaced = pieces.iter().flatten().any(|p| !matches!(p, Piece::Text(_)));
        if !replaced {
            gaps.push(" ".into());
            pieces.push(vec![Piece::All(Transform::Whole)]);
        }
        Ok(Template { words: pieces, gaps, quoted, verbatim: false })
    }

    /// No command: the arguments are the command line (GNU parallel runs them as commands).
    pub fn verbatim() -> Template {
        let words = vec![vec![Piece::All(Transform::Whole)]];
        Template { words, gaps: vec![], quoted: false, verbatim: true }
    }

    /// A text with replacement strings and nothing appended, filled in unquoted
    /// (`--tagstring`).
    pub fn text(text: &str, names: &Names) -> Result<Template, TemplateError> {
        if text.contains(names.slot.as_str()) || has_positional_slot(text) {
            return Err(TemplateError::Slot(names.slot.clone()));
        }
        let words = vec![pieces(text, names, &[])];
        Ok(Template { words, gaps: vec![], quoted: false, verbatim: true })
    }

    /// The job's line: `args` its arguments in order (all sources' values of each record),
    /// `seq` its number; under `context` (-X) a word with `{}` is repeated per argument.
    pub fn line(&self, args: &[&str], seq: u64, context: bool) -> String {
        let mut line = String::new();
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                line.push_str(&self.gaps[i - 1]);
            }
            let repeated = context && word.iter().any(|p| matches!(p, Piece::All(_)));
            let one: Vec<&[&str]> = match repeated {
                true => args.iter().map(std::slice::from_ref).collect(),
                false => vec![args],
            };
            for (n, all) in one.into_iter().enumerate() {
                if n > 0 {
                    line.push(' ');
                }
                if self.quoted {
                    let raw = segments(word, all, args, seq, |v| v);
                    let quoted: Vec<String> = raw.iter().map(|s| quote(s)).collect();
                    line.push_str(&quoted.join(" "));
                } else {
                    fill(&mut line, word, all, args, seq, !self.verbatim);
                }
            }
        }
        line
    }

    /// The `--tagstring`'s text for a job: replacement strings filled in, unquoted.
    pub fn tag(&self, args: &[&str], seq: u64) -> String {
        let mut tag = String::new();
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                tag.push_str(&self.gaps[i - 1]);
            }
            fill(&mut tag, word, args, args, seq, false);
        }
        tag
    }
}

/// Appends `word` filled in: `all` for `{}`, `every` for positions; each value quoted
/// unless `quoting` is off.
fn fill(line: &mut String, word: &[Piece], all: &[&str], every: &[&str], seq: u64, quoting: bool) {
    let shown = |value: String| if quoting { quote(&value) } else { value };
    line.push_str(&segments(word, all, every, seq, shown).join(" "));
}

/// `word` filled in, cut where `{}` puts one value after another (`x{}y` of `a` and `b`
/// is `xa` and `by`), each value `shown`.
fn segments(
    word: &[Piece],
    all: &[&str],
    every: &[&str],
    seq: u64,
    shown: impl Fn(String) -> String,
) -> Vec<String> {
    let mut segments = vec![String::new()];
    for piece in word {
        let last = segments.len() - 1;
        match piece {
            Piece::Text(text) => segments[last].push_str(text),
            Piece::All(t) => {
                for (n, arg) in all.iter().enumerate() {
                    if n > 0 {
                        segments.push(String::new());
                    }
                    let at = segments.len() - 1;
                    segments[at].push_str(&shown(t.apply(arg)));
                }
            }
            Piece::At(n, t) => {
                if let Some(arg) = at(every, *n) {
                    segments[last].push_str(&shown(t.apply(arg)));
                }
            }
            Piece::Seq => segments[last].push_str(&seq.to_string()),
        }
    }
    segments
}

/// The argument at position `n` (from 1; negative from the end), if there is one.
fn at<'a>(args: &[&'a str], n: i64) -> Option<&'a str> {
    let index = if n > 0 { n - 1 } else { args.len() as i64 + n };
    usize::try_from(index).ok().and_then(|i| args.get(i)).copied()
}

/// Whether the line holds a positional job slot such as `{2%}`, which is no argument.
fn has_positional_slot(line: &str) -> bool {
    line.match_indices('{').any(|(at, _)| {
        let rest = &line[at + 1..];
        let digits = rest.trim_start_matches('-');
        let n = digits.bytes().take_while(u8::is_ascii_digit).count();
        n > 0 && digits[n..].starts_with("%}")
    })
}

/// The words of `line` and the runs of blanks between them (leading and trailing blanks
/// stick to the first and last word).
fn split_words(line: &str) -> (Vec<String>, Vec<String>) {
    let mut words = vec![String::new()];
    let mut gaps = vec![];
    let mut in_gap = false;
    let trimmed_start = line.len() - line.trim_start_matches([' ', '\t', '\n']).len();
    let (lead, body) = line.split_at(trimmed_start);
    words[0].push_str(lead);
    for c in body.chars() {
        let blank = matches!(c, ' ' | '\t' | '\n');
        match (blank, in_gap) {
            (true, false) => {
                gaps.push(c.to_string());
                in_gap = true;
            }
            (true, true) => gaps.last_mut().expect("a gap").push(c),
            (false, true) => {
                words.push(c.to_string());
                in_gap = false;
            }
            (false, false) => words.last_mut().expect("a word").push(c),
        }
    }
    if in_gap {
        // Trailing blanks belong to the last word.
        let tail = gaps.pop().unwrap_or_default();
        words.last_mut().expect("a word").push_str(&tail);
    }
    (words, gaps)
}

/// A word cut into text and replacement strings.
fn pieces(word: &str, names: &Names, header: &[String]) -> Vec<Piece> {
    let mut pieces = vec![];
    let mut text = String::new();
    let mut rest = word;
    while !rest.is_empty() {
        match found_at_start(rest, names, header) {
            Some((len, piece)) => {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(piece);
                rest = &rest[len..];
            }
            None => {
                let c = rest.chars().next().unwrap_or_default();
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}

/// The replacement string `text` starts with, if any: its length and what it stands for.
/// The longest name wins where one starts another (`{/.}` before `{/}`).
fn found_at_start(text: &str, names: &Names, header: &[String]) -> Option<(usize, Piece)> {
    let named = [
        (&names.input, Piece::All(Transform::Whole)),
        (&names.no_extension, Piece::All(Transform::NoExtension)),
        (&names.basename, Piece::All(Transform::Basename)),
        (&names.dirname, Piece::All(Transform::Dirname)),
        (&names.basename_no_extension, Piece::All(Transform::BasenameNoExtension)),
        (&names.seq, Piece::Seq),
    ];
    let best = named
        .into_iter()
        .filter(|(name, _)| !name.is_empty() && text.starts_with(name.as_str()))
        .max_by_key(|(name, _)| name.len())
        .map(|(name, piece)| (name.len(), piece));
    best.or_else(|| positional(text)).or_else(|| by_header(text, header))
}

/// `{n}`, `{-n}` and `{n.}`, `{n/}`, `{n//}`, `{n/.}` at the start of `text`.
fn positional(text: &str) -> Option<(usize, Piece)> {
    let inner = text.strip_prefix('{')?;
    let close = inner.find('}')?;
    let inner = &inner[..close];
    let digits_from = usize::from(inner.starts_with('-'));
    let digits = inner[digits_from..].bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let number: i64 = inner[..digits_from + digits].parse().ok()?;
    if number == 0 {
        return None;
    }
    let suffix = &inner[digits_from + digits..];
    let (transform, _) = Transform::ALL.iter().find(|(_, s)| *s == suffix)?;
    Some((close + 2, Piece::At(number, *transform)))
}

/// `{name}` for a column `--header` named.
fn by_header(text: &str, header: &[String]) -> Option<(usize, Piece)> {
    let inner = text.strip_prefix('{')?;
    let close = inner.find('}')?;
    let name = &inner[..close];
    let (suffix_at, transform) = Transform::ALL
        .iter()
        .rev()
        .filter(|(_, s)| !s.is_empty() && name.ends_with(s))
        .map(|(t, s)| (name.len() - s.len(), *t))
        .find(|(at, _)| header.iter().any(|h| h == &name[..*at]))
        .unwrap_or((name.len(), Transform::Whole));
    let column = header.iter().position(|h| h == &name[..suffix_at])?;
    Some((close + 2, Piece::At(column as i64 + 1, transform)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    fn line(command: &str, args: &[&str]) -> String {
        Template::new(&words(command), false, &Names::default(), &[]).unwrap().line(args, 1, false)
    }

    #[test]
    fn transforms_are_gnu_parallels_perl_expressions() {
        let cases = [
            ("dir/clip.tar.gz", "dir/clip.tar", "clip.tar.gz", "dir", "clip.tar"),
            ("a.b/c", "a.b/c", "c", "a.b", "c"),
            (".bashrc", "", ".bashrc", ".", ""),
            ("plain", "plain", "plain", ".", "plain"),
            ("/top", "/top", "top", "/", "top"),
            ("a/b/", "a/b/", "", "a", ""),
            ("", "", "", ".", ""),
        ];
        for (arg, no_ext, base, dir, base_no_ext) in cases {
            assert_eq!(Transform::NoExtension.apply(arg), no_ext, "{{.}} of {arg}");
            assert_eq!(Transform::Basename.apply(arg), base, "{{/}} of {arg}");
            assert_eq!(Transform::Dirname.apply(arg), dir, "{{//}} of {arg}");
            assert_eq!(Transform::BasenameNoExtension.apply(arg), base_no_ext, "{{/.}} of {arg}");
        }
    }

    #[test]
    fn values_are_quoted_and_appended_when_no_string_is_given() {
        assert_eq!(line("echo", &["a b"]), "echo 'a b'");
        assert_eq!(line("echo {} | wc", &["a b"]), "echo 'a b' | wc");
        assert_eq!(line("echo x{}y {#}", &["c d"]), "echo x'c d'y 1");
        assert_eq!(line("echo {1} x {2} {-1}", &["a", "b c"]), "echo a x 'b c' 'b c'");
        assert_eq!(line("echo {3}", &["a"]), "echo ");
        assert_eq!(line("echo {2/.}", &["a", "d/e.f"]), "echo e");
        assert_eq!(line("echo {}", &["a", "b"]), "echo a b");
    }

    #[test]
    fn context_repeats_the_word_per_argument() {
        let t = Template::new(&words("echo x{}y {1}"), false, &Names::default(), &[]).unwrap();
        assert_eq!(t.line(&["a", "b"], 1, true), "echo xay xby a");
    }

    #[test]
    fn perl_and_slots_are_refused_not_printed() {
        let new = |c: &str| Template::new(&words(c), false, &Names::default(), &[]).err();
        assert_eq!(new("echo {= $_=uc =}"), Some(TemplateError::Perl));
        assert!(matches!(new("echo {%}"), Some(TemplateError::Slot(_))));
        assert!(matches!(new("echo {2%}"), Some(TemplateError::Slot(_))));
        assert_eq!(new("awk {print} {=x"), None, "an unclosed {{= is text");
    }
}
