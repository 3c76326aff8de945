//! The journal against real SQLite files in temp dirs: what goes in comes back on the next
//! open, old results are pruned by the retention rules, and files it cannot use are refused
//! untouched.

use super::*;
use proto::api::JobState;

fn pi(samples: u64) -> JobSpec {
    JobSpec::Pi { samples, seed: 3 }
}

fn ended_view(id: u64, state: JobState) -> Box<JobView> {
    Box::new(JobView {
        id,
        task: "pi".into(),
        spec: pi(10),
        state,
        chunks_done: 1,
        chunks_total: 1,
        units_done: 10,
        units_total: 10,
        elapsed_seconds: 0.5,
        chunks_rerun: 0,
        chunks_verified: 0,
        result: None,
        error: None,
        workers: vec![],
        ended_unix_ms: None,
        summary: None,
        caught_lying: vec![],
    })
}

fn open(dir: &Path) -> (Journal, Recovered) {
    Journal::open(dir, false, Retention::default()).unwrap()
}

fn submitted(job: u64) -> Record {
    Record::Submitted { job, request: pi(1000), verify: 0.0, client: "alice (uid 1000)".into() }
}

#[tokio::test]
async fn running_jobs_come_back_with_their_phases_and_counted_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, recovered) = open(dir.path());
    assert_eq!((recovered.last_job, recovered.running.len()), (0, 0), "a new journal");
    let chunk = |chunk: u32, output| Record::Chunk {
        job: 1,
        phase: 0,
        chunk,
        start: u64::from(chunk) * 100,
        end: u64::from(chunk) * 100 + 100,
        worker: "w1".into(),
        output,
        spooled: None,
    };
    let kept = journal.append(vec![
        submitted(1),
        Record::Phase { job: 1, phase: 0, units: 1000, chunk_units: 100 },
        chunk(0, Some(ChunkOutput::Pi { inside: 78 })),
        chunk(3, None),
        Record::Taken { job: 1, upto: 4 },
        submitted(2),
        Record::Ended { job: 2, view: ended_view(2, JobState::Done) },
    ]);
    journal.synced(kept).await;
    assert_eq!(journal.ended_job(2).await.unwrap().unwrap().state, JobState::Done);
    assert!(journal.ended_job(1).await.unwrap().is_none(), "running: no ended view");
    journal.close();
    assert_eq!(journal.append(vec![submitted(9)]), 0, "closed: records are dropped");

    let (journal, recovered) = open(dir.path());
    assert_eq!(recovered.last_job, 2);
    let [job] = recovered.running.as_slice() else { panic!("{:?}", recovered.running) };
    assert_eq!((job.id, job.request.clone(), job.verify), (1, Ok(pi(1000)), 0.0));
    assert_eq!((job.client.as_str(), job.taken), ("alice (uid 1000)", 4));
    assert_eq!(job.phases, [RecoveredPhase { phase: 0, units: 1000, chunk_units: 100 }]);
    let outputs: Vec<_> =
        job.chunks.iter().map(|c| (c.chunk, c.start, c.end, c.output.clone())).collect();
    assert_eq!(outputs, [(0, 0, 100, Some(ChunkOutput::Pi { inside: 78 })), (3, 300, 400, None)]);
    // Ending it drops what resuming needed; its id stays given.
    let ended =
        journal.append(vec![Record::Ended { job: 1, view: ended_view(1, JobState::Cancelled) }]);
    journal.synced(ended).await;
    journal.close();
    let (journal, recovered) = open(dir.path());
    assert_eq!((recovered.last_job, recovered.running.len()), (2, 0));
    let listed: Vec<u64> = journal.ended_jobs(10).await.unwrap().iter().map(|v| v.id).collect();
    // The last to end first (job 1 ended in a later commit; in the same millisecond, the
    // higher id first).
    let conn = Connection::open(dir.path().join(FILE)).unwrap();
    let ended_ms = |id: i64| -> i64 {
        conn.query_row("SELECT ended_ms FROM jobs WHERE id = ?1", [id], |r| r.get(0)).unwrap()
    };
    assert!(ended_ms(1) >= ended_ms(2));
    let want = if ended_ms(1) > ended_ms(2) { [1, 2] } else { [2, 1] };
    assert_eq!(listed, want, "the last to end first");
    assert_eq!(journal.ended_jobs(1).await.unwrap().len(), 1);
    journal.close();
}

