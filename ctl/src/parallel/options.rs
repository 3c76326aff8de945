//! GNU parallel's options, read as GNU parallel reads them (Perl's Getopt::Long with
//! `bundling` and `require_order`): long options after `--` (`--jobs 2`, `--jobs=2`, or a
//! prefix naming one option only: `--keep`), single letters after `-` and bundled (`-kj2`,
//! `-j 2`), options until the first word that is none (the command), `--` ending them.
//!
//! Every option GNU parallel 20221122 has is in [`TABLE`] with what `marmotctl parallel` does
//! with it: takes it, or refuses it with one line saying why (what needs ssh, a database or a
//! terminal never makes sense on a cluster; others are not done yet). An option GNU parallel
//! does not have is refused as GNU parallel refuses it: nothing is taken for a command or an
//! argument by mistake.

/// Whether an option takes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Takes {
    Nothing,
    /// `=s`, `=i`, `=f`: always.
    Value,
    /// `:s`, `:f`: when one follows that is no option.
    MaybeValue,
}

/// What `marmotctl parallel` does with an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handling {
    Take,
    /// Accepted and without effect here; why.
    Ignore,
    /// Refused: it has no meaning on a cluster, or breaks what marmot promises; why.
    Never(&'static str),
    /// Refused for now.
    NotYet,
}

use Handling::{Ignore, Never, NotYet, Take};

const SSH: &str =
    "marmot runs jobs on its own workers, not over ssh: join machines with `marmotd join`";
const TTY: &str = "units run on workers, away from your terminal";
const SQL: &str = "marmot keeps its jobs in its own journal, not in a database";
const SEMAPHORE: &str = "it is GNU parallel as a mutex on one machine (`sem`), not a cluster's job";
const LOCAL: &str =
    "it describes the machine GNU parallel runs on, not the cluster (see `marmotctl workers`)";
const CONFIG: &str = "it reads GNU parallel's own config files under ~/.parallel";
const LATEST_LINE: &str = "it redraws each job's last line in place on a terminal as time \
     passes (alpha in GNU parallel); --line-buffer prints jobs' lines as they come";

