//! One file per `marmotctl` command: call the control API through [`client`], print
//! human output or JSON.

mod bench;
mod cancel;
mod clear;
mod cmd;
mod dashboard;
mod exit;
mod freefall;
mod jobs;
mod join_token;
mod logs;
mod parallel;
mod ping;
mod revoke;
mod run;
mod status;
mod submit;
mod top;
mod update;
mod workers;

use crate::cli::{Cli, Command, RunTask};
use anyhow::Result;
use clap::CommandFactory;
use client::Client;
use proto::api::UpdateRequest;
use serde::Serialize;
use std::process::ExitCode;

pub async fn run(client: &Client, command: Command, json: bool) -> Result<ExitCode> {
    match command {
        Command::Status => status::status(client, json).await,
        Command::Workers => workers::workers(client, json).await,
        Command::Ping { timeout, workers } => ping::ping(client, timeout, workers, json).await,
        Command::Run { task, no_wait_for_workers } => {
            let how = client::Submit { verify: None, wait_for_workers: !no_wait_for_workers };
            match task {
                RunTask::Pi(args) => run::pi(client, args, how, json).await,
                RunTask::Prime(args) => run::prime(client, args, how, json).await,
                RunTask::Count(args) => run::count(client, args, how, json).await,
                RunTask::Freefall(args) => freefall::run(client, args, how, json).await,
                RunTask::Cmd(args) => cmd::run(client, *args, how, json).await,
            }
        }
        Command::Parallel { args } => {
            let how = client::Submit { verify: None, wait_for_workers: true };
            parallel::run(client, args, how).await
        }
        Command::Clear { worker } => clear::clear(client, worker).await,
        Command::Jobs { all } => jobs::jobs(client, all, json).await,
        Command::Result { job } => run::result(client, job, json).await,
        Command::Rerun { job, detach } => {
            run::rerun(client, job, detach, client::Submit::default(), json).await
        }
        Command::Bench { length } => bench::bench(client, length, json).await,
        Command::Wait { job } => run::wait(client, job, json).await,
        Command::Cancel { job } => cancel::cancel(client, job, json).await,
        Command::Exit { workers, all } => exit::exit(client, workers, all, json).await,
        Command::Revoke { worker } => revoke::revoke(client, worker, json).await,
        Command::Update { binaries, parallel, keep_going, allow_downgrade, coordinator } => {
            let request = UpdateRequest {
                binaries: vec![],
                parallel: Some(parallel),
                allow_downgrade,
                coordinator,
                keep_going,
            };
            update::run(client, &binaries, request, json).await
        }
        Command::JoinToken { rotate } => join_token::join_token(client, rotate, json).await,
        Command::Dashboard { port } => dashboard::serve(client, port).await,
        Command::DashboardToken { rotate } => dashboard::token(client, rotate, json).await,
        Command::Logs { worker, follow, since, lines } => {
            logs::logs(client, logs::Ask { worker, follow, since, lines }, json).await
        }
        Command::Top { once } => top::top(client, once).await,
        // Documentation: no coordinator needed.
        Command::Docs(docs) => {
            docs.run(Cli::command()).map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints `value` as JSON, or runs `human`.
pub fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce()) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("marmotctl: error: cannot print JSON: {e}"),
        }
    } else {
        human();
    }
}

/// The first 12 characters of a SHA-256 as a peer reported it, however long or odd it is.
pub fn short_sha(sha: &str) -> String {
    sha.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sha_is_shortened_by_characters_never_cut_inside_one() {
        assert_eq!(super::short_sha(&"ab".repeat(32)), "abababababab");
        assert_eq!(super::short_sha("é".repeat(20).as_str()), "é".repeat(12));
        assert_eq!(super::short_sha("abc"), "abc");
    }
}
