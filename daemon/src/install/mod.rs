//! `marmotd install` and `marmotd uninstall`: marmot as a systemd service in one command.
//!
//! Installing creates the user `marmot`, copies the running binary into the role's state dir
//! (where the hardened unit lets the service replace it on `marmotctl update`), writes the
//! unit and its environment file, enables and starts the service, waits for its READY=1 and
//! prints what to do next. Running it again changes the settings and keeps the state (keys,
//! membership, a binary updated since). On a machine with the Debian package, the package
//! owns the units, `marmotctl`, completions and man pages, and `install` only configures.
//!
//! # Layout
//! - `layout`: every path an installed marmot uses.
//! - `env_file`: the units' environment files, written and read back.
//! - `plan`: the steps, decided from facts (sans-IO, unit-tested; `--dry-run` prints them).
//! - `host`: reading the facts about this machine.
//! - `apply`: performing the steps.

mod apply;
pub mod env_file;
mod host;
pub mod layout;
pub mod plan;

use crate::state_dir::Role;
use anyhow::{bail, Context, Result};
use env_file::Settings;
use plan::{Docs, Step};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a new worker is given to join before `install` says it has not yet.
const JOIN_WAIT: Duration = Duration::from_secs(30);

/// `marmotd install coordinator|worker`.
pub fn install(settings: &Settings, dry_run: bool) -> Result<()> {
    let command = format!("install {}", settings.role().name());
    check_machine(&command, dry_run)?;
    let facts = host::facts(&own_exe()?)?;
    let steps = plan::install(settings, &facts, &own_docs())?;
    if dry_run {
        return print_dry_run(&command, &steps);
    }
    apply::apply(&steps)?;
    println!();
    match settings {
        Settings::Coordinator { .. } => report_coordinator(facts.packaged),
        Settings::Worker { coordinator, .. } => report_worker(coordinator),
    }
}

/// `marmotd uninstall [ROLE] [--purge]`.
pub fn uninstall(only: Option<Role>, purge: bool, dry_run: bool) -> Result<()> {
    check_machine("uninstall", dry_run)?;
    let facts = host::facts(&own_exe()?)?;
    let steps = plan::uninstall(only, purge, &facts, &own_docs())?;
    if dry_run {
        return print_dry_run("uninstall", &steps);
    }
    apply::apply(&steps)?;
    println!(
        "\nmarmot is uninstalled{}",
        if purge { ", its state removed" } else { "; its state is kept (--purge removes it)" }
    );
    Ok(())
}

/// The Debian package's postinst: each role's binary becomes the packaged one unless that
/// is older than what the role runs (see [`plan::refresh`]).
pub fn refresh() -> Result<()> {
    // No systemd needed: a package may be installed in a chroot; nothing is started there.
    if !host::is_root() {
        bail!("`marmotd install refresh` is for the package's postinst and must run as root");
    }
    let facts = host::facts(&own_exe()?)?;
    apply::apply(&plan::refresh(&facts))
}

fn own_exe() -> Result<PathBuf> {
    std::env::current_exe().context("cannot find this program's executable")
}

/// Root and systemd, or one line saying what is missing (a dry run, which changes nothing,
/// says it before its plan instead).
fn check_machine(command: &str, dry_run: bool) -> Result<()> {
    match missing(command) {
        Some(why) if !dry_run => bail!("{why} (add --dry-run to see what it would do)"),
        _ => Ok(()),
    }
}

/// What this machine lacks for `marmotd COMMAND` to change it, if anything.
fn missing(command: &str) -> Option<String> {
    if !host::is_root() {
        return Some(format!(
            "`marmotd {command}` changes the system and must run as root: sudo marmotd {command} \
             ..."
        ));
    }
    if !host::systemd_running() {
        return Some(
            "systemd is not running on this machine (no /run/systemd/system): start `marmotd \
             coordinator` or `marmotd worker` yourself instead (README: A real cluster)"
                .into(),
        );
    }
    None
}

