//! `marmotctl`'s command line, and the parsers for the numbers and durations users type.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// The heading global options are listed under, apart from each command's own.
const GLOBAL: &str = "Global options";

#[derive(Parser, Debug)]
#[command(
    name = "marmotctl",
    version = proto::version::current(),
    about = "Control a marmot cluster from its coordinator's machine",
    arg_required_else_help = true
)]
pub struct Cli {
    /// The coordinator's control socket [default: /run/marmot/marmotd.sock as root, else
    /// $XDG_RUNTIME_DIR/marmot/marmotd.sock]
    #[arg(long, global = true, env = proto::paths::SOCKET_ENV, help_heading = GLOBAL)]
    pub socket: Option<PathBuf>,
    /// Print one JSON document instead of human output (errors too: {"error": ...}).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The coordinator's state: workers, slots in use, chunks queued, jobs running.
    Status,
    /// The connected workers.
    Workers,
    /// Round-trip time to each worker (all, or those named); exits 1 if any timed out.
    Ping {
        /// How long to wait for each worker.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        timeout: Duration,
        /// The workers to ping [default: every connected worker]
        workers: Vec<String>,
    },
    /// Run a task on the cluster and print its result.
    ///
    /// Ctrl-C (or SIGTERM, or SIGHUP when the terminal closes) cancels the job on the cluster;
    /// --detach leaves it running instead.
    #[command(arg_required_else_help = true)]
    Run {
        #[command(subcommand)]
        task: RunTask,
        /// Refuse the job when no worker is connected, rather than queue it until one is.
        #[arg(long, global = true)]
        no_wait_for_workers: bool,
    },
    /// Score every worker's slots with the pi kernel.
    ///
    /// Every slot of every worker runs the kernel at once for a while. Scores show in
    /// `workers`, size the chunks of later jobs, and are kept across coordinator restarts.
    Bench {
        /// How long each slot runs the kernel.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        length: Duration,
    },
    /// Running and recent jobs, with what each was asked to do.
    Jobs {
        /// Every ended job the coordinator's journal keeps (7 days, or the newest 10,000 by
        /// default), not only the recent ones.
        #[arg(long)]
        all: bool,
    },
    /// Print an ended job's result again (a job's result is kept for 7 days by default).
    Result {
        /// The job's id, as `run --detach` printed it or `marmotctl jobs --all` lists it.
        #[arg(value_parser = parse_job_id)]
        job: u64,
    },
    /// GNU parallel's command line, its jobs run on the cluster: `marmotctl parallel gzip
    /// ::: *.txt`. Options and replacement strings as `man parallel` says; what marmot does
    /// not do is refused with the reason.
    #[command(disable_help_flag = true)]
    Parallel {
        /// GNU parallel's options, the command, and its input sources.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Run a pi, prime or count job again, as it was asked for: for a job whose results came
    /// in part from a worker later caught lying (`marmotctl jobs` says so).
    Rerun {
        /// The job's id, as `marmotctl jobs` lists it.
        #[arg(value_parser = parse_job_id)]
        job: u64,
        #[command(flatten)]
        detach: Detach,
    },
    /// Follow a job to its end (with a progress bar) and print its result.
    ///
    /// Ctrl-C stops following; the job keeps running (`marmotctl cancel JOB` stops it).
    Wait {
        /// The job's id, as `run --detach` printed it or `marmotctl jobs` lists it.
        #[arg(value_parser = parse_job_id)]
        job: u64,
    },
    /// Cancel a running job.
    Cancel {
        /// The job's id, as `marmotctl jobs` lists it.
        #[arg(value_parser = parse_job_id)]
        job: u64,
    },
    /// Tell workers to hand back their running chunks and exit; the coordinator keeps running.
    Exit {
        /// The workers to stop.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        workers: Vec<String>,
        /// Stop every connected worker.
        #[arg(long)]
        all: bool,
    },
    /// Let a quarantined worker take chunks again (after its results were contradicted by
    /// two other workers: check its RAM, e.g. with memtest86+).
    Clear {
        /// The worker's name, as `marmotctl workers` lists it.
        worker: String,
    },
    /// Revoke a worker's certificate: it is disconnected and refused from now on (for a lost
    /// or stolen laptop). Its name is free again; rotate the join token too if the machine
    /// had it (`marmotctl join-token --rotate`).
    Revoke {
        /// The worker's name, as `marmotctl workers` lists it.
        worker: String,
    },
    /// Roll a new marmotd over the workers (and with --coordinator, the coordinator).
    ///
    /// Workers are updated a few at a time, each drained first. Exits non-zero unless every
    /// worker ends up updated or already current.
    Update {
        /// marmotd binaries, one per CPU architecture: each worker gets the one for its own.
        #[arg(required = true, value_name = "BINARY")]
        binaries: Vec<PathBuf>,
        /// Workers updated at once (at most a quarter of them; the report says when fewer).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        parallel: u32,
        /// Go on with the other workers after one rolls back (by default the rollout stops
        /// there, since the binary is likely bad).
        #[arg(long)]
        keep_going: bool,
        /// Install binaries older than what runs now.
        #[arg(long)]
        allow_downgrade: bool,
        /// Then replace and restart the coordinator too (workers reconnect on their own).
        #[arg(long)]
        coordinator: bool,
    },
    /// Print the token a new worker joins with (`marmotd worker --token ...`).
    JoinToken {
        /// Make a new token; earlier ones stop working for new joins.
        #[arg(long)]
        rotate: bool,
    },
    /// Open the web dashboard: serve it on a local port through the control socket and print
    /// its URL (with a secret only that URL carries). Ctrl-C stops it.
    Dashboard {
        /// The local port [default: one the system picks].
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        port: u16,
    },
    /// Make the token the coordinator's `--http` dashboard asks for: shown once, the
    /// coordinator keeps only its hash.
    DashboardToken {
        /// Make a new one in place of the old, which stops working at once.
        #[arg(long)]
        rotate: bool,
    },
    /// Print the log lines the workers sent (and the coordinator's own), oldest first.
    Logs {
        /// One worker's lines [default: every worker's and the coordinator's].
        worker: Option<String>,
        /// Keep printing lines as they come (Ctrl-C stops).
        #[arg(short, long)]
        follow: bool,
        /// Only lines logged within this long, e.g. 10m or 2h.
        #[arg(long, value_parser = parse_age)]
        since: Option<Duration>,
        /// At most this many of the latest lines (before following).
        #[arg(short = 'n', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=5000))]
        lines: u64,
    },
    /// The cluster live in the terminal: workers, jobs and events (q quits).
    Top {
        /// Print one picture and exit (for scripts, or a terminal that is not one).
        #[arg(long)]
        once: bool,
    },
    #[command(flatten)]
    Docs(client::docs::DocsCommand),
}

/// `--detach` and `--verify`, offered by the tasks that can run without `marmotctl` watching.
#[derive(Args, Debug, Default)]
pub struct Detach {
    /// Print the job id and return at once: the job runs on; `marmotctl wait JOB` follows
    /// it, `marmotctl cancel JOB` stops it.
    #[arg(long)]
    pub detach: bool,
    /// The share of chunks (0 to 1) also run on a second worker and compared bit for bit;
    /// a mismatch is decided by a third [default: the coordinator's --verify]
    #[arg(long, value_name = "SHARE", value_parser = proto::human::parse_share)]
    pub verify: Option<f64>,
}

#[derive(Subcommand, Debug)]
pub enum RunTask {
    /// Monte Carlo estimate of pi.
    Pi(PiArgs),
    /// Is N prime? Prints a factor if not; the first chunk that finds one ends the job.
    Prime(PrimeArgs),
    /// How often a letter occurs: in random letters, inline text, or a file.
    Count(CountArgs),
    /// A body thrown up, every dt seconds until it lands: `t y` lines (gnuplot-ready) and a
    /// plot, streamed in order while the cluster computes them.
    Freefall(FreefallArgs),
    /// Your own command once per input, on free worker slots, in the manner of GNU parallel:
    /// `marmotctl run cmd --input-files '*.log' -- gzip -9 {}`,
    /// `marmotctl run cmd -- echo {} ::: a b c`. Exits with the number of failed units
    /// (at most 101).
    #[command(arg_required_else_help = true)]
    Cmd(Box<CmdArgs>),
}

#[derive(Args, Debug)]
pub struct CmdArgs {
    /// Inputs, one unit each, after `:::` (here, or after the command: `-- CMD ::: a b`).
    #[arg(value_name = "::: INPUT")]
    pub inputs: Vec<String>,
    /// Read inputs from FILE, one per line (`-` for stdin).
    #[arg(long = "inputs", value_name = "FILE")]
    pub inputs_from: Option<PathBuf>,
    /// One unit per file matching each GLOB: the file is sent to the worker that runs it and
    /// appears in its work dir under its own name, which is the input ({}).
    #[arg(long, value_name = "GLOB", num_args = 1..)]
    pub input_files: Vec<String>,
    /// A file every unit gets in its work dir, under its own name (a script, data, a
    /// program); repeatable. Sent to each worker once, cached there by content.
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Print units' output in input order (through a bounded window) instead of as they end.
    #[arg(long, short = 'k')]
    pub keep_order: bool,
    /// Files a unit writes under $MARMOT_OUT come back into DIR/<unit number>/.
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
    /// Write one line per unit (GNU parallel's joblog columns) to FILE.
    #[arg(long, value_name = "FILE")]
    pub joblog: Option<PathBuf>,
    /// Skip the units the --joblog FILE of an earlier run of the same job shows, and append
    /// to it (as GNU parallel's --resume).
    #[arg(long, requires = "joblog", conflicts_with = "resume_failed")]
    pub resume: bool,
    /// Like --resume, but run again the units the joblog shows failed.
    #[arg(long, requires = "joblog")]
    pub resume_failed: bool,
    /// Run a failed unit again, on another worker if there is one, up to N times.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: u32,
    /// Stop the job on failures or successes: now,fail=1 (kill running units), soon,fail=3
    /// (let them finish), now,success=1, soon,fail=10%, never.
    #[arg(long, default_value = "never", value_name = "RULE")]
    pub halt: proto::command::Halt,
    /// Stop a unit that runs longer, e.g. 30s, 5m; it counts as failed.
    #[arg(long, value_parser = parse_unit_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// Slots a unit takes on its worker, for multi-threaded commands.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub slots_per_unit: u32,
    /// Set a variable in each unit's environment (K=V), repeatable.
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// The command and its arguments, after `--`, with GNU parallel's replacement strings:
    /// {} the input, {#} its number, {.} without extension, {/} base name, {//} directory,
    /// {/.} base name without extension; without any, the input is appended.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (key, value) = s.split_once('=').ok_or_else(|| format!("'{s}' is not K=V"))?;
    proto::command::spec::check_env_key(key)?;
    Ok((key.to_string(), value.to_string()))
}

#[derive(Args, Debug)]
pub struct FreefallArgs {
    /// Starting height, m.
    #[arg(long, default_value = "100000", value_parser = parse_real, allow_hyphen_values = true)]
    pub y0: f64,
    /// Starting upward speed, m/s.
    #[arg(long, default_value = "10000", value_parser = parse_real, allow_hyphen_values = true)]
    pub v0: f64,
    /// Gravity, m/s².
    #[arg(long, default_value = "9.81", value_parser = parse_real, allow_hyphen_values = true)]
    pub g: f64,
    /// Seconds between two points.
    #[arg(long, default_value = "0.001", value_parser = parse_real, allow_hyphen_values = true)]
    pub dt: f64,
    /// Quadratic air drag K (a = -g - K·v·|v|), integrated with RK4.
    #[arg(long, default_value = "0", value_parser = parse_real, allow_hyphen_values = true)]
    pub drag: f64,
    /// One whole trajectory per drag value from A to B in STEPS values: rows of
    /// `drag time_to_ground impact_speed max_height`.
    #[arg(long, value_name = "A:B:STEPS", value_parser = parse_sweep, conflicts_with = "drag")]
    pub sweep_drag: Option<SweepRange>,
    /// Write the results here as text lines (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Draw the results into this PNG (the only format; checked before the job starts).
    #[arg(long, value_name = "FILE.png", value_parser = parse_plot_path)]
    pub plot: Option<PathBuf>,
    /// The plot's size in pixels.
    #[arg(long, value_name = "WxH", default_value = "1200x800", value_parser = parse_size)]
    pub size: (u32, u32),
    /// Not offered (freefall streams to this command), but explained if tried.
    #[arg(long, hide = true)]
    pub detach: bool,
}

/// `--sweep-drag A:B:STEPS`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepRange {
    pub from: f64,
    pub to: f64,
    pub steps: u64,
}

