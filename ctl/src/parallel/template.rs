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

use super::perl::{Evaluated, Perl, PerlError};
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
    /// The job slot (`{%}`), known only on the worker: [`SLOT_MARK`] until the line is
    /// made, then the variable the worker sets.
    Slot,
    /// A perl expression (`{= … =}`, `--rpl`, `--plus`): `$_` made of each argument, or of
    /// the one at a position; its values are evaluated per job ([`Template::evaluate`]).
    Perl {
        id: usize,
        at: Option<i64>,
    },
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
    /// Strings defined in perl (`--rpl 'TAG CODE'`, `--plus`'s), as GNU parallel writes
    /// them: a tag, or one holding a `(regex)` whose match the code reads as `$$1`.
    pub rpl: Vec<(String, String)>,
    /// What opens and closes a perl expression: `{=` and `=}` unless `--parens` says.
    pub perl_open: String,
    pub perl_close: String,
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
            rpl: vec![],
            perl_open: "{=".into(),
            perl_close: "=}".into(),
        }
    }
}

/// Why a command cannot be run as given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("no command given: `marmotctl parallel echo ::: a b` runs `echo a` and `echo b`")]
    Empty,
    #[error("--rpl {0}: its (group) is not a regular expression marmotctl parallel reads")]
    Rpl(String),
    #[error(
        "`{0}` (the job slot) is not supported by marmotctl parallel yet in a tag, a \
         results name or at a position: use {{#}} to tell jobs apart"
    )]
    Slot(String),
    #[error(
        "`{0}` inside single quotes: the job slot is filled in on the worker (from \
         ${var}), which single quotes keep out; close them around it: 'a'{0}'b'",
        var = JOB_SLOT_VAR
    )]
    SlotQuoted(String),
}

/// What a job slot is written as until the line is made: a NUL, which no argument holds.
const SLOT_MARK: char = '\0';

/// The job slot in a line: the variable the worker sets to it for each unit.
const SLOT_VALUE: &str = "${PARALLEL_JOBSLOT}";
const JOB_SLOT_VAR: &str = proto::wire::JOB_SLOT_VAR;

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
    /// Its perl expressions by [`Piece::Perl`]'s id: the code, and a position if it has one.
    perl: Vec<(String, Option<i64>)>,
    /// ` {}` was appended, the command naming no replacement string.
    appended: bool,
}

