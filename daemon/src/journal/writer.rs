//! The journal's writer thread: batches of records into rows, one transaction per group of
//! batches, and pruning of old results.

use super::{Batch, Record, Retention};
use proto::api::{JobState, JobView};
use rusqlite::{params, Connection};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Batches committed in one transaction, at most.
const GROUP: usize = 4096;
/// How long a group waits for more batches after the first, always: a client running tiny
/// jobs one after another then costs one commit (and one wake-up of this thread) for every
/// few jobs instead of three per job, and its commits follow within a few milliseconds...
const GATHER: Duration = Duration::from_millis(1);
/// ...and how long when the journal is busy...
const LINGER: Duration = Duration::from_millis(5);
/// ...which it is when this many batches were waiting for the last commit (a client running
/// jobs one after another makes at most three per job: submitted, ended, read).
const BUSY: usize = 8;
/// How often old results are pruned while the coordinator runs (and once on start).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

pub(super) struct Writer {
    pub conn: Connection,
    pub path: String,
    pub retention: Retention,
    /// The number of the last batch committed, or given up on.
    pub synced: watch::Sender<u64>,
    /// Why the last commit failed, while it does: submissions are refused meanwhile.
    pub failing: Arc<Mutex<Option<String>>>,
}

/// How often a journal that could not be written is tried again, new records or not.
const RETRY: Duration = Duration::from_secs(1);

/// Records a journal that cannot be written keeps in memory, at most, before it drops the
/// ones that only save work ([`Backlog::shed`]).
pub const BACKLOG: usize = 200_000;

impl Writer {
    /// Commits batches as they come until the queue closes. Batches that fail (a full disk)
    /// are kept, in order, and tried again with the next ones and every [`RETRY`].
    pub fn run(mut self, queue: Receiver<Batch>) {
        lower_priority();
        let mut pruned = Instant::now();
        let mut backlog = Backlog::default();
        // Wait a moment for more after the first batch, longer under load (the last group
        // found many batches waiting): fewer, larger commits.
        let mut busy = false;
        loop {
            let first = if backlog.is_empty() {
                queue.recv().ok()
            } else {
                match queue.recv_timeout(RETRY) {
                    Ok(batch) => Some(batch),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            // Nothing new after a wait: the backlog is tried again on its own.
            let Some(first) = first.or_else(|| backlog.retry()) else { break };
            // Gathered while asleep, not while waiting on the queue: a sender then finds
            // nobody to wake, and the driver makes no system call per batch.
            std::thread::sleep(if busy { LINGER } else { GATHER });
            let mut group = backlog.take();
            group.push(first);
            let limit = group.len() + GROUP;
            while group.len() < limit {
                match queue.try_recv() {
                    Ok(batch) => group.push(batch),
                    Err(_) => break,
                }
            }
            busy = group.len() >= BUSY;
            let last = group.last().map_or(0, |b| b.number);
            self.commit(group, &mut backlog);
            // Those waiting are answered either way: a failing disk must not hang the API.
            self.synced.send_replace(last);
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = Instant::now();
                if let Err(e) = prune(&self.conn, self.retention, super::unix_ms()) {
                    tracing::warn!("cannot prune the journal {}: {e}", self.path);
                }
            }
        }
        // Closed: one last try for what could not be written, then fold the WAL back into
        // the file, so it is whole on its own.
        let group = backlog.take();
        if !group.is_empty() {
            self.commit(group, &mut backlog);
            if !backlog.is_empty() {
                tracing::error!(
                    "the journal {} could not be written before the coordinator stopped: {} \
                     lost (the jobs they belong to are not resumed)",
                    self.path,
                    proto::human::count(backlog.records as u64, "record", "records")
                );
            }
        }
        let _ = checkpoint(&self.conn);
    }

    /// Writes `group`, or keeps it in `backlog` and says so once.
    fn commit(&mut self, group: Vec<Batch>, backlog: &mut Backlog) {
        // Written before the lock is taken: the driver reads it on every submission.
        let written = write(&mut self.conn, &group);
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match written {
            Ok(()) => {
                if failing.take().is_some() {
                    tracing::info!(
                        "the journal {} is written again: what waited in memory is kept",
                        self.path
                    );
                }
            }
            Err(e) => {
                if failing.is_none() {
                    tracing::error!(
                        "cannot write the journal {} ({e}): new jobs are refused until it can \
                         be; the running jobs' records wait in memory and are written then",
                        self.path
                    );
                }
                *failing = Some(e.to_string());
                backlog.keep(group);
                let dropped = backlog.shed(BACKLOG);
                if dropped > 0 {
                    tracing::warn!(
                        "the journal {} still cannot be written: dropped {} of running jobs' \
                         progress from memory (after a restart those chunks run again)",
                        self.path,
                        proto::human::count(dropped as u64, "record", "records")
                    );
                }
            }
        }
    }
}

/// Batches that could not be written yet, in order.
#[derive(Default)]
struct Backlog {
    batches: Vec<Batch>,
    /// Records in `batches`.
    records: usize,
}

impl Backlog {
    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    fn keep(&mut self, group: Vec<Batch>) {
        self.records += group.iter().map(|b| b.records.len()).sum::<usize>();
        self.batches = group;
    }

