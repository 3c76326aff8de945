//! The control socket: a Unix socket only its owner (or one admin group) can reach.

use crate::fatal::ConfigError;
use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tokio::net::UnixListener;

/// Binds `path` with mode 0600, or 0660 owned by `group`. A stale socket file left by a
/// crashed coordinator is replaced; a live one is an error.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener> {
    let gid = group.map(group_we_can_use).transpose()?;
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mode = if gid.is_some() { 0o750 } else { 0o700 };
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
            if let Some(gid) = gid {
                std::os::unix::fs::chown(dir, None, Some(gid)).with_context(|| {
                    format!("cannot give {} to the socket group", dir.display())
                })?;
            }
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ConfigError::error(format!(
                "another coordinator is already serving {}: stop it first, or pass another --socket",
                path.display()
            )));
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot create the control socket {}", path.display()))?;
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))
            .with_context(|| format!("cannot give {} to the socket group", path.display()))?;
    }
    Ok(listener)
}

/// The id of `--socket-group NAME`, if this process may give files to it: root may, others
/// only to a group they are in. Under the shipped unit (`User=marmot`, no capabilities) that
/// takes a `SupplementaryGroups=` line, which the error spells out.
fn group_we_can_use(name: &str) -> Result<u32> {
    let group = nix::unistd::Group::from_name(name)
        .with_context(|| format!("cannot look up group '{name}'"))?
        .ok_or_else(|| {
            ConfigError::error(format!(
                "--socket-group {name}: there is no group named '{name}' (create it with \
                 `groupadd {name}`, or name another)"
            ))
        })?;
    let gid = group.gid.as_raw();
    let ours: Vec<u32> = nix::unistd::getgroups()
        .unwrap_or_default()
        .into_iter()
        .chain([nix::unistd::getegid()])
        .map(|g| g.as_raw())
        .collect();
    if !may_use_group(nix::unistd::geteuid().is_root(), &ours, gid) {
        let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map_or_else(|| nix::unistd::geteuid().to_string(), |u| u.name);
        return Err(ConfigError::error(format!(
            "--socket-group {name}: this process (user {user}) is not in group '{name}', so it \
             cannot give the control socket to it; under systemd add the group to the service \
             with `sudo systemctl edit marmotd-coordinator` and the lines \
             `[Service]` `SupplementaryGroups={name}`, then restart it"
        )));
    }
    Ok(gid)
}

/// Whether a process may chown a file to group `gid`: as root, or as a member of it.
fn may_use_group(root: bool, our_groups: &[u32], gid: u32) -> bool {
    root || our_groups.contains(&gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_a_process_may_use() {
        assert!(may_use_group(true, &[], 50));
        assert!(may_use_group(false, &[10, 50], 50));
        assert!(!may_use_group(false, &[10], 50));
    }

    #[test]
    fn our_own_group_is_usable() {
        let egid = nix::unistd::getegid();
        let group = nix::unistd::Group::from_gid(egid).unwrap().unwrap();
        assert_eq!(group_we_can_use(&group.name).unwrap(), egid.as_raw());
    }

    #[test]
    fn unknown_groups_are_a_configuration_error() {
        let e = group_we_can_use("no-such-group-marmot").unwrap_err();
        assert!(crate::fatal::is_config_error(&e));
        assert!(format!("{e:#}").contains("no group named"), "{e:#}");
    }
}