#[tokio::test]
async fn a_job_that_starts_and_ends_in_one_commit_is_written_once_as_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    let chunk = Record::Chunk {
        job: 1,
        phase: 0,
        chunk: 0,
        start: 0,
        end: 10,
        worker: "w".into(),
        output: Some(ChunkOutput::Pi { inside: 8 }),
        spooled: None,
    };
    let phase = Record::Phase { job: 1, phase: 0, units: 10, chunk_units: 10 };
    let ended = |job| Record::Ended { job, view: ended_view(job, JobState::Done) };
    let kept = journal.append(vec![
        Record::Reserved { upto: 1024 },
        submitted(1),
        phase.clone(),
        chunk.clone(),
        ended(1),
        Record::Read { job: 1 },
        submitted(2),
        ended(2),
    ]);
    journal.synced(kept).await;
    journal.close();
    let conn = Connection::open(dir.path().join(FILE)).unwrap();
    let row = |id: i64| -> (String, String, Option<i64>, bool) {
        conn.query_row(
            "SELECT state, client, read_ms, view IS NOT NULL FROM jobs WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
    };
    let (state, client, read, view) = row(1);
    assert_eq!(
        (state.as_str(), client.as_str(), read.is_some(), view),
        ("done", "alice (uid 1000)", true, true)
    );
    assert_eq!(row(2).2, None, "not read");
    let rows: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM chunks) + (SELECT count(*) FROM phases)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0, "nothing left to resume it from");
    let last: i64 =
        conn.query_row("SELECT value FROM meta WHERE key = 'last_job'", [], |r| r.get(0)).unwrap();
    assert_eq!(last, 1024, "the reservation");
}

#[tokio::test]
async fn ids_given_back_at_a_clean_stop_go_on_densely_and_never_below_a_kept_job() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    let kept = journal.append(vec![
        Record::Reserved { upto: 1024 },
        submitted(1),
        submitted(2),
        Record::Released { last: 2 },
    ]);
    journal.synced(kept).await;
    journal.close();
    let (journal, recovered) = open(dir.path());
    assert_eq!(recovered.last_job, 2, "the reservation given back");
    // A release below a kept job's id (it cannot happen, but the jobs stay the floor).
    let kept = journal.append(vec![submitted(3), Record::Released { last: 1 }]);
    journal.synced(kept).await;
    journal.close();
    assert_eq!(open(dir.path()).1.last_job, 3);
}

#[test]
fn results_are_pruned_past_their_time_or_count_unless_unread() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    journal.close();
    let conn = Connection::open(dir.path().join(FILE)).unwrap();
    let day = 24 * 3600 * 1000;
    let now = 100 * day;
    // id, ended days ago, read?
    let rows =
        [(1, 30, true), (2, 30, false), (3, 1, true), (4, 1, false), (5, 0, true), (6, 0, false)];
    for (id, ago, read) in rows {
        conn.execute(
            "INSERT INTO jobs (id, request, verify, client, state, submitted_ms, ended_ms, read_ms, view) \
             VALUES (?1, '{}', 0, 'c', 'done', 0, ?2, ?3, '{}')",
            params![id, now - ago * day, read.then_some(now)],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO jobs (id, request, verify, client, state, submitted_ms) VALUES (7, '{}', 0, 'c', 'running', 0)",
        [],
    )
    .unwrap();
    let ids = |conn: &Connection| -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT id FROM jobs ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    let week = Retention { keep_for: Duration::from_secs(7 * 24 * 3600), keep_count: 10 };
    // Past 7 days, all within the count: the read one goes, the unread one stays.
    assert_eq!(writer::prune(&conn, week, now).unwrap(), 1);
    assert_eq!(ids(&conn), [2, 3, 4, 5, 6, 7]);
    // Only the newest two by count: read ones go past it, unread ones only past both bounds.
    let two = Retention { keep_count: 2, ..week };
    assert_eq!(writer::prune(&conn, two, now).unwrap(), 2);
    assert_eq!(ids(&conn), [4, 5, 6, 7], "unread 4 is within 7 days; running 7 is never pruned");
    let none = Retention { keep_for: Duration::ZERO, keep_count: 0 };
    writer::prune(&conn, none, now + 1).unwrap();
    assert_eq!(ids(&conn), [7]);
}

#[test]
fn pruned_pages_go_back_to_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    journal.close();
    let conn = Connection::open(dir.path().join(FILE)).unwrap();
    let vacuum: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0)).unwrap();
    assert_eq!(vacuum, 2, "incremental");
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let view = "x".repeat(2000);
    for id in 1..=500 {
        conn.execute(
            "INSERT INTO jobs (id, request, verify, client, state, submitted_ms, ended_ms, read_ms, view) \
             VALUES (?1, '{}', 0, 'c', 'done', 0, 0, 0, ?2)",
            params![id, view],
        )
        .unwrap();
    }
    let pages = |conn: &Connection| -> i64 {
        conn.pragma_query_value(None, "page_count", |r| r.get(0)).unwrap()
    };
    let full = pages(&conn);
    let none = Retention { keep_for: Duration::ZERO, keep_count: 0 };
    assert_eq!(writer::prune(&conn, none, 1).unwrap(), 500);
    assert!(pages(&conn) * 10 < full, "{} of {full} pages left", pages(&conn));
}