    fn take(&mut self) -> Vec<Batch> {
        self.records = 0;
        std::mem::take(&mut self.batches)
    }

    /// The last batch, taken out to lead a retry (the rest follow with it).
    fn retry(&mut self) -> Option<Batch> {
        let batch = self.batches.pop()?;
        self.records -= batch.records.len();
        Some(batch)
    }

    /// Keeps at most `max` records: drops first the chunks given (a result held through a
    /// restart is then not taken, and the chunk runs again), then the chunks counted (they
    /// run again after a restart). What makes a job — submitted, ended, read — is never
    /// dropped. Returns how many were.
    fn shed(&mut self, max: usize) -> usize {
        let before = self.records;
        let sheddable: [fn(&Record) -> bool; 2] =
            [|r| matches!(r, Record::Given { .. }), |r| matches!(r, Record::Chunk { .. })];
        for drop_it in sheddable {
            if self.records <= max {
                break;
            }
            for batch in &mut self.batches {
                batch.records.retain(|r| !drop_it(r));
            }
            self.records = self.batches.iter().map(|b| b.records.len()).sum();
        }
        before - self.records
    }
}

/// Writes a group of batches in one transaction. A job that starts and ends within the group
/// (a tiny job, under load) is written once, as it ended: what it needed to be resumed would
/// be deleted in the same transaction.
fn write(conn: &mut Connection, group: &[Batch]) -> rusqlite::Result<()> {
    let ended: HashSet<u64> = group
        .iter()
        .flat_map(|b| &b.records)
        .filter_map(|r| match r {
            Record::Ended { job, .. } => Some(*job),
            _ => None,
        })
        .collect();
    // Read in this group too: the read is written with the job's row.
    let read: HashMap<u64, i64> = group
        .iter()
        .flat_map(|b| b.records.iter().map(move |r| (r, b.at_ms)))
        .filter_map(|(r, at_ms)| match r {
            Record::Read { job } => Some((*job, at_ms)),
            _ => None,
        })
        .collect();
    // And how much of its output its client took (a command's, which outlives the job).
    let mut taken: HashMap<u64, u32> = HashMap::new();
    for record in group.iter().flat_map(|b| &b.records) {
        if let Record::Taken { job, upto } = record {
            let most = taken.entry(*job).or_default();
            *most = (*most).max(*upto);
        }
    }
    let mut submitted: HashMap<u64, (&Record, i64)> = HashMap::new();
    let mut written_read = HashSet::new();
    let tx = conn.transaction()?;
    for batch in group {
        for record in &batch.records {
            match record {
                Record::Submitted { job, .. } if ended.contains(job) => {
                    submitted.insert(*job, (record, batch.at_ms));
                    continue;
                }
                // What waits for the client is kept past the job's end.
                Record::Chunk { job, phase, chunk, spooled: Some(spooled), .. }
                    if ended.contains(job) =>
                {
                    insert_spooled(&tx, (*job, *phase, *chunk), spooled)?;
                    continue;
                }
                Record::Phase { job, .. }
                | Record::Chunk { job, .. }
                | Record::Revoked { job, .. }
                | Record::Given { job, .. }
                    if ended.contains(job) =>
                {
                    continue
                }
                // Written with the job's row (a command job's client may take output after
                // its end: then the row is there).
                Record::Taken { job, .. } if submitted.contains_key(job) => continue,
                Record::Ended { job, view } => {
                    if let Some((first, submitted_ms)) = submitted.remove(job) {
                        let times = (submitted_ms, batch.at_ms, read.get(job).copied());
                        let taken = taken.get(job).copied().unwrap_or_default();
                        insert_ended(&tx, first, times, taken, view)?;
                        written_read.insert(*job);
                        continue;
                    }
                }
                Record::Read { job } if written_read.contains(job) => continue,
                _ => {}
            }
            apply(&tx, record, batch.at_ms)?;
        }
    }
    tx.commit()
}

/// A job submitted and ended within one group: its row as it ended.
fn insert_ended(
    conn: &Connection,
    submitted: &Record,
    (submitted_ms, ended_ms, read_ms): (i64, i64, Option<i64>),
    taken: u32,
    view: &JobView,
) -> rusqlite::Result<()> {
    let Record::Submitted { job, request, verify, client } = submitted else { return Ok(()) };
    let json = |e: serde_json::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
    let request = serde_json::to_string(request).map_err(json)?;
    let state = view.state.to_string();
    let view = serde_json::to_string(view).map_err(json)?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO jobs \
         (id, request, verify, client, state, submitted_ms, ended_ms, read_ms, taken, view) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        int(*job),
        request,
        verify,
        client,
        state,
        submitted_ms,
        ended_ms,
        read_ms,
        taken,
        view
    ])?;
    Ok(())
}

