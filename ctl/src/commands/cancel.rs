//! `marmotctl cancel JOB`.

use super::print;
use anyhow::Result;
use client::Client;
use std::process::ExitCode;

pub async fn cancel(client: &Client, job: u64, json: bool) -> Result<ExitCode> {
    let view = client.cancel(job).await?;
    print(json, &view, || println!("job {} is {}", view.id, view.state));
    Ok(ExitCode::SUCCESS)
}
