//! A cgroup of its own for each unit of a user's command, so that nothing it starts outlives it.
//!
//! A process group is not enough: a unit that calls `setsid` (a daemonizing script, a double
//! fork) leaves its group and would survive the unit's end, reparented to PID 1. A cgroup
//! cannot be left by an unprivileged process, so the whole unit is found and killed there
//! (`cgroup.kill`, or SIGKILL to each of its processes on kernels before 5.14).
//!
//! The worker makes its units' cgroups under its own cgroup v2, which must be writable: under
//! systemd the shipped unit has `Delegate=yes` (its cgroup belongs to the service's user); run
//! by hand, it is writable for root. Where it is not (no cgroup v2, a desktop session), units
//! run in their process group alone, and the worker says so once when it starts.
//!
//! The unit's process moves itself into its cgroup between fork and exec: one `write` of "0"
//! to the cgroup's `cgroup.procs`, opened before the fork, so that nothing it starts is ever
//! outside.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The start of the name of a worker's cgroup for its units, followed by `PID-N`.
const PREFIX: &str = "marmot-units-";

/// Removes the units' cgroups that workers no longer running left under `own` (a worker killed
/// or stopped does not remove its own; systemd removes a service's whole subtree, a worker run
/// by hand leaves them). A cgroup with a process in it cannot be removed, so nothing running
/// is touched; another live worker's are left alone.
fn sweep(own: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(own) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else { continue };
        let pid = pid.split('-').next().unwrap_or_default();
        let alive = std::path::Path::new("/proc").join(pid).exists();
        if pid.is_empty() || alive {
            continue;
        }
        for unit in std::fs::read_dir(entry.path()).into_iter().flatten().flatten() {
            if unit.path().is_dir() {
                let _ = std::fs::remove_dir(unit.path());
            }
        }
        let _ = std::fs::remove_dir(entry.path());
    }
}

/// Where this worker makes its units' cgroups.
#[derive(Debug)]
pub struct Cgroups {
    parent: PathBuf,
    /// Units' cgroups made so far: the next one's name.
    made: AtomicU64,
}

impl Cgroups {
    /// The cgroup for units under this process's own cgroup v2, or why there is none.
    pub fn detect() -> Result<Cgroups, String> {
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
        };
        let mount = cgroup2_mount(&read("/proc/self/mountinfo")?)
            .ok_or("no cgroup v2 file system is mounted")?;
        let own = own_cgroup(&read("/proc/self/cgroup")?)
            .ok_or("this process is in no cgroup v2 (a cgroup v1 system)")?;
        let own = mount.join(own.trim_start_matches('/'));
        sweep(&own);
        // One per worker: `marmotd local` runs several in one process.
        static WORKERS: AtomicU64 = AtomicU64::new(0);
        let worker = WORKERS.fetch_add(1, Ordering::Relaxed);
        let parent = own.join(format!("{PREFIX}{}-{worker}", std::process::id()));
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("cannot make the cgroup {}: {e}", parent.display()))?;
        Ok(Cgroups { parent, made: AtomicU64::new(0) })
    }

    /// A new cgroup for one unit.
    pub fn unit(&self) -> std::io::Result<UnitCgroup> {
        // A worker re-executed on a new binary (same PID) may find its old cgroups: the next
        // free name then.
        let mut tries = 0;
        let dir = loop {
            let n = self.made.fetch_add(1, Ordering::Relaxed);
            let dir = self.parent.join(format!("unit-{n}"));
            match std::fs::create_dir(&dir) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 64 => tries += 1,
                made => break made.map(|()| dir)?,
            }
        };
        let procs = File::options().write(true).open(dir.join("cgroup.procs"));
        match procs {
            Ok(procs) => Ok(UnitCgroup { dir, procs }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(e)
            }
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.parent);
    }
}