/// Every option of GNU parallel 20221122 (its Getopt::Long specs), and what is done with it.
pub const TABLE: &[(&str, Handling)] = &[
    ("B=s", Never("an internal option of GNU parallel")),
    ("E=s", Take),
    ("H=i", Never("an internal option of GNU parallel")),
    ("I=s", Take),
    ("L=s", Take),
    ("T", Never("an internal option of GNU parallel")),
    ("U=s", Take),
    ("W=s", NotYet),
    ("X", Take),
    ("Y", Never("an internal option of GNU parallel")),
    ("_parset=s", Never("an internal option of GNU parallel")),
    ("_pipe-means-argfiles", Never("an internal option of GNU parallel")),
    ("_test=s", Never("an internal option of GNU parallel")),
    ("arg-file-sep|argfilesep=s", Take),
    ("arg-file|argfile|a=s", Take),
    ("arg-sep|argsep=s", Take),
    ("bar", Take),
    ("basefile|bf=s", Never(SSH)),
    ("basenameextensionreplace|bner=s", Take),
    ("basenamereplace|bnr=s", Take),
    ("bg", Never(SEMAPHORE)),
    ("bibtex|citation", Ignore),
    ("bin=s", NotYet),
    ("block-size|blocksize|block=s", Take),
    ("block-timeout|blocktimeout|bt=s", NotYet),
    ("bug", Never("report marmot's bugs to marmot, GNU parallel's to GNU parallel")),
    ("cat", Take),
    // Files a job's arguments name travel with it, and what it makes comes back, always.
    ("cleanup", Ignore),
    ("col-sep|colsep|C=s", Take),
    ("color-failed|colour-failed|colorfailed|colourfailed|color-fail|colour-fail|colorfail|colourfail|cf", NotYet),
    ("color|colour", NotYet),
    // GNU parallel's temporary files, compressed: the output is the same; marmot's spools
    // are its own.
    ("compress", Ignore),
    ("controlmaster|M", Never(SSH)),
    ("csv", NotYet),
    ("ctag-string|ctagstring=s", NotYet),
    ("ctag", NotYet),
    ("ctrl-c|ctrlc", Ignore),
    ("debug|D=s", NotYet),
    ("delay=s", Take),
    ("delimiter|d=s", Take),
    ("dirnamereplace|dnr=s", Take),
    ("dry-run|dryrun|dr", Take),
    ("embed", Never("marmotctl parallel is no script to embed: call it")),
    ("env=s", Take),
    ("eof|e:s", Take),
    ("eta", Take),
    ("exit|x", NotYet),
    ("extensionreplace|er=s", Take),
    ("fg", Never(SEMAPHORE)),
    ("fifo", Take),
    ("filter-hosts|filterhosts|filter-host", Never(SSH)),
    ("filter=s", NotYet),
    ("g", Take),
    ("gnu", Ignore),
    ("group-by|groupby=s", NotYet),
    ("group", Take),
    ("halt-on-error|haltonerror|halt=s", Take),
    ("header=s", Take),
    ("help|h", Take),
    ("hgrp|hostgrp|hostgroup|hostgroups", Never(SSH)),
    ("interactive|p", Never(TTY)),
    ("joblog|jl=s", Take),
    ("jobs|j=s", Take),
    ("keep-order|keeporder|k", Take),
    ("latest-line|latestline|ll", Never(LATEST_LINE)),
    ("limit=s", NotYet),
    ("line-buffer|line-buffered|linebuffer|linebuffered|lb", Take),
    ("linkinputsource|xapplyinputsource=i", Never("an internal option of GNU parallel")),
    ("link|xapply", Take),
    ("load=s", Take),
    ("m", Take),
    ("max-args|maxargs|n=s", Take),
    ("max-chars|maxchars|s=s", Take),
    ("max-line-length-allowed|maxlinelengthallowed", Take),
    ("max-lines|maxlines|l:f", Take),
    ("max-procs|maxprocs|P=s", Take),
    ("max-replace-args|maxreplaceargs|N=s", Take),
    ("memfree=s", Take),
    ("memsuspend=s", NotYet),
    ("min-version|minversion=i", Take),
    ("nice=i", Take),
    ("no-ctrl-c|no-ctrlc|noctrlc", Ignore),
    ("no-keep-order|nokeeporder|nok|no-k", Take),
    ("no-run-if-empty|norunifempty|r", Take),
    ("nonall", Never(SSH)),
    ("noswap", Take),
    ("null|0", Take),
    ("number-of-cores|numberofcores", Never(LOCAL)),
    ("number-of-cpus|numberofcpus", Never(LOCAL)),
    ("number-of-sockets|numberofsockets", Never(LOCAL)),
    ("number-of-threads|numberofthreads", Never(LOCAL)),
    ("onall", Never(SSH)),
    ("open-tty|o", Never(TTY)),
    ("output-as-files|outputasfiles|files", Take),
    ("parens=s", Take),
    ("pipe-part|pipepart", Take),
    ("pipe|spreadstdin", Take),
    ("plain", Ignore),
    ("plus", Take),
    ("process-slot-var|processslotvar=s", NotYet),
    ("profile|J=s", Never(CONFIG)),
    ("progress", Take),
    ("quote|q", Take),
    ("recend=s", Take),
    ("recordenv|record-env", Never(CONFIG)),
    ("recstart=s", Take),
    ("regexp|regex", Take),
    ("remove-rec-sep|removerecsep|rrs", Take),
    ("replace|i:s", Take),
    ("results|result|res=s", Take),
    ("resume-failed|resumefailed", Take),
    ("resume", Take),
    ("retries=s", Take),
    ("retry-failed|retryfailed", Take),
    // Files a job's arguments name travel with it, and what it makes comes back, always.
    ("return=s", Ignore),
    ("round-robin|roundrobin|round", Take),
    ("rpl=s", Take),
    ("rsync-opts|rsyncopts=s", Never(SSH)),
    ("semaphore-name|semaphorename|id=s", Never(SEMAPHORE)),
    ("semaphore-timeout|semaphoretimeout|st=s", Never(SEMAPHORE)),
    ("semaphore", Never(SEMAPHORE)),
    ("seqreplace=s", Take),
    ("session", Never("it is for env_parallel in your shell, whose functions marmot does not see")),
    ("shard=s", NotYet),
    ("shebang|hashbang", NotYet),
    ("shell-completion|shellcompletion=s", Never("it completes GNU parallel's own command line")),
    ("shell-quote|shellquote|shell_quote", Take),
    ("show-limits|showlimits", Never(LOCAL)),
    ("shuf", Take),
    ("silent", Take),
    ("skip-first-line|skipfirstline", NotYet),
    ("slotreplace=s", Take),
    ("sql-and-worker|sqlandworker=s", Never(SQL)),
    ("sql-master|sqlmaster=s", Never(SQL)),
    ("sql-worker|sqlworker=s", Never(SQL)),
    ("sql=s", Never(SQL)),
    ("ssh-delay|sshdelay=f", Never(SSH)),
    ("ssh=s", Never(SSH)),
    ("sshloginfile|slf=s", Never(SSH)),
    ("sshlogin|S=s", Never(SSH)),
    ("tag-string|tagstring=s", Take),
    ("tag", Take),
    ("tee", NotYet),
    ("template|tmpl=s", NotYet),
    ("term-seq|termseq=s", Take),
    ("timeout=s", Take),
    ("tmpdir|tempdir=s", Take),
    ("tmux-pane|tmuxpane", Never(TTY)),
    ("tmux", Never(TTY)),
    ("tollef", Never("it asked GNU parallel to behave as another program; marmotctl parallel is GNU parallel's command line")),
    ("total-jobs|totaljobs|total=s", NotYet),
    // Files a job's arguments name travel with it, and what it makes comes back, always.
    ("transfer-file|transferfile|transfer-files|transferfiles|tf=s", Ignore),
    // Files a job's arguments name travel with it, and what it makes comes back, always.
    ("transfer", Ignore),
    // Files a job's arguments name travel with it, and what it makes comes back, always.
    ("trc=s", Ignore),
    ("trim=s", Take),
    ("tty", Never(TTY)),
    ("ungroup|u", Take),
    ("use-compress-program|compress-program|usecompressprogram|compressprogram=s", NotYet),
    ("use-cores-instead-of-threads|usecoresinsteadofthreads", Ignore),
    ("use-cpus-instead-of-cores|usecpusinsteadofcores", Ignore),
    ("use-decompress-program|decompress-program|usedecompressprogram|decompressprogram=s", NotYet),
    ("use-sockets-instead-of-threads|usesocketsinsteadofthreads", Ignore),
    ("v", Take),
    ("verbose|t", Take),
    ("version|V", Take),
    ("wait", Never(SEMAPHORE)),
    ("will-cite|willcite|nn|nonotice|no-notice", Ignore),
    ("work-dir|workdir|wd=s", NotYet),
    ("xargs", Take),
];

