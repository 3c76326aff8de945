//! The control socket: a Unix socket only its owner (or one admin group) can reach.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tokio::net::UnixListener;

/// Binds `path` with mode 0600, or 0660 owned by `group`. A stale socket file left by a
/// crashed coordinator is replaced; a live one is an error.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener> {
    let gid = group
        .map(|name| -> Result<u32> {
            let group = nix::unistd::Group::from_name(name)
                .with_context(|| format!("cannot look up group '{name}'"))?
                .with_context(|| format!("no group named '{name}'"))?;
            Ok(group.gid.as_raw())
        })
        .transpose()?;
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mode = if gid.is_some() { 0o750 } else { 0o700 };
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
            if let Some(gid) = gid {
                std::os::unix::fs::chown(dir, None, Some(gid))?;
            }
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "another coordinator is already serving {}: stop it first, or pass another --socket",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot create the control socket {}", path.display()))?;
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))?;
    }
    Ok(listener)
}
