//! The coordinator's journal: its jobs in SQLite (`STATE_DIR/journal.sqlite`, WAL mode), so
//! they outlive the coordinator — a crash, `kill -9`, a reboot, `update --coordinator`.
//!
//! The job table ([`crate::coordinator::jobs`]) stays sans-IO: it says what happened as
//! [`Record`]s (a job submitted, a phase cut into chunks, a chunk counted, results taken, a
//! job ended, a result read), and the driver hands them to [`Journal::append`] after each call.
//! One writer thread commits them in batches: whatever arrived while the previous commit ran
//! goes in the next, so a burst of a thousand jobs costs a few commits, and a lone job one
//! (with `synchronous = NORMAL`, a commit is a write to the WAL, not an fsync: it survives the
//! process being killed; a power cut may lose the last commits, never the file). A job's
//! submission is answered without waiting for its commit (which follows within a fraction of
//! a millisecond): a crash in that instant loses the job, and its client, following it after
//! the restart, is told there is no such job. Ids are never given twice all the same: they are
//! reserved in blocks ([`Record::Reserved`]), and a submission that opens a block waits for
//! [`Journal::synced`]. A commit that fails (a full disk) is kept, in order, and tried again
//! with the next ones and every second; meanwhile [`Journal::failing`] says why, and the driver
//! takes no new job.
//!
//! On start, [`Journal::open`] checks the file, creates or migrates its tables, prunes old
//! results, and returns the running jobs ([`Recovered`]) for the job table to resume. A file
//! it cannot use stops the coordinator with one line saying why and what to do; nothing is
//! deleted unless the user asks (`--journal-reset` moves the file aside).
//!
//! # Layout
//! - [`schema`]: the tables (documented there, for `sqlite3`), their version, the checks.
//! - [`writer`]: the writer thread: records into rows, and pruning.
//! - [`read`]: the running jobs on start, ended jobs for the control API.

pub mod read;
pub mod schema;
mod writer;

pub use read::{Leftover, Recovered, RecoveredChunk, RecoveredGiven, RecoveredJob, RecoveredPhase};

use proto::api::JobView;
use proto::job::JobSpec;
use proto::wire::ChunkOutput;
#[cfg(test)]
use rusqlite::params;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The journal's file name in the coordinator's state dir.
pub const FILE: &str = "journal.sqlite";

/// How the checks before opening, and the control API's reads, open the file.
const READ_ONLY: OpenFlags =
    OpenFlags::SQLITE_OPEN_READ_ONLY.union(OpenFlags::SQLITE_OPEN_NO_MUTEX);

/// Batches of records waiting for the writer, at most; the driver waits for room beyond (the
/// disk is that far behind).
const QUEUE: usize = 4096;

/// How long ended jobs are kept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retention {
    /// Results are kept at least this long unless read (default 7 days)...
    pub keep_for: Duration,
    /// ...and the newest this many at least while unread (default 10,000). A result that was
    /// read goes when it is past either bound; one never read only past both.
    pub keep_count: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { keep_for: Duration::from_secs(7 * 24 * 3600), keep_count: 10_000 }
    }
}

/// Something that happened to a job, to be kept.
#[derive(Clone, Debug)]
pub enum Record {
    /// Job ids up to `upto` may be given: a restarted coordinator starts after them, so an id
    /// is never given twice even if the jobs that had the last ones were not yet written.
    Reserved { upto: u64 },
    /// A clean stop: every record before this one is kept, so the reserved ids after `last`
    /// (the last id given) are given back, and ids stay dense across restarts.
    Released { last: u64 },
    /// A job was accepted: `request` is its spec as submitted.
    Submitted { job: u64, request: JobSpec, verify: f64, client: String },
    /// Phase `phase` of a job was cut into chunks of `chunk_units` (the last may be shorter).
    Phase { job: u64, phase: u32, units: u64, chunk_units: u64 },
    /// A chunk's result was counted; `output` is `None` for results streamed to the client.
    /// A command's chunk says where its units' output waits for the client (`spooled`).
    Chunk {
        job: u64,
        phase: u32,
        chunk: u32,
        start: u64,
        end: u64,
        worker: String,
        output: Option<ChunkOutput>,
        spooled: Option<Spooled>,
    },
    /// The client of a streamed job has taken its chunks before `upto` (of a command job, its
    /// deliveries of output before `upto`).
    Taken { job: u64, upto: u32 },
    /// A command job's spooled output was let go (its record left memory): its files go.
    Forgotten { job: u64 },
    /// The job ended, as its final view shows.
    Ended { job: u64, view: Box<JobView> },
    /// A client fetched the ended job (its result counts as read).
    Read { job: u64 },
    /// A running job that could not be resumed (its request no longer makes a job): failed.
    Abandoned { job: u64, error: String },
    /// A chunk of a running job was given to a member: a result it held through a restart
    /// counts (if the chunk was not counted meanwhile).
    Given { job: u64, phase: u32, chunk: u32, member: String },
    /// These chunks' results were taken back (their worker was caught lying): not counted.
    Revoked { job: u64, phase: u32, chunks: Vec<u32> },
    /// An ended job's view changed after it ended (a worker it counted was caught lying).
    Reviewed { job: u64, view: Box<JobView> },
}

