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
    });
    Ok(ExitCode::SUCCESS)
}
