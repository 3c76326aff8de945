//! Runs one unit of a user's command (`marmotctl run cmd`) on a worker: a process group in a
//! fresh directory, a clean environment, output spooled to files, and a stop that leaves
//! nothing running.
//!
//! Each unit gets a directory of its own (`UnitDir`), removed when it is dropped, or made
//! fresh again for the next unit of the same chunk ([`UnitDir::reset`]: cheaper than a new one,
//! since creating and deleting inodes is most of what a tiny unit costs on ext4):
//! - `work/`: the command's current directory and `HOME`, where its files appear;
//! - `out/`: `$MARMOT_OUT`, files the unit hands back;
//! - `stdout`, `stderr`: what it printed, written to disk as it comes, so a unit that prints
//!   gigabytes costs the worker no memory (and the command cannot read or rewrite them from
//!   its work dir).
//!
//! The command is the leader of a new process group, and where the worker has cgroups
//! ([`super::cgroup`]) in a cgroup of its own, so everything it starts (a shell's children, a
//! build's compilers, a daemon that called `setsid`) is stopped with it: SIGTERM to the group
//! and the cgroup, then SIGKILL after [`GRACE`] (the whole cgroup at once), on cancel or
//! timeout, or the job's own `--termseq` signals before the SIGKILL; what outlives its
//! leader's normal exit is stopped the worker's way, so no unit leaves processes behind.

use super::cgroup::UnitCgroup;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a unit's processes have between SIGTERM and SIGKILL: short enough that a cancelled
/// unit is gone within 100 ms of its stream's reset.
pub const GRACE: Duration = Duration::from_millis(50);

/// A worker's own stop of a unit: SIGTERM, then (after it) SIGKILL after [`GRACE`].
const OWN_STOP: [(Signal, Duration); 1] = [(Signal::SIGTERM, GRACE)];

/// The environment variables a unit inherits from the worker (if set there); everything else
/// is set by marmot or by `--env`.
const INHERITED: [&str; 2] = ["PATH", "LANG"];
/// The `PATH` of a unit when the worker has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A unit's directory, removed with everything in it when dropped.
#[derive(Debug)]
pub struct UnitDir {
    root: PathBuf,
    /// The permissions `work/` and `out/` were made with.
    mode: u32,
}

impl UnitDir {
    /// Makes `parent/NAME` with its `work/` and `out/`, `NAME` unique to this unit.
    pub fn create(parent: &Path, name: &str) -> std::io::Result<UnitDir> {
        std::fs::create_dir_all(parent)?;
        let root = tempfile::Builder::new().prefix(name).tempdir_in(parent)?.keep();
        let mut dir = UnitDir { root, mode: 0 };
        std::fs::create_dir(dir.work())?;
        std::fs::create_dir(dir.out())?;
        dir.mode = mode(&dir.work())?;
        Ok(dir)
    }

    /// Makes the directory as fresh as a new one for the next unit: `work/` and `out/` are
    /// emptied, or made again if a unit changed their permissions or put something else in
    /// their place (a link is removed, never followed); `stdout` and `stderr` go, and are
    /// made when the unit starts. Emptying, not making: on ext4, making a directory costs
    /// more than a short unit does.
    pub fn reset(&self) -> std::io::Result<()> {
        for dir in [self.work(), self.out()] {
            match std::fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() && mode_of(&meta) == self.mode => empty(&dir)?,
                Ok(meta) => {
                    match meta.is_dir() {
                        true => std::fs::remove_dir_all(&dir)?,
                        false => std::fs::remove_file(&dir)?,
                    }
                    std::fs::create_dir(&dir)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(&dir)?,
                Err(e) => return Err(e),
            }
        }
        for file in [self.stdout(), self.stderr()] {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    pub fn out(&self) -> PathBuf {
        self.root.join("out")
    }

    pub fn stdout(&self) -> PathBuf {
        self.root.join("stdout")
    }

    pub fn stderr(&self) -> PathBuf {
        self.root.join("stderr")
    }
}

impl Drop for UnitDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            tracing::warn!("cannot remove the unit directory {}: {e}", self.root.display());
        }
    }
}

/// A directory's permission bits.
fn mode(dir: &Path) -> std::io::Result<u32> {
    Ok(mode_of(&std::fs::metadata(dir)?))
}

fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

/// Removes everything in `dir` (links themselves, not what they point to).
fn empty(dir: &Path) -> std::io::Result<()> {
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        match item.file_type()?.is_dir() {
            true => std::fs::remove_dir_all(item.path())?,
            false => std::fs::remove_file(item.path())?,
        }
    }
    Ok(())
}

