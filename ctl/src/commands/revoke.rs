//! `marmotctl revoke WORKER`: revoke a worker's certificate, at once and forever.

use super::print;
use anyhow::Result;
use client::Client;
use std::process::ExitCode;

pub async fn revoke(client: &Client, worker: String, json: bool) -> Result<ExitCode> {
    let reply = client.revoke(worker).await?;
    print(json, &reply, || {
        let was = if reply.disconnected { "disconnected and " } else { "" };
        println!(
            "revoked {}: {was}refused from now on; its name is free for another machine",
            reply.worker
        );
    });
    Ok(ExitCode::SUCCESS)
}