/// A finite decimal number: `9.81`, `1e-4`, `-50`.
pub fn parse_real(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("'{s}' is not a number (write it like 9.81 or 1e-4)")),
    }
}

fn parse_sweep(s: &str) -> Result<SweepRange, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let [from, to, steps] = parts[..] else {
        return Err(format!("'{s}' is not A:B:STEPS (like 0:0.001:50)"));
    };
    let (from, to, steps) = (parse_real(from)?, parse_real(to)?, parse_count(steps)?);
    if from < 0.0 || to < 0.0 {
        return Err("drag values must be zero or positive".into());
    }
    Ok(SweepRange { from, to, steps })
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("'{s}' is not a size like 1200x800");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) =
        (w.trim().parse().map_err(|_| bad())?, h.trim().parse().map_err(|_| bad())?);
    if !(100..=10_000).contains(&w) || !(100..=10_000).contains(&h) {
        return Err(format!("'{s}': width and height must be 100 to 10000 pixels"));
    }
    Ok((w, h))
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["random", "file", "text"])))]
pub struct CountArgs {
    /// The character to count (any one Unicode character).
    #[arg(value_parser = parse_letter)]
    pub letter: String,
    /// Count in N random lowercase letters made on the workers (1e10 works).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub random: Option<u64>,
    /// The seed of --random: the same N and seed always give the same count [default: 0].
    /// Only --random has one: --text and --file are counted as they are.
    #[arg(long, value_parser = parse_u64)]
    pub seed: Option<u64>,
    /// Count in a file, read by the coordinator with its own rights (under systemd: not in
    /// /home, /root or /tmp; see the README).
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Count in this text.
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,
    /// Count upper and lower case alike.
    #[arg(long)]
    pub ignore_case: bool,
    #[command(flatten)]
    pub detach: Detach,
}