/// A job's values of a template's perl expressions: per expression, per argument (or the
/// one at its position).
#[derive(Clone, Debug, Default)]
pub struct PerlValues {
    values: Vec<Vec<Evaluated>>,
    /// One called `skip()`: the job does not run.
    pub skip: bool,
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
        if has_positional_slot(&line) {
            return Err(TemplateError::Slot(names.slot.clone()));
        }
        let quoted_slot = |(at, _)| in_single_quotes(&line, at);
        if !quoted && line.match_indices(names.slot.as_str()).any(quoted_slot) {
            return Err(TemplateError::SlotQuoted(names.slot.clone()));
        }
        // Under -q each word stays one word (quoted whole once filled in); else the line
        // is shell code, cut at blanks only to find the words -X repeats.
        let (words, mut gaps) = match quoted {
            true => (command.to_vec(), vec![" ".to_string(); command.len() - 1]),
            false => split_words(&line, (&names.perl_open, &names.perl_close)),
        };
        let rpls = rpls(names)?;
        let mut perl = vec![];
        let mut pieces: Vec<Vec<Piece>> =
            words.iter().map(|w| pieces(w, names, &rpls, header, &mut perl)).collect();
        let replaced = pieces.iter().flatten().any(|p| !matches!(p, Piece::Text(_)));
        if !replaced {
            gaps.push(" ".into());
            pieces.push(vec![Piece::All(Transform::Whole)]);
        }
        let appended = !replaced;
        Ok(Template { words: pieces, gaps, quoted, verbatim: false, perl, appended })
    }

    /// The same without the ` {}` appended to a command that names no replacement string:
    /// under `--pipe` the input is the jobs' stdin, not their arguments.
    pub fn without_appended(mut self) -> Template {
        if self.appended {
            self.words.pop();
            self.gaps.pop();
            self.appended = false;
        }
        self
    }

    /// No command: the arguments are the command line (GNU parallel runs them as commands).
    pub fn verbatim() -> Template {
        let words = vec![vec![Piece::All(Transform::Whole)]];
        Template {
            words,
            gaps: vec![],
            quoted: false,
            verbatim: true,
            perl: vec![],
            appended: false,
        }
    }

    /// A text with replacement strings and nothing appended, filled in unquoted
    /// (`--tagstring`).
    pub fn text(text: &str, names: &Names) -> Result<Template, TemplateError> {
        if text.contains(names.slot.as_str()) || has_positional_slot(text) {
            return Err(TemplateError::Slot(names.slot.clone()));
        }
        let mut perl = vec![];
        let words = vec![pieces(text, names, &rpls(names)?, &[], &mut perl)];
        Ok(Template { words, gaps: vec![], quoted: false, verbatim: true, perl, appended: false })
    }

    /// Whether it holds no replacement string at all (its text is the same for every job).
    pub fn is_plain(&self) -> bool {
        self.words.iter().flatten().all(|p| matches!(p, Piece::Text(_)))
    }

    /// Whether it holds perl expressions (their values are evaluated per job).
    pub fn has_perl(&self) -> bool {
        !self.perl.is_empty()
    }

    /// The values of its perl expressions for a job of `args`, its number `seq` of `total`
    /// jobs (and whether one called `skip()`).
    pub fn evaluate(
        &self,
        perl: &mut Perl,
        args: &[&str],
        seq: u64,
        total: u64,
    ) -> Result<PerlValues, PerlError> {
        if self.perl.is_empty() {
            return Ok(PerlValues::default());
        }
        let mut skip = false;
        perl.job(seq, total, args)?;
        let mut values = vec![];
        for (code, at_position) in &self.perl {
            let inputs: Vec<&str> = match at_position {
                None => args.to_vec(),
                Some(n) => vec![at(args, *n).unwrap_or_default()],
            };
            let mut evaluated = vec![];
            for input in inputs {
                let value = perl.eval(code, input)?;
                skip |= value.skip;
                evaluated.push(value);
            }
            values.push(evaluated);
        }
        Ok(PerlValues { values, skip })
    }

    /// The job's line: `args` its arguments in order (all sources' values of each record),
    /// `seq` its number, `perl` its perl expressions' values; under `context` (-X) a word
    /// with `{}` is repeated per argument.
    pub fn line(&self, args: &[&str], seq: u64, context: bool, perl: &PerlValues) -> String {
        let job = Job { args, seq, perl };
        let every: Vec<usize> = (0..args.len()).collect();
        let mut line = String::new();
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                line.push_str(&self.gaps[i - 1]);
            }
            let per_arg = |p: &Piece| matches!(p, Piece::All(_) | Piece::Perl { at: None, .. });
            let repeated = context && word.iter().any(per_arg);
            let one: Vec<&[usize]> = match repeated {
                true => every.iter().map(std::slice::from_ref).collect(),
                false => vec![&every],
            };
            for (n, all) in one.into_iter().enumerate() {
                if n > 0 {
                    line.push(' ');
                }
                if self.quoted {
                    let raw = segments(word, all, &job, false);
                    let quoted: Vec<String> = raw.iter().map(|s| quoted_with_slots(s)).collect();
                    line.push_str(&quoted.join(" "));
                } else {
                    let filled = segments(word, all, &job, !self.verbatim).join(" ");
                    line.push_str(&filled.replace(SLOT_MARK, SLOT_VALUE));
                }
            }
        }
        line
    }

    /// The `--tagstring`'s text for a job: replacement strings filled in, unquoted.
    pub fn tag(&self, args: &[&str], seq: u64, perl: &PerlValues) -> String {
        let job = Job { args, seq, perl };
        let every: Vec<usize> = (0..args.len()).collect();
        let mut tag = String::new();
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                tag.push_str(&self.gaps[i - 1]);
            }
            tag.push_str(&segments(word, &every, &job, false).join(" "));
        }
        tag
    }
}