/// Where a counted chunk of a command job spooled its units' output, and its place among the
/// job's deliveries to its client (kept after the job ends, until the output is let go).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spooled {
    /// The chunk was the job's `seq`th counted, from 0: deliveries go in this order.
    pub seq: u64,
    /// The file's name in the job's spool dir ([`crate::exec::spool::Spool::file`]).
    pub file: String,
    /// Its first unit, in the job's numbering, and how many.
    pub first_unit: u64,
    pub units: u64,
}

/// Why a journal cannot be used; each reads as one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "the journal {path} is unreadable ({detail}); its jobs cannot be resumed. Start the \
         coordinator once with --journal-reset to move it aside (kept as {path}.reset-TIME) and \
         begin an empty one"
    )]
    Damaged { path: String, detail: String },
    #[error(
        "the journal {path} was written by a newer marmotd (schema version {found}; this one \
         knows {known}): run the newer marmotd, or start once with --journal-reset to move it \
         aside and begin an empty one"
    )]
    Newer { path: String, found: i64, known: i64 },
    #[error("cannot move the journal {path} aside: {source}")]
    Reset { path: String, source: std::io::Error },
    #[error("the journal {path} failed: {detail}")]
    Failed { path: String, detail: String },
}

/// The writing end and the reads of the journal. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The writer's queue, with the number of the last batch appended; `None` once closed.
    queue: Mutex<Option<(SyncSender<Batch>, u64)>>,
    /// The number of the last batch committed.
    synced: watch::Receiver<u64>,
    /// A connection of its own for the control API's reads (WAL lets it read while the
    /// writer writes).
    reader: Mutex<Connection>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Why the journal cannot be written, while it cannot (the writer's).
    failing: Arc<Mutex<Option<String>>>,
}

/// Records appended together, stamped with when.
struct Batch {
    number: u64,
    at_ms: i64,
    records: Vec<Record>,
}

