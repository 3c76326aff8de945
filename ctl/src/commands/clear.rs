//! `marmotctl clear WORKER`: let a quarantined worker take chunks again.

use anyhow::Result;
use client::Client;
use std::process::ExitCode;

pub async fn clear(client: &Client, worker: String) -> Result<ExitCode> {
    client.clear(worker).await?;
    Ok(ExitCode::SUCCESS)
}
