//! Writing key material and other small state files.
//!
//! Files are written to a temporary name and renamed into place, so a crash never leaves half a
//! key behind. The temporary file is a new one each time (`tempfile`), created with the final
//! mode, so a private file is never readable by others, not even for a moment, and a stale
//! temporary file left by a crash (whatever its mode) is never reused.

use crate::CertError;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io { path: path.to_path_buf(), source }
}

/// Writes `bytes` to `path` atomically, with exactly the given mode.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let permissions = std::fs::Permissions::from_mode(mode);
    let mut tmp = tempfile::Builder::new()
        .prefix(".marmot-")
        .suffix(".tmp")
        .permissions(permissions.clone())
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    // The umask may have narrowed the mode at creation: set it exactly.
    tmp.as_file().set_permissions(permissions).map_err(io_err(path))?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| CertError::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

/// Writes a secret (a private key, a token) readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    write_atomic(path, bytes, 0o600)
}

/// Writes a public file (a certificate).
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    write_atomic(path, bytes, 0o644)
}

/// Reads a file, or `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, CertError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CertError::Io { path: path.to_path_buf(), source }),
    }
}

/// Creates a state directory (and its parents), private to its owner.
pub fn create_private_dir(dir: &Path) -> Result<(), CertError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_stale_temp_file_never_lends_its_mode_to_a_key() {
        let dir = tempfile::tempdir().unwrap();
        // What a crash between create and rename left with an older marmot, readable by all.
        let stale = dir.path().join("ca.tmp");
        std::fs::write(&stale, b"stale").unwrap();
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o666)).unwrap();
        let key = dir.path().join("ca.key");
        write_private(&key, b"secret").unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(std::fs::read(&key).unwrap(), b"secret");
        // Over an existing file that others could read: the new one is private all the same.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&key, b"rotated").unwrap();
        assert_eq!(mode(&key), 0o600);
        let cert = dir.path().join("ca.crt");
        write_public(&cert, b"cert").unwrap();
        assert_eq!(mode(&cert), 0o644);
        // Nothing is left beside them but the stale file, untouched.
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["ca.crt", "ca.key", "ca.tmp"]);
        assert_eq!(mode(&stale), 0o666);
    }
}
