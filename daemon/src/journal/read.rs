//! Reading the journal: the running jobs when the coordinator starts, and ended jobs for the
//! control API once they are no longer in memory.

use super::Spooled;
use proto::api::JobView;
use proto::job::JobSpec;
use proto::wire::ChunkOutput;
use rusqlite::{params, Connection, OptionalExtension};

/// What the journal held on start.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The highest job id ever given: new ones start after it.
    pub last_job: u64,
    /// The jobs that were running, oldest first.
    pub running: Vec<RecoveredJob>,
    /// Ended command jobs whose output still waits for their clients, oldest first.
    pub leftovers: Vec<Leftover>,
}

/// An ended command job with output its client had not taken when the coordinator stopped.
#[derive(Debug)]
pub struct Leftover {
    pub id: u64,
    /// The spec as submitted; `Err` with why, when it no longer reads as one.
    pub request: Result<JobSpec, String>,
    /// Deliveries its client had taken.
    pub taken: u32,
    /// Its counted chunks' output, in the order they were counted.
    pub deliveries: Vec<Spooled>,
}

/// A job that was running when the coordinator stopped.
#[derive(Debug)]
pub struct RecoveredJob {
    pub id: u64,
    /// The spec as submitted; `Err` with why, when it no longer reads as one.
    pub request: Result<JobSpec, String>,
    pub verify: f64,
    pub client: String,
    pub submitted_ms: i64,
    /// Chunks of a streamed job's results its client has taken.
    pub taken: u32,
    /// Its phases so far, in order.
    pub phases: Vec<RecoveredPhase>,
    /// Its counted chunks, by phase and chunk.
    pub chunks: Vec<RecoveredChunk>,
    /// Chunks given to members and not counted.
    pub given: Vec<RecoveredGiven>,
}