/// What a line is filled in from.
struct Job<'a> {
    args: &'a [&'a str],
    seq: u64,
    perl: &'a PerlValues,
}

/// `word` filled in for the arguments `all` (indices into the job's), cut where `{}` puts
/// one value after another (`x{}y` of `a` and `b` is `xa` and `by`); each value quoted
/// when `quoting` (a perl value unless it called `uq()`).
fn segments(word: &[Piece], all: &[usize], job: &Job<'_>, quoting: bool) -> Vec<String> {
    let shown = |value: String| if quoting { quote(&value) } else { value };
    let perl = |id: usize, index: usize| {
        let value = job.perl.values.get(id).and_then(|v| v.get(index));
        match value {
            Some(v) if quoting && !v.unquoted => quote(&v.value),
            Some(v) => v.value.clone(),
            None => String::new(),
        }
    };
    let mut segments = vec![String::new()];
    for piece in word {
        let last = segments.len() - 1;
        match piece {
            Piece::Text(text) => segments[last].push_str(text),
            Piece::All(t) => {
                for (n, &index) in all.iter().enumerate() {
                    if n > 0 {
                        segments.push(String::new());
                    }
                    let at = segments.len() - 1;
                    segments[at].push_str(&shown(t.apply(job.args[index])));
                }
            }
            Piece::Perl { id, at: None } => {
                for (n, &index) in all.iter().enumerate() {
                    if n > 0 {
                        segments.push(String::new());
                    }
                    let at = segments.len() - 1;
                    segments[at].push_str(&perl(*id, index));
                }
            }
            Piece::Perl { id, at: Some(_) } => segments[last].push_str(&perl(*id, 0)),
            Piece::At(n, t) => {
                if let Some(arg) = at(job.args, *n) {
                    segments[last].push_str(&shown(t.apply(arg)));
                }
            }
            Piece::Seq => segments[last].push_str(&job.seq.to_string()),
            Piece::Slot => segments[last].push(SLOT_MARK),
        }
    }
    segments
}

/// A word quoted whole (`-q`) but for its job slots, which the shell fills in between the
/// quoted parts.
fn quoted_with_slots(word: &str) -> String {
    if !word.contains(SLOT_MARK) {
        return quote(word);
    }
    let parts = word.split(SLOT_MARK).map(|part| match part.is_empty() {
        true => String::new(),
        false => quote(part),
    });
    parts.collect::<Vec<_>>().join(&format!("\"{SLOT_VALUE}\""))
}

