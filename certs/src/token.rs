//! Join tokens: `marmot1-<CA SHA-256, hex>-<secret>`.
//!
//! The hash lets a worker that knows nothing yet recognise its coordinator (as kubeadm's
//! `--discovery-token-ca-cert-hash` does); the secret proves to the coordinator that the worker
//! was invited. The coordinator keeps only the current secret, so rotating it makes every old
//! token useless for new joins while workers that already joined keep their certificates.

use crate::{files, CertError};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

const PREFIX: &str = "marmot1";

/// A parsed join token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinToken {
    /// SHA-256 of the CA certificate's DER, lowercase hex.
    pub ca_sha256: String,
    /// The shared secret, lowercase hex.
    pub secret: String,
}

impl JoinToken {
    /// Whether `offered` is this token's secret, compared in constant time over digests.
    pub fn secret_matches(&self, offered: &str) -> bool {
        let a = Sha256::digest(self.secret.as_bytes());
        let b = Sha256::digest(offered.as_bytes());
        a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}-{}-{}", self.ca_sha256, self.secret)
    }
}

impl FromStr for JoinToken {
    type Err = CertError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            CertError::Invalid(
                "malformed join token: expected marmot1-<64 hex digits>-<secret>; \
                 get one with `marmotctl join-token` on the coordinator"
                    .into(),
            )
        };
        let mut parts = s.trim().splitn(3, '-');
        let (Some(PREFIX), Some(hash), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if hash.len() != 64 || !is_hex(hash) || secret.is_empty() || !is_hex(secret) {
            return Err(bad());
        }
        Ok(JoinToken { ca_sha256: hash.to_ascii_lowercase(), secret: secret.to_ascii_lowercase() })
    }
}

fn is_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn new_secret() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The coordinator's current secret, stored in `path`; created on first use (or when the file
/// is empty). A file holding anything but a secret is refused: printed as a token, it would
/// be one no worker can join with.
pub fn load_or_create_secret(path: &Path) -> Result<String, CertError> {
    match read_secret(path)? {
        Some(secret) => Ok(secret),
        None => rotate_secret(path),
    }
}

/// The secret stored in `path`: `None` if there is none yet (no file, or an empty one).
pub fn read_secret(path: &Path) -> Result<Option<String>, CertError> {
    let Some(bytes) = files::read_optional(path)? else { return Ok(None) };
    let text = String::from_utf8_lossy(&bytes);
    let secret = text.trim();
    if secret.is_empty() {
        return Ok(None);
    }
    if secret.len() > 128 || !is_hex(secret) {
        return Err(CertError::Damaged(format!(
            "{} holds no join secret (a secret is hex digits): remove it, and a new one is \
             made at the next start (tokens printed before stop working)",
            path.display()
        )));
    }
    Ok(Some(secret.to_ascii_lowercase()))
}

/// Replaces the stored secret with a fresh one and returns it.
pub fn rotate_secret(path: &Path) -> Result<String, CertError> {
    let secret = new_secret();
    files::write_private(path, secret.as_bytes())?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let t = JoinToken { ca_sha256: "ab".repeat(32), secret: new_secret() };
        assert_eq!(t.to_string().parse::<JoinToken>().unwrap(), t);
        for bad in ["", "marmot1", "marmot1-abc-def", "other-".to_string().as_str()] {
            assert!(bad.parse::<JoinToken>().is_err(), "{bad:?}");
        }
        let not_hex = format!("marmot1-{}-zz", "ab".repeat(32));
        assert!(not_hex.parse::<JoinToken>().is_err());
    }

    #[test]
    fn secret_comparison() {
        let t = JoinToken { ca_sha256: "ab".repeat(32), secret: "00ff".into() };
        assert!(t.secret_matches("00ff"));
        assert!(!t.secret_matches("00fe"));
        assert!(!t.secret_matches(""));
    }

    #[test]
    fn a_stored_secret_that_is_not_one_is_refused_not_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("join-secret");
        for garbage in ["hello world", "-rf /", &"ab".repeat(65)] {
            std::fs::write(&path, garbage).unwrap();
            let Err(e) = load_or_create_secret(&path) else { panic!("{garbage:?} taken") };
            assert!(matches!(e, CertError::Damaged(_)), "{e}");
            assert!(e.to_string().contains("holds no join secret"), "{e}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), garbage, "left as it was");
        }
        std::fs::write(&path, "  \n").unwrap();
        let fresh = load_or_create_secret(&path).unwrap();
        assert_eq!(fresh.len(), 32, "an empty file: a new secret");
        std::fs::write(&path, "00FF\n").unwrap();
        assert_eq!(load_or_create_secret(&path).unwrap(), "00ff");
    }

    #[test]
    fn rotation_changes_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("join-secret");
        let a = load_or_create_secret(&path).unwrap();
        assert_eq!(load_or_create_secret(&path).unwrap(), a);
        let b = rotate_secret(&path).unwrap();
        assert_ne!(a, b);
        assert_eq!(load_or_create_secret(&path).unwrap(), b);
    }
}