fn parse_letter(s: &str) -> Result<String, String> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(_), None) => Ok(s.to_string()),
        _ => Err(format!("'{s}' is not one character; count one letter at a time")),
    }
}

#[derive(Args, Debug)]
pub struct PrimeArgs {
    /// A whole number from 0 to 2^128-1 (digits, `_` allowed).
    #[arg(value_parser = parse_u128, allow_hyphen_values = true)]
    pub n: u128,
    /// trial: divide by every candidate up to √N; auto: a primality test, then rho.
    #[arg(long, value_enum, default_value_t = Method::Trial)]
    pub method: Method,
    #[command(flatten)]
    pub detach: Detach,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Method {
    Trial,
    Auto,
}

/// A whole number from 0 to 2^128-1, in digits with optional `_`.
pub fn parse_u128(s: &str) -> Result<u128, String> {
    let digits: String = s.trim().chars().filter(|&c| c != '_').collect();
    if digits.starts_with('-') {
        return Err(format!("'{s}' is negative; it must be a whole number from 0 to 2^128-1"));
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not a whole number (write it in digits, like 1000003)"));
    }
    digits.parse().map_err(|_| format!("'{s}' is larger than 2^128-1"))
}

#[derive(Args, Debug)]
pub struct PiArgs {
    /// How many random points: 10000000000, 1e10 and 10_000_000_000 all work.
    #[arg(value_parser = parse_count, allow_hyphen_values = true)]
    pub samples: u64,
    /// The random seed: the same samples and seed always give the same estimate.
    #[arg(long, default_value = "0", value_parser = parse_u64)]
    pub seed: u64,
    #[command(flatten)]
    pub detach: Detach,
}

/// A count of at least 1, written as digits (with optional `_`) or in scientific notation.
pub fn parse_count(s: &str) -> Result<u64, String> {
    let n = parse_u64(s)?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// A whole number from 0 to 2^64-1: `10000000000`, `1e10` or `10_000_000_000`.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let bad = || format!("'{s}' is not a whole number (write it like 1000000, 1e6 or 1_000_000)");
    let digits: String = s.trim().chars().filter(|&c| c != '_').collect();
    if digits.starts_with('-') {
        return Err(format!("'{s}' is negative; it must be a positive whole number"));
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits.parse::<u64>().map_err(|_| format!("'{s}' is larger than 2^64-1"));
    }
    let (mantissa, exponent) = digits.split_once(['e', 'E']).ok_or_else(bad)?;
    let exponent: u32 =
        exponent.strip_prefix('+').unwrap_or(exponent).parse().map_err(|_| bad())?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // Exact integer arithmetic: 1.5e3 = 15 × 10^(3-1).
    let shift = exponent
        .checked_sub(frac.len() as u32)
        .ok_or_else(|| format!("'{s}' is not a whole number"))?;
    let base: u64 = format!("{int}{frac}").parse().map_err(|_| bad())?;
    10u64
        .checked_pow(shift)
        .and_then(|p| base.checked_mul(p))
        .ok_or_else(|| format!("'{s}' is larger than 2^64-1"))
}

/// A job id: a whole number from 1, as `run --detach` prints and `jobs` lists.
fn parse_job_id(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(format!(
            "'{s}' is not a job id: ids are whole numbers like 3, as `marmotctl jobs` lists them"
        )),
    }
}