/// Deletes what an ended job needed to be resumed (its phases and counted chunks).
fn forget_progress(conn: &Connection, job: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM chunks WHERE job = ?1")?.execute([int(job)])?;
    conn.prepare_cached("DELETE FROM phases WHERE job = ?1")?.execute([int(job)])?;
    conn.prepare_cached("DELETE FROM given WHERE job = ?1")?.execute([int(job)])?;
    Ok(())
}

/// Keeps where chunk `chunk` of phase `phase` of command job `job` spooled its output.
fn insert_spooled(
    conn: &Connection,
    (job, phase, chunk): (u64, u32, u32),
    spooled: &crate::journal::Spooled,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO spooled (job, seq, phase, chunk, first_unit, units, file) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        int(job),
        int(spooled.seq),
        phase,
        chunk,
        int(spooled.first_unit),
        int(spooled.units),
        spooled.file
    ])?;
    Ok(())
}

/// SQLite stores integers as `i64`; units and ids above `i64::MAX` keep their bits.
fn int(n: u64) -> i64 {
    n as i64
}

fn apply(conn: &Connection, record: &Record, at_ms: i64) -> rusqlite::Result<()> {
    let json = |e: serde_json::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
    match record {
        Record::Reserved { upto } => {
            conn.prepare_cached("UPDATE meta SET value = max(value, ?1) WHERE key = 'last_job'")?
                .execute([int(*upto)])?;
        }
        Record::Released { last } => {
            conn.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'last_job'")?
                .execute([int(*last)])?;
        }
        Record::Submitted { job, request, verify, client } => {
            let request = serde_json::to_string(request).map_err(json)?;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO jobs (id, request, verify, client, state, submitted_ms) \
                 VALUES (?1, ?2, ?3, ?4, 'running', ?5)",
            )?
            .execute(params![int(*job), request, verify, client, at_ms])?;
        }
        Record::Phase { job, phase, units, chunk_units } => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO phases (job, phase, units, chunk_units) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![int(*job), phase, int(*units), int(*chunk_units)])?;
        }
        Record::Chunk { job, phase, chunk, start, end, worker, output, spooled } => {
            if let Some(spooled) = spooled {
                insert_spooled(conn, (*job, *phase, *chunk), spooled)?;
            }
            let output = match output {
                Some(output) => Some(
                    proto::frame::encode(output)
                        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
                        .to_vec(),
                ),
                None => None,
            };
            conn.prepare_cached(
                "INSERT OR REPLACE INTO chunks (job, phase, chunk, start, end, worker, output) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                int(*job),
                phase,
                chunk,
                int(*start),
                int(*end),
                worker,
                output
            ])?;
        }
        Record::Taken { job, upto } => {
            conn.prepare_cached("UPDATE jobs SET taken = max(taken, ?2) WHERE id = ?1")?
                .execute(params![int(*job), upto])?;
        }
        Record::Forgotten { job } => {
            conn.prepare_cached("DELETE FROM spooled WHERE job = ?1")?.execute([int(*job)])?;
        }
        Record::Ended { job, view } => {
            let state = view.state.to_string();
            let view = serde_json::to_string(view).map_err(json)?;
            conn.prepare_cached(
                "UPDATE jobs SET state = ?2, ended_ms = ?3, view = ?4 WHERE id = ?1",
            )?
            .execute(params![int(*job), state, at_ms, view])?;
            forget_progress(conn, *job)?;
        }
        Record::Abandoned { job, error } => {
            tracing::debug!("job {job} failed on resume: {error}");
            conn.prepare_cached("UPDATE jobs SET state = 'failed', ended_ms = ?2 WHERE id = ?1")?
                .execute(params![int(*job), at_ms])?;
            forget_progress(conn, *job)?;
        }
        Record::Read { job } => {
            conn.prepare_cached("UPDATE jobs SET read_ms = coalesce(read_ms, ?2) WHERE id = ?1")?
                .execute(params![int(*job), at_ms])?;
        }
        Record::Given { job, phase, chunk, member } => {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO given (job, phase, chunk, member) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![int(*job), phase, chunk, member])?;
        }
        Record::Revoked { job, phase, chunks } => {
            let mut delete = conn.prepare_cached(
                "DELETE FROM chunks WHERE job = ?1 AND phase = ?2 AND chunk = ?3",
            )?;
            for chunk in chunks {
                delete.execute(params![int(*job), phase, chunk])?;
            }
        }
        Record::Reviewed { job, view } => {
            let view = serde_json::to_string(view).map_err(json)?;
            conn.prepare_cached("UPDATE jobs SET view = ?2 WHERE id = ?1 AND view IS NOT NULL")?
                .execute(params![int(*job), view])?;
        }
    }
    Ok(())
}