/// The plan, after a warning of what the real run would refuse.
fn print_dry_run(command: &str, steps: &[Step]) -> Result<()> {
    if let Some(why) = missing(command) {
        eprintln!("marmotd: warning: without --dry-run this would stop here: {why}");
    }
    println!("# marmotd would do this (--dry-run: nothing was changed):");
    for step in steps {
        println!("{step}");
    }
    Ok(())
}

/// `marmotd`'s completions and man pages, where `install` puts them (no package).
fn own_docs() -> Docs {
    use clap::CommandFactory;
    let share = Path::new(layout::LOCAL_SHARE);
    let mut docs: Docs = client::docs::SHELLS
        .into_iter()
        .map(|shell| {
            let mut script = Vec::new();
            client::docs::completions(crate::cli::Cli::command(), shell, &mut script);
            (client::docs::completion_path(share, "marmotd", shell), script)
        })
        .collect();
    let man = layout::local_man_dir();
    docs.extend(
        client::docs::man_pages(crate::cli::Cli::command())
            .into_iter()
            .map(|(name, page)| (man.join(name), page)),
    );
    docs
}

/// The join command for workers, with the token and this machine's LAN addresses.
fn report_coordinator(packaged: bool) -> Result<()> {
    let unit = layout::unit(Role::Coordinator);
    println!("The marmot coordinator runs ({unit}, UDP port {}).", proto::DEFAULT_PORT);
    let addresses = lan_addresses();
    let address = addresses.first().map(String::as_str).unwrap_or("THIS-MACHINE");
    let (how, marmotd) = if packaged {
        ("install the marmot package on it and run there", "marmotd")
    } else {
        ("copy this marmotd to it and run there", "./marmotd")
    };
    match certs::authority::stored_join_token(&layout::state_dir(Role::Coordinator)) {
        Ok(Some(token)) => {
            println!("To add a worker, {how}:");
            println!("  sudo {marmotd} install worker --coordinator {address} --token {token}");
        }
        _ => println!(
            "To add a worker: sudo marmotctl join-token, then {how}: sudo {marmotd} install \
             worker --coordinator {address} --token TOKEN"
        ),
    }
    if addresses.len() > 1 {
        println!("(this machine's addresses: {})", addresses.join(", "));
    }
    println!(
        "Let UDP {} in through this machine's firewall (e.g. sudo ufw allow {}/udp). \
         Then: sudo marmotctl workers",
        proto::DEFAULT_PORT,
        proto::DEFAULT_PORT
    );
    Ok(())
}

/// Waits for a new worker to join (or to stop), and says which.
fn report_worker(coordinator: &str) -> Result<()> {
    let unit = layout::unit(Role::Worker);
    let state = layout::state_dir(Role::Worker);
    let joined = || certs::member::Membership::load(&state).is_ok_and(|m| m.is_some());
    let deadline = Instant::now() + JOIN_WAIT;
    while !joined() {
        if !host::is_active(&unit) {
            bail!("the worker stopped: {}", apply::journal_tail(&unit));
        }
        if Instant::now() > deadline {
            println!(
                "The worker runs ({unit}) but has not joined {coordinator} after {} s; it keeps \
                 trying. Is the coordinator up, and UDP {} open on it? See journalctl -u {unit}",
                JOIN_WAIT.as_secs(),
                proto::DEFAULT_PORT
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("The marmot worker runs ({unit}) and is a member of the cluster at {coordinator}.");
    println!("On the coordinator, sudo marmotctl workers lists it.");
    Ok(())
}

/// This machine's IPv4 addresses other than loopback, the ones workers on a LAN can dial.
fn lan_addresses() -> Vec<String> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    let mut found: Vec<String> = interfaces
        .filter_map(|i| i.address?.as_sockaddr_in().map(|a| a.ip()))
        .filter(|ip| !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified())
        .map(|ip| ip.to_string())
        .collect();
    found.dedup();
    found
}
