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
        let is_hex = |x: &str| x.bytes().all(|b| b.is_ascii_hexdigit());
        if hash.len() != 64 || !is_hex(hash) || secret.is_empty() || !is_hex(secret) {
            return Err(bad());
        }
        Ok(JoinToken { ca_sha256: hash.to_ascii_lowercase(), secret: secret.to_ascii_lowercase() })
    }
}

fn new_secret() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The coordinator's current secret, stored in `path`; created on first use.
pub fn load_or_create_secret(path: &Path) -> Result<String, CertError> {
    if let Some(bytes) = files::read_optional(path)? {
        let secret = String::from_utf8_lossy(&bytes).trim().to_string();
        if !secret.is_empty() {
            return Ok(secret);
        }
    }
    rotate_secret(path)
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
