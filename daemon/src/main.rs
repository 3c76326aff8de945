//! `marmotd`: parses flags, sets up logging and signals, runs the chosen role, and turns its
//! result into an exit code with one readable error line.

use anyhow::Result;
use clap::Parser;
use marmotd::cli::{Cli, Command};
use marmotd::{coordinator, local, worker};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            eprintln!("marmotd: error: {}", proto::usage::one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    let quiet = matches!(cli.command, Command::Demo(_));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if quiet { "warn" } else { "info" })
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("marmotd: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("marmotd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    match cli.command {
        Command::Coordinator(args) => {
            let running = coordinator::start(args.into_config(), shutdown).await?;
            running.stopped().await;
            Ok(())
        }
        Command::Worker(args) => {
            let exit = worker::run(args.into_config(), shutdown).await?;
            tracing::info!("worker stopped ({exit:?})");
            Ok(())
        }
        Command::Local(args) => local::run_local(args, shutdown).await,
        Command::Demo(args) => local::run_demo(args, shutdown).await,
    }
}

/// SIGINT (Ctrl-C) and SIGTERM (systemd's stop) both start a graceful shutdown.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
