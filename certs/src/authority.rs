//! The cluster CA, held by the coordinator.
//!
//! State dir layout: `ca.crt` / `ca.key` (the CA, made once), `coordinator.crt` /
//! `coordinator.key` (re-issued at every start so its SANs follow the `--san` flags),
//! `join-secret`, and `reset-key` (signs QUIC stateless resets). Secrets are mode 0600.
//!
//! A CA reloaded from disk and re-signed is not byte-identical to the original (ECDSA signatures
//! are random), so the original DER read from `ca.crt` is what is served and hashed.

use crate::{cert_sha256_hex, files, token, CertError, JoinToken};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

/// The file holding the current join secret, in the coordinator's state dir.
const SECRET_FILE: &str = "join-secret";

/// The coordinator's trust state.
pub struct Authority {
    dir: PathBuf,
    ca_der: Vec<u8>,
    /// The CA as rcgen needs it to sign (re-signed from the stored params; see module docs).
    ca_signer: rcgen::Certificate,
    ca_key: KeyPair,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
}

impl Authority {
    /// Loads the CA from `dir`, creating it on first start, and issues the coordinator's own
    /// certificate for `localhost`, `127.0.0.1`, the stable coordinator name and `extra_sans`.
    pub fn load_or_create(
        dir: &Path,
        server_name: &str,
        extra_sans: &[String],
    ) -> Result<Self, CertError> {
        files::create_private_dir(dir)?;
        let (ca_pem, key_pem) = match (
            files::read_optional(&dir.join("ca.crt"))?,
            files::read_optional(&dir.join("ca.key"))?,
        ) {
            (Some(cert), Some(key)) => (
                String::from_utf8_lossy(&cert).into_owned(),
                String::from_utf8_lossy(&key).into_owned(),
            ),
            // A new CA only for a new cluster: with one half left, a new CA would orphan every
            // worker without a word.
            (None, None) => create_ca(dir)?,
            (Some(_), None) => return Err(damaged(dir, "ca.key is missing beside ca.crt")),
            (None, Some(_)) => return Err(damaged(dir, "ca.crt is missing beside ca.key")),
        };
        let ca_key = KeyPair::from_pem(&key_pem)?;
        let ca_params = CertificateParams::from_ca_cert_pem(&ca_pem)?;
        let ca_der = pem_to_der(&ca_pem)?;
        if !crate::key_matches(&ca_der, &ca_key)? {
            return Err(damaged(dir, "ca.key is not the key of ca.crt"));
        }
        let ca_signer = ca_params.self_signed(&ca_key)?;

        let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string(), server_name.into()];
        sans.extend(extra_sans.iter().cloned());
        sans.dedup();
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name = name("marmot coordinator");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let server_key = KeyPair::generate()?;
        let server_cert = params.signed_by(&server_key, &ca_signer, &ca_key)?;
        files::write_public(&dir.join("coordinator.crt"), server_cert.pem().as_bytes())?;
        files::write_private(&dir.join("coordinator.key"), server_key.serialize_pem().as_bytes())?;

        Ok(Authority {
            dir: dir.to_path_buf(),
            ca_der,
            ca_signer,
            ca_key,
            server_cert_der: server_cert.der().to_vec(),
            server_key_der: server_key.serialize_der(),
        })
    }

    /// The CA certificate, exactly as stored.
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The coordinator's chain (its certificate, then the CA) and key, for rustls.
    pub fn server_identity(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let chain = vec![
            CertificateDer::from(self.server_cert_der.clone()),
            CertificateDer::from(self.ca_der.clone()),
        ];
        let key = PrivateKeyDer::Pkcs8(self.server_key_der.clone().into());
        (chain, key)
    }

    /// The current join token.
    pub fn join_token(&self) -> Result<JoinToken, CertError> {
        let secret = token::load_or_create_secret(&self.secret_path())?;
        Ok(JoinToken { ca_sha256: cert_sha256_hex(&self.ca_der), secret })
    }

    /// Replaces the join secret; tokens printed before stop working for new joins.
    pub fn rotate_join_token(&self) -> Result<JoinToken, CertError> {
        let secret = token::rotate_secret(&self.secret_path())?;
        Ok(JoinToken { ca_sha256: cert_sha256_hex(&self.ca_der), secret })
    }

    /// Signs a worker's certificate request. Only the public key is taken from the request;
    /// every other field is ours.
    pub fn sign_worker(&self, csr_der: &[u8], worker_name: &str) -> Result<Vec<u8>, CertError> {
        let csr_der = CertificateSigningRequestDer::from(csr_der.to_vec());
        let mut csr = CertificateSigningRequestParams::from_der(&csr_der)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(worker_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        csr.params = params;
        let cert = csr.signed_by(&self.ca_signer, &self.ca_key)?;
        Ok(cert.der().to_vec())
    }

    /// The key that signs QUIC stateless resets, made once and kept (see the transport).
    pub fn reset_key(&self) -> Result<Vec<u8>, CertError> {
        let path = self.dir.join("reset-key");
        if let Some(key) = files::read_optional(&path)?.filter(|k| k.len() == 32) {
            return Ok(key);
        }
        let mut key = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        files::write_private(&path, &key)?;
        Ok(key)
    }

    fn secret_path(&self) -> PathBuf {
        self.dir.join(SECRET_FILE)
    }
}

