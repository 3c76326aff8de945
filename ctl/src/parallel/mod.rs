//! GNU parallel's command line, read as GNU parallel reads it, into the jobs of a
//! `marmotctl parallel` run: sans-IO but for reading the input sources and looking at the
//! files jobs name, so that every rule is tested against GNU parallel itself
//! (`parallel --dry-run` is the oracle).
//!
//! - `options`: every option GNU parallel has, taken or refused with the reason.
//! - `sources`: input sources read into records and combined.
//! - `template`: the command with its replacement strings, and a job's line.
//! - `jobs`: records grouped into jobs (`-n`, `-N`, `-m`, `-X`), each with its line.
//! - `quote`: GNU parallel's shell quoting.
//! - `files`: the files a job's arguments name, which travel with it.
//! - `gate`: `--load`, `--memfree`, `--noswap`, judged on the worker before a job starts.
//! - `pipe`: `--pipe` and `--pipepart`, input cut into blocks as GNU parallel cuts it.
//! - `results`: `--results` and `--files`, where jobs' output is kept instead of printed.
//! - `progress`: `--bar`, `--eta`, `--progress`, the run's progress as units end.

pub mod files;
pub mod gate;
pub mod jobs;
pub mod mentioned;
pub mod options;
pub mod perl;
pub mod pipe;
pub mod progress;
pub mod quote;
pub mod results;
pub mod sources;
pub mod template;

use jobs::Batching;
use options::Given;
use regex::Regex;
use sources::{Origin, Reading, Source};
use std::io::Read;
use std::time::Duration;
use template::{Names, Template};

/// The longest line a job may have unless `-s` says less: what one unit's input may hold.
pub const MAX_LINE: usize = proto::command::inputs::MAX_INPUT_BYTES;