/// One unit's cgroup, removed when dropped (once its processes are gone).
#[derive(Debug)]
pub struct UnitCgroup {
    dir: PathBuf,
    /// `cgroup.procs`, opened before the fork (close-on-exec, as std opens every file).
    procs: File,
}

impl UnitCgroup {
    /// The file descriptor the child writes "0" to, between fork and exec, to move itself in.
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// The processes in the cgroup now.
    pub fn pids(&self) -> Vec<Pid> {
        let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        procs.lines().filter_map(|l| l.trim().parse().ok()).map(Pid::from_raw).collect()
    }

    /// Sends `signal` to every process in the cgroup but those of process group `but`
    /// (which the caller signals itself: a process signalled twice may run its handler
    /// twice); `false` when there was none.
    pub fn signal(&self, signal: Signal, but: Option<Pid>) -> bool {
        let pids = self.pids();
        for &pid in &pids {
            if but.is_none() || nix::unistd::getpgid(Some(pid)).ok() != but {
                let _ = kill(pid, signal);
            }
        }
        !pids.is_empty()
    }

    /// Kills every process in the cgroup, those it forks meanwhile too.
    pub fn kill(&self) {
        let killed = File::options()
            .write(true)
            .open(self.dir.join("cgroup.kill"))
            .and_then(|mut kill| kill.write_all(b"1"));
        if killed.is_err() {
            // Before Linux 5.14: one process at a time, until none is left.
            let until = Instant::now() + Duration::from_secs(1);
            while self.signal(Signal::SIGKILL, None) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Whether no process is left in the cgroup.
    fn empty(&self) -> bool {
        let events = std::fs::read_to_string(self.dir.join("cgroup.events")).unwrap_or_default();
        events.lines().any(|l| l == "populated 0")
    }
}

impl Drop for UnitCgroup {
    fn drop(&mut self) {
        // Killed processes leave their cgroup as they exit, a moment later.
        let until = Instant::now() + Duration::from_millis(500);
        while !self.empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::debug!("cannot remove the cgroup {}: {e}", self.dir.display());
        }
    }
}

/// Where the cgroup v2 file system is mounted, from `/proc/self/mountinfo`: `/sys/fs/cgroup`
/// on a unified system, `/sys/fs/cgroup/unified` on a hybrid one.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        let (fields, after) = line.split_once(" - ")?;
        let fstype = after.split_whitespace().next()?;
        let mount_point = fields.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(unescape(mount_point)))
    })
}

/// The mountinfo escapes of a path (`\040` for a space, and so on).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let digits = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(digits, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroup v2 path, from `/proc/self/cgroup` (its `0::PATH` line).
fn own_cgroup(proc_cgroup: &str) -> Option<String> {
    let path = proc_cgroup.lines().find_map(|line| line.strip_prefix("0::"))?;
    // "(deleted)" or anything not a path: not one to make cgroups under.
    path.starts_with('/').then(|| path.trim_end().to_string()).filter(|p| !p.ends_with(')'))
}

