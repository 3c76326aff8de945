//! A `cmd` job as submitted ([`CmdSpec`]), the files its units need ([`FileRef`]), and what
//! one unit's run reports ([`UnitReport`], [`UnitEnding`]); with the bounds that keep every
//! chunk of such a job inside one frame.
//!
//! Files travel by content: a request names each file by its SHA-256 and size, and its bytes
//! live in the coordinator's file store (uploaded by `marmotctl` before the job is submitted)
//! and in each worker's cache. A unit's work dir holds the job's `--file`s and, under
//! `--input-files`, its own input file, each under its own name.

pub use super::file::{check_file_name, is_sha256, FileRef};
use super::halt::Halt;
use super::inputs;
use super::placed::{self, Placed};
use super::template::Template;
use super::termseq::TermSeq;
use serde::{Deserialize, Serialize};

/// The most `--file`s a job may have.
pub const MAX_FILES: usize = 1024;
/// The most bytes a command may have, all arguments together (the per-argument bound is
/// [`super::template::MAX_ARG_BYTES`]).
pub const MAX_COMMAND_BYTES: usize = 256 * 1024;
/// The most `--env` variables, and their bytes all together.
pub const MAX_ENV: usize = 256;
pub const MAX_ENV_BYTES: usize = 256 * 1024;
/// The most retries of one unit.
pub const MAX_RETRIES: u32 = 100;
/// The largest `--timeout N%`: ten thousand times the median.
pub const MAX_TIMEOUT_PERCENT: u32 = 1_000_000;
/// The longest `--delay`: a day between units.
pub const MAX_DELAY_MS: u64 = 86_400_000;
/// The most slots one unit may take.
pub const MAX_SLOTS_PER_UNIT: u32 = 4096;
/// The most units in one chunk: with inputs of at most 64 KiB, a chunk's request stays well
/// inside a frame.
pub const MAX_CHUNK_UNITS: u64 = 32;
/// The most bytes a unit may hand back, per stream (stdout, stderr, its `$MARMOT_OUT` as a
/// tar): a bound on what a worker can make the coordinator spool.
pub const MAX_UNIT_OUTPUT: u64 = 64 << 30;

/// A job of `marmotctl run cmd`: the command once per input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CmdSpec {
    pub command: Template,
    /// One per unit: what `{}` stands for.
    pub inputs: Vec<String>,
    /// The inputs, one per line, as a file in the coordinator's store, for a job whose inputs
    /// would not fit in one request: sent in pieces as any file is, then read there into
    /// `inputs` (empty until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_file: Option<FileRef>,
    /// Under `--input-files`, one per input: the unit's own file, appearing in its work dir
    /// under the input's name. Empty otherwise.
    #[serde(default)]
    pub input_files: Vec<FileRef>,
    /// `--file`: in every unit's work dir.
    #[serde(default)]
    pub files: Vec<FileRef>,
    /// `--env K=V`, after marmot's own variables.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// `--timeout`: a unit running longer is stopped and counts as failed.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// `marmotctl parallel --timeout N%`: a unit running longer than N% of the median time of
    /// the job's units that succeeded so far is stopped (none is before one succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_percent: Option<u32>,
    /// `marmotctl parallel --delay`: a unit starts no sooner than this after the one before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// `--retries`: a unit that fails runs again (on another worker if there is one) up to
    /// this many times.
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub halt: Halt,
    /// `--slots-per-unit`: slots a unit takes on its worker (all of a smaller worker's).
    #[serde(default = "one")]
    pub slots_per_unit: u32,
    /// The most slots the job's units may hold at once (`marmotctl parallel -j`); `None`:
    /// every free slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_slots: Option<u32>,
    /// `--keep-order`: output comes back in input order rather than as units finish.
    #[serde(default)]
    pub keep_order: bool,
    /// `--results`: the files each unit writes under `$MARMOT_OUT` come back.
    #[serde(default)]
    pub results: bool,
    /// `--resume`, `--resume-failed`: units not to run (a joblog shows them done), as
    /// ranges `start..end` of unit numbers from 0, in order, apart. The others keep their
    /// numbers (`{#}`, the joblog's `Seq`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<(u64, u64)>,
    /// `marmotctl parallel`: one list per input (or none), each unit's files at their relative
    /// paths in its work dir.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placed: Vec<Vec<Placed>>,
    /// `marmotctl parallel`: what a unit creates or changes in its work dir comes back as its
    /// results (not with `results`, which brings back `$MARMOT_OUT`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bring_back: bool,
    /// `marmotctl parallel --pipe`: the path of the placed file each unit reads as its stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// `marmotctl parallel --termseq`: the signals that stop a unit (timed out, cancelled,
    /// halted); none: the worker's own (SIGTERM, then SIGKILL after 50 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term_seq: Option<TermSeq>,
}

