//! A file by content ([`FileRef`]): what a job names and a worker's cache and the
//! coordinator's store keep, each under its SHA-256; and what a name in a work dir may be.

use serde::{Deserialize, Serialize};

/// A file by content, and the name it has in a unit's work dir.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub name: String,
    /// Lowercase hex.
    pub sha256: String,
    pub size: u64,
}

impl FileRef {
    /// Whether the name is a plain file name and the hash one.
    pub fn check(&self) -> Result<(), String> {
        check_file_name(&self.name)?;
        if !is_sha256(&self.sha256) {
            return Err(format!(
                "{} is not a SHA-256 in lowercase hex",
                crate::names::shown(&self.sha256)
            ));
        }
        Ok(())
    }
}

/// Whether `name` can be a file's name in a work dir: not empty, `.` or `..`, no `/` or NUL,
/// at most 255 bytes.
pub fn check_file_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.contains(['/', '\0']);
    if plain {
        Ok(())
    } else {
        Err(format!("{} cannot be a file's name in a work dir", crate::names::shown(name)))
    }
}

/// Whether `text` is a SHA-256 in lowercase hex.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
