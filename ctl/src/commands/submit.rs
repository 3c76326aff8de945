//! Submitting a job, for every `run`: a job submitted while no worker is connected is queued
//! (unless `--no-wait-for-workers`), and the user is told so in one line, with how many
//! workers the cluster knows that are away.

use anyhow::Result;
use client::{Client, Submit};
use proto::api::{JobView, Status};

/// Submits `spec` as `how` says, and says when the job waits for workers.
pub async fn submit(client: &Client, spec: &proto::job::JobSpec, how: Submit) -> Result<JobView> {
    let job = client.submit(spec, &how).await?;
    // Asked after: a worker that connects in between makes the line unneeded, not wrong.
    if let Ok(status) = client.status().await {
        if let Some(line) = waiting(job.id, &status) {
            eprintln!("marmotctl: {line}");
        }
    }
    Ok(job)
}

/// What to say of job `id` when no worker is connected.
fn waiting(id: u64, status: &Status) -> Option<String> {
    if status.workers > 0 {
        return None;
    }
    let known = match status.members {
        0 => "none has joined yet: `marmotctl join-token` prints the command that joins one"
            .to_string(),
        n => format!(
            "{} this cluster knows {} away",
            proto::human::count(n as u64, "worker", "workers"),
            if n == 1 { "is" } else { "are" }
        ),
    };
    Some(format!(
        "job {id} waits for workers and starts when one connects ({known}; \
         --no-wait-for-workers refuses instead)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(workers: usize, members: usize) -> Status {
        Status {
            version: "0.1.0".into(),
            binary_sha256: String::new(),
            listen: "127.0.0.1:7070".into(),
            uptime_seconds: 1.0,
            workers,
            members,
            slots: 0,
            slots_busy: 0,
            chunks_queued: 0,
            jobs_running: 1,
            waiting: Default::default(),
            journal_failing: None,
        }
    }

    #[test]
    fn a_job_waiting_for_workers_says_how_many_are_away() {
        assert_eq!(waiting(3, &status(1, 2)), None, "a worker is connected");
        assert_eq!(
            waiting(3, &status(0, 2)).unwrap(),
            "job 3 waits for workers and starts when one connects (2 workers this cluster \
             knows are away; --no-wait-for-workers refuses instead)"
        );
        assert!(waiting(3, &status(0, 1))
            .unwrap()
            .contains("(1 worker this cluster knows is away;"));
        assert!(waiting(3, &status(0, 0)).unwrap().contains("none has joined yet"));
    }
}