fn one() -> u32 {
    1
}

/// Whether `key` may be set by `--env`: a shell variable name, not one of marmot's own; or
/// a function bash exported (`export -f NAME` sets `BASH_FUNC_NAME%%`).
pub fn check_env_key(key: &str) -> Result<(), String> {
    if let Some(function) = key.strip_prefix("BASH_FUNC_").and_then(|k| k.strip_suffix("%%")) {
        let mut chars = function.chars();
        let named = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
        return match named {
            true => Ok(()),
            false => Err(format!(
                "--env {}: not a function's name bash exports",
                crate::names::shown(key)
            )),
        };
    }
    let mut chars = key.chars();
    let name = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name {
        return Err(format!(
            "--env {}: a variable's name is letters, digits and `_`, not starting with a digit",
            crate::names::shown(key)
        ));
    }
    if key.starts_with("MARMOT_") || key == "HOME" {
        return Err(format!("--env {key}: marmot sets {key} itself"));
    }
    Ok(())
}

impl CmdSpec {
    /// `command` once per input, with every option at its default (as `run cmd` without
    /// flags asks).
    pub fn new(command: Template, inputs: Vec<String>) -> CmdSpec {
        CmdSpec {
            command,
            inputs,
            inputs_file: None,
            input_files: vec![],
            files: vec![],
            env: vec![],
            timeout_ms: None,
            timeout_percent: None,
            delay_ms: None,
            retries: 0,
            halt: Halt::default(),
            slots_per_unit: 1,
            max_slots: None,
            keep_order: false,
            results: false,
            skip: vec![],
            placed: vec![],
            bring_back: false,
            stdin: None,
            term_seq: None,
        }
    }