/// One option as given: its first name in [`TABLE`] and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Given {
    pub name: &'static str,
    pub value: Option<String>,
}

/// A command line that is not GNU parallel's, in words for the user.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("unknown option {0} (GNU parallel has none of that name): see `man parallel`")]
    Unknown(String),
    #[error("option {0} is ambiguous ({1}): write more of its name")]
    Ambiguous(String, String),
    #[error("option {0} needs a value")]
    NoValue(String),
    #[error("option {0} takes no value")]
    Value(String),
    #[error("{0} is not supported by marmotctl parallel: {1}")]
    Never(String, &'static str),
    #[error("{0} is not supported by marmotctl parallel yet")]
    NotYet(String),
}

/// One entry of the table, its names split.
struct Spec {
    names: Vec<&'static str>,
    takes: Takes,
    handling: Handling,
}

fn specs() -> Vec<Spec> {
    TABLE
        .iter()
        .map(|(spec, handling)| {
            let (names, takes) = match spec.find(['=', ':']) {
                Some(at) if spec.as_bytes()[at] == b'=' => (&spec[..at], Takes::Value),
                Some(at) => (&spec[..at], Takes::MaybeValue),
                None => (*spec, Takes::Nothing),
            };
            Spec { names: names.split('|').collect(), takes, handling: *handling }
        })
        .collect()
}

/// Reads the options from the start of `argv`: what was given, and the words that follow
/// (the command and its input sources: the first word that is no option ends them, as
/// `:::` does).
pub fn parse(argv: &[String]) -> Result<(Vec<Given>, Vec<String>), OptionError> {
    let specs = specs();
    let mut given = vec![];
    let mut at = 0;
    while at < argv.len() {
        let word = &argv[at];
        if word == "--" {
            at += 1;
            break;
        }
        if let Some(long) = word.strip_prefix("--").filter(|l| !l.is_empty()) {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            };
            let spec = find_long(&specs, name)?;
            let shown = format!("--{name}");
            let value = match (spec.takes, inline) {
                (Takes::Nothing, Some(_)) => return Err(OptionError::Value(shown)),
                (Takes::Nothing, None) => None,
                (_, Some(value)) => Some(value),
                (takes, None) => next_value(argv, &mut at, takes, &shown)?,
            };
            given.push(take(spec, &shown, value)?);
            at += 1;
            continue;
        }
        let Some(letters) = word.strip_prefix('-').filter(|l| !l.is_empty()) else {
            break; // the command
        };
        for (i, letter) in letters.char_indices() {
            let shown = format!("-{letter}");
            let spec = specs
                .iter()
                .find(|s| s.names.iter().any(|n| n.chars().count() == 1 && n.starts_with(letter)))
                .ok_or_else(|| OptionError::Unknown(shown.clone()))?;
            let rest = &letters[i + letter.len_utf8()..];
            let value = match spec.takes {
                Takes::Nothing => None,
                takes if rest.is_empty() => next_value(argv, &mut at, takes, &shown)?,
                _ => {
                    let value = rest.to_string();
                    given.push(take(spec, &shown, Some(value))?);
                    break;
                }
            };
            given.push(take(spec, &shown, value)?);
            if spec.takes != Takes::Nothing {
                break;
            }
        }
        at += 1;
    }
    Ok((given, argv[at..].to_vec()))
}

