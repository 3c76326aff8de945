//! Writing key material and other small state files.
//!
//! Files are written to a temporary name and renamed into place, so a crash never leaves half a
//! key behind, and private files are created with mode 0600 so they are never readable by
//! others, not even for a moment.

use crate::CertError;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io { path: path.to_path_buf(), source }
}

/// Writes `bytes` to `path` atomically, with the given mode.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
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