/// The strings `--plus` adds, defined as GNU parallel 20221122 defines them (its man page's
/// `--plus`): bash-like parameter expansions, more extensions, `{##}` the number of jobs.
const PLUS: &[(&str, &str)] = &[
    ("{+/}", r"s:/[^/]*$:: || s:.*$::"),
    ("{+.}", r"s:.*\.:: || s:.*$::"),
    ("{+..}", r"s:.*\.([^/.]*\.[^/.]*)$:$1: || s:.*$::"),
    ("{+...}", r"s:.*\.([^/.]*\.[^/.]*\.[^/.]*)$:$1: || s:.*$::"),
    ("{..}", r"s:\.[^/.]*\.[^/.]*$::"),
    ("{...}", r"s:\.[^/.]*\.[^/.]*\.[^/.]*$::"),
    ("{/..}", r"s:.*/::; s:\.[^/.]*\.[^/.]*$::"),
    ("{/...}", r"s:.*/::; s:\.[^/.]*\.[^/.]*\.[^/.]*$::"),
    ("{choose_k}", r"for $t (2..$#arg){ if($arg[$t-1] ge $arg[$t]) { skip() } }"),
    ("{uniq}", r"if(::uniq(@arg) != @arg) { skip(); }"),
    ("{##}", r"1 $_=total_jobs()"),
    ("{0%}", r"1 $_=slot()"),
    ("{0#}", r#"1 $f=1+int((log(total_jobs())/log(10)));$_=sprintf("%0${f}d",seq())"#),
    ("{:-([^}]+?)}", r"$_ ||= $$1"),
    (r"{:(\d+?)}", r#"substr($_,0,$$1) = """#),
    (r"{:(\d+?):(\d+?)}", r"$_ = substr($_,$$1,$$2);"),
    ("{#([^#}][^}]*?)}", r"$nongreedy=::make_regexp_ungreedy($$1);s/^$nongreedy(.*)/$1/;"),
    ("{##([^#}][^}]*?)}", r"s/^$$1//;"),
    ("{%([^}]+?)}", r"$nongreedy=::make_regexp_ungreedy($$1);s/(.*)$nongreedy$/$1/;"),
    ("{%%([^}]+?)}", r"s/$$1$//;"),
    ("{/([^#%}/]+?)/([^}]*?)}", r"s/$$1/$$2/;"),
    ("{/#([^}]+?)/([^}]*?)}", r"s/^$$1/$$2/g;"),
    ("{/%([^}]+?)/([^}]*?)}", r"s/$$1$/$$2/g;"),
    ("{//([^}]+?)/([^}]*?)}", r"s/$$1/$$2/g;"),
    ("{^([^}]+?)}", r"s/^($$1)/uc($1)/e;"),
    ("{^^([^}]+?)}", r"s/($$1)/uc($1)/eg;"),
    ("{,([^}]+?)}", r"s/^($$1)/lc($1)/e;"),
    ("{,,([^}]+?)}", r"s/($$1)/lc($1)/eg;"),
    ("{slot}", r#"1 $_="\${PARALLEL_JOBSLOT}";uq()"#),
    ("{host}", r#"1 $_="\${PARALLEL_SSHHOST}";uq()"#),
    ("{sshlogin}", r#"1 $_="\${PARALLEL_SSHLOGIN}";uq()"#),
    ("{hgrp}", r#"1 $_="\${PARALLEL_HOSTGROUPS}";uq()"#),
    ("{agrp}", r#"1 $_="\${PARALLEL_ARGHOSTGROUPS}";uq()"#),
];

/// The release of GNU parallel whose options and strings `marmotctl parallel` reads.
pub const GNU_VERSION: usize = 20221122;

/// How many slots the job may hold at once (`-j`), against the cluster's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slots {
    Count(u32),
    Percent(u32),
    Plus(u32),
    Minus(u32),
}

impl Slots {
    fn parse(text: &str) -> Result<Slots, String> {
        let bad =
            || format!("-j {text}: give a number of jobs (N), N% of the cluster's slots, +N or -N");
        let number = |s: &str| s.parse::<u32>().map_err(|_| bad());
        if let Some(n) = text.strip_suffix('%') {
            return Ok(Slots::Percent(number(n)?));
        }
        if let Some(n) = text.strip_prefix('+') {
            return Ok(Slots::Plus(number(n)?));
        }
        if let Some(n) = text.strip_prefix('-') {
            return Ok(Slots::Minus(number(n)?));
        }
        Ok(Slots::Count(number(text)?))
    }

    /// The slots for a cluster of `cluster` slots: at least one; 0 means all.
    pub fn of(self, cluster: u32) -> u32 {
        let n = match self {
            Slots::Count(0) => cluster,
            Slots::Count(n) => n,
            Slots::Percent(p) => ((u64::from(cluster) * u64::from(p)) / 100) as u32,
            Slots::Plus(n) => cluster.saturating_add(n),
            Slots::Minus(n) => cluster.saturating_sub(n),
        };
        n.max(1)
    }
}

/// Where the command lines are printed besides running them (`-t`, `--verbose` on stderr;
/// `-v` on stdout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verbose {
    #[default]
    No,
    Stdout,
    Stderr,
}

/// What the command line asks for besides the jobs.
#[derive(Debug, Default)]
pub struct Settings {
    pub keep_order: bool,
    pub dry_run: bool,
    pub verbose: Verbose,
    /// `--tag`, `--tagstring`: each output line starts with this and a tab.
    pub tag: Option<Option<Template>>,
    pub slots: Option<Slots>,
    pub joblog: Option<std::path::PathBuf>,
    pub resume: bool,
    pub resume_failed: bool,
    pub retries: u32,
    pub timeout: Option<Timeout>,
    /// `--termseq`: the signals that stop a job (timed out, halted, cancelled).
    pub term_seq: Option<proto::command::termseq::TermSeq>,
    /// `--delay`: a job starts no sooner than this after the one before.
    pub delay: Option<Duration>,
    /// `--load`, `--memfree`, `--noswap`: what a worker waits for before a job starts there.
    pub gate: gate::Gate,
    pub halt: proto::command::Halt,
    pub env: Vec<String>,
    pub nice: Option<i32>,
    /// Print this and exit with that status (`--help`, `--version`, `--minversion`,
    /// `--max-line-length-allowed`, `--shell-quote`).
    pub print: Option<(String, u8)>,
    /// `--results`: as given, and as a template (plain when it holds no replacement string).
    pub results: Option<(String, Template)>,
    /// `--files`: each job's stdout into a file, whose name is printed in its place.
    pub files: bool,
    /// `--tmpdir`: where `--files` makes its files (`$TMPDIR` or /tmp by default).
    pub tmpdir: Option<std::path::PathBuf>,
    /// `--shuf`: the jobs in a random order (their numbers given after shuffling).
    pub shuffle: bool,
    /// `--bar`, `--eta`, `--progress`: how the run's progress is shown on stderr.
    pub progress: Option<Progress>,
    /// `--retry-failed`: the failed jobs of `--joblog` run again, from the joblog alone.
    pub retry_failed: bool,
}

/// How `--bar`, `--eta` and `--progress` show a run's progress on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// `--bar`: the share done, jobs done and left, the time left, the last job's arguments.
    pub bar: bool,
    /// `--eta`: the time left, jobs left, the mean job time.
    pub eta: bool,
    /// `--progress`: per worker, jobs done, their share and mean time.
    pub per_worker: bool,
}

/// A command line read: the settings, and what makes the jobs.
pub struct Request {
    pub settings: Settings,
    pub template: Template,
    /// The columns' names `--header` read (`--results` names dirs by them).
    pub columns: Vec<String>,
    /// One per job's arguments; under `--pipe`, none until the blocks are read.
    pub records: Vec<Vec<String>>,
    batching: jobs::Batching,
    max_len: usize,
    pub pipe: Option<Pipe>,
}

/// `--pipe`, `--pipepart`: each job reads a block of the input.
pub struct Pipe {
    pub cutting: pipe::Cutting,
    /// `--block -N` (`--pipepart`'s default is -10): blocks of the files' size over N
    /// times the job slots.
    pub per_slot: Option<u64>,
    /// `--pipepart -a FILE`: the files cut, in place of stdin.
    pub parts: Vec<std::path::PathBuf>,
    /// `--cat`, `--fifo`: the block is a file whose name `{}` is (`$PARALLEL_TMP`), not the
    /// job's stdin.
    pub as_file: bool,
    /// `--fifo`: that file is a named pipe the block is written into.
    pub fifo: bool,
    /// `--round-robin`: a job per job slot, the blocks dealt to them in turn (job `i` of `n`
    /// reads blocks `i`, `i + n`, ... one after another on its stdin).
    pub round_robin: bool,
}

/// What `{}` stands for under `--cat` and `--fifo`, replaced by `$PARALLEL_TMP` in a line.
pub const BLOCK_FILE_MARK: &str = "PARALLELxTMPxMARK";

impl Request {
    /// The jobs, for a job that may hold `slots` slots at once.
    pub fn jobs(&self, slots: u32) -> Result<Vec<jobs::Job>, jobs::JobsError> {
        jobs::jobs(&self.records, &self.template, self.batching, self.max_len, slots as usize)
    }

    /// Whether the jobs depend on the cluster's slots (`-m`, `-X` spread over them).
    pub fn needs_slots(&self) -> bool {
        matches!(self.batching, Batching::Fill { .. })
    }
}

/// Reads a GNU parallel command line (what follows `marmotctl parallel`) and its input
/// sources; `stdin` is read when no source is given, or for `-`.
pub fn read(argv: &[String], stdin: &mut dyn Read) -> anyhow::Result<Request> {
    let (given, rest) = options::parse(argv)?;
    let mut settings = Settings::default();
    let mut names = Names::default();
    let mut reading = Reading { delimiter: b"\n".to_vec(), ..Reading::default() };
    let mut arg_sep = ":::".to_string();
    let mut arg_file_sep = "::::".to_string();
    let mut files: Vec<Source> = vec![];
    let mut quoted = false;
    let mut plus = false;
    let mut link = false;
    let mut colsep: Option<String> = None;
    let mut header: Option<String> = None;
    let mut trim: Option<String> = None;
    let mut each: Option<(usize, bool)> = None;
    let mut fill: Option<bool> = None;
    // -m and -X (not --xargs) spread the last line's arguments over the job slots.
    let mut spread = false;
    let mut replace_args = false;
    let mut lines = false;
    let mut max_len = MAX_LINE;
    let (mut piped, mut part, mut regexp, mut rrs) = (false, false, false, false);
    let (mut as_file, mut fifo, mut round_robin) = (false, false, false);
    let (mut block, mut recstart, mut recend): (Option<String>, Option<String>, Option<String>) =
        (None, None, None);
    let (mut pipe_records, mut pipe_lines) = (None, None);
    let (mut results_text, mut tag_text): (Option<String>, Option<String>) = (None, None);
    for Given { name, value } in given {
        let value = value.unwrap_or_default();
        let number = |what: &str| -> anyhow::Result<usize> {
            value.trim().parse().map_err(|_| anyhow::anyhow!("{what} {value}: give a number"))
        };
        match name {
            "keep-order" => settings.keep_order = true,
            "no-keep-order" => settings.keep_order = false,
            "dry-run" => settings.dry_run = true,
            "v" => settings.verbose = Verbose::Stdout,
            "verbose" => settings.verbose = Verbose::Stderr,
            "silent" => settings.verbose = Verbose::No,
            "tag" => settings.tag = Some(None),
            "tag-string" => tag_text = Some(value),
            "jobs" | "max-procs" => {
                settings.slots = Some(Slots::parse(&value).map_err(anyhow::Error::msg)?)
            }
            "joblog" => settings.joblog = Some(value.into()),
            "resume" => settings.resume = true,
            "resume-failed" => settings.resume_failed = true,
            "retries" => settings.retries = number("--retries")? as u32,
            "timeout" => settings.timeout = Some(timeout(&value)?),
            "term-seq" => {
                let seq = proto::command::termseq::TermSeq::parse(&value);
                settings.term_seq = Some(seq.map_err(anyhow::Error::msg)?)
            }
            "delay" => settings.delay = delay(&value)?,
            "load" => {
                let load = Slots::parse(&value)
                    .map_err(|_| anyhow::anyhow!("--load {value}: give N, N%, +N or -N (as -j)"))?;
                settings.gate.load = Some(load);
            }
            "memfree" => {
                let bytes = pipe::parse_size(&value).filter(|&b| b > 0).ok_or_else(|| {
                    anyhow::anyhow!("--memfree {value}: give a size, e.g. 1G or 500M")
                })?;
                settings.gate.memfree = Some(bytes.unsigned_abs());
            }
            "noswap" => settings.gate.noswap = true,
            "halt-on-error" => {
                settings.halt = value.parse().map_err(|e: proto::command::halt::HaltError| {
                    anyhow::anyhow!("--halt {value}: {e}")
                })?
            }
            "env" => settings.env.push(value),
            "nice" => {
                settings.nice = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--nice {value}: give a number"))?,
                )
            }
            "help" => settings.print = Some((HELP.to_string(), 0)),
            "version" => {
                let text = format!("marmotctl parallel {}: GNU parallel {GNU_VERSION}'s command line on a marmot cluster\n", env!("CARGO_PKG_VERSION"));
                settings.print = Some((text, 0));
            }
            // The version of GNU parallel whose command line this is.
            "min-version" => {
                let asked = number("--minversion")?;
                let status = if asked <= GNU_VERSION { 0 } else { 255 };
                settings.print = Some((format!("{GNU_VERSION}\n"), status));
            }
            "max-line-length-allowed" => settings.print = Some((format!("{MAX_LINE}\n"), 0)),
            "shell-quote" => {
                // The words given, or else each line of stdin.
                let text = match rest.is_empty() {
                    false => format!(
                        "{}\n",
                        rest.iter().map(|w| quote::quote(w)).collect::<Vec<_>>().join(" ")
                    ),
                    true => {
                        let mut input = String::new();
                        stdin.read_to_string(&mut input)?;
                        input.lines().map(|l| format!("{}\n", quote::quote(l))).collect()
                    }
                };
                settings.print = Some((text, 0));
            }
            "I" | "replace" => names.input = if value.is_empty() { "{}".into() } else { value },
            "extensionreplace" | "U" => names.no_extension = value,
            "basenamereplace" => names.basename = value,
            "dirnamereplace" => names.dirname = value,
            "basenameextensionreplace" => names.basename_no_extension = value,
            "seqreplace" => names.seq = value,
            "slotreplace" => names.slot = value,
            "quote" => quoted = true,
            "plus" => plus = true,
            "rpl" => {
                let (tag, code) = value.split_once([' ', '\t']).unwrap_or((&value, ""));
                names.rpl.push((tag.to_string(), code.trim_start().to_string()));
            }
            "parens" => {
                let half = value.len() / 2;
                if value.len() < 2 || !value.is_char_boundary(half) {
                    anyhow::bail!(
                        "--parens {value}: give the left and right strings together, e.g. ,,,,"
                    );
                }
                names.perl_open = value[..half].to_string();
                names.perl_close = value[half..].to_string();
            }
            "arg-sep" => arg_sep = value,
            "arg-file-sep" => arg_file_sep = value,
            "arg-file" => files.push(Source { origin: Origin::File(value.into()), linked: false }),
            "null" => reading.delimiter = vec![0],
            "delimiter" => reading.delimiter = unescape(&value)?,
            "E" | "eof" => reading.eof = Some(value).filter(|v| !v.is_empty()),
            "no-run-if-empty" => reading.skip_blank = true,
            "col-sep" => colsep = Some(value),
            "header" => header = Some(value),
            "trim" => trim = Some(value),
            "link" => link = true,
            "max-args" => {
                // As -N: -n 0 reads one argument and inserts none.
                let n = number("-n")?;
                each = Some((n.max(1), n > 0));
                pipe_records = Some(n.max(1));
            }
            "L" | "max-lines" => {
                lines = true;
                let n = if value.is_empty() { 1 } else { number("-L")?.max(1) };
                each = each.or(Some((n, true)));
                pipe_lines = Some(n);
            }
            "max-replace-args" => {
                let n = number("-N")?;
                replace_args = true;
                each = Some((n.max(1), n > 0));
                pipe_records = Some(n.max(1));
            }
            "pipe" => piped = true,
            "pipe-part" => part = true,
            "cat" => as_file = true,
            "fifo" => (as_file, fifo) = (true, true),
            "round-robin" => round_robin = true,
            "block-size" => block = Some(value),
            "recstart" => recstart = Some(value),
            "recend" => recend = Some(value),
            "regexp" => regexp = true,
            "remove-rec-sep" => rrs = true,
            "m" => (fill, spread) = (Some(fill.unwrap_or(false)), true),
            "xargs" => fill = Some(fill.unwrap_or(false)),
            "X" => (fill, spread) = (Some(true), true),
            "max-chars" => max_len = number("-s")?.min(MAX_LINE),
            // Output comes whole per job, which each of these allows.
            "group" | "g" | "ungroup" | "line-buffer" => {}
            "results" => results_text = Some(value),
            "output-as-files" => settings.files = true,
            "tmpdir" => settings.tmpdir = Some(value.into()),
            "shuf" => settings.shuffle = true,
            "bar" => settings.progress.get_or_insert_with(Default::default).bar = true,
            "eta" => settings.progress.get_or_insert_with(Default::default).eta = true,
            "progress" => settings.progress.get_or_insert_with(Default::default).per_worker = true,
            "retry-failed" => settings.retry_failed = true,
            _ => {} // ignored on purpose (see the table)
        }
    }
    if plus {
        // GNU parallel puts them before --rpl's, which may redefine them.
        let defined: Vec<(String, String)> = std::mem::take(&mut names.rpl);
        names.rpl = PLUS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for (key, code) in defined {
            names.rpl.retain(|(k, _)| *k != key);
            names.rpl.push((key, code));
        }
    }
    if let Some(text) = tag_text {
        settings.tag = Some(Some(Template::text(&unquote_printf(&text)?, &names)?));
    }
    if let Some(text) = results_text {
        let template = Template::text(&text, &names)?;
        settings.results = Some((text, template));
    }
    // The command, then its sources.
    let is_sep =
        |w: &str| [&arg_sep, &arg_file_sep].iter().any(|s| w == s.as_str() || w == format!("{s}+"));
    let command_end = rest.iter().position(|w| is_sep(w)).unwrap_or(rest.len());
    let command = rest[..command_end].to_vec();
    let mut sources: Vec<Source> = files;
    let mut at = command_end;
    while at < rest.len() {
        let sep = &rest[at];
        let end = rest[at + 1..].iter().position(|w| is_sep(w)).map_or(rest.len(), |p| at + 1 + p);
        let group = rest[at + 1..end].to_vec();
        let linked = *sep == format!("{arg_sep}+") || *sep == format!("{arg_file_sep}+");
        if *sep == arg_file_sep || *sep == format!("{arg_file_sep}+") {
            for path in group {
                sources.push(Source { origin: Origin::File(path.into()), linked });
            }
        } else {
            sources.push(Source { origin: Origin::Words(group), linked });
        }
        at = end;
    }
    if round_robin && !(piped || part) {
        anyhow::bail!(
            "--round-robin deals --pipe's blocks to the jobs: give --pipe (or --pipepart)"
        );
    }
    if piped || part {
        let mut parts = vec![];
        for source in sources {
            match (source.origin, part) {
                (Origin::File(path), true) if path.as_os_str() != "-" => parts.push(path),
                _ if part => anyhow::bail!("--pipepart cuts the files given with -a: give one"),
                _ => anyhow::bail!(
                    "--pipe reads its input from stdin: give no input sources (:::, ::::, -a), \
                     or --pipepart -a FILE"
                ),
            }
        }
        if part && parts.is_empty() {
            anyhow::bail!("--pipepart cuts the files given with -a: give one");
        }
        let size =
            block.as_deref().map_or(Some(if part { -10 } else { 1 << 20 }), pipe::parse_size);
        let size = size.filter(|&n| n != 0).ok_or_else(|| {
            anyhow::anyhow!(
                "--block {}: give a size, e.g. 10M (or -N under --pipepart: N blocks per job slot)",
                block.as_deref().unwrap_or_default()
            )
        })?;
        if size > pipe::MAX_BLOCK as i64 {
            anyhow::bail!("--block {size}: at most {} bytes (1 GiB)", pipe::MAX_BLOCK);
        }
        if size < 0 && !part {
            anyhow::bail!("--block {size}: a share of the input per job slot needs --pipepart");
        }
        let count = match (pipe_records, pipe_lines) {
            (Some(n), lines) => pipe::Count::Records(n * lines.unwrap_or(1)),
            (None, Some(lines)) => pipe::Count::Lines(lines),
            (None, None) => pipe::Count::Fill,
        };
        let cutting = pipe::Cutting {
            block: usize::try_from(size).unwrap_or(0),
            separators: pipe::Separators::new(recstart.as_deref(), recend.as_deref(), regexp),
            count,
            remove_separators: rrs,
            header,
            skip_blank: reading.skip_blank,
        };
        let per_slot = (size < 0).then(|| size.unsigned_abs());
        let template = match command.is_empty() {
            true => anyhow::bail!("--pipe needs a command to read the blocks"),
            false => Template::new(&command, quoted, &names, &[])?.without_appended(),
        };
        let batching = Batching::Each { records: 1, insert: true, context: false };
        if round_robin && as_file {
            anyhow::bail!(
                "--round-robin with --cat or --fifo is not supported by marmotctl parallel yet: \
                 the blocks come on the jobs' stdin"
            );
        }
        let pipe = Pipe { cutting, per_slot, parts, as_file, fifo, round_robin };
        return Ok(Request {
            settings,
            template,
            columns: vec![],
            records: vec![],
            batching,
            max_len,
            pipe: Some(pipe),
        });
    }
    // --retry-failed takes its jobs from the joblog alone: no stdin is read for them.
    if sources.is_empty() && !settings.retry_failed {
        sources.push(Source { origin: Origin::File("-".into()), linked: false });
    }
    if header.is_some() && colsep.is_none() {
        colsep = Some("\t".into());
    } else if colsep.is_some() && trim.is_none() {
        trim = Some("lr".into());
    }
    if let Some(sep) = &colsep {
        reading.colsep = Some(Regex::new(sep).map_err(|e| {
            // The parser's message ends with what is wrong, under a picture of where.
            let text = e.to_string();
            let why =
                text.lines().last().unwrap_or_default().trim_start_matches("error: ").to_string();
            anyhow::anyhow!(
                "--colsep {sep} is not a regular expression marmotctl parallel reads: {why}"
            )
        })?);
    }
    reading.header_lines = match header.as_deref() {
        None => 0,
        Some(":") | Some(".*\\n") => 1,
        Some(n) => n.parse().map_err(|_| {
            anyhow::anyhow!(
                "--header {n}: marmotctl parallel takes `:` (the first line) or a number of lines"
            )
        })?,
    };
    let trim = Trim::parse(trim.as_deref())?;
    let mut read_sources = vec![];
    let mut column_names = vec![];
    for source in &sources {
        let mut read = sources::read(&source.origin, &reading, stdin)?;
        for record in &mut read.records {
            for value in record.iter_mut() {
                trim.apply(value);
            }
        }
        column_names.extend(read.names);
        read_sources.push((read.records, source.linked));
    }
    let mut records = sources::combine(read_sources, link);
    if settings.shuffle {
        fastrand::shuffle(&mut records);
    }
    let template = if command.is_empty() {
        Template::verbatim()
    } else {
        Template::new(&command, quoted, &names, &column_names)?
    };
    // As GNU parallel: a word with {} is repeated per argument under -X, -N, and -L
    // without -m.
    let context = fill == Some(true) || replace_args || (lines && fill.is_none());
    let batching = match (fill, each) {
        (Some(_), each) => Batching::Fill { context, records: each.map(|(n, _)| n), spread },
        (None, Some((records, insert))) => Batching::Each { records, insert, context },
        (None, None) => Batching::Each { records: 1, insert: true, context },
    };
    Ok(Request {
        settings,
        template,
        columns: column_names,
        records,
        batching,
        max_len,
        pipe: None,
    })
}

/// `--tagstring`'s escapes, as GNU parallel's `unquote_printf` reads them before the
/// replacement strings: `\t`, `\n`, `\r`, and a byte in octal (`\033`, three digits, or
/// one digit; tags are text, so below `\200`).
fn unquote_printf(text: &str) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let octal = |n: usize| {
            let digits = after.get(..n).filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
            u8::from_str_radix(digits, 8).ok().map(|byte| (byte, n))
        };
        let (c, used) = match after.as_bytes().first() {
            Some(b't') => ('\t', 1),
            Some(b'n') => ('\n', 1),
            Some(b'r') => ('\r', 1),
            _ => match octal(3).or_else(|| octal(1)) {
                Some((byte, n)) if byte.is_ascii() => (char::from(byte), n),
                Some(_) => anyhow::bail!(
                    "--tagstring {text}: a tag is text; give an octal escape below \\200"
                ),
                None => ('\\', 0),
            },
        };
        out.push(c);
        rest = &after[used..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `--timeout`: how long a job may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    After(Duration),
    /// `N%`: N% of the median time of the jobs that succeeded so far.
    OfMedian(u32),
}

/// `--timeout`: seconds (`30`, `2.5`), a duration (`5m`), or `N%` of the median time.
fn timeout(text: &str) -> anyhow::Result<Timeout> {
    if let Some(pct) = text.strip_suffix('%') {
        return match pct.trim().parse::<f64>() {
            Ok(pct) if pct >= 1.0 && pct <= f64::from(MAX_TIMEOUT_PERCENT) => {
                Ok(Timeout::OfMedian(pct.round() as u32))
            }
            _ => anyhow::bail!(
                "--timeout {text}: give a share of the median time from 1% to \
                 {MAX_TIMEOUT_PERCENT}%, e.g. 200%"
            ),
        };
    }
    seconds(text).filter(|d| !d.is_zero()).map(Timeout::After).ok_or_else(|| {
        anyhow::anyhow!(
            "--timeout {text}: give seconds, e.g. 30 or 2.5, a duration such as 5m, or a share \
             of the median time such as 200%"
        )
    })
}

/// `--delay`: seconds (`2.5`) or a duration (`1m`) between the starts of two jobs; 0 is
/// none.
fn delay(text: &str) -> anyhow::Result<Option<Duration>> {
    if text.ends_with("auto") {
        anyhow::bail!(
            "--delay {text} (a delay found by itself) is not supported by marmotctl parallel \
             yet: give seconds"
        );
    }
    let delay = seconds(text).ok_or_else(|| {
        anyhow::anyhow!("--delay {text}: give seconds, e.g. 2.5, or a duration such as 1m")
    })?;
    Ok(Some(delay).filter(|d| !d.is_zero()))
}

/// Seconds (`30`, `2.5`, `0`) or a duration (`5m`, `1h30m`).
fn seconds(text: &str) -> Option<Duration> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds >= 0.0 && seconds.is_finite() => {
            Some(Duration::from_secs_f64(seconds))
        }
        Ok(_) => None,
        Err(_) => humantime::parse_duration(text).ok(),
    }
}

use proto::command::spec::MAX_TIMEOUT_PERCENT;

/// `-d`'s value with C-like escapes (`\n`, `\t`, `\0`, `\\`, `\xHH`, `\NNN`) read.
fn unescape(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = vec![];
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 == bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let (byte, used) = match bytes[i + 1] {
            b'n' => (b'\n', 2),
            b't' => (b'\t', 2),
            b'r' => (b'\r', 2),
            b'a' => (7, 2),
            b'b' => (8, 2),
            b'f' => (12, 2),
            b'v' => (11, 2),
            b'\\' => (b'\\', 2),
            b'x' => {
                let hex: String =
                    text[i + 2..].chars().take(2).take_while(char::is_ascii_hexdigit).collect();
                let byte = u8::from_str_radix(&hex, 16)
                    .map_err(|_| anyhow::anyhow!("-d {text}: \\x needs hex digits"))?;
                (byte, 2 + hex.len())
            }
            b'0'..=b'7' => {
                let oct: String =
                    text[i + 1..].chars().take(3).take_while(|c| ('0'..='7').contains(c)).collect();
                let byte = u8::from_str_radix(&oct, 8)
                    .map_err(|_| anyhow::anyhow!("-d {text}: an octal escape is at most \\377"))?;
                (byte, 1 + oct.len())
            }
            other => (other, 2),
        };
        out.push(byte);
        i += used;
    }
    if out.is_empty() {
        anyhow::bail!("-d needs a delimiter that is not empty");
    }
    Ok(out)
}

