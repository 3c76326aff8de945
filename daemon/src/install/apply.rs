//! Performing a plan's steps on the machine, in order, stopping at the first that fails with
//! a line that says which step and why. Files are written with `certs::files::write_atomic`
//! (a fresh temporary file with the final mode, renamed into place); the installer runs as
//! root, so they are root's unless a step gives them to the service.

use super::layout::USER;
use super::plan::{Owner, Step};
use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Performs `steps`, printing each as it goes (the same lines `--dry-run` prints).
pub fn apply(steps: &[Step]) -> Result<()> {
    for step in steps {
        println!("{step}");
        perform(step).with_context(|| format!("failed: {}", first_line(step)))?;
    }
    Ok(())
}

fn first_line(step: &Step) -> String {
    step.to_string().lines().next().unwrap_or_default().to_string()
}

fn perform(step: &Step) -> Result<()> {
    match step {
        Step::CreateUser => run(&[
            "useradd",
            "--system",
            "--user-group",
            "--home-dir",
            super::layout::STATE_BASE,
            "--shell",
            "/usr/sbin/nologin",
            USER,
        ]),
        Step::DeleteUser => run(&["userdel", USER]),
        Step::CreateDir { path, owner, mode } => {
            std::fs::create_dir_all(path)?;
            set_owner_and_mode(path, *owner, *mode)
        }
        Step::Copy { from, to, owner, mode } => {
            let bytes =
                std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
            certs::files::write_atomic(to, &bytes, *mode)?;
            // Owned by root until here, with its final mode: harmless for a binary.
            set_owner_and_mode(to, *owner, *mode)
        }
        Step::Write { path, contents, mode, .. } => {
            Ok(certs::files::write_atomic(path, contents.as_bytes(), *mode)?)
        }
        Step::WriteGenerated { files, .. } => {
            for (path, contents) in files {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                certs::files::write_atomic(path, contents, 0o644)?;
            }
            Ok(())
        }
        Step::Run { argv } => run(&argv.iter().map(String::as_str).collect::<Vec<_>>()),
        Step::RunInto { argv, path } => {
            let output = Command::new(&argv[0]).args(&argv[1..]).stdin(Stdio::null()).output()?;
            if !output.status.success() {
                bail!("{}", last_line(&output.stderr));
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            Ok(certs::files::write_atomic(path, &output.stdout, 0o644)?)
        }
        Step::Remove { path } => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        },
        Step::RemoveTree { path } => match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        },
        Step::RemoveMatching { dir, prefix, suffix } => {
            let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(prefix.as_str()) && name.ends_with(suffix.as_str()) {
                    std::fs::remove_file(entry.path())?;
                }
            }
            Ok(())
        }
        Step::Start { unit, restart } => {
            run(&["systemctl", "enable", "--quiet", unit])?;
            if *restart {
                // For a Type=notify unit this returns once the service sent READY=1, or fails.
                run(&["systemctl", "restart", unit])
                    .with_context(|| format!("{unit} did not start: {}", journal_tail(unit)))?;
            }
            Ok(())
        }
        Step::Keep { .. } => Ok(()),
    }
}

/// Runs a command, failing with the last line it printed on stderr.
fn run(argv: &[&str]) -> Result<()> {
    let output = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", argv[0]))?;
    if !output.status.success() {
        bail!("{} ({})", last_line(&output.stderr), output.status);
    }
    Ok(())
}

fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string()
}

/// The unit's last log line: why it stopped, in marmot's own words.
pub fn journal_tail(unit: &str) -> String {
    let output = Command::new("journalctl")
        .args(["--unit", unit, "--lines", "1", "--output", "cat", "--no-pager", "--quiet"])
        .stdin(Stdio::null())
        .output();
    match output {
        Ok(out) if !out.stdout.is_empty() => {
            format!("{} (journalctl -u {unit})", last_line(&out.stdout))
        }
        _ => format!("see journalctl -u {unit}"),
    }
}

fn set_owner_and_mode(path: &Path, owner: Owner, mode: u32) -> Result<()> {
    let (uid, gid) = match owner {
        Owner::Root => (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0)),
        Owner::Service => {
            let user = nix::unistd::User::from_name(USER)?
                .with_context(|| format!("the user {USER} does not exist"))?;
            (user.uid, user.gid)
        }
    };
    nix::unistd::chown(path, Some(uid), Some(gid))
        .with_context(|| format!("cannot give {} to its owner", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}
