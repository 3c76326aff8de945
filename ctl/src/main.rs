//! `marmotctl`: the command-line client of a marmot coordinator, talking HTTP over its local
//! Unix socket. Every failure ends as one `marmotctl: error: ...` line (with `--json`, one
//! `{"error": ...}` document on stdout) and a non-zero exit.
//!
//! # Layout
//! - `cli`: flags, and parsers for counts (`1e10`, `10_000_000_000`) and durations (`2s`).
//! - `commands`: one file per command, calling the control API through the `client` crate (one
//!   typed function per route), human output or `--json`.
//! - `follow`: following a job with a progress bar; Ctrl-C cancels it (`run`) or stops
//!   following (`wait`).
//! - `known_hashes`: the SHA-256 of files already read, by inode, size and times.
//! - `plot`: freefall's points drawn as a PNG.
//!
//! The control API's client, and the loops that follow a job through coordinator restarts,
//! are the `client` crate's, shared with `marmotd demo`.

mod cli;
mod commands;
mod follow;
mod known_hashes;
mod parallel;
mod plot;
mod saving;

use clap::Parser;
use std::process::ExitCode;

/// This program's name as a coordinator reads it in a file's bytes (see
/// `proto::version::find_program`).
#[used]
static PROGRAM: &str = "MARMOT-PROGRAM[marmotctl]";

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `marmotctl` or `marmotctl run` alone: the usage and the list of commands.
            let _ = e.print();
            return ExitCode::from(proto::exit::USAGE);
        }
        Err(e) => {
            let json = std::env::args().any(|a| a == "--json");
            report(json, &client::usage::one_line(&e.render().to_string()));
            return ExitCode::from(proto::exit::USAGE);
        }
    };
    let socket = cli.socket.clone().unwrap_or_else(proto::paths::default_socket);
    // In /tmp, the socket's directory could be another user's, serving a fake coordinator.
    if let Err(e) = proto::paths::check_socket_dir(&socket) {
        report(cli.json, &e);
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            report(cli.json, &format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let client = client::Client::new(socket);
    match runtime.block_on(commands::run(&client, cli.command, cli.json)) {
        Ok(code) => code,
        Err(e) => {
            report(cli.json, &format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Reports a failure: one line on stderr, or with `--json` one `{"error": ...}` document on
/// stdout, where a script reading the output finds it.
fn report(json: bool, message: &str) {
    if json {
        let doc = proto::api::ApiError::new(message);
        println!("{}", serde_json::to_string(&doc).unwrap_or_default());
    } else {
        eprintln!("marmotctl: error: {message}");
    }
}