/// The cgroup v2 path of process `pid` (for tests: where a unit's process is).
#[cfg(test)]
pub fn cgroup_of(pid: i32) -> Option<String> {
    own_cgroup(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_in_mountinfo_on_unified_and_hybrid_systems() {
        let hybrid = "\
24 30 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
33 24 0:28 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
35 33 0:30 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,name=systemd";
        assert_eq!(cgroup2_mount(hybrid), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let unified =
            "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:4 - cgroup2 cgroup2 rw";
        assert_eq!(cgroup2_mount(unified), Some(PathBuf::from("/sys/fs/cgroup")));
        let v1 = "35 33 0:30 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu";
        assert_eq!(cgroup2_mount(v1), None);
        let spaced = "34 33 0:29 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw";
        assert_eq!(cgroup2_mount(spaced), Some(PathBuf::from("/mnt/my cgroups")));
        assert_eq!(cgroup2_mount("garbage without a separator"), None);
    }

    #[test]
    #[ignore = "needs root (or a delegated cgroup): `.ci/run` runs it as root with --ignored"]
    fn workers_in_one_process_make_their_units_cgroups_apart() {
        let detect = || Cgroups::detect().expect("a writable cgroup v2: run this test as root");
        let (one, two) = (detect(), detect());
        assert_ne!(one.parent, two.parent, "marmotd local runs several workers in a process");
        let (a, b) = (one.unit().unwrap(), two.unit().unwrap());
        assert_ne!(a.dir, b.dir);
        // A cgroup left where the next one would go (a re-executed worker's) is stepped over.
        std::fs::create_dir(one.parent.join("unit-1")).unwrap();
        let c = one.unit().unwrap();
        assert!(c.dir.ends_with("unit-2"), "{}", c.dir.display());
        std::fs::remove_dir(one.parent.join("unit-1")).unwrap();
        drop((a, b, c));
        let parents = [one.parent.clone(), two.parent.clone()];
        drop((one, two));
        assert!(parents.iter().all(|p| !p.exists()), "removed with their workers");
        // What a dead worker left is swept by the next one; a live one's is kept.
        let own = parents[0].parent().unwrap();
        let dead = own.join(format!("{PREFIX}{}-0", i32::MAX));
        std::fs::create_dir_all(dead.join("unit-0")).unwrap();
        let live = own.join(format!("{PREFIX}1-0"));
        std::fs::create_dir_all(&live).unwrap();
        let three = detect();
        assert!(!dead.exists(), "a dead worker's cgroups are swept");
        assert!(live.exists(), "PID 1 is alive: its cgroups are its own");
        std::fs::remove_dir(&live).unwrap();
        drop(three);
    }

    #[test]
    #[ignore = "needs root (or a delegated cgroup): `.ci/run` runs it as root with --ignored"]
    fn a_signal_to_the_cgroup_skips_the_group_the_caller_signals() {
        let cgroups = Cgroups::detect().expect("a writable cgroup v2: run this test as root");
        let unit = cgroups.unit().unwrap();
        use std::os::unix::process::CommandExt;
        let spawn = |group| {
            let mut sleep = std::process::Command::new("sleep");
            let child = sleep.arg("30").process_group(group).spawn().unwrap();
            std::fs::write(unit.dir.join("cgroup.procs"), child.id().to_string()).unwrap();
            child
        };
        let (mut leader, mut other) = (spawn(0), spawn(0));
        let group = Pid::from_raw(leader.id() as i32);
        let stopped = |pid: u32| {
            // The state after the name's closing parenthesis: T when stopped.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('T'))
        };
        assert!(unit.signal(Signal::SIGSTOP, Some(group)));
        let until = Instant::now() + Duration::from_secs(5);
        while !stopped(other.id()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(stopped(other.id()), "the other group's process got it");
        assert!(!stopped(leader.id()), "the caller's group did not get it twice");
        unit.kill();
        let _ = (leader.wait(), other.wait());
        drop(unit);
    }

    #[test]
    fn unescaping_leaves_what_is_not_an_octal_escape() {
        assert_eq!(unescape("a\\040b\\011c"), "a b\tc");
        assert_eq!(unescape("a\\09"), "a\\09");
        assert_eq!(unescape("end\\"), "end\\");
        assert_eq!(unescape("\\134x"), "\\x");
    }

    #[test]
    fn the_own_cgroup_is_the_unified_line() {
        let hybrid = "9:name=systemd:/\n4:memory:/x\n0::/system.slice/marmot-worker.service\n";
        assert_eq!(own_cgroup(hybrid).as_deref(), Some("/system.slice/marmot-worker.service"));
        assert_eq!(own_cgroup("0::/\n").as_deref(), Some("/"));
        assert_eq!(own_cgroup("4:memory:/x\n"), None, "cgroup v1 only");
        assert_eq!(own_cgroup("0::/gone (deleted)\n"), None);
        assert_eq!(own_cgroup("0::relative\n"), None);
    }
}
