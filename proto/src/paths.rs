//! Where the control socket and state live by default, shared by `marmotd` and `marmotctl`
//! so both find the same socket without flags.
//!
//! As root (a systemd service): `/run/marmot/marmotd.sock` and `/var/lib/marmot`. Otherwise:
//! `$XDG_RUNTIME_DIR/marmot/marmotd.sock` and `$XDG_DATA_HOME/marmot` (falling back to
//! `/tmp/marmot-UID/` and `~/.local/share/marmot`). Each role keeps its state in its own
//! directory below the state base (`marmotd`'s `state_dir` module). `--socket`/`MARMOT_SOCKET`
//! and `--state-dir` override them.

use std::path::PathBuf;

/// The environment variable both binaries read for the socket path.
pub const SOCKET_ENV: &str = "MARMOT_SOCKET";

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The default control socket path.
pub fn default_socket() -> PathBuf {
    if is_root() {
        return PathBuf::from("/run/marmot/marmotd.sock");
    }
    let base = env_dir("XDG_RUNTIME_DIR")
        .map(|d| d.join("marmot"))
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/marmot-{}", nix::unistd::geteuid())));
    base.join("marmotd.sock")
}

/// The directory under which each role keeps its state directory.
pub fn state_base() -> PathBuf {
    if is_root() {
        return PathBuf::from("/var/lib/marmot");
    }
    env_dir("XDG_DATA_HOME")
        .or_else(|| env_dir("HOME").map(|h| h.join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("marmot")
}