/// `--trim`: blanks taken off values (`--colsep` sets `lr` unless told otherwise).
#[derive(Clone, Copy)]
enum Trim {
    None,
    Left,
    Right,
    Both,
}

impl Trim {
    fn parse(text: Option<&str>) -> anyhow::Result<Trim> {
        Ok(match text {
            None | Some("n") => Trim::None,
            Some("l") => Trim::Left,
            Some("r") => Trim::Right,
            Some("lr" | "rl") => Trim::Both,
            Some(other) => anyhow::bail!("--trim {other}: give one of n, l, r, lr, rl"),
        })
    }

    fn apply(self, value: &mut String) {
        let blank = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c');
        let trimmed = match self {
            Trim::None => return,
            Trim::Left => value.trim_start_matches(blank),
            Trim::Right => value.trim_end_matches(blank),
            Trim::Both => value.trim_matches(blank),
        };
        *value = trimmed.to_string();
    }
}

const HELP: &str = "Usage: marmotctl parallel [GNU parallel's options] [command [arguments]] (::: arguments|:::: argfile(s))...

GNU parallel's command line, its jobs run on the marmot cluster's workers. The options
and replacement strings are GNU parallel's (`man parallel`); one it has that marmot does not
do is refused with the reason. See the README's \"For GNU parallel users\".
";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_timeout_is_a_time_or_a_share_of_the_median() {
        assert_eq!(timeout("2.5").unwrap(), Timeout::After(Duration::from_millis(2500)));
        assert_eq!(timeout("5m").unwrap(), Timeout::After(Duration::from_secs(300)));
        assert_eq!(timeout("200%").unwrap(), Timeout::OfMedian(200));
        assert_eq!(timeout("150.4%").unwrap(), Timeout::OfMedian(150));
        assert_eq!(timeout("1%").unwrap(), Timeout::OfMedian(1));
        assert_eq!(timeout("1000000%").unwrap(), Timeout::OfMedian(1_000_000));
        for bad in ["0%", "0.4%", "1000001%", "x%", "%", "0", "-1", "soon", "0s", "NaN"] {
            let e = timeout(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--timeout {bad}: give ")), "{bad}: {e}");
        }
    }

    #[test]
    fn retry_failed_reads_no_stdin_and_others_do() {
        /// A stdin that must not be read.
        struct Untouched;
        impl Read for Untouched {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("stdin was read"))
            }
        }
        let argv = |a: &[&str]| a.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let retry = read(&argv(&["--retry-failed", "--joblog", "log"]), &mut Untouched).unwrap();
        assert!(retry.settings.retry_failed, "its jobs come from the joblog");
        assert!(read(&argv(&["echo"]), &mut Untouched).is_err(), "no source: stdin");
    }

    #[test]
    fn termseq_and_rrs_are_read_into_the_run() {
        let argv = |a: &[&str]| a.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let run =
            read(&argv(&["--termseq", "INT,200,KILL", "echo", ":::", "a"]), &mut std::io::empty());
        let seq = run.unwrap().settings.term_seq.expect("a sequence");
        assert_eq!(seq.steps, [(2, 200), (9, 0)]);
        let run = read(&argv(&["echo", ":::", "a"]), &mut std::io::empty()).unwrap();
        assert_eq!(run.settings.term_seq, None, "the worker's own stop");
        let bad = read(&argv(&["--termseq", "NOPE,1", "echo", ":::", "a"]), &mut std::io::empty());
        let Err(e) = bad else { panic!("NOPE taken for a signal") };
        assert!(e.to_string().contains("`NOPE` is not a signal"), "{e}");
        let piped = |rrs: &[&str]| {
            let mut args = vec!["--pipe", "--recend", ","];
            args.extend_from_slice(rrs);
            args.push("wc");
            let run = read(&argv(&args), &mut std::io::empty()).unwrap();
            run.pipe.expect("--pipe").cutting.remove_separators
        };
        assert!(piped(&["--rrs"]) && !piped(&[]));
    }

    #[test]
    fn a_tagstrings_escapes_are_gnu_parallels() {
        let unquoted = |t: &str| unquote_printf(t).unwrap();
        assert_eq!(unquoted(r"\033[31m\t{}\n\r"), "\u{1b}[31m\t{}\n\r");
        assert_eq!(unquoted(r"\0x\12\7"), "\0x\u{1}2\u{7}", "three digits, else one");
        assert_eq!(unquoted(r"a\\b\q\8\"), r"a\\b\q\8\", "others kept as they are");
        let e = unquote_printf(r"\377").unwrap_err().to_string();
        assert!(e.starts_with(r"--tagstring \377: a tag is text"), "{e}");
    }

    #[test]
    fn n_zero_reads_one_argument_and_inserts_none() {
        let argv = |a: &[&str]| a.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        for n in ["-n0", "-N0"] {
            let run = read(&argv(&[n, "echo", "x", ":::", "1", "2"]), &mut std::io::empty());
            let jobs = run.unwrap().jobs(2).unwrap();
            let lines: Vec<String> = jobs.iter().map(|j| j.line.clone()).collect();
            assert_eq!(lines, ["echo x ", "echo x "], "{n}: as GNU parallel's --dry-run");
        }
    }

    #[test]
    fn a_delay_is_a_time_between_starts() {
        assert_eq!(delay("2.5").unwrap(), Some(Duration::from_millis(2500)));
        assert_eq!(delay("1m").unwrap(), Some(Duration::from_secs(60)));
        assert_eq!(delay("0").unwrap(), None, "no delay");
        for bad in ["-1", "soon", "inf"] {
            let e = delay(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--delay {bad}: give ")), "{bad}: {e}");
        }
        let auto = delay("3sauto").unwrap_err().to_string();
        assert!(auto.contains("is not supported by marmotctl parallel yet"), "{auto}");
    }

    /// The jobs' lines of a command line, as `marmotctl parallel --dry-run -j1` prints them.
    fn ours(argv: &[String]) -> Result<Vec<String>, String> {
        let request = read(argv, &mut std::io::empty()).map_err(|e| e.to_string())?;
        let jobs = request.jobs(1).map_err(|e| e.to_string())?;
        Ok(jobs.into_iter().map(|j| j.line).collect())
    }

    /// What [`gnu`] gives for lines that are not text.
    const NOT_TEXT: &str = "(not UTF-8)";

    /// The same from GNU parallel itself; `None` where it is not installed.
    fn gnu(argv: &[String]) -> Option<Vec<String>> {
        let out = std::process::Command::new("parallel")
            .args(["--dry-run", "-j1"])
            .args(argv)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        assert!(out.status.success(), "GNU parallel refused {argv:?}");
        match String::from_utf8(out.stdout) {
            Ok(text) => Some(text.lines().map(String::from).collect()),
            // A perl expression cut a character: marmotctl refuses that (its lines are text).
            Err(_) => Some(vec![NOT_TEXT.to_string()]),
        }
    }

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    #[test]
    fn options_sources_and_strings_read_as_gnu_parallel_reads_them() {
        let cases = [
            "echo ::: A B C ::: D E F",
            "--link echo ::: A B C ::: D E F G",
            "echo ::: A B C :::+ 1 2",
            "-N2 echo {1} - {2} ::: 1 2 3 4 5",
            "-n3 echo ::: 1 2 3 4 5 6 7",
            "-X echo x{}y ::: 1 2 3",
            "-m echo x{}y ::: 1 2 3",
            "-s 20 -X echo ::: 1 2 3 4 5 6 7 8 9 10 11 12 13 14",
            "-q echo {} x{}y ::: it's plain",
            "--colsep , echo {2} {1} ::: a,b c,,d",
            "-I XX --er YY echo XX YY ::: a.b",
            "--trim lr echo [{}] ::: \t",
            "-d , echo ::: a,b",
            "-E b echo ::: a b c",
            "-r echo ::: a \t b",
            "--seqreplace NN echo NN {} ::: a b",
            "::: a b",
            "-N0 echo hi ::: a b",
        ];
        let mut ran = 0;
        for case in cases {
            let argv = words(case);
            let Some(theirs) = gnu(&argv) else {
                eprintln!(
                    "SKIPPED: GNU parallel is not installed (the oracle); .ci/run installs it"
                );
                return;
            };
            assert_eq!(ours(&argv), Ok(theirs), "{case}");
            ran += 1;
        }
        assert_eq!(ran, cases.len());
    }

    /// A value: letters, or one of the characters a shell or a path treats specially.
    fn value() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::sample::select(vec!["a", "b", "x1", "é"]),
                1 => proptest::sample::select(vec![" ", "'", "\"", ".", "/", "$", "*", "\\", ",", "-", "=", ";", "{}", "%"]),
            ],
            0..5,
        )
        .prop_map(|parts| parts.concat())
        .prop_filter("a value is one record", |v| !v.is_empty() || v.is_empty())
    }

    /// A word of a command: text, a replacement string, or both.
    fn word() -> impl Strategy<Value = String> {
        let strings = vec![
            "{}", "{.}", "{/}", "{//}", "{/.}", "{#}", "{1}", "{2}", "{-1}", "{1/.}", "{2.}",
            "{1//}",
        ];
        prop_oneof![
            2 => proptest::sample::select(strings).prop_map(String::from),
            1 => (proptest::sample::select(vec!["x", "-a", "'q'"]), proptest::sample::select(vec!["{}", "{.}", "{#}", "{1}"]))
                .prop_map(|(t, s)| format!("{t}{s}z")),
            1 => proptest::sample::select(vec!["x", "a b", "|", ";"]).prop_map(String::from),
            1 => proptest::sample::select(vec![
                "{= s/a/A/g =}", "{=1 $_ .= $_ =}", "{= $_ = Q($_) =}", "{=-1 uq() =}",
                "{..}", "{+.}", "{%.b}", "{:1:2}", "{##}",
            ]).prop_map(String::from),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Random sources, options and replacement strings: the same lines as GNU parallel's.
        #[test]
        fn random_command_lines_build_as_gnu_parallel_builds_them(
            sources in proptest::collection::vec(proptest::collection::vec(value(), 1..4), 1..3),
            command in proptest::collection::vec(word(), 0..4),
            flag in proptest::sample::select(vec!["", "-X", "-m", "-N2", "-n2", "--link", "-q", "--xargs", "--plus"]),
        ) {
            let mut argv: Vec<String> = vec![];
            if !flag.is_empty() {
                argv.push(flag.to_string());
            }
            argv.push("echo".into());
            argv.extend(command);
            for source in &sources {
                argv.push(":::".into());
                // A value holding a newline would be two: GNU parallel reads ::: as lines.
                argv.extend(source.iter().cloned());
            }
            match gnu(&argv) {
                Some(theirs) if theirs == [NOT_TEXT] => {
                    let refused = ours(&argv).is_err_and(|e| e.contains("not UTF-8"));
                    prop_assert!(refused, "{:?}", argv);
                }
                Some(theirs) => prop_assert_eq!(ours(&argv), Ok(theirs), "{:?}", argv),
                None => {}
            }
        }
    }
}
