//! `marmotctl workers`: the connected workers, one line each.

use super::{print, short_sha};
use anyhow::Result;
use client::Client;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

pub async fn workers(client: &Client, json: bool) -> Result<ExitCode> {
    let list = client.workers().await?;
    print(json, &list, || {
        if list.is_empty() {
            println!("no workers connected (add one with `marmotd worker --coordinator HOST --token TOKEN`)");
            return;
        }
        println!(
            "{:<16} {:<22} {:>5} {:>4} {:>7} {:<21} {:<12} {:>8} {:>9} {:>10}",
            "NAME",
            "ADDRESS",
            "SLOTS",
            "BUSY",
            "SCORE",
            "VERSION",
            "SHA256",
            "RTT",
            "SEEN",
            "CONNECTED"
        );
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        for w in &list {
            let score = w.score.map_or("-".to_string(), |s| format!("{s:.2}"));
            println!(
                "{:<16} {:<22} {:>5} {:>4} {:>7} {:<21} {:<12} {:>6.2}ms {:>7}ms {:>9}s",
                w.name,
                w.address,
                w.slots,
                w.slots_busy,
                score,
                w.version,
                short_sha(&w.binary_sha256),
                w.rtt_ms,
                w.last_seen_ms,
                now.saturating_sub(w.connected_since),
            );
        }
    });
    Ok(ExitCode::SUCCESS)
}
