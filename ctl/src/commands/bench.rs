//! `marmotctl bench`: score every slot of every worker with the benchmark kernel.

use super::print;
use anyhow::Result;
use client::Client;
use proto::human;
use std::process::ExitCode;
use std::time::Duration;

pub async fn bench(client: &Client, length: Duration, json: bool) -> Result<ExitCode> {
    let millis = u32::try_from(length.as_millis()).unwrap_or(u32::MAX);
    let results = client.bench(millis).await?;
    print(json, &results, || {
        if results.is_empty() {
            println!("no workers connected");
        }
        for r in &results {
            match (r.score, &r.error) {
                (Some(score), _) => {
                    let slots: Vec<String> =
                        r.slot_scores.iter().map(|s| format!("{s:.2}")).collect();
                    println!(
                        "{:<16} {score:.2} G samples/s ({}: {})",
                        r.worker,
                        human::count(slots.len() as u64, "slot", "slots"),
                        slots.join(" ")
                    );
                }
                (None, e) => println!("{:<16} failed: {}", r.worker, e.as_deref().unwrap_or("?")),
            }
        }
    });
    let all_scored = results.iter().all(|r| r.score.is_some());
    Ok(if all_scored { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