/// Whether byte `at` of shell code `line` is inside single quotes (`'…'` or `$'…'`).
fn in_single_quotes(line: &str, at: usize) -> bool {
    let (mut single, mut double, mut escaped) = (false, false, false);
    for c in line[..at].chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
    }
    single
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
fn split_words(line: &str, parens: (&str, &str)) -> (Vec<String>, Vec<String>) {
    let mut words = vec![String::new()];
    let mut gaps = vec![];
    let mut in_gap = false;
    let trimmed_start = line.len() - line.trim_start_matches([' ', '\t', '\n']).len();
    let (lead, body) = line.split_at(trimmed_start);
    words[0].push_str(lead);
    let mut perl = false;
    for (at, c) in body.char_indices() {
        // A perl expression is one word, blanks and all.
        let seen = &body[..at + c.len_utf8()];
        match perl {
            false => perl = seen.ends_with(parens.0),
            true => perl = !seen.ends_with(parens.1),
        }
        let blank = matches!(c, ' ' | '\t' | '\n') && !perl;
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

/// A word cut into text and replacement strings; perl ones are added to `perl`.
fn pieces(
    word: &str,
    names: &Names,
    rpls: &[Rpl],
    header: &[String],
    perl: &mut Vec<(String, Option<i64>)>,
) -> Vec<Piece> {
    let mut pieces = vec![];
    let mut text = String::new();
    let mut rest = word;
    while !rest.is_empty() {
        let found = match perl_at_start(rest, names, rpls) {
            Some((len, code)) => {
                let (code, at) = position_of(&code, header);
                perl.push((code, at));
                Some((len, Piece::Perl { id: perl.len() - 1, at }))
            }
            None => found_at_start(rest, names, header),
        };
        match found {
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

/// A perl replacement string at the start of `text`, its length and code: `{= code =}`
/// (the shortest), or one `--rpl` (or `--plus`) defines, the longest, a `{N…}` form of
/// it at a position, its `(group)`'s match given to the code as `$$1`. A default string
/// longer than any of these wins (`{/.}` over `--rpl '{/} …'`'s `{/}`).
fn perl_at_start(text: &str, names: &Names, rpls: &[Rpl]) -> Option<(usize, String)> {
    let (open, shut) = (names.perl_open.as_str(), names.perl_close.as_str());
    if let Some(inner) = text.strip_prefix(open) {
        let close = inner.find(shut);
        // The shortest: one opened again before the close is another (unless both are
        // the same string, as `--parens ,,,,` makes them).
        let reopened = inner.find(open).filter(|_| open != shut);
        if let Some(close) = close.filter(|c| reopened.is_none_or(|r| r > *c)) {
            return Some((open.len() + close + shut.len(), inner[..close].to_string()));
        }
    }
    // The longest match; of two as long, the longer string's (GNU parallel replaces the
    // longer ones first: `{%%.e*}` is `{%%…}`'s, not `{%…}`'s).
    let mut best: Option<((usize, usize), String)> = None;
    for rpl in rpls {
        if let Some((len, code)) = rpl.at_start(text) {
            if best.as_ref().is_none_or(|(l, _)| (len, rpl.key_len) > *l) {
                best = Some(((len, rpl.key_len), code));
            }
        }
    }
    let native = found_at_start(text, names, &[]).map_or(0, |(len, _)| len);
    best.filter(|((len, _), _)| *len > native).map(|((len, _), code)| (len, code))
}

/// A string `--rpl` (or `--plus`) defines, read once: the regex of its tag (a `(group)`
/// in it is a regex, the rest literal), and of its `{N…}` form at a position.
struct Rpl {
    whole: regex::Regex,
    positional: Option<regex::Regex>,
    code: String,
    key_len: usize,
}

impl Rpl {
    fn new(key: &str, code: &str) -> Result<Rpl, TemplateError> {
        let (prefix, group, postfix) = match key.find('(').zip(key.rfind(')')) {
            Some((open, close)) if open < close => {
                (&key[..open], &key[open..=close], &key[close + 1..])
            }
            _ => (key, "", ""),
        };
        let compile = |prefix: &str| {
            let pattern = format!("^{}{group}{}", regex::escape(prefix), regex::escape(postfix));
            regex::Regex::new(&pattern).map_err(|_| TemplateError::Rpl(key.to_string()))
        };
        let positional = prefix.strip_prefix('{').map(compile).transpose()?;
        Ok(Rpl { whole: compile(prefix)?, positional, code: code.to_string(), key_len: key.len() })
    }

    /// Its match at the start of `text`, or its `{N…}` form's: the length, and the code
    /// given the groups' matches as `$$1`… (at position N: `N ` first).
    fn at_start(&self, text: &str) -> Option<(usize, String)> {
        if let Some(found) = self.with_groups(&self.whole, text) {
            return Some(found);
        }
        let rest = text.strip_prefix('{')?;
        let sign = usize::from(rest.starts_with('-'));
        let digits = rest[sign..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (number, after) = rest.split_at(sign + digits);
        let (len, code) = self.with_groups(self.positional.as_ref()?, after)?;
        Some((1 + sign + digits + len, format!("{number} {code}")))
    }

    fn with_groups(&self, re: &regex::Regex, text: &str) -> Option<(usize, String)> {
        let found = re.captures(text)?;
        let mut set = String::new();
        let mut code = self.code.clone();
        for n in (1..found.len()).rev() {
            let value = found.get(n).map_or("", |m| m.as_str());
            let quoted = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('$', "\\$")
                .replace('@', "\\@");
            set = format!("$_pAr_gRp{n} = \"{quoted}\";{set}");
            code = code.replace(&format!("$${n}"), &format!("$_pAr_gRp{n}"));
        }
        Some((found.get(0).map_or(0, |m| m.end()), format!("{set}{code}")))
    }
}

/// The `--rpl` strings of `names`, read once for a whole command.
fn rpls(names: &Names) -> Result<Vec<Rpl>, TemplateError> {
    names.rpl.iter().map(|(key, code)| Rpl::new(key, code)).collect()
}

/// A perl expression's position (`{=2 … =}`, an `--rpl` code starting `1 `, a `--header`
/// column's name), and its code without it.
fn position_of(code: &str, header: &[String]) -> (String, Option<i64>) {
    let sign = usize::from(code.starts_with('-'));
    let digits = code[sign..].bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        if let Ok(n) = code[..sign + digits].parse::<i64>() {
            return (code[sign + digits..].trim_start_matches(' ').to_string(), Some(n));
        }
    }
    let named = header.iter().position(|h| {
        code.strip_prefix(h.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    });
    if let Some(column) = named {
        let rest = &code[header[column].len()..];
        return (rest.trim_start_matches(' ').to_string(), Some(column as i64 + 1));
    }
    (code.trim_start_matches(' ').to_string(), None)
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
        (&names.slot, Piece::Slot),
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
        let template = Template::new(&words(command), false, &Names::default(), &[]).unwrap();
        template.line(args, 1, false, &PerlValues::default())
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
        assert_eq!(t.line(&["a", "b"], 1, true, &PerlValues::default()), "echo xay xby a");
    }

    #[test]
    fn slots_are_filled_in_on_the_worker_or_refused_not_printed() {
        let new = |c: &str| Template::new(&words(c), false, &Names::default(), &[]);
        let line = |c: &str| new(c).unwrap().line(&["a b"], 1, false, &PerlValues::default());
        assert_eq!(line("echo {%} {}"), "echo ${PARALLEL_JOBSLOT} 'a b'");
        assert_eq!(
            line("echo \"x{%}\" 'q'\\'{%}"),
            "echo \"x${PARALLEL_JOBSLOT}\" 'q'\\'${PARALLEL_JOBSLOT}"
        );
        assert!(matches!(new("echo '{%}'"), Err(TemplateError::SlotQuoted(_))));
        assert!(matches!(new("echo \"'\"'{%}'"), Err(TemplateError::SlotQuoted(_))));
        assert!(matches!(new("echo $'{%}'"), Err(TemplateError::SlotQuoted(_))));
        assert!(matches!(new("echo {2%}"), Err(TemplateError::Slot(_))));
        assert!(new("awk {print} {=x").is_ok(), "an unclosed {{= is text");
        // -q: each word quoted whole, but for the slot.
        let q = |c: &[&str]| {
            let command: Vec<String> = c.iter().map(|w| w.to_string()).collect();
            let t = Template::new(&command, true, &Names::default(), &[]).unwrap();
            t.line(&["a"], 1, false, &PerlValues::default())
        };
        assert_eq!(
            q(&["echo", "x {%}y", "{%}"]),
            "echo 'x '\"${PARALLEL_JOBSLOT}\"y \"${PARALLEL_JOBSLOT}\""
        );
        assert_eq!(q(&["echo", "'{%}'"]), "echo \"'\"\"${PARALLEL_JOBSLOT}\"\"'\"");
        // Renamed (--slotreplace), and not in a tag.
        let names = Names { slot: ",,".into(), ..Names::default() };
        let t = Template::new(&words("echo ,,"), false, &names, &[]).unwrap();
        assert_eq!(t.line(&["a"], 1, false, &PerlValues::default()), "echo ${PARALLEL_JOBSLOT}");
        assert!(matches!(Template::text("{%}", &Names::default()), Err(TemplateError::Slot(_))));
    }

    /// The perl expressions a command holds, as (code, position), and its line for `args`.
    fn perl_of(
        command: &[&str],
        names: &Names,
        header: &[String],
        args: &[&str],
    ) -> (Vec<(String, Option<i64>)>, String) {
        let command: Vec<String> = command.iter().map(|w| w.to_string()).collect();
        let template = Template::new(&command, false, names, header).unwrap();
        let mut perl = Perl::start().unwrap();
        let values = template.evaluate(&mut perl, args, 4, 9).unwrap();
        (template.perl.clone(), template.line(args, 4, false, &values))
    }

    #[test]
    fn perl_expressions_are_found_with_their_positions_and_filled_in() {
        let names = Names::default();
        let (perl, line) = perl_of(
            &["echo", "{= $_ .= 1 =}", "{=2 uq(); $_ = \"a b\" =}"],
            &names,
            &[],
            &["x", "y"],
        );
        assert_eq!(perl, [("$_ .= 1 ".into(), None), ("uq(); $_ = \"a b\" ".into(), Some(2))]);
        assert_eq!(line, "echo x1 y1 a b", "each argument's, then one left unquoted");
        let header = vec!["name".to_string()];
        let (perl, line) = perl_of(&["echo", "{=name $_=uc =}"], &names, &header, &["v"]);
        assert_eq!(perl, [("$_=uc ".into(), Some(1))]);
        assert_eq!(line, "echo V");
        let (_, line) = perl_of(&["echo", "'{=", "$_=seq()", "=}'"], &names, &[], &["v"]);
        assert_eq!(line, "echo '4'", "an expression spans words");
    }

    #[test]
    fn rpl_strings_match_literally_or_by_their_group_and_longest_first() {
        let rpl = vec![
            ("{%(.+?)}".into(), "s/$$1$//;".into()),
            ("{%%(.+?)}".into(), "s/$$1$/!/;".into()),
            ("..".into(), "s/\\..*//".into()),
            ("{1/}".into(), "$_='never'".into()),
        ];
        let mut names = Names { rpl, ..Names::default() };
        let (perl, line) = perl_of(
            &["echo", "{%.gz}", "{%%.gz}", "..", "{2%.b}", "{/}"],
            &names,
            &[],
            &["a.gz", "x.b"],
        );
        // As `parallel --dry-run` with these --rpl's prints it.
        assert_eq!(line, "echo a x.b 'a!' x.b a x x a.gz x.b");
        assert_eq!(perl[0], ("$_pAr_gRp1 = \".gz\";s/$_pAr_gRp1$//;".into(), None));
        assert_eq!(perl[3].1, Some(2), "{{2%.b}} is at position 2");
        assert_eq!(perl.len(), 4, "{{/}} stays the default string: {perl:?}");
        names.rpl = vec![("{$(.+)}".into(), "$_ = $$1".into())];
        let (perl, line) = perl_of(&["echo", "{$\"@x}"], &names, &[], &["a"]);
        assert_eq!(perl[0].0, "$_pAr_gRp1 = \"\\\"\\@x\";$_ = $_pAr_gRp1", "quoted for perl");
        assert_eq!(line, "echo '\"@x'");
        names.rpl = vec![("{(}".into(), "".into())];
        let command = vec!["echo".to_string(), "{(}".to_string()];
        assert!(Template::new(&command, false, &names, &[]).is_ok(), "no group: a literal tag");
        names.rpl = vec![("{((}".into(), "".into())];
        let command = vec!["echo".to_string(), "{x}".to_string()];
        assert_eq!(Template::new(&command, false, &names, &[]).err(), None, "no match, no error");
    }

    #[test]
    fn parens_of_one_string_open_and_close() {
        let names = Names { perl_open: ",,".into(), perl_close: ",,".into(), ..Names::default() };
        let (perl, line) = perl_of(&["echo", ",, $_ = uc ,,", "x,,y"], &names, &[], &["a"]);
        assert_eq!(perl.len(), 1);
        assert_eq!(line, "echo A x,,y");
    }
}