/// The current time in Unix milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Journal {
    /// Opens (or creates) the journal in `state_dir`, moving an existing one aside first if
    /// `reset`; prunes ended jobs past `retention`; starts the writer thread. Returns the jobs
    /// that were running, to resume.
    pub fn open(
        state_dir: &Path,
        reset: bool,
        retention: Retention,
    ) -> Result<(Journal, Recovered), JournalError> {
        let path = state_dir.join(FILE);
        let shown = path.display().to_string();
        if reset {
            move_aside(&path)?;
        }
        let damaged = |detail: String| JournalError::Damaged { path: shown.clone(), detail };
        let failed = |e: rusqlite::Error| JournalError::Failed {
            path: shown.clone(),
            detail: e.to_string(),
        };
        if !path.exists() {
            create(&path).map_err(|detail| JournalError::Failed { path: shown.clone(), detail })?;
        }
        // Checked read-only first: a file that fails is left exactly as it was. A journal is
        // only ever made whole (above), so one without its tables (a 0-byte file) is damaged,
        // not new: taken as empty, it would give job ids from 1 again.
        let conn =
            Connection::open_with_flags(&path, READ_ONLY).map_err(|e| damaged(e.to_string()))?;
        schema::check(&conn).map_err(|unusable| match unusable {
            schema::Unusable::Newer { found } => {
                JournalError::Newer { path: shown.clone(), found, known: schema::VERSION }
            }
            schema::Unusable::Damaged(detail) => damaged(detail),
        })?;
        let mut conn = Connection::open(&path).map_err(|e| damaged(e.to_string()))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| damaged(e.to_string()))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(damaged(format!("SQLite would not use WAL mode (it uses {mode})")));
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(failed)?;
        // Checkpoints (the only fsyncs) every 4,000 pages of WAL rather than 1,000.
        conn.pragma_update(None, "wal_autocheckpoint", 4000).map_err(failed)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(failed)?;
        schema::migrate(&mut conn).map_err(failed)?;
        writer::prune(&conn, retention, unix_ms()).map_err(failed)?;
        let recovered = read::recover(&conn).map_err(|e| damaged(e.to_string()))?;
        let reader = Connection::open_with_flags(&path, READ_ONLY).map_err(failed)?;
        reader.busy_timeout(Duration::from_secs(5)).map_err(failed)?;

        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let (synced_tx, synced) = watch::channel(0);
        let failing = Arc::new(Mutex::new(None));
        let writer = writer::Writer {
            conn,
            path: shown,
            retention,
            synced: synced_tx,
            failing: failing.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| JournalError::Failed {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        let inner = Inner {
            path,
            queue: Mutex::new(Some((tx, 0))),
            synced,
            reader: Mutex::new(reader),
            writer: Mutex::new(Some(thread)),
            failing,
        };
        Ok((Journal { inner: Arc::new(inner) }, recovered))
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Queues records for the writer; returns their batch's number, for [`Journal::synced`].
    /// Waits while the writer is [`QUEUE`] batches behind. After [`Journal::close`], records
    /// are dropped.
    pub fn append(&self, records: Vec<Record>) -> u64 {
        if records.is_empty() {
            return self.appended();
        }
        self.send(records)
    }

    /// Has the writer try what it could not write (a full disk) now rather than at its next
    /// retry, and returns once it has: a user who freed space and submits again at once is
    /// not refused for a second.
    pub async fn retry_now(&self) {
        let number = self.send(Vec::new());
        self.synced(number).await;
    }

    /// Queues a batch of `records` (none wakes the writer all the same); returns its number.
    fn send(&self, records: Vec<Record>) -> u64 {
        let mut queue = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
        let Some((tx, last)) = queue.as_mut() else { return 0 };
        *last += 1;
        let batch = Batch { number: *last, at_ms: unix_ms(), records };
        if tx.send(batch).is_err() {
            tracing::error!("the journal's writer has stopped: jobs are no longer kept");
        }
        *last
    }

    /// Why the journal cannot be written, while it cannot (a full disk): what is appended
    /// meanwhile waits in memory, and new jobs are refused.
    pub fn failing(&self) -> Option<String> {
        self.inner.failing.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The number of the last batch appended.
    pub fn appended(&self) -> u64 {
        let queue = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.as_ref().map_or(*self.inner.synced.borrow(), |(_, last)| *last)
    }

    /// Waits until batch `number` (and every one before it) is committed.
    pub async fn synced(&self, number: u64) {
        let mut synced = self.inner.synced.clone();
        let _ = synced.wait_for(|&done| done >= number).await;
    }

    /// Waits until everything appended so far is committed.
    pub async fn flushed(&self) {
        self.synced(self.appended()).await;
    }

    /// Stops taking records, and waits (blocking) for the writer to commit what it has.
    pub fn close(&self) {
        drop(self.inner.queue.lock().unwrap_or_else(|p| p.into_inner()).take());
        let thread = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// An ended job the journal keeps, once everything appended is committed.
    pub async fn ended_job(&self, id: u64) -> Result<Option<JobView>, JournalError> {
        self.flushed().await;
        self.read(move |conn| read::ended_job(conn, id)).await
    }

    /// The ended jobs the journal keeps, the last to end first, at most `limit`.
    pub async fn ended_jobs(&self, limit: u64) -> Result<Vec<JobView>, JournalError> {
        self.flushed().await;
        self.read(move |conn| read::ended_jobs(conn, limit)).await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, JournalError> {
        let inner = self.inner.clone();
        let failed = |detail: String| JournalError::Failed {
            path: self.inner.path.display().to_string(),
            detail,
        };
        tokio::task::spawn_blocking(move || {
            let conn = inner.reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))
    }
}

/// Moves a journal (and its WAL and shared-memory files) aside as `PATH.reset-UNIXSECONDS`.
/// Makes a new journal at `path` whole or not at all: its tables are made in a file beside
/// it, which then takes its name. On failure, says why.
fn create(path: &Path) -> Result<(), String> {
    let new = PathBuf::from(format!("{}.new", path.display()));
    let text = |e: &dyn std::fmt::Display| e.to_string();
    match std::fs::remove_file(&new) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(text(&e)),
        _ => {}
    }
    // Owner-only: it holds what users asked of the cluster (a count's text). SQLite gives its
    // WAL and shared-memory files the same mode.
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&new);
    drop(file.map_err(|e| text(&e))?);
    let mut conn = Connection::open(&new).map_err(|e| text(&e))?;
    // Pages freed by pruning go back to the file system. Only a file without tables takes it.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").map_err(|e| text(&e))?;
    schema::migrate(&mut conn).map_err(|e| text(&e))?;
    conn.close().map_err(|(_, e)| text(&e))?;
    let synced = std::fs::File::open(&new).and_then(|f| f.sync_all());
    synced.and_then(|()| std::fs::rename(&new, path)).map_err(|e| text(&e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| text(&e))
}

fn move_aside(path: &Path) -> Result<(), JournalError> {
    let stamp = unix_ms() / 1000;
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if !from.exists() {
            continue;
        }
        let to = PathBuf::from(format!("{}.reset-{stamp}{suffix}", path.display()));
        std::fs::rename(&from, &to)
            .map_err(|source| JournalError::Reset { path: from.display().to_string(), source })?;
        if suffix.is_empty() {
            tracing::warn!("moved the journal aside to {}; starting an empty one", to.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