    /// Checks everything a request may hold, in words for the user: the command, the inputs,
    /// the files (plain names, no two the same in a unit's dir), the environment, the bounds.
    pub fn check(&self) -> Result<(), String> {
        self.command.check().map_err(|e| e.to_string())?;
        let command_bytes: usize = self.command.argv().iter().map(String::len).sum();
        if command_bytes > MAX_COMMAND_BYTES {
            return Err(format!(
                "the command is {command_bytes} bytes long; at most {MAX_COMMAND_BYTES} are allowed"
            ));
        }
        inputs::check(&self.inputs).map_err(|e| e.to_string())?;
        if !self.input_files.is_empty() && self.input_files.len() != self.inputs.len() {
            return Err(format!(
                "{} input files for {} inputs: give one file per input",
                self.input_files.len(),
                self.inputs.len()
            ));
        }
        if self.files.len() > MAX_FILES {
            return Err(format!("{} files: a job may have at most {MAX_FILES}", self.files.len()));
        }
        let mut names = std::collections::HashSet::new();
        for file in &self.files {
            file.check()?;
            if !names.insert(file.name.as_str()) {
                return Err(format!("two files are named {}: rename one", file.name));
            }
        }
        for (input, file) in self.inputs.iter().zip(&self.input_files) {
            file.check()?;
            if &file.name != input {
                return Err(format!("the input file {} is not named as its input", file.name));
            }
            if names.contains(file.name.as_str()) {
                return Err(format!(
                    "the input file {} has the name of a --file: rename one",
                    file.name
                ));
            }
        }
        if self.env.len() > MAX_ENV {
            return Err(format!("{} --env variables: at most {MAX_ENV}", self.env.len()));
        }
        let mut env_bytes = 0;
        for (key, value) in &self.env {
            check_env_key(key)?;
            if value.contains('\0') {
                return Err(format!("--env {key}: a value cannot hold a NUL byte"));
            }
            env_bytes += key.len() + value.len();
        }
        if env_bytes > MAX_ENV_BYTES {
            return Err(format!("--env: {env_bytes} bytes; at most {MAX_ENV_BYTES} are allowed"));
        }
        if self.timeout_ms == Some(0) {
            return Err("--timeout must be longer than 0".into());
        }
        match self.timeout_percent {
            Some(pct) if pct == 0 || pct > MAX_TIMEOUT_PERCENT => {
                return Err(format!(
                    "--timeout {pct}%: give a share of the median time from 1% to \
                     {MAX_TIMEOUT_PERCENT}%"
                ))
            }
            Some(_) if self.timeout_ms.is_some() => {
                return Err("--timeout: give seconds or a share of the median time, not both".into())
            }
            _ => {}
        }
        if let Some(seq) = &self.term_seq {
            seq.check().map_err(|why| format!("--termseq: {why}"))?;
        }
        if self.delay_ms.is_some_and(|ms| ms > MAX_DELAY_MS) {
            return Err(format!("--delay: at most {} s between units", MAX_DELAY_MS / 1000));
        }
        if self.retries > MAX_RETRIES {
            return Err(format!("--retries {}: at most {MAX_RETRIES}", self.retries));
        }
        if !(1..=MAX_SLOTS_PER_UNIT).contains(&self.slots_per_unit) {
            return Err(format!(
                "--slots-per-unit {}: 1 to {MAX_SLOTS_PER_UNIT}",
                self.slots_per_unit
            ));
        }
        if self.max_slots == Some(0) {
            return Err(
                "-j 0 as slots at once: give at least 1, or none for every free slot".into()
            );
        }
        if !self.placed.is_empty() && self.placed.len() != self.inputs.len() {
            return Err(format!(
                "placed files for {} units of {}: give a list for every unit",
                self.placed.len(),
                self.inputs.len()
            ));
        }
        for (unit, files) in self.placed.iter().enumerate() {
            placed::check_unit(files).map_err(|e| format!("unit {}: {e}", unit + 1))?;
        }
        if let Some(path) = &self.stdin {
            let placed = |files: &Vec<Placed>| files.iter().any(|p| p.file.name == *path);
            if self.placed.len() != self.inputs.len() || !self.placed.iter().all(placed) {
                return Err(format!("every unit reads {path} as its stdin: place it in each"));
            }
        }
        if self.bring_back && self.results {
            return Err("a job brings back what its units make in their work dirs or under \
                        $MARMOT_OUT, not both"
                .into());
        }
        self.check_skip()?;
        self.halt.check().map_err(|e| e.to_string())
    }

    /// The skipped ranges are in order, apart, within the inputs, and leave a unit to run.
    fn check_skip(&self) -> Result<(), String> {
        let inputs = self.inputs.len() as u64;
        let mut after = 0;
        for (i, &(start, end)) in self.skip.iter().enumerate() {
            if start >= end || end > inputs || (i > 0 && start <= after) {
                return Err(format!(
                    "units to skip {start}..{end} are not a range of the job's {inputs} units in \
                     order after the last: give the joblog of this job's earlier run"
                ));
            }
            after = end;
        }
        if self.units_to_run() == 0 {
            return Err("every unit is skipped: nothing to run".into());
        }
        Ok(())
    }

    /// How many units run: the inputs but those skipped.
    pub fn units_to_run(&self) -> u64 {
        let skipped: u64 = self.skip.iter().map(|&(start, end)| end.saturating_sub(start)).sum();
        (self.inputs.len() as u64).saturating_sub(skipped)
    }