/// What to run for a unit.
#[derive(Clone, Debug)]
pub struct UnitCommand {
    /// The program and its arguments, replacement strings filled in.
    pub argv: Vec<String>,
    /// Set on top of the clean environment (`MARMOT_UNIT`, `MARMOT_INPUT`, `--env K=V`, …).
    pub env: Vec<(String, String)>,
    /// The longest the unit may run.
    pub timeout: Option<Duration>,
    /// A file (relative to the unit's work dir, or absolute) whose bytes come down a pipe as its stdin, as
    /// GNU parallel's `--pipe` feeds a job (a program sees a pipe, not a file); none: stdin
    /// is empty.
    pub stdin: Option<PathBuf>,
    /// `--termseq`: the signals that stop it when it times out or is cancelled, each with the
    /// longest wait for it to end; empty: [`OWN_STOP`]. SIGKILL ends every stop.
    pub stop: Vec<(Signal, Duration)>,
}

/// How a unit ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Its program exited with this status.
    Exited(i32),
    /// A signal killed it (not one marmot sent).
    Signalled(i32),
    /// It ran past its timeout and was stopped.
    TimedOut,
    /// The job or the chunk was cancelled and the unit stopped.
    Cancelled,
    /// Its program could not start (not found, not executable), in words.
    NotStarted(String),
}

impl Ending {
    /// Whether the unit succeeded.
    pub fn success(&self) -> bool {
        *self == Ending::Exited(0)
    }
}

/// A unit that ran: how it ended, when it started and for how long.
#[derive(Clone, Debug)]
pub struct Ran {
    pub ending: Ending,
    pub started: SystemTime,
    pub duration: Duration,
}

/// Runs `command` in `dir` (and in `cgroup`, if any) until it ends, times out or `cancel`
/// fires, and stops its process group and cgroup in every case.
pub async fn run(
    command: &UnitCommand,
    dir: &UnitDir,
    cgroup: Option<&UnitCgroup>,
    cancel: &CancellationToken,
) -> Ran {
    run_pausable(command, dir, cgroup, cancel, watch::Sender::new(false).subscribe()).await
}

/// [`run`], with the unit's processes stopped (SIGSTOP to its process group and cgroup)
/// while `paused` says so and continued (SIGCONT) after, as BOINC keeps a suspended task in
/// memory. Its timeout runs on meanwhile.
pub async fn run_pausable(
    command: &UnitCommand,
    dir: &UnitDir,
    cgroup: Option<&UnitCgroup>,
    cancel: &CancellationToken,
    mut paused: watch::Receiver<bool>,
) -> Ran {
    let started = SystemTime::now();
    let clock = Instant::now();
    let ran = |ending| Ran { ending, started, duration: clock.elapsed() };
    let mut env = clean_env(dir, |k| std::env::var(k).ok());
    env.extend(command.env.iter().cloned());
    let (program, args) = command.argv.split_first().expect("a checked template has a program");
    let found = match program.contains('/') {
        true => Ok(PathBuf::from(program)),
        false => find_program(program, &env, &dir.work()),
    };
    let spawned = found.and_then(|found| {
        let (stdout, stderr) = spool(dir)?;
        let stdin = match &command.stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        };
        let mut spawn = tokio::process::Command::new(found);
        let procs = cgroup.map(UnitCgroup::procs_fd);
        // SAFETY: between fork and exec, system calls only (a write(2) to a descriptor opened
        // before the fork, sched_setscheduler, ioprio_set): async-signal-safe, no allocation,
        // no lock.
        unsafe {
            spawn.pre_exec(move || {
                if let Some(procs) = procs {
                    let procs = std::os::fd::BorrowedFd::borrow_raw(procs);
                    nix::unistd::write(procs, b"0").map_err(std::io::Error::from)?;
                }
                // The unit's own priority is the lowest: a system that refuses it runs the
                // unit as the slot threads run (the worker warned once).
                let _ = crate::priority::lowest();
                Ok(())
            });
        }
        spawn
            .arg0(program)
            .args(args)
            .env_clear()
            .envs(env)
            .current_dir(dir.work())
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return ran(Ending::NotStarted(format!("cannot run `{}`: {e}", command.argv[0]))),
    };
    // Fed while it runs; a unit that stops reading (or never starts) ends the feeding.
    let feeding = match (&command.stdin, child.stdin.take()) {
        (Some(path), Some(mut pipe)) => {
            let path = dir.work().join(path);
            Some(tokio::spawn(async move {
                if let Ok(mut file) = tokio::fs::File::open(&path).await {
                    let _ = tokio::io::copy(&mut file, &mut pipe).await;
                }
            }))
        }
        _ => None,
    };
    let group = child.id().map(|pid| Pid::from_raw(pid as i32));
    let deadline = async {
        match command.timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let mut stopped = false;
    let ending = loop {
        tokio::select! {
            status = child.wait() => break match status {
                Ok(status) => ending_of(status),
                Err(e) => Ending::NotStarted(format!("cannot wait for `{}`: {e}", command.argv[0])),
            },
            () = &mut deadline => break Ending::TimedOut,
            () = cancel.cancelled() => break Ending::Cancelled,
            Ok(()) = paused.changed(), if group.is_some() => {
                let now = *paused.borrow_and_update();
                if now != stopped {
                    let signal = if now { Signal::SIGSTOP } else { Signal::SIGCONT };
                    signal_unit(group, cgroup, signal);
                    stopped = now;
                }
            }
        }
    };
    if stopped {
        // Continued first, so that the stop signals below (a TERM trap) are acted on.
        signal_unit(group, cgroup, Signal::SIGCONT);
    }
    if let Some(group) = group {
        // What outlives a unit that ended by itself is stopped the worker's way.
        let stop = match ending {
            Ending::TimedOut | Ending::Cancelled if !command.stop.is_empty() => &command.stop[..],
            _ => &OWN_STOP[..],
        };
        stop_group(group, cgroup, &mut child, stop).await;
    }
    // Reaped: the leader is dead by now (killed with its group, or exited before).
    let _ = child.wait().await;
    if let Some(feeding) = feeding {
        feeding.abort();
    }
    ran(ending)
}

/// Sends `signal` to every process of a unit: its process group and its cgroup, once each.
fn signal_unit(group: Option<Pid>, cgroup: Option<&UnitCgroup>, signal: Signal) {
    if let Some(group) = group {
        let _ = killpg(group, signal);
        if let Some(cgroup) = cgroup {
            cgroup.signal(signal, Some(group));
        }
    }
}

/// `program` in the unit's own `PATH` (the last one `env` sets), as the shell would find it.
/// Found here rather than by the child, so that the unit can be spawned without forking the
/// worker (the standard library forks when a changed `PATH` must be searched): a fork of a
/// large process costs half a millisecond, more than a small unit's whole run.
fn find_program(program: &str, env: &[(String, String)], cwd: &Path) -> std::io::Result<PathBuf> {
    let path = env.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str());
    which::which_in(program, path, cwd).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such program in the unit's PATH")
    })
}

