//! Reading the [`Facts`] a plan is made from: what the running binary is, and what of each
//! role is already on this machine. Reads only; nothing is changed here.

use super::layout;
use super::plan::{Build, Facts, RoleFacts};
use crate::state_dir::Role;
use crate::update::binary;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether systemd is this machine's init (the test `sd_booted` makes).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A text file, or `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>> {
    let bytes = certs::files::read_optional(path)?;
    Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// A binary's build, or `None` when the file is absent. A file that is not a marmotd build
/// (damaged, truncated) counts as one with no version, so it is replaced.
fn build_of(path: &Path) -> Result<Option<Build>> {
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(match binary::inspect(path) {
        Ok(info) => Build { version: Some(info.version), sha256: info.sha256 },
        Err(_) => Build { version: None, sha256: binary::file_sha256(path)? },
    }))
}

/// Whether a unit is running; false when systemd is not there to ask.
pub fn is_active(unit: &str) -> bool {
    systemd_running()
        && Command::new("systemctl")
            .args(["is-active", "--quiet", unit])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn role_facts(role: Role) -> Result<RoleFacts> {
    let joined = role == Role::Worker
        && certs::member::Membership::load(&layout::state_dir(role)).is_ok_and(|m| m.is_some());
    Ok(RoleFacts {
        binary: build_of(&layout::binary(role))?,
        env: read_optional(&layout::env_file(role))?,
        unit: read_optional(&layout::unit_file(role))?,
        packaged_unit: layout::package_unit_file(role).exists(),
        active: is_active(&layout::unit(role)),
        joined,
    })
}

/// The facts about this machine, for installing `exe` (the running marmotd).
pub fn facts(exe: &Path) -> Result<Facts> {
    let own = build_of(exe)?.context("the running marmotd's executable is gone")?;
    let packaged = exe.parent() == Some(Path::new(layout::PACKAGE_BIN_DIR));
    let marmotctl: Option<PathBuf> =
        Some(exe.with_file_name("marmotctl")).filter(|p| !packaged && p.is_file());
    let user_exists = nix::unistd::User::from_name(layout::USER).is_ok_and(|u| u.is_some());
    Ok(Facts {
        exe: exe.to_path_buf(),
        own,
        packaged,
        marmotctl,
        local_marmotctl: Path::new(layout::LOCAL_MARMOTCTL).exists(),
        user_exists,
        coordinator: role_facts(Role::Coordinator)?,
        worker: role_facts(Role::Worker)?,
    })
}