/// Deletes ended jobs past their retention: a read one past either bound (older than
/// `keep_for`, or not among the newest `keep_count`), an unread one only past both. Returns
/// how many went; gives their pages back to the file system.
pub fn prune(conn: &Connection, retention: Retention, now_ms: i64) -> rusqlite::Result<usize> {
    let cutoff = now_ms.saturating_sub(retention.keep_for.as_millis() as i64);
    let running = JobState::Running.to_string();
    // The oldest id among the newest `keep_count` ended jobs; those below it are past the count.
    let newest_kept: i64 = match retention.keep_count.checked_sub(1) {
        None => i64::MAX,
        Some(offset) => conn
            .query_row(
                "SELECT id FROM jobs WHERE state != ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2",
                params![running, int(offset)],
                |r| r.get(0),
            )
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(0),
                e => Err(e),
            })?,
    };
    let gone = conn.execute(
        "DELETE FROM jobs WHERE state != ?1 AND ( \
            (read_ms IS NOT NULL AND (ended_ms < ?2 OR id < ?3)) \
            OR (read_ms IS NULL AND ended_ms < ?2 AND id < ?3))",
        params![running, cutoff, newest_kept],
    )?;
    if gone > 0 {
        conn.execute("DELETE FROM spooled WHERE job NOT IN (SELECT id FROM jobs)", [])?;
        // Each step of the pragma frees a page: step it to the end.
        let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
        let mut steps = vacuum.query([])?;
        while steps.next()?.is_some() {}
        checkpoint(conn)?;
        tracing::info!("pruned {gone} ended jobs from the journal");
    }
    Ok(gone)
}

/// Folds the WAL into the file and truncates it.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

/// Lowers this thread's CPU priority (nice 10, Linux's per-thread nice): the journal's writes
/// are off every request's path, and on a 2-core laptop they should not delay the threads
/// that answer requests. Not the lowest: beside a busy worker's slot threads it must still
/// keep up (its queue's bound would hold the driver back), and commit within milliseconds.
fn lower_priority() {
    // SAFETY: setpriority only reads its integer arguments; `0` is the calling thread.
    let failed = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, 10) } != 0;
    if failed {
        tracing::debug!("could not lower the journal thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(number: u64, records: Vec<Record>) -> Batch {
        Batch { number, at_ms: 0, records }
    }

    fn given(chunk: u32) -> Record {
        Record::Given { job: 1, phase: 0, chunk, member: "w".into() }
    }

    fn counted(chunk: u32) -> Record {
        let worker = "w".to_string();
        Record::Chunk {
            job: 1,
            phase: 0,
            chunk,
            start: 0,
            end: 1,
            worker,
            output: None,
            spooled: None,
        }
    }

    #[test]
    fn a_backlog_keeps_order_and_sheds_what_only_saves_work() {
        let mut backlog = Backlog::default();
        assert!(backlog.is_empty() && backlog.retry().is_none());
        let made = vec![Record::Read { job: 1 }, given(0), counted(0)];
        backlog.keep(vec![batch(1, made), batch(2, vec![given(1), given(2), counted(1)])]);
        assert_eq!((backlog.batches.len(), backlog.records), (2, 6));
        assert!(!backlog.is_empty());
        // A retry leads with the last batch, its records out of the count until kept again.
        let last = backlog.retry().unwrap();
        assert_eq!((last.number, backlog.records), (2, 3));
        let mut group = backlog.take();
        group.push(last);
        backlog.keep(group);
        assert_eq!((backlog.batches.len(), backlog.records), (2, 6));
        // Under the bound: nothing dropped.
        assert_eq!(backlog.shed(6), 0);
        // Over it: the given chunks go first, and that is enough.
        assert_eq!(backlog.shed(4), 3);
        assert_eq!(backlog.records, 3);
        assert!(backlog
            .batches
            .iter()
            .flat_map(|b| &b.records)
            .all(|r| !matches!(r, Record::Given { .. })));
        // Then the counted ones; the job's own records stay whatever the bound.
        assert_eq!(backlog.shed(0), 2);
        assert_eq!(backlog.records, 1);
        assert!(matches!(backlog.batches[0].records[..], [Record::Read { job: 1 }]));
        // A retry leads with the last batch; the rest come before it, in order.
        let last = backlog.retry().unwrap();
        assert_eq!((last.number, backlog.records), (2, 1));
        let rest = backlog.take();
        assert_eq!(rest.iter().map(|b| b.number).collect::<Vec<_>>(), [1]);
        assert!(backlog.is_empty() && backlog.records == 0);
    }
}