    /// The numbers of the units that run, in order.
    pub fn units(&self) -> impl Iterator<Item = u64> + '_ {
        let mut skip = self.skip.iter().peekable();
        (0..self.inputs.len() as u64).filter(move |&unit| {
            while skip.next_if(|&&(_, end)| end <= unit).is_some() {}
            skip.peek().is_none_or(|&&(start, _)| unit < start)
        })
    }
}

/// Ranges `start..end` of the units in `done` (numbers from 0), in order and apart.
pub fn ranges(done: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = vec![];
    let mut units: Vec<u64> = done.into_iter().collect();
    units.sort_unstable();
    units.dedup();
    for unit in units {
        match ranges.last_mut() {
            Some((_, end)) if *end == unit => *end += 1,
            _ => ranges.push((unit, unit + 1)),
        }
    }
    ranges
}

/// How a unit's run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnitEnding {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Signalled(i32),
    /// It ran past `--timeout` and was stopped.
    TimedOut,
    /// It could not start (no such program, not executable): why, in words.
    NotStarted(String),
    /// Its worker was lost before it was counted, so how it ended is unknown: it runs again.
    /// Only the coordinator says this, for the try's joblog line; never a worker.
    Lost,
}

impl UnitEnding {
    pub fn success(&self) -> bool {
        *self == UnitEnding::Exited(0)
    }

    /// The joblog's `Exitval` and `Signal`: GNU parallel writes -1 for a unit that did not
    /// exit by itself.
    pub fn exit_and_signal(&self) -> (i32, i32) {
        match self {
            UnitEnding::Exited(code) => (*code, 0),
            UnitEnding::Signalled(signal) => (-1, *signal),
            UnitEnding::TimedOut => (-1, 15),
            UnitEnding::NotStarted(_) => (127, 0),
            UnitEnding::Lost => (-1, 0),
        }
    }

    /// In words, for the line `marmotctl` prints after a failed unit.
    pub fn describe(&self) -> String {
        match self {
            UnitEnding::Exited(code) => format!("exited with status {code}"),
            UnitEnding::Signalled(signal) => format!("was killed by signal {signal}"),
            UnitEnding::TimedOut => "ran past --timeout and was stopped".into(),
            UnitEnding::NotStarted(why) => format!("did not start: {why}"),
            UnitEnding::Lost => "was lost with its worker (how it ended is unknown)".into(),
        }
    }
}

/// One unit's run, as a worker reports it and the coordinator spools it for the client; the
/// unit's stdout, stderr and results (a tar of its `$MARMOT_OUT`) follow, of these sizes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitReport {
    /// The unit's index in the job, from 0 (its number `{#}` is this plus one).
    pub unit: u64,
    pub ending: UnitEnding,
    /// Unix milliseconds.
    pub started_ms: u64,
    pub duration_ms: u64,
    pub stdout: u64,
    pub stderr: u64,
    pub results: u64,
    /// The worker that ran it: filled in by the coordinator.
    pub worker: String,
}

impl UnitReport {
    /// Whether the sizes are within bounds and the worker's name (if any) prints safely.
    pub fn check(&self) -> Result<(), String> {
        for (what, size) in
            [("stdout", self.stdout), ("stderr", self.stderr), ("results", self.results)]
        {
            if size > MAX_UNIT_OUTPUT {
                return Err(format!(
                    "unit {}: {size} bytes of {what}, over {MAX_UNIT_OUTPUT}",
                    self.unit
                ));
            }
        }
        if let UnitEnding::NotStarted(why) = &self.ending {
            if why.len() > 1024 {
                return Err(format!("unit {}: a reason of {} bytes", self.unit, why.len()));
            }
        }
        if !self.worker.is_empty() {
            crate::names::check_worker_name(&self.worker)?;
        }
        Ok(())
    }

