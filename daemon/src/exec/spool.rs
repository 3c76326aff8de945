//! Where command units' output waits on the coordinator until its client takes it: a dir per
//! job under the state dir's `spool/`, and in it a file per chunk's stream, one per assignment,
//! so a chunk run twice (a lost worker's) never writes into another run's file.
//!
//! Emptied when the coordinator starts: a command job does not outlive its coordinator.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The spool's root dir.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// Makes `state_dir/spool` anew, empty.
    pub fn open(state_dir: &Path) -> Result<Spool> {
        let dir = state_dir.join("spool");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Spool { dir })
    }

    /// The spool file of an assignment's stream.
    pub fn chunk_file(&self, job: u64, assignment: u64) -> PathBuf {
        self.job_dir(job).join(format!("{assignment}.spool"))
    }

    /// The dir of a job's spool files.
    pub fn job_dir(&self, job: u64) -> PathBuf {
        self.dir.join(format!("job-{job}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_starts_empty_with_a_file_per_assignment_in_a_dir_per_job() {
        let state = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(state.path().join("spool/job-1")).unwrap();
        let spool = Spool::open(state.path()).unwrap();
        assert_eq!(std::fs::read_dir(state.path().join("spool")).unwrap().count(), 0);
        assert_eq!(spool.job_dir(3), state.path().join("spool/job-3"));
        assert_eq!(spool.chunk_file(3, 7), state.path().join("spool/job-3/7.spool"));
    }
}
