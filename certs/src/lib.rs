//! Marmot's cluster trust: who may join, and how every connection is authenticated.
//!
//! # Layout
//! - [`authority`]: the coordinator's side. Creates the cluster CA and the coordinator's
//!   certificate in its state dir on first start, reloads them afterwards, and signs workers'
//!   certificate requests.
//! - [`member`]: the worker's side. Makes a key and a certificate request, stores the signed
//!   certificate and the CA it belongs to.
//! - [`token`]: join tokens. A token carries the CA certificate's SHA-256 (so a new worker can
//!   pin the coordinator before trusting it) and a secret (so the coordinator can tell a worker
//!   it invited from anyone else on the LAN).
//! - [`tls`]: rustls configurations for the three kinds of connection: coordinator, joining
//!   worker (CA pinned by hash, no client certificate) and member worker (mutual TLS).
//! - [`registry`]: the coordinator's record of which key each worker name was issued to, and
//!   which keys were revoked.
//! - [`files`]: writing secrets to disk with mode 0600, atomically.
//!
//! Nothing here is ever committed: every key and certificate is made at run time.

pub mod authority;
pub mod files;
pub mod member;
pub mod registry;
pub mod tls;
pub mod token;

pub use authority::Authority;
pub use member::Membership;
pub use token::JoinToken;

use sha2::{Digest, Sha256};

/// Why a trust operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("TLS client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("{0}")]
    Invalid(String),
    /// Stored trust files that do not belong together (a CA certificate without its key, a
    /// key that is not the certificate's): starting would make a new cluster or one nobody
    /// can join, so a person must decide.
    #[error("{0}")]
    Damaged(String),
}

/// Whether `key` is the key of the certificate `cert_der` (their public keys are equal).
pub(crate) fn key_matches(cert_der: &[u8], key: &rcgen::KeyPair) -> Result<bool, CertError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| CertError::Invalid(format!("unreadable certificate: {e}")))?;
    Ok(cert.public_key().raw == key.public_key_der().as_slice())
}

/// What marmot reads from a member's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The common name: the worker's name.
    pub name: String,
    /// The SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    /// SHA-256 of `spki_der`, lowercase hex.
    pub key_sha256: String,
    /// Unix seconds.
    pub not_after: i64,
}

/// Reads a certificate's name, key and expiry.
pub fn cert_info(cert_der: &[u8]) -> Result<CertInfo, CertError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| CertError::Invalid(format!("unreadable certificate: {e}")))?;
    let name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| CertError::Invalid("the certificate names no worker".into()))?
        .to_string();
    let spki_der = cert.public_key().raw.to_vec();
    Ok(CertInfo {
        name,
        key_sha256: hex::encode(Sha256::digest(&spki_der)),
        spki_der,
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// The SHA-256 of a DER certificate, in lowercase hex: how tokens name a CA.
pub fn cert_sha256_hex(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}
