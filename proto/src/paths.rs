//! Where the control socket and state live by default, shared by `marmotd` and `marmotctl`
//! so both find the same socket without flags.
//!
//! As root (a systemd service): `/run/marmot/marmotd.sock` and `/var/lib/marmot`. Otherwise:
//! `$XDG_RUNTIME_DIR/marmot/marmotd.sock` and `$XDG_DATA_HOME/marmot` (falling back to
//! `/tmp/marmot-UID/` and `~/.local/share/marmot`). Each role keeps its state in its own
//! directory below the state base (`marmotd`'s `state_dir` module). `--socket`/`MARMOT_SOCKET`
//! and `--state-dir` override them.

use std::path::{Path, PathBuf};

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
    let base = env_dir("XDG_RUNTIME_DIR").map(|d| d.join("marmot")).unwrap_or_else(shared_tmp_dir);
    base.join("marmotd.sock")
}

/// The socket's directory when `XDG_RUNTIME_DIR` is unset: `/tmp/marmot-UID`. In `/tmp`,
/// anyone may make it first, so it is used only after [`check_own_dir`].
pub fn shared_tmp_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/marmot-{}", nix::unistd::geteuid()))
}

/// Checks the directory of a control socket before it is served or dialled: in
/// [`shared_tmp_dir`] it must pass [`check_own_dir`]; elsewhere (`/run`, `XDG_RUNTIME_DIR`, a
/// path the user chose) nothing is checked.
pub fn check_socket_dir(socket: &Path) -> Result<(), String> {
    let shared = shared_tmp_dir();
    if socket.parent() == Some(shared.as_path()) {
        check_own_dir(&shared)?;
    }
    Ok(())
}

/// Refuses a directory that another user could have made or can write: one that is not
/// this user's own (or is a symbolic link), or that others may write to. Another local user
/// who made `/tmp/marmot-UID` first could otherwise serve a fake coordinator to `marmotctl`
/// (and its join tokens) or see what is uploaded.
pub fn check_own_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot check {}: {e}", dir.display())),
    };
    let fix = "remove it (or set XDG_RUNTIME_DIR, or pass --socket)";
    if !meta.is_dir() {
        return Err(format!("{} is not a directory of yours: {fix}", dir.display()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "{} belongs to user {}, not to you (user {me}): another user may have made it to \
             stand in for marmot's socket; {fix}",
            dir.display(),
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{} can be written by other users (mode {mode:03o}): chmod 700 it, or {fix}",
            dir.display()
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn default_places() {
        let uid = nix::unistd::geteuid();
        assert_eq!(shared_tmp_dir(), PathBuf::from(format!("/tmp/marmot-{uid}")));
        if uid.is_root() {
            assert_eq!(default_socket(), Path::new("/run/marmot/marmotd.sock"));
            assert_eq!(state_base(), Path::new("/var/lib/marmot"));
        } else {
            assert!(default_socket().ends_with("marmot/marmotd.sock"));
            assert!(state_base().ends_with("marmot"));
        }
        // An environment directory counts only when set and not empty (a name no other test uses).
        let var = "MARMOT_PATHS_TEST_DIR";
        std::env::set_var(var, "/somewhere");
        assert_eq!(env_dir(var), Some(PathBuf::from("/somewhere")));
        std::env::set_var(var, "");
        assert_eq!(env_dir(var), None);
        std::env::remove_var(var);
        assert_eq!(env_dir(var), None);
    }

    #[test]
    fn only_our_own_closed_directories_pass() {
        let temp = tempfile::tempdir().unwrap();
        let base = temp.path();
        let dir = base.join("sock");
        std::fs::create_dir_all(&dir).unwrap();
        let chmod = |mode| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode));
        chmod(0o700).unwrap();
        assert_eq!(check_own_dir(&dir), Ok(()));
        chmod(0o750).unwrap();
        assert_eq!(check_own_dir(&dir), Ok(()), "readable by the group is not writable");
        chmod(0o777).unwrap();
        let e = check_own_dir(&dir).unwrap_err();
        assert!(e.contains("can be written by other users (mode 777)"), "{e}");
        chmod(0o720).unwrap();
        assert!(check_own_dir(&dir).is_err(), "group-writable");
        chmod(0o700).unwrap();
        // A symbolic link, even to a good directory, is not one.
        let link = base.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(check_own_dir(&link).unwrap_err().contains("not a directory of yours"));
        // Not there yet: fine, it will be made ours. Not checkable: refused.
        assert_eq!(check_own_dir(&base.join("absent")), Ok(()));
        let file = base.join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(check_own_dir(&file.join("below")).unwrap_err().starts_with("cannot check"));
        // Someone else's (only root can make one to try it).
        if is_root() {
            nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
            let e = check_own_dir(&dir).unwrap_err();
            assert!(e.contains("belongs to user 65534, not to you"), "{e}");
        }
    }
}
