//! `marmotctl logs [WORKER] [-f] [--since 10m]`: the log lines the workers sent to the
//! coordinator (and its own), oldest first; `-f` keeps printing new ones.
//!
//! Following asks twice a second for the lines after the last one printed. When the
//! coordinator restarts, its line numbers start again: the follower waits for it and goes on
//! from the time of the last line it printed.

use anyhow::Result;
use client::{Client, ClientError, LogsQuery};
use proto::api::KeptLine;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a follower asks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);
/// Lines one follow-up request takes at most.
const FOLLOW_BATCH: usize = 5000;

/// What was asked for.
pub struct Ask {
    pub worker: Option<String>,
    pub follow: bool,
    pub since: Option<Duration>,
    pub lines: u64,
}

pub async fn logs(client: &Client, ask: Ask, json: bool) -> Result<ExitCode> {
    if let Some(name) = &ask.worker {
        proto::names::check_worker_name(name).map_err(anyhow::Error::msg)?;
    }
    let since_ms = ask.since.map(|since| unix_ms(SystemTime::now() - since));
    let first = LogsQuery {
        worker: ask.worker.clone(),
        since_ms,
        limit: Some(ask.lines as usize),
        ..Default::default()
    };
    let reply = client.logs(&first).await?;
    reply.lines.iter().for_each(|line| print(line, json));
    if !ask.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut after = Some(reply.next);
    let mut last_ms = reply.lines.last().map(|l| l.line.unix_ms).or(since_ms);
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let query = LogsQuery {
            worker: ask.worker.clone(),
            after,
            since_ms: if after.is_none() { last_ms.map(|ms| ms + 1) } else { None },
            limit: Some(FOLLOW_BATCH),
        };
        match client.logs(&query).await {
            Ok(reply) => {
                reply.lines.iter().for_each(|line| print(line, json));
                last_ms = reply.lines.last().map(|l| l.line.unix_ms).or(last_ms);
                after = Some(reply.next);
            }
            // The coordinator is restarting, or gone for a moment: its numbers start again.
            Err(e) if is_away(&e) => after = None,
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_away(e: &ClientError) -> bool {
    e.is_transient() || matches!(e, ClientError::NoCoordinator(_))
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn print(kept: &KeptLine, json: bool) {
    if json {
        println!("{}", serde_json::to_string(kept).unwrap_or_default());
    } else {
        println!("{}", format_line(kept));
    }
}

/// `2026-12-01T10:53:08.123Z INFO  w1: message`.
fn format_line(kept: &KeptLine) -> String {
    let source = kept.worker.as_deref().unwrap_or("coordinator");
    format!(
        "{} {:<5} {source}: {}",
        proto::human::rfc3339_millis(kept.line.unix_ms),
        kept.line.level.to_string(),
        kept.line.message
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::logs::{Level, LogLine};

    #[test]
    fn a_line_reads_time_level_source_and_message() {
        let line = LogLine::new(1_764_586_388_123, Level::Warn, "marmotd::worker", "lost it");
        let kept = KeptLine { seq: 3, worker: Some("w1".into()), line };
        assert_eq!(format_line(&kept), "2025-12-01T10:53:08.123Z WARN  w1: lost it");
        let own = KeptLine { worker: None, ..kept };
        assert!(format_line(&own).ends_with("coordinator: lost it"));
    }
}
