//! A new binary's probation, for both roles, in one place: what a start finds ([`Boot`]), the
//! deadline by which it must prove healthy, and the two ways it ends: passed (the update is
//! committed) or failed (`marmotd.prev` is put back and the process re-executes it).
//!
//! A coordinator passes once it listens; a worker once its coordinator welcomes it, within
//! [`DEADLINE`]. Each step's file work runs off the async runtime ([`super::pending`] holds
//! the steps themselves).

use super::pending::{self, Boot};
use anyhow::Result;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a worker's new binary has to be welcomed by its coordinator before it is rolled
/// back.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// A process's probation, from its start.
#[derive(Debug)]
pub struct Probation {
    state_dir: PathBuf,
    exe: PathBuf,
    boot: Boot,
}

impl Probation {
    /// Starts a process running `own_sha256` from `exe`: counts the start of a new binary on
    /// probation, or rolls one back that failed too often.
    pub async fn start(state_dir: PathBuf, exe: PathBuf, own_sha256: String) -> Result<Self> {
        let (dir, path) = (state_dir.clone(), exe.clone());
        let boot = tokio::task::spawn_blocking(move || pending::on_start(&dir, &path, &own_sha256))
            .await??;
        Ok(Probation { state_dir, exe, boot })
    }

    /// What the start found.
    pub fn boot(&self) -> Boot {
        self.boot
    }

    /// The process is healthy: a pending update is committed.
    pub async fn pass(&self) {
        let dir = self.state_dir.clone();
        let _ = tokio::task::spawn_blocking(move || pending::commit(&dir)).await;
    }

    /// The new binary is not healthy: the previous one is put back (re-executing it is the
    /// caller's).
    pub async fn fail(&self, why: String) -> Result<()> {
        let (dir, exe) = (self.state_dir.clone(), self.exe.clone());
        tokio::task::spawn_blocking(move || pending::roll_back(&dir, &exe, &why)).await?
    }

    /// On probation, fails it unless it passed within `deadline`, then cancels `restart` so
    /// that the previous binary runs. Does nothing for a start that is not on probation.
    pub async fn watch(self: Arc<Self>, deadline: Duration, restart: CancellationToken) {
        if self.boot != Boot::OnProbation {
            return;
        }
        tokio::time::sleep(deadline).await;
        let dir = self.state_dir.clone();
        let still = tokio::task::spawn_blocking(move || pending::is_pending(&dir)).await;
        if !matches!(still, Ok(true)) {
            return;
        }
        match self.fail(format!("not healthy within {deadline:?}")).await {
            Ok(()) => restart.cancel(),
            Err(e) => tracing::error!("cannot roll back: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state dir with an update pending from `old` to `new`, and `exe` (`new`) beside its
    /// `.prev` (`old`).
    fn pending_update() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("marmotd");
        std::fs::write(&exe, b"new").unwrap();
        std::fs::write(super::super::prev::prev_path(&exe), b"old").unwrap();
        pending::record(dir.path(), "old", "new").unwrap();
        (dir, exe)
    }

    #[tokio::test]
    async fn a_new_binary_not_healthy_in_time_is_rolled_back_and_restarts() {
        let (dir, exe) = pending_update();
        let probation = Probation::start(dir.path().into(), exe.clone(), "new".into()).await;
        let probation = Arc::new(probation.unwrap());
        assert_eq!(probation.boot(), Boot::OnProbation);
        let restart = CancellationToken::new();
        probation.clone().watch(Duration::from_millis(10), restart.clone()).await;
        assert!(restart.is_cancelled(), "the previous binary runs");
        assert_eq!(std::fs::read(&exe).unwrap(), b"old");
        assert!(!pending::is_pending(dir.path()));
    }

    #[tokio::test]
    async fn a_passed_probation_is_committed_and_its_deadline_does_nothing() {
        let (dir, exe) = pending_update();
        let probation = Probation::start(dir.path().into(), exe.clone(), "new".into()).await;
        let probation = Arc::new(probation.unwrap());
        probation.pass().await;
        assert!(!pending::is_pending(dir.path()), "committed");
        let restart = CancellationToken::new();
        probation.watch(Duration::from_millis(10), restart.clone()).await;
        assert!(!restart.is_cancelled());
        assert_eq!(std::fs::read(&exe).unwrap(), b"new", "kept");
    }

    #[tokio::test]
    async fn a_start_with_nothing_pending_is_normal_and_never_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("marmotd");
        std::fs::write(&exe, b"bin").unwrap();
        let probation = Probation::start(dir.path().into(), exe.clone(), "x".into()).await;
        let probation = Arc::new(probation.unwrap());
        assert_eq!(probation.boot(), Boot::Normal);
        let restart = CancellationToken::new();
        probation.watch(Duration::ZERO, restart.clone()).await;
        assert!(!restart.is_cancelled());
    }
}
