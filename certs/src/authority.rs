//! The cluster CA, held by the coordinator.
//!
//! State dir layout: `ca.crt` / `ca.key` (the CA, made once), `coordinator.crt` /
//! `coordinator.key` (re-issued at every start so its SANs follow the `--san` flags),
//! `join-secret`, `reset-key` (signs QUIC stateless resets) and `members.json` (see
//! [`registry`](crate::registry)). Secrets are mode 0600.
//!
//! Worker certificates live a year by default ([`DEFAULT_WORKER_CERT_LIFE`]) and are renewed
//! over the member's own connection, for the same key, once less than a third of that is left.
//!
//! A CA reloaded from disk and re-signed is not byte-identical to the original (ECDSA signatures
//! are random), so the original DER read from `ca.crt` is what is served and hashed.

use crate::registry::{Member, Refusal, Registry, Revoked};
use crate::{cert_info, cert_sha256_hex, files, token, CertError, CertInfo, JoinToken};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a worker certificate is valid unless the coordinator is told otherwise.
pub const DEFAULT_WORKER_CERT_LIFE: Duration = Duration::from_secs(365 * 24 * 3600);

/// How far back a certificate's validity starts, for clocks that step back a little.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Why a worker's certificate was not issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The worker's request may not be granted: tell it why.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("bad certificate request: {0}")]
    BadRequest(CertError),
    /// The coordinator's own failure (its files): the worker should try again later.
    #[error("the coordinator cannot issue certificates now: {0}")]
    Failed(CertError),
}

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
    registry: Registry,
    worker_cert_life: Duration,
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
            (None, None) => {
                Registry::create(dir)?;
                create_ca(dir)?
            }
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
        let registry = Registry::load(dir)?;

        Ok(Authority {
            dir: dir.to_path_buf(),
            ca_der,
            ca_signer,
            ca_key,
            server_cert_der: server_cert.der().to_vec(),
            server_key_der: server_key.serialize_der(),
            registry,
            worker_cert_life: DEFAULT_WORKER_CERT_LIFE,
        })
    }

    /// Issues worker certificates valid for `life` from now on.
    pub fn with_worker_cert_life(mut self, life: Duration) -> Self {
        self.worker_cert_life = life;
        self
    }

    /// How long a worker certificate issued now is valid.
    pub fn worker_cert_life(&self) -> Duration {
        self.worker_cert_life
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

    /// Signs a joining worker's certificate request under `worker_name`, if the name is free
    /// (or already this key's). Only the public key is taken from the request; every other
    /// field is ours.
    pub fn sign_worker(&self, csr_der: &[u8], worker_name: &str) -> Result<Vec<u8>, IssueError> {
        let csr_der = CertificateSigningRequestDer::from(csr_der.to_vec());
        let csr = CertificateSigningRequestParams::from_der(&csr_der)
            .map_err(|e| IssueError::BadRequest(e.into()))?;
        self.issue(&csr.public_key, worker_name)
    }

    /// A new certificate for a member's key and name, valid for the full life from now.
    pub fn renew_worker(&self, member: &CertInfo) -> Result<Vec<u8>, IssueError> {
        let key = rcgen::SubjectPublicKeyInfo::from_der(&member.spki_der)
            .map_err(|e| IssueError::BadRequest(e.into()))?;
        self.issue(&key, &member.name)
    }

    /// Signs a certificate for `key` under `worker_name` and records it, if the registry
    /// allows.
    fn issue(
        &self,
        key: &impl rcgen::PublicKeyData,
        worker_name: &str,
    ) -> Result<Vec<u8>, IssueError> {
        let cert_der = self.sign(key, worker_name).map_err(IssueError::BadRequest)?;
        let info = cert_info(&cert_der).map_err(IssueError::Failed)?;
        self.registry.may_issue(worker_name, &info.key_sha256)?;
        let member = Member { key_sha256: info.key_sha256, not_after: info.not_after };
        self.registry.issued(worker_name, member).map_err(IssueError::Failed)?;
        Ok(cert_der)
    }

    fn sign(
        &self,
        key: &impl rcgen::PublicKeyData,
        worker_name: &str,
    ) -> Result<Vec<u8>, CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(worker_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + self.worker_cert_life;
        let cert = params.signed_by(key, &self.ca_signer, &self.ca_key)?;
        Ok(cert.der().to_vec())
    }

    /// Whether the member presenting `cert_der` (verified by TLS against the CA) may connect
    /// as `claimed`; its certificate's facts if so.
    pub fn check_member(&self, cert_der: &[u8], claimed: &str) -> Result<CertInfo, String> {
        let info = cert_info(cert_der).map_err(|e| e.to_string())?;
        self.registry
            .check_member(&info.name, &info.key_sha256, info.not_after, claimed)
            .map_err(|e| e.to_string())?;
        Ok(info)
    }

    /// Revokes the member `name` (see [`Registry::revoke`]).
    pub fn revoke_worker(&self, name: &str) -> Result<Option<Revoked>, CertError> {
        self.registry.revoke(name, time::OffsetDateTime::now_utc().unix_timestamp())
    }

    /// Whether a worker named `name` holds a certificate of this cluster.
    pub fn is_member(&self, name: &str) -> bool {
        self.registry.member(name).is_some()
    }

    /// How many workers hold a certificate of this cluster.
    pub fn member_count(&self) -> usize {
        self.registry.member_count()
    }

    /// Every revoked member, oldest first.
    pub fn revoked_workers(&self) -> Vec<Revoked> {
        self.registry.revoked()
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
        (files::read_optional(&dir.join("ca.crt"))?, token::read_secret(&dir.join(SECRET_FILE))?)
    else {
        return Ok(None);
    };
    let ca_der = pem_to_der(&String::from_utf8_lossy(&ca_pem))?;
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

    #[test]
    fn worker_certificates_live_as_long_as_told_are_renewed_for_the_same_key_and_revoked() {
        use crate::member::PendingJoin;
        let dir = tempfile::tempdir().unwrap();
        let life = Duration::from_secs(600);
        let a = Authority::load_or_create(dir.path(), "coordinator.marmot", &[])
            .unwrap()
            .with_worker_cert_life(life);
        assert_eq!(a.worker_cert_life(), life);
        let join = PendingJoin::new("w1").unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let cert = a.sign_worker(&join.csr_der, "w1").unwrap();
        let info = cert_info(&cert).unwrap();
        assert_eq!(info.name, "w1");
        assert!((info.not_after - now - 600).abs() <= 2, "{} vs {now}", info.not_after);
        // The same key may ask again (a lost reply); another key may not take the name.
        assert!(a.sign_worker(&join.csr_der, "w1").is_ok());
        let other = PendingJoin::new("w1").unwrap();
        let Err(IssueError::Refused(Refusal::NameTaken(_))) = a.sign_worker(&other.csr_der, "w1")
        else {
            panic!("a second key took the name w1");
        };
        let Err(IssueError::BadRequest(_)) = a.sign_worker(b"not a CSR", "w2") else {
            panic!("garbage signed");
        };

        assert_eq!(a.check_member(&cert, "w1").unwrap(), info);
        let e = a.check_member(&cert, "w2").unwrap_err();
        assert!(e.contains("issued to 'w1', not to 'w2'"), "{e}");
        let renewed = cert_info(&a.renew_worker(&info).unwrap()).unwrap();
        assert_eq!((&renewed.name, &renewed.key_sha256), (&info.name, &info.key_sha256));
        assert!(renewed.not_after >= info.not_after);

        assert_eq!(a.revoke_worker("w1").unwrap().unwrap().key_sha256, info.key_sha256);
        assert_eq!(a.revoked_workers().len(), 1);
        let e = a.check_member(&cert, "w1").unwrap_err();
        assert!(e.contains("was revoked"), "{e}");
        let Err(IssueError::Refused(Refusal::Revoked)) = a.renew_worker(&info) else {
            panic!("a revoked key renewed");
        };
        // The name is free for another machine.
        assert!(a.sign_worker(&other.csr_der, "w1").is_ok());
    }
}
