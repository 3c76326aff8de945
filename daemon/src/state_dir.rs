//! Each role's state directory, and the lock that keeps it to one process.
//!
//! The default is the same whether `marmotd` is started by hand or by the systemd units:
//! `/var/lib/marmot/coordinator` and `/var/lib/marmot/worker` as root, else
//! `$XDG_DATA_HOME/marmot/{coordinator,worker}`. One machine can so run both roles without
//! their files (keys, pending updates) meeting. State left by an older marmot directly in
//! `/var/lib/marmot` (or `$XDG_DATA_HOME/marmot`) is still used, with a warning, rather than
//! silently starting a new cluster CA beside it.
//!
//! Two processes on one state dir would re-issue each other's certificates and race on the
//! same files, so each role takes an advisory lock (`flock`) on `ROLE.lock` in its state dir
//! for as long as it runs. A second process is refused with one line naming the first.

use crate::fatal::ConfigError;
use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The two roles that keep state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Coordinator,
    Worker,
}

impl Role {
    /// The role as in paths, units and flags: `coordinator`, `worker`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Worker => "worker",
        }
    }

    /// A file only this role's state has, to recognise an older, shared layout.
    fn marker(self) -> &'static str {
        match self {
            Role::Coordinator => "ca.key",
            Role::Worker => "worker.key",
        }
    }
}

/// Where a role keeps its state when `--state-dir` is not given, and a warning to log when
/// that is an older marmot's layout.
pub fn default_for(role: Role) -> (PathBuf, Option<String>) {
    choose(&proto::paths::state_base(), role)
}

fn choose(base: &Path, role: Role) -> (PathBuf, Option<String>) {
    let dir = base.join(role.name());
    if !dir.exists() && base.join(role.marker()).exists() {
        let warning = format!(
            "using the {} state found in {} (an older marmot's place for it); move it to {} \
             (or pass --state-dir) to silence this",
            role.name(),
            base.display(),
            dir.display()
        );
        return (base.to_path_buf(), Some(warning));
    }
    (dir, None)
}

/// The lock on a state dir, held while the value lives (and released by the kernel if the
/// process dies or re-executes itself).
#[derive(Debug)]
pub struct StateLock {
    _lock: Flock<File>,
}

/// Creates `dir` (private) if needed and locks it for `role`; refuses if another process
/// holds it.
pub fn lock(dir: &Path, role: Role) -> Result<StateLock> {
    certs::files::create_private_dir(dir)
        .with_context(|| format!("cannot create the {} state dir", role.name()))?;
    let path = dir.join(format!("{}.lock", role.name()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim().parse::<u32>() {
                Ok(pid) => format!("another marmotd (pid {pid})"),
                Err(_) => "another marmotd".to_string(),
            };
            return Err(ConfigError::error(format!(
                "{holder} is already running as a {} on the state dir {}: stop it first, or \
                 give this one its own --state-dir",
                role.name(),
                dir.display()
            )));
        }
        Err((_, errno)) => {
            return Err(anyhow::anyhow!("cannot lock {}: {errno}", path.display()));
        }
    };
    // Who holds it, for the message a second process prints.
    lock.set_len(0)?;
    lock.rewind()?;
    write!(lock, "{}", std::process::id())?;
    Ok(StateLock { _lock: lock })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fatal::is_config_error;

    #[test]
    fn one_process_per_role_and_dir() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path(), Role::Coordinator).unwrap();
        let e = lock(dir.path(), Role::Coordinator).unwrap_err();
        assert!(is_config_error(&e), "{e:#}");
        let text = format!("{e:#}");
        assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");
        assert!(text.contains("--state-dir"), "{text}");
        // The other role's lock is its own.
        let _worker = lock(dir.path(), Role::Worker).unwrap();
        drop(first);
        lock(dir.path(), Role::Coordinator).unwrap();
    }

    #[test]
    fn defaults_per_role_and_older_layouts_kept() {
        let base = tempfile::tempdir().unwrap();
        assert_eq!(choose(base.path(), Role::Coordinator), (base.path().join("coordinator"), None));
        assert_eq!(choose(base.path(), Role::Worker).0, base.path().join("worker"));
        std::fs::write(base.path().join("ca.key"), "old").unwrap();
        let (dir, warning) = choose(base.path(), Role::Coordinator);
        assert_eq!(dir, base.path());
        assert!(warning.unwrap().contains("older marmot"));
        assert_eq!(choose(base.path(), Role::Worker).0, base.path().join("worker"));
        // Once the new place exists, it wins.
        std::fs::create_dir(base.path().join("coordinator")).unwrap();
        assert_eq!(choose(base.path(), Role::Coordinator), (base.path().join("coordinator"), None));
    }
}
