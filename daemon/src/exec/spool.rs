//! Where command units' output waits on the coordinator until its client takes it: a dir per
//! job under the state dir's `spool/`, and in it a file per chunk's stream. A file is named for
//! the coordinator's run and the stream's assignment (`RUN-ASSIGNMENT.spool`), or the run's
//! delivery of units held through a lost connection (`RUN-dN.spool`), so a chunk run twice
//! never writes into another run's file, in this run or after a restart.
//!
//! Kept across restarts: a command job goes on after one, and the journal names the files its
//! counted chunks spooled ([`crate::journal::Spooled`]). On start, [`Spool::sweep`] removes
//! every file the journal does not name (streams cut short by the stop, jobs forgotten).

use anyhow::{Context, Result};
use proto::command::spool;
use proto::command::UnitReport;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The spool's root dir.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
    /// This coordinator run's part of every file name: when it started, in Unix milliseconds.
    run: u64,
}

impl Spool {
    /// Opens `state_dir/spool`, made if missing, for a run that started at `run` (Unix ms).
    pub fn open(state_dir: &Path, run: u64) -> Result<Spool> {
        let dir = state_dir.join("spool");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Spool { dir, run })
    }

    /// The spool file of an assignment's stream in this run.
    pub fn chunk_file(&self, job: u64, assignment: u64) -> PathBuf {
        self.job_dir(job).join(format!("{}-{assignment}.spool", self.run))
    }

    /// The spool file of this run's delivery `n` (units a worker ran through a lost
    /// connection).
    pub fn delivery_file(&self, job: u64, n: u64) -> PathBuf {
        self.job_dir(job).join(format!("{}-d{n}.spool", self.run))
    }

    /// A file of job `job`'s, by the name the journal keeps.
    pub fn file(&self, job: u64, name: &str) -> PathBuf {
        self.job_dir(job).join(name)
    }

    /// The dir of a job's spool files.
    pub fn job_dir(&self, job: u64) -> PathBuf {
        self.dir.join(format!("job-{job}"))
    }

    /// Whether job `job`'s file `name` holds at least the records of `units` (their reports and
    /// output; earlier tries' reports may come before them): false for a file a power cut lost
    /// or cut short, whose chunk then runs again.
    pub fn holds(&self, job: u64, name: &str, units: &[UnitReport]) -> bool {
        let records: Result<u64, _> = units
            .iter()
            .map(|report| spool::header(report).map(|h| h.len() as u64 + report.body()))
            .sum();
        let size = std::fs::metadata(self.file(job, name)).map(|meta| meta.len());
        matches!((records, size), (Ok(records), Ok(size)) if size >= records)
    }

    /// Removes every job dir and file but those in `keep` (file names by job). Blocking: run
    /// it on start, before any stream writes.
    pub fn sweep(&self, keep: &HashMap<u64, HashSet<String>>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let job =
                path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("job-"));
            let kept = job.and_then(|j| j.parse::<u64>().ok()).and_then(|job| keep.get(&job));
            let Some(kept) = kept.filter(|_| path.is_dir()) else {
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
                continue;
            };
            for file in std::fs::read_dir(&path)? {
                let file = file?;
                if !file.file_name().to_str().is_some_and(|name| kept.contains(name)) {
                    std::fs::remove_file(file.path())?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_per_assignment_and_run_in_a_dir_per_job() {
        let state = tempfile::tempdir().unwrap();
        let spool = Spool::open(state.path(), 1700).unwrap();
        assert_eq!(spool.job_dir(3), state.path().join("spool/job-3"));
        assert_eq!(spool.chunk_file(3, 7), state.path().join("spool/job-3/1700-7.spool"));
        assert_eq!(spool.file(3, "1-2.spool"), state.path().join("spool/job-3/1-2.spool"));
        assert_eq!(spool.delivery_file(3, 7), state.path().join("spool/job-3/1700-d7.spool"));
        let next_run = Spool::open(state.path(), 1800).unwrap();
        assert_ne!(next_run.chunk_file(3, 7), spool.chunk_file(3, 7), "never the same file");
    }

    #[test]
    fn a_file_holds_its_units_only_if_none_of_it_was_lost() {
        let state = tempfile::tempdir().unwrap();
        let spool = Spool::open(state.path(), 1).unwrap();
        let mut units = crate::tasks::cmd::reports(0..2, proto::command::UnitEnding::Exited(0));
        units[1].stdout = 3;
        let mut whole = spool::header(&units[0]).unwrap();
        whole.extend(spool::header(&units[1]).unwrap());
        whole.extend(b"out");
        std::fs::create_dir_all(spool.job_dir(1)).unwrap();
        std::fs::write(spool.file(1, "a.spool"), &whole).unwrap();
        assert!(spool.holds(1, "a.spool", &units));
        std::fs::write(spool.file(1, "b.spool"), &whole[..whole.len() - 1]).unwrap();
        assert!(!spool.holds(1, "b.spool", &units), "cut short");
        assert!(!spool.holds(1, "c.spool", &units), "lost");
        assert!(spool.holds(1, "b.spool", &units[..1]), "one unit's record is whole");
    }

    #[test]
    fn a_sweep_keeps_only_the_files_named() {
        let state = tempfile::tempdir().unwrap();
        let spool = Spool::open(state.path(), 1).unwrap();
        for (job, assignment) in [(1, 1), (1, 2), (2, 1), (3, 1)] {
            std::fs::create_dir_all(spool.job_dir(job)).unwrap();
            std::fs::write(spool.chunk_file(job, assignment), b"out").unwrap();
        }
        std::fs::write(state.path().join("spool/stray"), b"?").unwrap();
        std::fs::create_dir_all(state.path().join("spool/job-x")).unwrap();
        let keep = HashMap::from([
            (1, HashSet::from(["1-2.spool".to_string()])),
            (3, HashSet::from(["1-1.spool".to_string(), "gone.spool".to_string()])),
        ]);
        spool.sweep(&keep).unwrap();
        let mut left: Vec<String> = walkdir(state.path().join("spool"));
        left.sort();
        assert_eq!(left, ["job-1/1-2.spool", "job-3/1-1.spool"]);
    }

    fn walkdir(root: PathBuf) -> Vec<String> {
        let mut found = vec![];
        for dir in std::fs::read_dir(&root).unwrap() {
            let dir = dir.unwrap().path();
            for file in std::fs::read_dir(&dir).unwrap() {
                let file = file.unwrap().path();
                found.push(file.strip_prefix(&root).unwrap().display().to_string());
            }
        }
        found
    }
}
