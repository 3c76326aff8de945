//! `marmotctl status`: the coordinator at a glance.

use super::print;
use anyhow::Result;
use client::Client;
use proto::human;
use std::process::ExitCode;

pub async fn status(client: &Client, json: bool) -> Result<ExitCode> {
    let s = client.status().await?;
    print(json, &s, || {
        println!(
            "coordinator  marmotd {} on {}, up {:.0} s",
            s.version, s.listen, s.uptime_seconds
        );
        println!("workers      {}", s.workers);
        println!("slots        {} busy of {}", s.slots_busy, s.slots);
        println!("queued       {}", human::count(s.chunks_queued, "chunk", "chunks"));
        println!("jobs         {} running", s.jobs_running);
        if let Some(line) = waiting(&s.waiting) {
            println!("waiting      {line}");
        }
        if let Some(reason) = &s.journal_failing {
            println!("journal      cannot be written ({reason}): no new job is taken");
        }
    });
    Ok(ExitCode::SUCCESS)
}

/// Connections waiting to authenticate, when there are any: strangers that stay are someone on
/// the network holding places (members get in beside them).
fn waiting(w: &proto::api::Waiting) -> Option<String> {
    let total = w.handshaking + w.strangers + w.members;
    (total > 0).then(|| {
        format!(
            "{} to authenticate ({} in their handshake, {} without a certificate, {} members)",
            human::count(total.into(), "connection", "connections"),
            w.handshaking,
            w.strangers,
            w.members
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_waiting_are_shown_only_when_there_are_some() {
        assert_eq!(waiting(&proto::api::Waiting::default()), None);
        let w = proto::api::Waiting { handshaking: 3, strangers: 64, members: 1 };
        assert_eq!(
            waiting(&w).unwrap(),
            "68 connections to authenticate (3 in their handshake, 64 without a certificate, 1 \
             members)"
        );
    }
}
