//! `marmotctl ping`: a round trip to each worker, bounded by a timeout.

use super::print;
use anyhow::Result;
use client::Client;
use proto::api::PingRequest;
use std::process::ExitCode;
use std::time::Duration;

pub async fn ping(
    client: &Client,
    timeout: Duration,
    workers: Vec<String>,
    json: bool,
) -> Result<ExitCode> {
    let request = PingRequest { timeout_ms: timeout.as_millis().max(1) as u64, workers };
    let results = client.ping(&request).await?;
    print(json, &results, || {
        if results.is_empty() {
            println!("no workers connected");
        }
        for r in &results {
            match (r.rtt_ms, &r.error) {
                (Some(ms), _) => println!("{:<16} {ms:.3} ms", r.worker),
                (None, Some(e)) => println!("{:<16} {e}", r.worker),
                (None, None) => println!("{:<16} no answer", r.worker),
            }
        }
    });
    let all_answered = results.iter().all(|r| r.rtt_ms.is_some());
    Ok(if all_answered { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