/// The files the unit's stdout and stderr go to.
fn spool(dir: &UnitDir) -> std::io::Result<(std::fs::File, std::fs::File)> {
    Ok((std::fs::File::create(dir.stdout())?, std::fs::File::create(dir.stderr())?))
}

/// The environment every unit starts from: the worker's `PATH` and `LANG`, `HOME` its work
/// dir, `MARMOT_OUT` its out dir; nothing else of the worker's (no credentials, no
/// `SSH_AUTH_SOCK`, no `NOTIFY_SOCKET`).
fn clean_env(dir: &UnitDir, worker_env: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> =
        INHERITED.iter().filter_map(|k| worker_env(k).map(|v| (k.to_string(), v))).collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    env.push(("HOME".into(), dir.work().display().to_string()));
    env.push(("MARMOT_OUT".into(), dir.out().display().to_string()));
    env
}

fn ending_of(status: std::process::ExitStatus) -> Ending {
    use std::os::unix::process::ExitStatusExt;
    // On Unix a process either exits with a code or is killed by a signal.
    status.code().map_or_else(|| Ending::Signalled(status.signal().unwrap_or(0)), Ending::Exited)
}

/// Stops every process left in `group` (whose leader is `leader`) and in `cgroup`: each of
/// `steps`' signals in turn, each followed by its wait, then SIGKILL if any is left. Returns
/// early once the leader is reaped and none is left.
async fn stop_group(
    group: Pid,
    cgroup: Option<&UnitCgroup>,
    leader: &mut tokio::process::Child,
    steps: &[(Signal, Duration)],
) {
    let signal = |signal| {
        let in_group = killpg(group, signal).is_ok();
        // Signal 0 is not sent to the cgroup: its process list is the answer. Nor is a signal
        // sent twice to one process (its trap would run twice).
        let in_cgroup = cgroup.is_some_and(|c| match signal {
            Some(signal) => c.signal(signal, Some(group)),
            None => !c.pids().is_empty(),
        });
        in_group || in_cgroup
    };
    for &(sent, wait) in steps {
        if !signal(Some(sent)) {
            return; // Nothing was left.
        }
        let until = Instant::now() + wait;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let reaped = matches!(leader.try_wait(), Ok(Some(_)) | Err(_));
            if reaped && !signal(None) {
                return;
            }
        }
    }
    let _ = killpg(group, Signal::SIGKILL);
    if let Some(cgroup) = cgroup {
        cgroup.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> UnitCommand {
        UnitCommand {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![],
            timeout: None,
            stdin: None,
            stop: vec![],
        }
    }

    fn alive(pid: i32) -> bool {
        // A zombie still answers signal 0; it is reaped by init (or us) soon, so read its state.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
            Err(_) => false,
        }
    }

    #[tokio::test]
    async fn a_dir_reset_for_the_next_unit_is_as_fresh_as_a_new_one() {
        let parent = tempfile::tempdir().unwrap();
        let dir = UnitDir::create(parent.path(), "u").unwrap();
        let ran = run(
            &sh("echo one; echo x > left; echo r > $MARMOT_OUT/r"),
            &dir,
            None,
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(ran.ending, Ending::Exited(0));
        dir.reset().unwrap();
        assert_eq!(std::fs::read_dir(dir.work()).unwrap().count(), 0, "work/ emptied");
        assert_eq!(std::fs::read_dir(dir.out()).unwrap().count(), 0, "out/ emptied");
        // An empty dir whose permissions a unit changed is made again too.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.work(), std::fs::Permissions::from_mode(0o500)).unwrap();
        dir.reset().unwrap();
        let made = std::fs::metadata(dir.work()).unwrap().permissions().mode() & 0o7777;
        assert_eq!(made, dir.mode, "made again as it was made first, not 0o500");
        let ran = run(&sh("echo two; ls"), &dir, None, &CancellationToken::new()).await;
        assert_eq!(ran.ending, Ending::Exited(0));
        assert_eq!(std::fs::read_to_string(dir.stdout()).unwrap(), "two\n", "stdout emptied");
    }

    #[tokio::test]
    async fn a_reset_empties_in_place_and_never_follows_a_units_links() {
        use std::os::unix::fs::MetadataExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = UnitDir::create(parent.path(), "u").unwrap();
        let outside = parent.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "kept").unwrap();
        // Held open, the dir's inode cannot be reused by a dir made in its place.
        let held = std::fs::File::open(dir.work()).unwrap();
        let work_inode = held.metadata().unwrap().ino();
        let script = format!(
            "mkdir -p a/b && echo x > a/b/c && ln -s {o} a/link && ln -s {o}/keep file-link \
             && rm -r \"$MARMOT_OUT\" && ln -s {o} \"$MARMOT_OUT\"",
            o = outside.display()
        );
        let ran = run(&sh(&script), &dir, None, &CancellationToken::new()).await;
        assert_eq!(ran.ending, Ending::Exited(0));
        dir.reset().unwrap();
        for made in [dir.work(), dir.out()] {
            let meta = std::fs::symlink_metadata(&made).unwrap();
            assert!(meta.is_dir() && std::fs::read_dir(&made).unwrap().count() == 0);
        }
        assert_eq!(std::fs::metadata(dir.work()).unwrap().ino(), work_inode, "emptied, not made");
        assert!(!dir.stdout().exists() && !dir.stderr().exists());
        assert_eq!(std::fs::read_to_string(outside.join("keep")).unwrap(), "kept");
        // A unit that removed its work dir gets a new one.
        std::fs::remove_dir(dir.work()).unwrap();
        dir.reset().unwrap();
        assert!(dir.work().is_dir());
        // One that put a dir where stdout goes leaves a dir that cannot be lent again.
        std::fs::create_dir(dir.stdout()).unwrap();
        assert!(dir.reset().is_err());
    }

    #[tokio::test]
    async fn a_program_is_found_in_the_units_own_path() {
        let parent = tempfile::tempdir().unwrap();
        let dir = UnitDir::create(parent.path(), "u").unwrap();
        let bin = parent.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("my-tool");
        std::fs::write(&tool, "#!/bin/sh\necho tool $0 \"$@\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:/usr/bin:/bin", bin.display());
        let command = UnitCommand {
            argv: vec!["my-tool".into(), "a b".into()],
            env: vec![("PATH".into(), path)],
            ..sh("")
        };
        let ran = run(&command, &dir, None, &CancellationToken::new()).await;
        assert_eq!(ran.ending, Ending::Exited(0));
        let printed = std::fs::read_to_string(dir.stdout()).unwrap();
        assert_eq!(printed, format!("tool {} a b\n", tool.display()));
        let missing = UnitCommand { argv: vec!["my-tool".into()], ..sh("") };
        let ran = run(&missing, &dir, None, &CancellationToken::new()).await;
        let Ending::NotStarted(why) = ran.ending else { panic!("{:?}", ran.ending) };
        assert!(why.contains("cannot run `my-tool`") && why.contains("PATH"), "{why}");
    }

    #[tokio::test]
    async fn a_unit_reads_its_stdin_from_a_file_in_its_dir_or_nothing() {
        let parent = tempfile::tempdir().unwrap();
        let dir = UnitDir::create(parent.path(), "unit-1-").unwrap();
        std::fs::create_dir(dir.work().join("in")).unwrap();
        std::fs::write(dir.work().join("in/block"), b"one\ntwo\n").unwrap();
        let fed = UnitCommand { stdin: Some("in/block".into()), ..sh("cat; wc -c") };
        assert_eq!(
            run(&fed, &dir, None, &CancellationToken::new()).await.ending,
            Ending::Exited(0)
        );
        assert_eq!(std::fs::read_to_string(dir.stdout()).unwrap().trim(), "one\ntwo\n0");
        let empty = run(&sh("wc -c"), &dir, None, &CancellationToken::new()).await;
        assert_eq!(empty.ending, Ending::Exited(0));
        assert_eq!(std::fs::read_to_string(dir.stdout()).unwrap().trim(), "0");
        // A pipe, as GNU parallel's --pipe gives (`wc` pads its counts for one).
        let piped = UnitCommand { stdin: Some("in/block".into()), ..sh("test -p /dev/stdin") };
        let ending = run(&piped, &dir, None, &CancellationToken::new()).await.ending;
        assert_eq!(ending, Ending::Exited(0));
        // A unit that does not read it ends all the same.
        std::fs::write(dir.work().join("in/big"), vec![b'x'; 1 << 20]).unwrap();
        let deaf = UnitCommand { stdin: Some("in/big".into()), ..sh("true") };
        let ending = run(&deaf, &dir, None, &CancellationToken::new()).await.ending;
        assert_eq!(ending, Ending::Exited(0));
    }

    #[tokio::test]
    async fn a_unit_runs_in_its_own_dir_with_a_clean_environment_and_its_output_spooled() {
        let parent = tempfile::tempdir().unwrap();
        let dir = UnitDir::create(parent.path(), "unit-1-").unwrap();
        let mut command =
            sh("pwd; env | sort; echo oops >&2; echo made > \"$MARMOT_OUT/result\"; exit 3");
        command.env.push(("MARMOT_UNIT".into(), "1".into()));
        let ran = run(&command, &dir, None, &CancellationToken::new()).await;
        assert_eq!(ran.ending, Ending::Exited(3));
        assert!(!ran.ending.success());
        let stdout = std::fs::read_to_string(dir.stdout()).unwrap();
        let work = dir.work().display().to_string();
        assert_eq!(stdout.lines().next(), Some(work.as_str()));
        let names: Vec<&str> =
            stdout.lines().skip(1).filter_map(|l| l.split_once('=')).map(|(k, _)| k).collect();
        // `sh` adds PWD (and may add SHLVL or _): nothing from the worker's environment.
        let expected = ["HOME", "LANG", "MARMOT_OUT", "MARMOT_UNIT", "PATH", "PWD", "SHLVL", "_"];
        assert!(names.iter().all(|n| expected.contains(n)), "{names:?}");
        assert!(stdout.contains(&format!("HOME={work}")));
        let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
        assert!(stdout.lines().any(|l| l == format!("PATH={path}")), "the worker's PATH");
        assert_eq!(std::fs::read_to_string(dir.stderr()).unwrap(), "oops\n");
        assert_eq!(std::fs::read_to_string(dir.out().join("result")).unwrap(), "made\n");
        let root = dir.root.clone();
        drop(dir);
        assert!(!root.exists(), "a unit's directory goes with it");
    }

    #[test]
    fn a_worker_without_path_or_lang_gives_its_units_a_default_path() {
        let parent = tempfile::tempdir().unwrap();
        let dir = UnitDir::create(parent.path(), "u").unwrap();
        let keys = |env: Vec<(String, String)>| -> Vec<String> {
            env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
        };
        let (home, out) = (dir.work().display().to_string(), dir.out().display().to_string());
        assert_eq!(
            keys(clean_env(&dir, |_| None)),
            [format!("PATH={DEFAULT_PATH}"), format!("HOME={home}"), format!("MARMOT_OUT={out}")]
        );
        let lang_only = |k: &str| (k == "LANG").then(|| "C.UTF-8".to_string());
        assert_eq!(
            keys(clean_env(&dir, lang_only))[..2],
            ["LANG=C.UTF-8", &format!("PATH={DEFAULT_PATH}")]
        );
        let both = |k: &str| Some(format!("{k}-value"));
        assert_eq!(
            keys(clean_env(&dir, both))[..3],
            ["PATH=PATH-value", "LANG=LANG-value", &format!("HOME={home}")]
        );
    }

    #[tokio::test]
    async fn success_signals_and_programs_that_cannot_start() {
        let parent = tempfile::tempdir().unwrap();
        let dir = UnitDir::create(parent.path(), "u").unwrap();
        let cancel = CancellationToken::new();
        let ran = run(&sh("true"), &dir, None, &cancel).await;
        assert_eq!(ran.ending, Ending::Exited(0));
        assert!(ran.ending.success());
        assert!(ran.started <= SystemTime::now() && ran.duration < Duration::from_secs(5));
        assert_eq!(run(&sh("kill -9 $$"), &dir, None, &cancel).await.ending, Ending::Signalled(9));
        let missing = UnitCommand { argv: vec!["no-such-program-x".into()], ..sh("") };
        let Ending::NotStarted(why) = run(&missing, &dir, None, &cancel).await.ending else {
            panic!("a missing program cannot start")
        };
        assert!(why.starts_with("cannot run `no-such-program-x`:"), "{why}");
    }

    /// Waits for a unit's script to write its own pid and its background child's to `pids`
    /// (an event, not a fixed sleep), and returns them.
    async fn both_started(
        unit: std::pin::Pin<&mut impl std::future::Future<Output = Ran>>,
        pids: &Path,
    ) -> (i32, i32) {
        let ids = pids_written(unit, pids, 2).await;
        (ids[0], ids[1])
    }

    /// Runs `unit` until it wrote `count` pids to `pids`, and returns them.
    async fn pids_written(
        mut unit: std::pin::Pin<&mut impl std::future::Future<Output = Ran>>,
        pids: &Path,
        count: usize,
    ) -> Vec<i32> {
        loop {
            tokio::select! {
                ran = &mut unit => panic!("ended before it started: {ran:?}"),
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
            let text = std::fs::read_to_string(pids).unwrap_or_default();
            let ids: Vec<i32> = text.split_whitespace().filter_map(|p| p.parse().ok()).collect();
            if ids.len() == count {
                return ids;
            }
        }
    }

    /// Runs `script` (which writes its background child's pid to `pids`), stops it with
    /// `stop`, and checks that the leader and its child are both gone within 100 ms.
    async fn stopped_whole(
        script: &str,
        timeout: Option<Duration>,
        cancel_after: Option<Duration>,
    ) -> Ending {
        let parent = tempfile::tempdir().unwrap();
        let dir = UnitDir::create(parent.path(), "u").unwrap();
        let command = UnitCommand { timeout, ..sh(script) };
        let cancel = CancellationToken::new();
        let pids = dir.work().join("pids");
        let unit = run(&command, &dir, None, &cancel);
        tokio::pin!(unit);
        let (leader, child) = both_started(unit.as_mut(), &pids).await;
        assert!(alive(leader) && alive(child));
        if let Some(after) = cancel_after {
            tokio::time::sleep(after).await;
            cancel.cancel();
        }
        let asked = Instant::now();
        let ran = unit.await;
        let ended = Instant::now();
        // Asked when cancelled, or at the timeout's deadline. Every process of the unit must be
        // gone 100 ms later (a SIGKILL takes effect as the process next runs: poll for it).
        let asked = match timeout {
            Some(timeout) if cancel_after.is_none() => ended - (ran.duration - timeout),
            _ => asked,
        };
        assert!(ended - asked < Duration::from_millis(100), "stopped in {:?}", ended - asked);
        while (alive(leader) || alive(child)) && asked.elapsed() < Duration::from_millis(100) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(!alive(leader) && !alive(child), "the unit's whole group is gone within 100 ms");
        ran.ending
    }

    #[tokio::test]
    async fn cancel_kills_the_unit_and_its_children_within_100_ms() {
        let script = "sleep 30 & echo $$ $! > pids; wait";
        let ending = stopped_whole(script, None, Some(Duration::ZERO)).await;
        assert_eq!(ending, Ending::Cancelled);
    }

    #[tokio::test]
    async fn a_unit_deaf_to_sigterm_is_killed_after_the_grace_time() {
        let script = "trap '' TERM; sleep 30 & echo $$ $! > pids; wait; wait";
        let ending = stopped_whole(script, None, Some(Duration::ZERO)).await;
        assert_eq!(ending, Ending::Cancelled);
    }

    #[tokio::test]
    async fn a_child_deaf_to_sigterm_is_killed_though_its_leader_obeyed() {
        let script = "(trap '' TERM; sleep 30) & echo $$ $! > pids; wait";
        let ending = stopped_whole(script, None, Some(Duration::ZERO)).await;
        assert_eq!(ending, Ending::Cancelled);
    }

    #[tokio::test]
    async fn a_unit_has_its_grace_time_to_clean_up() {
        // (A builtin in the trap: the grace time is 50 ms, and a loaded 2-core machine can
        // take longer than that to start a process.)
        let script = "trap 'echo bye > \"$MARMOT_OUT/bye\"; exit 0' TERM; sleep 30 & echo $$ $! > pids; wait";
        let parent = tempfile::tempdir().unwrap();
        let dir = UnitDir::create(parent.path(), "u").unwrap();
        let cancel = CancellationToken::new();
        let pids = dir.work().join("pids");
        let command = sh(script);
        let unit = run(&command, &dir, None, &cancel);
        tokio::pin!(unit);
        both_started(unit.as_mut(), &pids).await;
        cancel.cancel();
        assert_eq!(unit.await.ending, Ending::Cancelled);
        assert_eq!(std::fs::read_to_string(dir.out().join("bye")).unwrap(), "bye\n");
    }

    #[tokio::test]
    async fn a_unit_past_its_timeout_is_stopped() {
        let script = "sleep 30 & echo $$ $! > pids; wait";
        let ending = stopped_whole(script, Some(Duration::from_millis(300)), None).await;
        assert_eq!(ending, Ending::TimedOut);
    }

    #[tokio::test]
    async fn a_stopped_unit_gets_the_signals_of_its_termseq_each_after_its_wait() {
        // Each signal also ends the foreground sleep; the trap runs, and the loop goes on. It
        // says it is ready once its traps are set; a second after each signal lets its trap
        // run on a loaded machine before the next one.
        let script = "for s in INT USR1 TERM; do trap \"echo $s >> got\" $s; done; \
                      echo $$ > pids; while :; do sleep 0.05; done";
        let parent = tempfile::tempdir().unwrap();
        let dir = UnitDir::create(parent.path(), "u").unwrap();
        let wait = Duration::from_secs(1);
        let stop = vec![(Signal::SIGINT, wait), (Signal::SIGUSR1, wait), (Signal::SIGTERM, wait)];
        let command = UnitCommand { stop, ..sh(script) };
        let cancel = CancellationToken::new();
        let unit = run(&command, &dir, None, &cancel);
        tokio::pin!(unit);
        let leader = pids_written(unit.as_mut(), &dir.work().join("pids"), 1).await[0];
        let asked = Instant::now();
        cancel.cancel();
        assert_eq!(unit.await.ending, Ending::Cancelled);
        let got = std::fs::read_to_string(dir.work().join("got")).unwrap();
        assert_eq!(got, "INT\nUSR1\nTERM\n", "each signal in order, none twice");
        assert!(asked.elapsed() >= 3 * wait, "each wait is given: {:?}", asked.elapsed());
        assert!(gone_soon(leader).await, "deaf to all three, it was killed at the end");
    }

    #[tokio::test]
    async fn a_termseq_stops_early_once_the_unit_is_gone_and_leftovers_get_the_workers_stop() {
        let parent = tempfile::tempdir().unwrap();
        let dir = UnitDir::create(parent.path(), "u").unwrap();
        let long = Duration::from_secs(20);
        let stop = vec![(Signal::SIGINT, long), (Signal::SIGKILL, long)];
        // (A second: time for its trap to be set on a loaded machine before it times out.)
        let script =
            "trap 'echo INT >> got; exit 3' INT; echo $$ > pids; while :; do sleep 0.05; done";
        let command = UnitCommand { timeout: Some(Duration::from_secs(1)), stop, ..sh(script) };
        let ran = run(&command, &dir, None, &CancellationToken::new()).await;
        assert_eq!(ran.ending, Ending::TimedOut);
        assert_eq!(std::fs::read_to_string(dir.work().join("got")).unwrap(), "INT\n");
        assert!(ran.duration < long, "ended when the unit did: {:?}", ran.duration);
        // A unit that ended by itself: what it left gets SIGTERM, not its termseq's SIGINT.
        let pids = dir.work().join("pids");
        std::fs::remove_file(&pids).unwrap();
        // (It says it is ready once its traps are set: the leader ends only then.)
        let left = "sh -c 'trap \"echo INT >> got2\" INT; trap \"echo TERM >> got2; exit\" TERM; \
                    echo $$ > pids; while :; do sleep 0.05; done' & \
                    while [ ! -s pids ]; do sleep 0.01; done";
        let stop = vec![(Signal::SIGINT, long)];
        let command = UnitCommand { stop, ..sh(left) };
        let ran = run(&command, &dir, None, &CancellationToken::new()).await;
        assert_eq!(ran.ending, Ending::Exited(0));
        let child: i32 = std::fs::read_to_string(&pids).unwrap().trim().parse().unwrap();
        assert!(gone_soon(child).await);
        assert_eq!(std::fs::read_to_string(dir.work().join("got2")).unwrap(), "TERM\n");
    }

    #[tokio::test]
    async fn processes_left_behind_by_a_finished_unit_are_stopped() {
        let parent = tempfile::tempdir().unwrap();
        let dir = UnitDir::create(parent.path(), "u").unwrap();
        let pids = dir.work().join("pids");
        let ran =
            run(&sh("sleep 30 & echo $! > pids"), &dir, None, &CancellationToken::new()).await;
        assert_eq!(ran.ending, Ending::Exited(0));
        let child: i32 = std::fs::read_to_string(pids).unwrap().trim().parse().unwrap();
        let ended = Instant::now();
        while alive(child) && ended.elapsed() < Duration::from_millis(100) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(!alive(child), "the background child outlived its unit");
    }

    /// Waits for the pid a unit's daemon wrote to `file`.
    async fn daemon_pid(file: &Path) -> i32 {
        for _ in 0..2000 {
            if let Some(pid) =
                std::fs::read_to_string(file).ok().and_then(|s| s.trim().parse().ok())
            {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("no pid in {}", file.display());
    }

    async fn gone_soon(pid: i32) -> bool {
        for _ in 0..500 {
            if !alive(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        false
    }

    /// A double fork and `setsid`: the daemon leaves the unit's process group and session.
    const DAEMON: &str =
        "(setsid sh -c 'echo $$ > daemon.tmp; mv daemon.tmp daemon; exec sleep 30' &); \
                          while [ ! -e daemon ]; do sleep 0.001; done";

    #[tokio::test]
    #[ignore = "needs root (or a delegated cgroup): `.ci/run` runs it as root with --ignored"]
    async fn a_unit_that_calls_setsid_is_stopped_whole_in_its_cgroup() {
        let cgroups = crate::exec::cgroup::Cgroups::detect()
            .expect("a writable cgroup v2 is needed: run this test as root");
        let parent = tempfile::tempdir().unwrap();
        // Without a cgroup the daemon escapes: what this test would catch.
        let dir = UnitDir::create(parent.path(), "u").unwrap();
        let ran = run(&sh(DAEMON), &dir, None, &CancellationToken::new()).await;
        assert_eq!(ran.ending, Ending::Exited(0));
        let escaped = daemon_pid(&dir.work().join("daemon")).await;
        assert!(!gone_soon(escaped).await, "a process group alone does not hold it");
        let _ = nix::sys::signal::kill(Pid::from_raw(escaped), Signal::SIGKILL);

        // In a cgroup: stopped when its unit ends...
        let dir = UnitDir::create(parent.path(), "v").unwrap();
        let cgroup = cgroups.unit().unwrap();
        let ran = run(&sh(DAEMON), &dir, Some(&cgroup), &CancellationToken::new()).await;
        assert_eq!(ran.ending, Ending::Exited(0));
        let daemon = daemon_pid(&dir.work().join("daemon")).await;
        assert!(gone_soon(daemon).await, "the daemon outlived its unit");
        assert!(cgroup.pids().is_empty());
        drop(cgroup);
        // ...and when it is cancelled, the daemon with its unit still running.
        let dir = UnitDir::create(parent.path(), "w").unwrap();
        let cgroup = cgroups.unit().unwrap();
        let cancel = CancellationToken::new();
        let script = format!("{DAEMON}; sleep 30");
        let command = sh(&script);
        let unit = run(&command, &dir, Some(&cgroup), &cancel);
        tokio::pin!(unit);
        let daemon_file = dir.work().join("daemon");
        let daemon = tokio::select! {
            pid = daemon_pid(&daemon_file) => pid,
            _ = &mut unit => panic!("the unit ended on its own"),
        };
        let in_cgroup = crate::exec::cgroup::cgroup_of(daemon).unwrap();
        assert!(in_cgroup.ends_with("/unit-1"), "{in_cgroup}");
        cancel.cancel();
        assert_eq!(unit.await.ending, Ending::Cancelled);
        assert!(gone_soon(daemon).await, "the daemon outlived its cancelled unit");
    }
}
