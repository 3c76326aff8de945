//! `marmotctl join-token [--rotate]`: the token a new worker joins with.

use super::print;
use anyhow::Result;
use client::Client;
use std::process::ExitCode;

pub async fn join_token(client: &Client, rotate: bool, json: bool) -> Result<ExitCode> {
    let token =
        if rotate { client.rotate_join_token().await? } else { client.join_token().await? };
    print(json, &token, || println!("{}", token.token));
    Ok(ExitCode::SUCCESS)
}
