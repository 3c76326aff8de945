//! An update in progress, kept across restarts until the new binary proves healthy.
//!
//! Just before the swap, `update-pending.json` is written to the state dir: the binary
//! replaced, the one installed, and how many times the new one has started. Each start of the
//! new binary counts itself; past [`MAX_STARTS`] (a binary crashing in a loop under systemd's
//! `Restart=on-failure`) it puts `marmotd.prev` back and re-executes that. A start that gets
//! far enough to be healthy (a worker welcomed by its coordinator, a coordinator listening)
//! commits the update by removing the file.

use super::prev;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Starts of a new binary before it is given up on.
pub const MAX_STARTS: u32 = 3;
const FILE: &str = "update-pending.json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub from_sha256: String,
    pub to_sha256: String,
    pub starts: u32,
}

/// What a starting process should do about a pending update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boot {
    /// No update in progress.
    Normal,
    /// This is the new binary on probation: commit once healthy, roll back if not in time.
    OnProbation,
    /// The new binary failed too often and `marmotd.prev` is back in place: re-execute.
    RolledBack,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// Records an update about to be installed.
pub fn record(state_dir: &Path, from_sha256: &str, to_sha256: &str) -> Result<()> {
    let pending =
        Pending { from_sha256: from_sha256.into(), to_sha256: to_sha256.into(), starts: 0 };
    save(state_dir, &pending)
}

fn save(state_dir: &Path, pending: &Pending) -> Result<()> {
    let json = serde_json::to_vec(pending)?;
    certs::files::write_private(&path(state_dir), &json)
        .with_context(|| format!("cannot write {}", path(state_dir).display()))
}

fn load(state_dir: &Path) -> Option<Pending> {
    let bytes = std::fs::read(path(state_dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Called at every start of a process running `own_sha256` from `exe`.
pub fn on_start(state_dir: &Path, exe: &Path, own_sha256: &str) -> Result<Boot> {
    let Some(mut pending) = load(state_dir) else { return Ok(Boot::Normal) };
    if !prev::prev_path(exe).exists() {
        // Nothing to go back to (removed by hand, or a copied state dir): a record that can
        // never be rolled back would fail every start.
        tracing::warn!(
            "an update was pending but {} is gone: keeping this binary and forgetting the update",
            prev::prev_path(exe).display()
        );
        commit(state_dir);
        return Ok(Boot::Normal);
    }
    if pending.to_sha256 != own_sha256 {
        // The old binary is back (rolled back, or put back by hand): nothing is pending.
        commit(state_dir);
        return Ok(Boot::Normal);
    }
    pending.starts += 1;
    if pending.starts > MAX_STARTS {
        let why = format!("it started {} times without becoming healthy", pending.starts - 1);
        roll_back(state_dir, exe, &why)?;
        return Ok(Boot::RolledBack);
    }
    save(state_dir, &pending)?;
    tracing::info!("new binary on probation (start {} of {MAX_STARTS})", pending.starts);
    Ok(Boot::OnProbation)
}

/// Whether an update waits to be committed.
pub fn is_pending(state_dir: &Path) -> bool {
    path(state_dir).exists()
}

/// The new binary is healthy: the update is done.
pub fn commit(state_dir: &Path) {
    if std::fs::remove_file(path(state_dir)).is_ok() {
        tracing::info!("update committed");
    }
}

/// Puts the previous binary back in place of `exe` and forgets the update.
pub fn roll_back(state_dir: &Path, exe: &Path, why: &str) -> Result<()> {
    tracing::error!("rolling back to {}: {why}", prev::prev_path(exe).display());
    prev::restore_prev(exe)?;
    commit(state_dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_that_keeps_failing_is_rolled_back_after_max_starts() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("marmotd");
        std::fs::write(&exe, b"new").unwrap();
        std::fs::write(prev::prev_path(&exe), b"old").unwrap();
        assert_eq!(on_start(dir.path(), &exe, "aaa").unwrap(), Boot::Normal);
        record(dir.path(), "old-sha", "new-sha").unwrap();
        for _ in 0..MAX_STARTS {
            assert_eq!(on_start(dir.path(), &exe, "new-sha").unwrap(), Boot::OnProbation);
        }
        assert_eq!(on_start(dir.path(), &exe, "new-sha").unwrap(), Boot::RolledBack);
        assert_eq!(std::fs::read(&exe).unwrap(), b"old");
        // The old binary starting finds nothing pending.
        assert_eq!(on_start(dir.path(), &exe, "old-sha").unwrap(), Boot::Normal);
    }

    #[test]
    fn a_record_without_a_previous_binary_is_forgotten_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("marmotd");
        std::fs::write(&exe, b"new").unwrap();
        record(dir.path(), "old-sha", "new-sha").unwrap();
        // Past the limit, with no marmotd.prev to restore: every start used to fail here.
        let stuck = Pending {
            from_sha256: "old-sha".into(),
            to_sha256: "new-sha".into(),
            starts: MAX_STARTS,
        };
        save(dir.path(), &stuck).unwrap();
        assert_eq!(on_start(dir.path(), &exe, "new-sha").unwrap(), Boot::Normal);
        assert!(!is_pending(dir.path()));
        assert_eq!(std::fs::read(&exe).unwrap(), b"new");
        assert_eq!(on_start(dir.path(), &exe, "new-sha").unwrap(), Boot::Normal);
    }

    #[test]
    fn a_healthy_start_commits() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("marmotd");
        std::fs::write(prev::prev_path(&exe), b"old").unwrap();
        record(dir.path(), "old-sha", "new-sha").unwrap();
        assert_eq!(on_start(dir.path(), &exe, "new-sha").unwrap(), Boot::OnProbation);
        commit(dir.path());
        assert_eq!(on_start(dir.path(), &exe, "new-sha").unwrap(), Boot::Normal);
    }
}