fn damaged(dir: &Path, what: &str) -> CertError {
    CertError::Damaged(format!(
        "the cluster CA in {} is damaged: {what}. Put the missing or right file back (from a \
         backup); only to start a new cluster (every worker joins again) remove both ca.crt \
         and ca.key",
        dir.display()
    ))
}

/// The join token of the coordinator whose state is in `dir`, read without creating anything
/// (`None` before its first start): for `marmotd install`, which runs beside the service.
pub fn stored_join_token(dir: &Path) -> Result<Option<JoinToken>, CertError> {
    let (Some(ca_pem), Some(secret)) =
        (files::read_optional(&dir.join("ca.crt"))?, files::read_optional(&dir.join(SECRET_FILE))?)
    else {
        return Ok(None);
    };
    let ca_der = pem_to_der(&String::from_utf8_lossy(&ca_pem))?;
    let secret = String::from_utf8_lossy(&secret).trim().to_string();
    Ok(Some(JoinToken { ca_sha256: cert_sha256_hex(&ca_der), secret }))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn create_ca(dir: &Path) -> Result<(String, String), CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name("marmot cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    // Key first: a crash between the two writes leaves no certificate without its key.
    files::write_private(&dir.join("ca.key"), key_pem.as_bytes())?;
    files::write_public(&dir.join("ca.crt"), cert_pem.as_bytes())?;
    Ok((cert_pem, key_pem))
}

/// The DER inside a single-certificate PEM file.
pub(crate) fn pem_to_der(pem: &str) -> Result<Vec<u8>, CertError> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.to_vec())
        .map_err(|e| CertError::Invalid(format!("unreadable certificate: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn ca_is_made_once_and_keys_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = Authority::load_or_create(dir.path(), "coordinator.marmot", &[]).unwrap();
        let b = Authority::load_or_create(dir.path(), "coordinator.marmot", &["10.1.2.3".into()])
            .unwrap();
        assert_eq!(a.ca_der(), b.ca_der(), "the CA survives a restart byte for byte");
        assert_eq!(a.reset_key().unwrap(), b.reset_key().unwrap(), "kept across restarts");
        for key in ["ca.key", "coordinator.key", "join-secret", "reset-key"] {
            b.join_token().unwrap();
            let mode = std::fs::metadata(dir.path().join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }

    #[test]
    fn a_ca_with_a_missing_or_foreign_half_is_refused_not_replaced() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        Authority::load_or_create(a.path(), "coordinator.marmot", &[]).unwrap();
        Authority::load_or_create(b.path(), "coordinator.marmot", &[]).unwrap();
        let ca_of_a = std::fs::read(a.path().join("ca.crt")).unwrap();

        // Another CA's key beside this certificate.
        std::fs::copy(b.path().join("ca.key"), a.path().join("ca.key")).unwrap();
        let Err(e) = Authority::load_or_create(a.path(), "coordinator.marmot", &[]) else {
            panic!("a foreign key was accepted");
        };
        assert!(matches!(e, CertError::Damaged(_)), "{e}");
        assert!(e.to_string().contains("ca.key is not the key of ca.crt"), "{e}");

        // Either half missing.
        std::fs::remove_file(a.path().join("ca.key")).unwrap();
        let Err(e) = Authority::load_or_create(a.path(), "coordinator.marmot", &[]) else {
            panic!("a CA without its key was replaced");
        };
        assert!(e.to_string().contains("ca.key is missing beside ca.crt"), "{e}");
        assert_eq!(std::fs::read(a.path().join("ca.crt")).unwrap(), ca_of_a, "kept as it was");
        std::fs::remove_file(b.path().join("ca.crt")).unwrap();
        let Err(e) = Authority::load_or_create(b.path(), "coordinator.marmot", &[]) else {
            panic!("a key without its CA was replaced");
        };
        assert!(e.to_string().contains("ca.crt is missing beside ca.key"), "{e}");
        assert!(!b.path().join("ca.crt").exists());
    }

    #[test]
    fn the_stored_token_is_the_authoritys_and_reading_it_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(stored_join_token(dir.path()).unwrap(), None);
        assert!(!dir.path().join(SECRET_FILE).exists());
        let a = Authority::load_or_create(dir.path(), "coordinator.marmot", &[]).unwrap();
        assert_eq!(stored_join_token(dir.path()).unwrap(), None, "no secret yet");
        let token = a.join_token().unwrap();
        assert_eq!(stored_join_token(dir.path()).unwrap(), Some(token));
    }

    #[test]
    fn token_names_the_ca_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let a = Authority::load_or_create(dir.path(), "coordinator.marmot", &[]).unwrap();
        let t1 = a.join_token().unwrap();
        assert_eq!(t1.ca_sha256, cert_sha256_hex(a.ca_der()));
        assert_eq!(a.join_token().unwrap(), t1);
        let t2 = a.rotate_join_token().unwrap();
        assert_ne!(t1.secret, t2.secret);
        assert_eq!(a.join_token().unwrap(), t2);
    }
}
