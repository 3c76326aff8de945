//! The journal's tables, their version, and the checks a journal passes before it is used.
//!
//! The version is SQLite's `user_version`: 0 for a new file, [`VERSION`] once created. A
//! migration from each older version to the next goes in [`migrate`]; a file of a newer
//! version than this binary knows is refused, never written to.
//!
//! The tables, for `sqlite3 STATE_DIR/journal.sqlite` (times are Unix milliseconds):
//! - `meta(key, value)`: `last_job`, the highest job id reserved (ids are given in blocks
//!   reserved ahead, and never twice, even after their rows are pruned).
//! - `jobs(id, request, verify, client, state, submitted_ms, ended_ms, read_ms, taken, view)`:
//!   one row per job. `request` is the job's spec as submitted (JSON), `client` who submitted
//!   it (`user (uid N)`), `state` one of `running`, `done`, `cancelled`, `failed`; `read_ms`
//!   when a client first fetched the ended job; `taken` how many chunks of a streamed job's
//!   results its client has taken; `view` the ended job as `marmotctl jobs --json` shows it,
//!   result included.
//! - `phases(job, phase, units, chunk_units)`: how each phase of a running job was cut into
//!   chunks, so chunk numbers mean the same after a restart.
//! - `chunks(job, phase, chunk, start, end, worker, output)`: every chunk of a running job
//!   whose result was counted, with its output (bincode, as on the wire; NULL for streamed
//!   results, which go to the client instead). Deleted when the job ends.
//! - `given(job, phase, chunk, member)`: the members each chunk of a running job was given
//!   to, so a result a member held through a restart counts only for a chunk it was given.
//!   Deleted when the job ends. Added beside version 1's tables, which it leaves as they were:
//!   a marmotd of before it (a rollback) reads and writes the journal as it did.
//! - `spooled(job, seq, phase, chunk, first_unit, units, file)`: each counted chunk of a
//!   command job whose units' output waits in the spool (`file`, in `STATE_DIR/spool/job-ID/`),
//!   `seq` the order it was counted in. Kept after the job ends, while its client may still
//!   take the output; deleted when the coordinator lets it go, or with the job. Added beside
//!   version 1's tables as `given` was.

use rusqlite::Connection;

/// The schema this binary writes.
pub const VERSION: i64 = 1;

const V1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('last_job', 0);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    request TEXT NOT NULL,
    verify REAL NOT NULL,
    client TEXT NOT NULL,
    state TEXT NOT NULL,
    submitted_ms INTEGER NOT NULL,
    ended_ms INTEGER,
    read_ms INTEGER,
    taken INTEGER NOT NULL DEFAULT 0,
    view TEXT
);
CREATE TABLE phases (
    job INTEGER NOT NULL,
    phase INTEGER NOT NULL,
    units INTEGER NOT NULL,
    chunk_units INTEGER NOT NULL,
    PRIMARY KEY (job, phase)
) WITHOUT ROWID;
CREATE TABLE chunks (
    job INTEGER NOT NULL,
    phase INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    worker TEXT NOT NULL,
    output BLOB,
    PRIMARY KEY (job, phase, chunk)
) WITHOUT ROWID;
";

/// Tables added to version 1 without changing its others (created where missing).
const V1_ADDED: &str = "
CREATE TABLE IF NOT EXISTS given (
    job INTEGER NOT NULL,
    phase INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    member TEXT NOT NULL,
    PRIMARY KEY (job, phase, chunk, member)
) WITHOUT ROWID;
DELETE FROM given WHERE job NOT IN (SELECT id FROM jobs WHERE state = 'running');
CREATE TABLE IF NOT EXISTS spooled (
    job INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    phase INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    first_unit INTEGER NOT NULL,
    units INTEGER NOT NULL,
    file TEXT NOT NULL,
    PRIMARY KEY (job, seq)
) WITHOUT ROWID;
DELETE FROM spooled WHERE job NOT IN (SELECT id FROM jobs);
";

/// What stands in the way of using a journal file.
#[derive(Debug, PartialEq, Eq)]
pub enum Unusable {
    /// Written by a newer marmot: `found` is its schema version.
    Newer { found: i64 },
    /// Not a database, or a damaged one: SQLite's words.
    Damaged(String),
}

/// Checks a journal opened read-only, before anything is written to it: its version is one
/// this binary knows, and SQLite finds its pages sound.
pub fn check(conn: &Connection) -> Result<(), Unusable> {
    let damaged = |e: rusqlite::Error| Unusable::Damaged(e.to_string());
    let found: i64 =
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(damaged)?;
    if found > VERSION {
        return Err(Unusable::Newer { found });
    }
    if found == 0 {
        return Err(Unusable::Damaged("it is empty (none of its tables is there)".into()));
    }
    let verdict: String =
        conn.pragma_query_value(None, "quick_check", |r| r.get(0)).map_err(damaged)?;
    if verdict != "ok" {
        return Err(Unusable::Damaged(verdict));
    }
    if found == VERSION {
        for table in ["meta", "jobs", "phases", "chunks"] {
            let exists: bool = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get::<_, i64>(0).map(|n| n == 1),
                )
                .map_err(damaged)?;
            if !exists {
                return Err(Unusable::Damaged(format!("its table '{table}' is missing")));
            }
        }
    }
    Ok(())
}

/// Brings a checked journal, opened for writing, to [`VERSION`]: creates the tables of a new
/// one.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found == 0 {
        let tx = conn.transaction()?;
        tx.execute_batch(V1)?;
        tx.pragma_update(None, "user_version", VERSION)?;
        tx.commit()?;
    }
    // Also where a marmotd of before them made the journal, or wrote to it since.
    conn.execute_batch(V1_ADDED)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_journal_gets_every_table_and_passes_its_checks() {
        let mut conn = Connection::open_in_memory().unwrap();
        let empty = Unusable::Damaged("it is empty (none of its tables is there)".into());
        assert_eq!(check(&conn), Err(empty), "a journal is made whole: an empty one is damaged");
        migrate(&mut conn).unwrap();
        assert_eq!(check(&conn), Ok(()));
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, VERSION);
        migrate(&mut conn).unwrap();
        conn.execute_batch("DROP TABLE phases").unwrap();
        assert_eq!(check(&conn), Err(Unusable::Damaged("its table 'phases' is missing".into())));
    }

    #[test]
    fn a_newer_journal_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1).unwrap();
        assert_eq!(check(&conn), Err(Unusable::Newer { found: VERSION + 1 }));
    }
}
