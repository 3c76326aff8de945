//! `marmotctl`: the command-line client of a marmot coordinator, talking HTTP over its local
//! Unix socket. Every failure ends as one `marmotctl: error: ...` line and a non-zero exit.
//!
//! # Layout
//! - `cli`: flags, and parsers for counts (`1e10`, `10_000_000_000`) and durations (`2s`).
//! - `client`: one HTTP request per call over the socket, with readable connection errors.
//! - `commands`: one function per command, human output or `--json`.
//! - `follow`: following a job with a progress bar; Ctrl-C cancels it on the cluster.

mod cli;
mod client;
mod commands;
mod follow;
mod freefall;
mod plot;
mod update;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            eprintln!("marmotctl: error: {}", proto::usage::one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    let socket = cli.socket.clone().unwrap_or_else(proto::paths::default_socket);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("marmotctl: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = client::Client::new(socket);
    match runtime.block_on(commands::run(&client, cli.command, cli.json)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("marmotctl: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
