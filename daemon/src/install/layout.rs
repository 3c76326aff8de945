//! Where an installed marmot lives: one place for every path `marmotd install` writes, the
//! Debian package ships, and the units in `systemd/` name.

use crate::state_dir::Role;
use std::path::{Path, PathBuf};

/// The system user both services run as.
pub const USER: &str = "marmot";
/// The state base; each role's state dir (and its copy of the binary) is below it.
pub const STATE_BASE: &str = "/var/lib/marmot";
/// Environment files (`coordinator.env`, `worker.env`), 0600: the worker's holds its token.
pub const ENV_DIR: &str = "/etc/marmot";
/// Units written by `marmotd install` (a machine without the package).
pub const UNIT_DIR: &str = "/etc/systemd/system";
/// Units shipped by the Debian package.
pub const PACKAGE_UNIT_DIR: &str = "/lib/systemd/system";
/// The binaries of the Debian package.
pub const PACKAGE_BIN_DIR: &str = "/usr/bin";
/// `marmotctl`, when `marmotd install coordinator` copies it (no package).
pub const LOCAL_MARMOTCTL: &str = "/usr/local/bin/marmotctl";
/// Completions and man pages written by `marmotd install` (no package).
pub const LOCAL_SHARE: &str = "/usr/local/share";
/// The control socket of the coordinator's unit.
pub const SOCKET: &str = "/run/marmot/marmotd.sock";

/// The roles `marmotd install` knows, in the order they are installed and reported.
pub const ROLES: [Role; 2] = [Role::Coordinator, Role::Worker];

/// The systemd unit of a role.
pub fn unit(role: Role) -> String {
    format!("marmotd-{}.service", role.name())
}

/// The unit's text, as shipped in `systemd/` (one source for the package and the installer).
pub fn unit_text(role: Role) -> &'static str {
    match role {
        Role::Coordinator => include_str!("../../../systemd/marmotd-coordinator.service"),
        Role::Worker => include_str!("../../../systemd/marmotd-worker.service"),
    }
}

pub fn state_dir(role: Role) -> PathBuf {
    Path::new(STATE_BASE).join(role.name())
}

/// The binary the role's unit runs: inside its state dir, the one place the hardened unit
/// lets the service write, so that `marmotctl update` can replace it.
pub fn binary(role: Role) -> PathBuf {
    bin_dir(role).join("marmotd")
}

/// The directory of [`binary`].
pub fn bin_dir(role: Role) -> PathBuf {
    state_dir(role).join("bin")
}

pub fn env_file(role: Role) -> PathBuf {
    Path::new(ENV_DIR).join(format!("{}.env", role.name()))
}

pub fn unit_file(role: Role) -> PathBuf {
    Path::new(UNIT_DIR).join(unit(role))
}

pub fn package_unit_file(role: Role) -> PathBuf {
    Path::new(PACKAGE_UNIT_DIR).join(unit(role))
}

pub fn local_man_dir() -> PathBuf {
    Path::new(LOCAL_SHARE).join("man/man1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_run_the_binary_and_env_file_installed_here() {
        for role in ROLES {
            let text = unit_text(role);
            let exec = format!("ExecStart={} {}", binary(role).display(), role.name());
            assert!(text.contains(&exec), "{role:?}: {exec}");
            assert!(text.contains(&format!("--state-dir {}", state_dir(role).display())));
            assert!(
                text.contains(&format!("EnvironmentFile=-{}", env_file(role).display()))
                    || text.contains(&format!("EnvironmentFile={}", env_file(role).display()))
            );
            assert!(text.contains(&format!("User={USER}")));
            // systemd owns exactly the role's state dir (relative to /var/lib), no more.
            let own = state_dir(role);
            let own = own.strip_prefix("/var/lib").unwrap().display().to_string();
            let dirs: Vec<&str> =
                text.lines().filter_map(|l| l.strip_prefix("StateDirectory=")).collect();
            assert_eq!(dirs, [own.as_str()], "{role:?}");
        }
        assert!(unit_text(Role::Coordinator).contains(&format!("--socket {SOCKET}")));
        assert_eq!(unit(Role::Worker), "marmotd-worker.service");
        assert_eq!(
            package_unit_file(Role::Worker),
            Path::new("/lib/systemd/system/marmotd-worker.service")
        );
        assert_eq!(
            unit_file(Role::Coordinator),
            Path::new("/etc/systemd/system/marmotd-coordinator.service")
        );
    }
}