    /// The bytes that follow the report.
    pub fn body(&self) -> u64 {
        self.stdout.saturating_add(self.stderr).saturating_add(self.results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn exported_bash_functions_may_be_set_and_nothing_else_with_a_percent() {
        assert!(check_env_key("BASH_FUNC_my_func%%").is_ok());
        assert!(check_env_key("BASH_FUNC_a.b-c%%").is_ok());
        assert!(check_env_key("BASH_FUNC_%%").is_err());
        assert!(check_env_key("BASH_FUNC_1x%%").is_err());
        assert!(check_env_key("BASH_FUNC_a b%%").is_err());
        assert!(check_env_key("BASH_FUNC_x%").is_err());
        assert!(check_env_key("X%%").is_err());
        assert!(check_env_key("PLAIN_1").is_ok());
    }

    fn spec() -> CmdSpec {
        CmdSpec {
            command: Template::new(vec!["gzip".into(), "-9".into()]).unwrap(),
            inputs: vec!["a.log".into(), "b.log".into()],
            inputs_file: None,
            input_files: vec![],
            files: vec![FileRef { name: "run.sh".into(), sha256: sha('a'), size: 3 }],
            env: vec![("LEVEL".into(), "9".into())],
            timeout_ms: None,
            timeout_percent: None,
            delay_ms: None,
            retries: 0,
            halt: Halt::Never,
            slots_per_unit: 1,
            max_slots: None,
            keep_order: false,
            results: false,
            skip: vec![],
            placed: vec![],
            bring_back: false,
            stdin: None,
            term_seq: None,
        }
    }

    #[test]
    fn placed_files_come_one_list_per_unit_and_results_come_back_one_way() {
        let file = |name: &str| Placed {
            file: FileRef { name: name.into(), sha256: sha('b'), size: 1 },
            mode: 0o644,
            mtime_ns: 1,
        };
        let placed = vec![vec![file("logs/a.log")], vec![]];
        assert_eq!(CmdSpec { placed: placed.clone(), bring_back: true, ..spec() }.check(), Ok(()));
        let short = CmdSpec { placed: vec![vec![]], ..spec() }.check().unwrap_err();
        assert!(short.contains("for 1 units of 2"), "{short}");
        let twice = vec![vec![], vec![file("x"), file("x")]];
        let e = CmdSpec { placed: twice, ..spec() }.check().unwrap_err();
        assert!(e.starts_with("unit 2: x is placed twice"), "{e}");
        let both = CmdSpec { bring_back: true, results: true, ..spec() }.check().unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let stdin = Some("logs/a.log".to_string());
        let each = vec![vec![file("logs/a.log")], vec![file("logs/a.log")]];
        let fed = CmdSpec { placed: each, stdin: stdin.clone(), ..spec() };
        assert_eq!(fed.check(), Ok(()));
        let e = CmdSpec { placed, stdin, ..spec() }.check().unwrap_err();
        assert!(e.contains("every unit reads logs/a.log"), "{e}");
    }

    #[test]
    fn units_a_joblog_shows_done_are_skipped_and_the_others_keep_their_numbers() {
        let inputs: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let with = |skip: Vec<(u64, u64)>| CmdSpec { skip, inputs: inputs.clone(), ..spec() };
        assert_eq!(ranges([7, 0, 1, 2, 9, 1]), [(0, 3), (7, 8), (9, 10)]);
        assert_eq!(ranges([]), []);
        let spec = with(ranges([0, 1, 2, 7, 9]));
        assert_eq!(spec.check(), Ok(()));
        assert_eq!(spec.units().collect::<Vec<_>>(), [3, 4, 5, 6, 8]);
        assert_eq!(spec.units_to_run(), 5);
        assert_eq!(with(vec![]).units().count(), 10);
        assert_eq!(with(vec![(4, 5)]).units().collect::<Vec<_>>(), [0, 1, 2, 3, 5, 6, 7, 8, 9]);
        for bad in
            [vec![(3, 3)], vec![(5, 4)], vec![(8, 11)], vec![(4, 6), (2, 3)], vec![(2, 4), (4, 5)]]
        {
            let e = with(bad.clone()).check().unwrap_err();
            assert!(e.contains("not a range of the job's 10 units"), "{bad:?}: {e}");
        }
        let e = with(vec![(0, 10)]).check().unwrap_err();
        assert_eq!(e, "every unit is skipped: nothing to run");
    }

    #[test]
    fn a_request_is_checked_whole() {
        assert_eq!(spec().check(), Ok(()));
        let with_files = CmdSpec {
            input_files: vec![
                FileRef { name: "a.log".into(), sha256: sha('b'), size: 1 },
                FileRef { name: "b.log".into(), sha256: sha('c'), size: 1 },
            ],
            ..spec()
        };
        assert_eq!(with_files.check(), Ok(()));
        type Spoil = fn(&mut CmdSpec);
        let bad: [(&str, Spoil); 20] = [
            ("no input", |s| s.inputs.clear()),
            ("1 input files for 2 inputs", |s| {
                s.input_files = vec![FileRef { name: "a.log".into(), sha256: sha('b'), size: 1 }]
            }),
            ("cannot be a file's name", |s| s.files[0].name = "../x".into()),
            ("cannot be a file's name", |s| s.files[0].name = "..".into()),
            ("not a SHA-256", |s| s.files[0].sha256 = sha('A')),
            ("two files are named run.sh", |s| s.files.push(s.files[0].clone())),
            ("not starting with a digit", |s| s.env.push(("1X".into(), "".into()))),
            ("marmot sets MARMOT_OUT itself", |s| s.env.push(("MARMOT_OUT".into(), "".into()))),
            ("marmot sets HOME itself", |s| s.env.push(("HOME".into(), "".into()))),
            ("NUL", |s| s.env.push(("X".into(), "\0".into()))),
            ("--timeout must be longer than 0", |s| s.timeout_ms = Some(0)),
            ("--timeout 0%", |s| s.timeout_percent = Some(0)),
            ("--timeout 1000001%", |s| s.timeout_percent = Some(1_000_001)),
            ("not both", |s| (s.timeout_ms, s.timeout_percent) = (Some(1), Some(200))),
            ("--delay: at most 86400 s", |s| s.delay_ms = Some(MAX_DELAY_MS + 1)),
            ("--termseq: 99 is not a signal", |s| {
                s.term_seq = Some(super::TermSeq { steps: vec![(99, 1)] })
            }),
            ("--retries 101: at most 100", |s| s.retries = 101),
            ("--slots-per-unit 0", |s| s.slots_per_unit = 0),
            ("-j 0 as slots at once", |s| s.max_slots = Some(0)),
            ("bytes long", |s| s.command = Template::new(vec!["x".repeat(100_000); 3]).unwrap()),
        ];
        for (want, spoil) in bad {
            let mut s = spec();
            spoil(&mut s);
            let e = s.check().unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
        }
        let mut clash = with_files.clone();
        clash.files[0].name = "a.log".into();
        assert!(clash.check().unwrap_err().contains("has the name of a --file"));
        let mut misnamed = with_files;
        misnamed.input_files[1].name = "c.log".into();
        assert!(misnamed.check().unwrap_err().contains("not named as its input"));
    }

    #[test]
    fn every_bound_takes_its_value_and_refuses_one_more() {
        let arg = |c: &str| c.repeat(super::super::template::MAX_ARG_BYTES);
        let at = |s: CmdSpec| s.check();
        let most = Template::new(vec![arg("x"), arg("y")]).unwrap();
        assert_eq!(most.argv().iter().map(String::len).sum::<usize>(), MAX_COMMAND_BYTES);
        assert_eq!(at(CmdSpec { command: most.clone(), ..spec() }), Ok(()));
        let over = Template::new([most.argv(), &["z".into()]].concat()).unwrap();
        assert!(at(CmdSpec { command: over, ..spec() }).is_err());
        let env = |n: usize| (0..n).map(|i| (format!("K{i}"), String::new())).collect();
        assert_eq!(at(CmdSpec { env: env(MAX_ENV), ..spec() }), Ok(()));
        assert!(at(CmdSpec { env: env(MAX_ENV + 1), ..spec() }).is_err());
        let sized = |bytes: usize| vec![("K".to_string(), "v".repeat(bytes - 1))];
        assert_eq!(at(CmdSpec { env: sized(MAX_ENV_BYTES), ..spec() }), Ok(()));
        assert_eq!(at(CmdSpec { env: sized(200_000), ..spec() }), Ok(()), "200 kB of values fit");
        let e = at(CmdSpec { env: sized(MAX_ENV_BYTES + 1), ..spec() }).unwrap_err();
        assert!(e.contains(&format!("{} bytes", MAX_ENV_BYTES + 1)), "{e}");
        let files = |n: usize| {
            let file = |i: usize| FileRef { name: format!("f{i}"), sha256: sha('a'), size: 1 };
            (0..n).map(file).collect()
        };
        assert_eq!(at(CmdSpec { files: files(MAX_FILES), ..spec() }), Ok(()));
        assert!(at(CmdSpec { files: files(MAX_FILES + 1), ..spec() }).is_err());
        assert_eq!(at(CmdSpec { retries: MAX_RETRIES, ..spec() }), Ok(()));
        assert_eq!(at(CmdSpec { slots_per_unit: MAX_SLOTS_PER_UNIT, ..spec() }), Ok(()));
        assert!(at(CmdSpec { slots_per_unit: MAX_SLOTS_PER_UNIT + 1, ..spec() }).is_err());
        assert_eq!(at(CmdSpec { timeout_ms: Some(1), ..spec() }), Ok(()));
        let most = Some(MAX_TIMEOUT_PERCENT);
        assert_eq!(at(CmdSpec { timeout_percent: most, ..spec() }), Ok(()), "a share alone");
        assert_eq!(at(CmdSpec { delay_ms: Some(MAX_DELAY_MS), ..spec() }), Ok(()));
        // Left out of a request, a unit takes one slot.
        let json = r#"{"command":["true"],"inputs":["a"]}"#;
        let parsed: CmdSpec = serde_json::from_str(json).unwrap();
        assert_eq!((parsed.slots_per_unit, parsed.retries, parsed.check()), (1, 0, Ok(())));
        // What a request leaves out is what `new` gives.
        assert_eq!(parsed, CmdSpec::new(parsed.command.clone(), vec!["a".into()]));
    }

    #[test]
    fn endings_read_as_gnu_parallel_logs_them() {
        assert!(UnitEnding::Exited(0).success() && !UnitEnding::Exited(3).success());
        assert_eq!(UnitEnding::Exited(3).exit_and_signal(), (3, 0));
        assert_eq!(UnitEnding::Signalled(9).exit_and_signal(), (-1, 9));
        assert_eq!(UnitEnding::TimedOut.exit_and_signal(), (-1, 15));
        assert_eq!(UnitEnding::NotStarted("x".into()).exit_and_signal(), (127, 0));
        assert_eq!(UnitEnding::Exited(3).describe(), "exited with status 3");
        assert!(UnitEnding::TimedOut.describe().contains("--timeout"));
        assert!(UnitEnding::Signalled(9).describe().contains("signal 9"));
        assert!(UnitEnding::NotStarted("no such file".into()).describe().ends_with("no such file"));
    }

    #[test]
    fn a_report_is_bounded() {
        let report = UnitReport {
            unit: 4,
            ending: UnitEnding::Exited(0),
            started_ms: 1,
            duration_ms: 2,
            stdout: 3,
            stderr: 4,
            results: 5,
            worker: String::new(),
        };
        assert_eq!((report.check(), report.body()), (Ok(()), 12));
        let largest =
            UnitReport { stdout: MAX_UNIT_OUTPUT, results: MAX_UNIT_OUTPUT, ..report.clone() };
        assert_eq!(largest.check(), Ok(()));
        let longest =
            UnitReport { ending: UnitEnding::NotStarted("x".repeat(1024)), ..report.clone() };
        assert_eq!(longest.check(), Ok(()));
        let huge = UnitReport { stderr: MAX_UNIT_OUTPUT + 1, ..report.clone() };
        assert!(huge.check().unwrap_err().contains("of stderr"));
        let named = UnitReport { worker: "w\n".into(), ..report.clone() };
        assert!(named.check().is_err());
        let why = UnitReport { ending: UnitEnding::NotStarted("x".repeat(1025)), ..report };
        assert!(why.check().is_err());
    }
}