#[test]
fn a_damaged_journal_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    let garbage = b"this is not a database, it is a shopping list: milk, eggs".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let Err(e) = Journal::open(dir.path(), false, Retention::default()) else { panic!("opened") };
    assert!(matches!(e, JournalError::Damaged { .. }), "{e}");
    let line = e.to_string();
    assert!(!line.contains('\n') && line.contains("--journal-reset"), "{line}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "untouched");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no files beside it");

    // Reset moves it aside and starts an empty one.
    let (journal, recovered) = Journal::open(dir.path(), true, Retention::default()).unwrap();
    assert_eq!(recovered.running.len(), 0);
    journal.close();
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("journal.sqlite.reset-"))
        .collect();
    let [aside] = aside.as_slice() else { panic!("{aside:?}") };
    assert_eq!(std::fs::read(dir.path().join(aside)).unwrap(), garbage, "kept, not deleted");
}

#[test]
fn a_journal_from_a_newer_marmot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    journal.close();
    let conn = Connection::open(dir.path().join(FILE)).unwrap();
    conn.pragma_update(None, "user_version", schema::VERSION + 1).unwrap();
    drop(conn);
    let Err(e) = Journal::open(dir.path(), false, Retention::default()) else { panic!("opened") };
    assert!(matches!(e, JournalError::Newer { found, .. } if found == schema::VERSION + 1), "{e}");
    assert!(e.to_string().contains("newer marmotd"), "{e}");
}

#[test]
fn an_empty_journal_is_damaged_and_a_new_one_is_made_whole() {
    let dir = tempfile::tempdir().unwrap();
    // A new one: made beside its place, whole, then renamed; a leftover of a crash while
    // making one is replaced.
    std::fs::write(dir.path().join("journal.sqlite.new"), b"half").unwrap();
    let (journal, _) = open(dir.path());
    journal.close();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".new")), "{names:?}");
    // A 0-byte file where the journal was: damaged (taken as empty, job ids would start
    // again at 1), one line saying the way out, the file left as it was.
    let path = dir.path().join(FILE);
    std::fs::write(&path, b"").unwrap();
    for extra in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{extra}", path.display()));
    }
    let Err(e) = Journal::open(dir.path(), false, Retention::default()) else { panic!("opened") };
    assert!(matches!(e, JournalError::Damaged { .. }), "{e}");
    let line = e.to_string();
    assert!(line.contains("it is empty") && line.contains("--journal-reset"), "{line}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "untouched");
}

#[tokio::test]
async fn results_taken_back_are_not_resumed_and_a_reviewed_view_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    let chunk = |chunk: u32| Record::Chunk {
        job: 1,
        phase: 0,
        chunk,
        start: u64::from(chunk) * 100,
        end: u64::from(chunk) * 100 + 100,
        worker: if chunk == 1 { "liar".into() } else { "w1".into() },
        output: Some(ChunkOutput::Pi { inside: u64::from(chunk) }),
        spooled: None,
    };
    let mut caught = ended_view(2, JobState::Done);
    caught.caught_lying = vec!["liar".into()];
    let kept = journal.append(vec![
        submitted(1),
        Record::Phase { job: 1, phase: 0, units: 1000, chunk_units: 100 },
        chunk(0),
        chunk(1),
        chunk(2),
        Record::Revoked { job: 1, phase: 0, chunks: vec![1] },
        Record::Given { job: 1, phase: 0, chunk: 0, member: "w1".into() },
        Record::Given { job: 1, phase: 0, chunk: 5, member: "w2".into() },
        Record::Given { job: 1, phase: 0, chunk: 5, member: "w2".into() },
        submitted(2),
        Record::Ended { job: 2, view: ended_view(2, JobState::Done) },
    ]);
    journal.synced(kept).await;
    let kept = journal.append(vec![Record::Reviewed { job: 2, view: caught }]);
    journal.synced(kept).await;
    journal.close();
    let (journal, recovered) = open(dir.path());
    let [job] = recovered.running.as_slice() else { panic!("{:?}", recovered.running) };
    let chunks: Vec<u32> = job.chunks.iter().map(|c| c.chunk).collect();
    assert_eq!(chunks, [0, 2], "chunk 1 was taken back");
    let given = RecoveredGiven { phase: 0, chunk: 5, member: "w2".into() };
    assert_eq!(job.given, [given], "given and not counted (chunk 0 was counted)");
    let view = journal.ended_job(2).await.unwrap().unwrap();
    assert_eq!(view.caught_lying, ["liar"]);
    journal.close();
}
