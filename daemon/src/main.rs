//! `marmotd`: parses flags, sets up logging and signals, runs the chosen role, and turns its
//! result into an exit code with one readable error line.

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use marmotd::cli::{Cli, Command};
use marmotd::fatal::is_config_error;
use marmotd::state_dir::{self, Role};
use marmotd::update::install::exec_self;
use marmotd::update::pending::Boot;
use marmotd::update::probation::Probation;
use marmotd::update::{binary, Invocation};
use marmotd::{coordinator, install, local, worker};
use std::process::ExitCode;
use tokio::runtime::Builder;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the process does once its role returns.
enum Next {
    Exit,
    /// Re-execute the binary in place: a new one was installed, or the old one restored.
    Reexec,
    /// The same, for a coordinator: on the UDP address it had (a `--listen` port 0 keeps the
    /// port the OS gave it, so workers find it again).
    ReexecListening(std::net::SocketAddr),
}

/// This program's name as a coordinator reads it in a file's bytes (see
/// `proto::version::find_program`).
#[used]
static PROGRAM: &str = "MARMOT-PROGRAM[marmotd]";

fn main() -> ExitCode {
    if let Err(e) = Invocation::capture() {
        eprintln!("marmotd: error: cannot find this program's executable: {e}");
        return ExitCode::FAILURE;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `marmotd` alone: the usage and the list of roles.
            let _ = e.print();
            return ExitCode::from(proto::exit::USAGE);
        }
        Err(e) => {
            eprintln!("marmotd: error: {}", client::usage::one_line(&e.render().to_string()));
            return ExitCode::from(proto::exit::USAGE);
        }
    };
    // Commands for the machine's administrator: no runtime, no logging, plain lines.
    let admin = match cli.command {
        Command::Install(args) => match args.role.into_settings() {
            Some(settings) => install::install(&settings, args.dry_run),
            None => install::refresh(),
        },
        Command::Uninstall(args) => install::uninstall(args.role(), args.purge, args.dry_run),
        Command::Docs(docs) => docs.run(Cli::command()).map_err(anyhow::Error::msg),
        command => return run_role(command),
    };
    match admin {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("marmotd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a role (or the local cluster) until it stops, then exits or re-executes.
fn run_role(command: Command) -> ExitCode {
    let quiet = matches!(command, Command::Demo(_));
    // A worker's lines travel to its coordinator; a coordinator keeps its own beside them
    // (`marmotd local`'s, the whole process's: its dashboard shows them as events).
    let gather = matches!(
        command,
        Command::Coordinator(_) | Command::Worker(_) | Command::Local(_) | Command::Demo(_)
    );
    marmotd::logging::init(if quiet { "warn" } else { "info" }, gather);

    // A role's async side moves small messages: chunks, replies, API calls (kernels run on
    // slot threads, the journal on its writer thread, file work on the blocking pool). One
    // thread does that with no wake-ups across cores, for less CPU per tiny job than a thread
    // per core (`tests/bench/tiny_jobs.py`; the README's benchmarks).
    // The local cluster runs every role in one process and keeps a thread per core.
    let runtime = match command {
        Command::Coordinator(_) | Command::Worker(_) => {
            Builder::new_current_thread().enable_all().build()
        }
        _ => Builder::new_multi_thread().enable_all().build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("marmotd: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(command));
    // Stop every task and thread of the old program before becoming the new one.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(Next::Exit) => ExitCode::SUCCESS,
        Ok(Next::Reexec) => {
            tracing::info!("re-executing");
            eprintln!("marmotd: error: {:#}", exec_self(None));
            ExitCode::FAILURE
        }
        Ok(Next::ReexecListening(addr)) => {
            tracing::info!("re-executing on {addr}");
            eprintln!("marmotd: error: {:#}", exec_self(Some(("--listen", addr.to_string()))));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("marmotd: error: {e:#}");
            // A mistake only a person can fix: systemd must not restart into it forever.
            if is_config_error(&e) {
                ExitCode::from(proto::exit::CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The process: its token (the root of every role's), cancelled by SIGINT or SIGTERM, and the
/// signal watcher, waited for like every other task.
async fn run(command: Command) -> Result<Next> {
    let process = CancellationToken::new();
    let signals = TaskTracker::new();
    let watcher = process.clone();
    signals
        .spawn(async move { watcher.clone().run_until_cancelled(cancel_on_signal(watcher)).await });
    let next = run_command(command, process.clone()).await;
    process.cancel();
    signals.close();
    signals.wait().await;
    next
}

async fn run_command(command: Command, shutdown: CancellationToken) -> Result<Next> {
    match command {
        Command::Coordinator(args) => run_coordinator(args.into_config(), shutdown).await,
        Command::Worker(args) if args.update_trial => {
            worker::trial(args.into_config()).await?;
            Ok(Next::Exit)
        }
        Command::Worker(args) => {
            let config = args.into_config();
            let _lock = state_dir::lock(&config.state_dir, Role::Worker)?;
            let exit = worker::run(config, shutdown).await?;
            tracing::info!("worker stopped: {exit}");
            Ok(if exit == worker::Exit::Restart { Next::Reexec } else { Next::Exit })
        }
        Command::Local(args) => local::run_local(args, shutdown).await.map(|()| Next::Exit),
        Command::Demo(args) => local::run_demo(args, shutdown).await.map(|()| Next::Exit),
        // Handled in `main`, before a runtime starts.
        Command::Install(_) | Command::Uninstall(_) | Command::Docs(_) => Ok(Next::Exit),
    }
}

/// Runs the coordinator; a new binary that fails to start puts the previous one back.
async fn run_coordinator(
    config: coordinator::CoordinatorConfig,
    shutdown: CancellationToken,
) -> Result<Next> {
    let exe = Invocation::get().context("no invocation")?.exe.clone();
    let state_dir = config.state_dir.clone();
    let _lock = state_dir::lock(&state_dir, Role::Coordinator)?;
    let own = binary::own_sha256().await?;
    let probation = Probation::start(state_dir, exe, own).await?;
    if probation.boot() == Boot::RolledBack {
        return Ok(Next::Reexec);
    }
    let running = match coordinator::start(config, shutdown).await {
        Ok(running) => running,
        Err(e) if probation.boot() == Boot::OnProbation => {
            probation.fail(format!("the new binary failed to start: {e:#}")).await?;
            return Ok(Next::Reexec);
        }
        Err(e) => return Err(e),
    };
    // Listening: a new binary on probation has proved itself.
    probation.pass().await;
    marmotd::systemd::notify_ready();
    let listening = running.local_addr;
    Ok(match running.stopped().await {
        coordinator::Stopped::Restart => Next::ReexecListening(listening),
        coordinator::Stopped::Shutdown => Next::Exit,
    })
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