/// An option's value given as the next word (`--jobs 2`, `-j 2`), that word taken: always
/// for one that takes a value; for one whose value is optional, a word that is no option.
fn next_value(
    argv: &[String],
    at: &mut usize,
    takes: Takes,
    shown: &str,
) -> Result<Option<String>, OptionError> {
    match (takes, argv.get(*at + 1)) {
        (Takes::Nothing, _) | (Takes::MaybeValue, None) => Ok(None),
        (Takes::MaybeValue, Some(next)) if next.starts_with('-') => Ok(None),
        (_, Some(next)) => {
            *at += 1;
            Ok(Some(next.clone()))
        }
        (Takes::Value, None) => Err(OptionError::NoValue(shown.to_string())),
    }
}

/// The option named `name` or by a prefix of one name only (as Getopt::Long allows).
fn find_long<'a>(specs: &'a [Spec], name: &str) -> Result<&'a Spec, OptionError> {
    let shown = format!("--{name}");
    if let Some(exact) = specs.iter().find(|s| s.names.contains(&name)) {
        return Ok(exact);
    }
    let matching: Vec<(&Spec, &str)> = specs
        .iter()
        .flat_map(|s| {
            s.names.iter().filter(|n| n.len() > 1 && n.starts_with(name)).map(move |n| (s, *n))
        })
        .collect();
    let first = matching.first().ok_or_else(|| OptionError::Unknown(shown.clone()))?;
    if matching.iter().all(|(s, _)| std::ptr::eq(*s, first.0)) {
        return Ok(first.0);
    }
    let names: Vec<&str> = matching.iter().map(|(_, n)| *n).collect();
    Err(OptionError::Ambiguous(shown, names.join(", ")))
}

/// The option given, or why it is refused.
fn take(spec: &Spec, shown: &str, value: Option<String>) -> Result<Given, OptionError> {
    match spec.handling {
        Never(why) => Err(OptionError::Never(shown.to_string(), why)),
        NotYet => Err(OptionError::NotYet(shown.to_string())),
        Take | Ignore => Ok(Given { name: spec.names[0], value }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    fn names(line: &str) -> (Vec<(String, Option<String>)>, Vec<String>) {
        let (given, rest) = parse(&words(line)).unwrap();
        (given.into_iter().map(|g| (g.name.to_string(), g.value)).collect(), rest)
    }

    #[test]
    fn options_are_read_as_getopt_long_reads_them() {
        let (given, rest) = names("-kj2 --jobs=3 --tag --colsep , -X echo -k ::: a");
        let want = [
            ("keep-order", None),
            ("jobs", Some("2")),
            ("jobs", Some("3")),
            ("tag", None),
            ("col-sep", Some(",")),
            ("X", None),
        ];
        let want: Vec<(String, Option<String>)> =
            want.iter().map(|(n, v)| (n.to_string(), v.map(String::from))).collect();
        assert_eq!(given, want);
        assert_eq!(rest, words("echo -k ::: a"));
        assert_eq!(names("--keep -- -x").1, ["-x"], "-- ends the options; a prefix names one");
        assert_eq!(names("::: a").1, [":::", "a"]);
        // An optional value: the next word unless it is an option, or none at the end.
        let (given, rest) = names("-i -k echo");
        assert_eq!(given, [("replace".into(), None), ("keep-order".into(), None)]);
        assert_eq!(rest, ["echo"]);
        assert_eq!(names("-i XX echo").0, [("replace".into(), Some("XX".into()))]);
        assert_eq!(names("-iXX echo").0, [("replace".into(), Some("XX".into()))]);
        assert_eq!(names("--eof").0, [("eof".into(), None)]);
        assert_eq!(names("-j 2k echo").0, [("jobs".into(), Some("2k".into()))]);
    }

    #[test]
    fn unknown_ambiguous_and_refused_options_say_so() {
        let err = |line: &str| parse(&words(line)).unwrap_err().to_string();
        assert!(err("--foo echo").contains("unknown option --foo"));
        assert!(err("--jo 2 echo").contains("ambiguous"));
        assert!(err("-S host echo").contains("not over ssh"));
        assert!(err("--shard 2 wc").contains("not supported by marmotctl parallel yet"));
        assert!(err("--jobs").contains("needs a value"));
        assert!(err("--tag=x echo").contains("takes no value"));
    }

    #[test]
    fn every_spec_is_well_formed_and_every_name_is_once() {
        let specs = specs();
        let mut seen = std::collections::HashSet::new();
        for spec in &specs {
            for name in &spec.names {
                assert!(seen.insert(*name), "{name} twice");
                assert!(!name.is_empty());
            }
        }
        assert_eq!(specs.len(), TABLE.len());
    }
}
