//! `marmotctl exit`: tell workers to hand back their chunks and exit, and wait for them to go.

use super::print;
use anyhow::Result;
use client::Client;
use proto::api::ExitRequest;
use std::process::ExitCode;
use std::time::Duration;

/// How long `exit` waits for the told workers to disconnect.
const EXIT_WAIT: Duration = Duration::from_secs(10);

pub async fn exit(
    client: &Client,
    workers: Vec<String>,
    all: bool,
    json: bool,
) -> Result<ExitCode> {
    let reply = client.exit(&ExitRequest { workers, all }).await?;
    let deadline = tokio::time::Instant::now() + EXIT_WAIT;
    let still = loop {
        let connected = client.workers().await?;
        let still: Vec<String> = reply
            .told
            .iter()
            .filter(|n| connected.iter().any(|w| &w.name == *n))
            .cloned()
            .collect();
        if still.is_empty() || tokio::time::Instant::now() >= deadline {
            break still;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let left: Vec<&String> = reply.told.iter().filter(|n| !still.contains(n)).collect();
    let doc = serde_json::json!({ "left": left, "still_connected": still });
    print(json, &doc, || {
        for name in &left {
            println!("{name} left");
        }
        for name in &still {
            println!("{name} was told to exit but is still connected");
        }
    });
    Ok(if still.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
