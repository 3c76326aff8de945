//! The control socket: a Unix socket only its owner (or one admin group) can reach.

use crate::fatal::ConfigError;
use anyhow::{Context, Result};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use tokio::net::UnixListener;

/// Binds `path` with mode 0600, or 0660 owned by `group`. A stale socket file left by a
/// crashed coordinator is replaced; a live one is an error.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener> {
    let gid = group.map(group_we_can_use).transpose()?;
    proto::paths::check_socket_dir(path).map_err(ConfigError::error)?;
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
    match std::fs::symlink_metadata(path) {
        // Only a socket is ever removed: `--socket state/ca.key` must not delete the CA key.
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(ConfigError::error(format!(
                "{} is not a socket: marmotd replaces only a socket left by a coordinator that \
                 stopped; pass another --socket",
                path.display()
            )));
        }
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ConfigError::error(format!(
                    "another coordinator is already serving {}: stop it first, or pass another \
                     --socket",
                    path.display()
                )));
            }
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove stale {}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot check {}", path.display())),
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

    #[tokio::test]
    async fn only_a_stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        // A file at the socket's path (say, the CA key) is refused and kept.
        let key = dir.path().join("ca.key");
        std::fs::write(&key, b"the CA key").unwrap();
        let e = bind(&key, None).unwrap_err();
        assert!(crate::fatal::is_config_error(&e));
        assert!(format!("{e:#}").contains("is not a socket"), "{e:#}");
        assert_eq!(std::fs::read(&key).unwrap(), b"the CA key");
        // So is a directory (one inside the test's own directory: never touch its parent).
        let sub = dir.path().join("a-directory");
        std::fs::create_dir(&sub).unwrap();
        assert!(bind(&sub, None).is_err());
        assert!(sub.is_dir());
        // A socket nobody serves any more is replaced; a live one is refused.
        let path = dir.path().join("marmotd.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let live = bind(&path, None).unwrap();
        let e = bind(&path, None).unwrap_err();
        assert!(format!("{e:#}").contains("already serving"), "{e:#}");
        drop(live);
    }

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