/// A plot's path: a PNG, in a directory that exists. Checked here, before any work is done,
/// so a typo does not cost a whole computation.
fn parse_plot_path(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    let is_png = path.extension().is_some_and(|x| x.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(format!("'{s}': plots are PNG files only; name it like plot.png"));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(format!("'{s}': there is no directory {}", dir.display()));
    }
    Ok(path)
}

/// How far back to look (`logs --since`): any duration from 1 ms to 10 years.
fn parse_age(s: &str) -> Result<Duration, String> {
    duration_up_to(s, Duration::from_secs(10 * 365 * 86_400), "10 years", "10m or 2h")
}

fn parse_unit_timeout(s: &str) -> Result<Duration, String> {
    proto::human::parse_duration(s, "30s or 5m")
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    duration_up_to(s, Duration::from_secs(300), "5m", "2s or 500ms")
}

/// A duration from 1 ms to `max` (`max_said` in words); `like` shows how one is written.
fn duration_up_to(s: &str, max: Duration, max_said: &str, like: &str) -> Result<Duration, String> {
    let d = proto::human::parse_duration(s, like)?;
    if d.is_zero() || d > max {
        return Err(format!("must be between 1ms and {max_said}"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_every_spelling() {
        for s in ["10000000000", "1e10", "10_000_000_000", "1E10", "1.0e10", "1e+10", "0.1e11"] {
            assert_eq!(parse_count(s), Ok(10_000_000_000), "{s}");
        }
        assert_eq!(parse_count("2.5e3"), Ok(2500));
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn bad_counts_say_why() {
        for s in [
            "0",
            "-5",
            "abc",
            "",
            "1.5",
            "1.25e1",
            "1e20",
            "99999999999999999999",
            "e5",
            "1e",
            "--",
        ] {
            assert!(parse_count(s).is_err(), "{s}");
        }
        assert!(parse_count("-5").unwrap_err().contains("negative"));
        assert!(parse_count("0").unwrap_err().contains("at least 1"));
    }

    #[test]
    fn freefall_arguments() {
        assert_eq!(parse_sweep("0:1e-3:50"), Ok(SweepRange { from: 0.0, to: 1e-3, steps: 50 }));
        for bad in ["0:1", "0:x:5", "0:1:0", "-1:1:5", "0:1:2:3"] {
            assert!(parse_sweep(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size("640x480"), Ok((640, 480)));
        for bad in ["640", "0x480", "axb", "99999x100"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_real("inf").is_err() && parse_real("nan").is_err());
    }

    #[test]
    fn job_ids_and_plot_paths() {
        assert_eq!(parse_job_id("3"), Ok(3));
        for bad in ["abc", "0", "-1", "1.5", ""] {
            let e = parse_job_id(bad).unwrap_err();
            assert!(e.contains("not a job id") && e.contains("marmotctl jobs"), "{bad}: {e}");
        }
        assert!(parse_plot_path("fall.png").is_ok());
        assert!(parse_plot_path("FALL.PNG").is_ok());
        assert!(parse_plot_path("fall.svg").unwrap_err().contains("PNG files only"));
        assert!(parse_plot_path("fall").unwrap_err().contains("PNG files only"));
        assert!(parse_plot_path("/no/such/dir/fall.png").unwrap_err().contains("no directory"));
    }

    #[test]
    fn detach_is_offered_only_where_it_works() {
        use clap::CommandFactory;
        let cli = Cli::command();
        let run = cli.find_subcommand("run").unwrap();
        for task in ["pi", "prime", "count"] {
            let sub = run.find_subcommand(task).unwrap();
            assert!(sub.get_arguments().any(|a| a.get_id() == "detach"), "{task}");
        }
        let freefall = run.find_subcommand("freefall").unwrap();
        let detach = freefall.get_arguments().find(|a| a.get_id() == "detach").unwrap();
        assert!(detach.is_hide_set(), "refused, so not offered in --help");
    }

    #[test]
    fn big_integers() {
        assert_eq!(parse_u128("340282366920938463463374607431768211455"), Ok(u128::MAX));
        assert_eq!(parse_u128("943_349_775_459_380_173"), Ok(943349775459380173));
        for s in ["340282366920938463463374607431768211456", "-1", "1e5", "", "x"] {
            assert!(parse_u128(s).is_err(), "{s}");
        }
    }

    #[test]
    fn logs_since_takes_hours_and_days_not_only_a_timeout() {
        use std::time::Duration;
        assert_eq!(super::parse_age("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(super::parse_age("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(super::parse_age("3days"), Ok(Duration::from_secs(3 * 86_400)));
        assert!(super::parse_age("0s").unwrap_err().contains("between 1ms and 10 years"));
        assert!(super::parse_age("11years").is_err());
        assert!(super::parse_age("soon").unwrap_err().contains("10m or 2h"));
    }
}