/// A chunk given to a member, not counted when the coordinator stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredGiven {
    pub phase: u32,
    pub chunk: u32,
    pub member: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveredPhase {
    pub phase: u32,
    pub units: u64,
    pub chunk_units: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredChunk {
    pub phase: u32,
    pub chunk: u32,
    pub start: u64,
    pub end: u64,
    pub worker: String,
    /// `None` for a streamed result (or one that no longer decodes: it runs again).
    pub output: Option<ChunkOutput>,
    /// Where a command's chunk spooled its units' output.
    pub spooled: Option<Spooled>,
}

/// The running jobs and the last id given.
pub fn recover(conn: &Connection) -> rusqlite::Result<Recovered> {
    let last_job: i64 =
        conn.query_row("SELECT value FROM meta WHERE key = 'last_job'", [], |r| r.get(0))?;
    let max_id: Option<i64> = conn.query_row("SELECT max(id) FROM jobs", [], |r| r.get(0))?;
    let mut jobs = conn.prepare(
        "SELECT id, request, verify, client, submitted_ms, taken FROM jobs \
         WHERE state = 'running' ORDER BY id",
    )?;
    let mut running = jobs
        .query_map([], |r| {
            let request: String = r.get(1)?;
            Ok(RecoveredJob {
                id: r.get::<_, i64>(0)? as u64,
                request: serde_json::from_str(&request).map_err(|e| e.to_string()),
                verify: r.get(2)?,
                client: r.get(3)?,
                submitted_ms: r.get(4)?,
                taken: r.get(5)?,
                phases: vec![],
                chunks: vec![],
                given: vec![],
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut phases = conn.prepare_cached(
        "SELECT phase, units, chunk_units FROM phases WHERE job = ?1 ORDER BY phase",
    )?;
    let mut chunks = conn.prepare_cached(
        "SELECT c.phase, c.chunk, c.start, c.end, c.worker, c.output, s.seq, s.first_unit, \
         s.units, s.file FROM chunks c LEFT JOIN spooled s \
         ON s.job = c.job AND s.phase = c.phase AND s.chunk = c.chunk \
         WHERE c.job = ?1 ORDER BY c.phase, c.chunk",
    )?;
    let mut given = conn.prepare_cached(
        "SELECT g.phase, g.chunk, g.member FROM given g WHERE g.job = ?1 AND NOT EXISTS \
         (SELECT 1 FROM chunks c WHERE c.job = g.job AND c.phase = g.phase AND c.chunk = g.chunk) \
         ORDER BY g.phase, g.chunk",
    )?;
    for job in &mut running {
        job.given = given
            .query_map([job.id as i64], |r| {
                Ok(RecoveredGiven { phase: r.get(0)?, chunk: r.get(1)?, member: r.get(2)? })
            })?
            .collect::<rusqlite::Result<_>>()?;
        job.phases = phases
            .query_map([job.id as i64], |r| {
                Ok(RecoveredPhase {
                    phase: r.get(0)?,
                    units: r.get::<_, i64>(1)? as u64,
                    chunk_units: r.get::<_, i64>(2)? as u64,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        job.chunks = chunks
            .query_map([job.id as i64], |r| {
                let output: Option<Vec<u8>> = r.get(5)?;
                Ok(RecoveredChunk {
                    phase: r.get(0)?,
                    chunk: r.get(1)?,
                    start: r.get::<_, i64>(2)? as u64,
                    end: r.get::<_, i64>(3)? as u64,
                    worker: r.get(4)?,
                    output: output.and_then(|bytes| proto::frame::decode(&bytes).ok()),
                    spooled: spooled(r, 6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    let last_job = last_job.max(max_id.unwrap_or(0)) as u64;
    let leftovers = leftovers(conn)?;
    Ok(Recovered { last_job, running, leftovers })
}

/// A [`Spooled`] from columns `seq, first_unit, units, file` from `at` (NULL: none).
fn spooled(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<Spooled>> {
    let Some(seq) = r.get::<_, Option<i64>>(at)? else { return Ok(None) };
    Ok(Some(Spooled {
        seq: seq as u64,
        first_unit: r.get::<_, i64>(at + 1)? as u64,
        units: r.get::<_, i64>(at + 2)? as u64,
        file: r.get(at + 3)?,
    }))
}

/// Ended jobs whose spooled output is still kept, with it.
fn leftovers(conn: &Connection) -> rusqlite::Result<Vec<Leftover>> {
    let mut jobs = conn.prepare(
        "SELECT id, request, taken FROM jobs WHERE state != 'running' \
         AND id IN (SELECT job FROM spooled) ORDER BY id",
    )?;
    let mut deliveries = conn.prepare_cached(
        "SELECT seq, first_unit, units, file FROM spooled WHERE job = ?1 ORDER BY seq",
    )?;
    let mut leftovers = jobs
        .query_map([], |r| {
            let request: String = r.get(1)?;
            Ok(Leftover {
                id: r.get::<_, i64>(0)? as u64,
                request: serde_json::from_str(&request).map_err(|e| e.to_string()),
                taken: r.get(2)?,
                deliveries: vec![],
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for job in &mut leftovers {
        job.deliveries = deliveries
            .query_map([job.id as i64], |r| spooled(r, 0).map(Option::unwrap_or_default))?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(leftovers)
}

/// An ended job's view, if the journal still keeps it.
pub fn ended_job(conn: &Connection, id: u64) -> rusqlite::Result<Option<JobView>> {
    let view: Option<Option<String>> = conn
        .prepare_cached("SELECT view FROM jobs WHERE id = ?1")?
        .query_row([id as i64], |r| r.get(0))
        .optional()?;
    Ok(view.flatten().and_then(|view| serde_json::from_str(&view).ok()))
}

/// Ended jobs, the last to end first, at most `limit`.
pub fn ended_jobs(conn: &Connection, limit: u64) -> rusqlite::Result<Vec<JobView>> {
    let mut stmt = conn.prepare_cached(
        "SELECT view FROM jobs WHERE view IS NOT NULL ORDER BY ended_ms DESC, id DESC LIMIT ?1",
    )?;
    let views =
        stmt.query_map(params![limit.min(i64::MAX as u64) as i64], |r| r.get::<_, String>(0))?;
    Ok(views.filter_map(|v| v.ok().and_then(|v| serde_json::from_str(&v).ok())).collect())
}
