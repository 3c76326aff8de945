//! A worker's membership: its key, the certificate the coordinator signed for it, and the CA.
//!
//! Stored in the worker's state dir as `worker.key` (0600), `worker.crt` and `cluster-ca.crt`
//! (named apart from the coordinator's `ca.crt`, so both roles can share a state dir). Once
//! these exist the worker connects with mutual TLS and never needs its join token again.

use crate::authority::pem_to_der;
use crate::{files, CertError};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// A worker's credentials.
#[derive(Clone)]
pub struct Membership {
    pub ca_der: Vec<u8>,
    pub cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

/// A key and the certificate request for it, before the coordinator signed it.
pub struct PendingJoin {
    key: KeyPair,
    pub csr_der: Vec<u8>,
}

impl PendingJoin {
    /// A fresh key and a request naming the worker.
    pub fn new(worker_name: &str) -> Result<Self, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, worker_name);
        params.distinguished_name = dn;
        let csr = params.serialize_request(&key)?;
        Ok(PendingJoin { csr_der: csr.der().to_vec(), key })
    }

    /// Stores the signed certificate with the key and CA, and returns the membership.
    pub fn complete(
        self,
        dir: &Path,
        cert_der: Vec<u8>,
        ca_der: Vec<u8>,
    ) -> Result<Membership, CertError> {
        files::create_private_dir(dir)?;
        files::write_private(&dir.join("worker.key"), self.key.serialize_pem().as_bytes())?;
        files::write_public(&dir.join("worker.crt"), der_to_pem(&cert_der).as_bytes())?;
        files::write_public(&dir.join("cluster-ca.crt"), der_to_pem(&ca_der).as_bytes())?;
        Ok(Membership { ca_der, cert_der, key_der: self.key.serialize_der() })
    }
}

impl Membership {
    /// The stored membership, or `None` if this worker has not joined yet.
    pub fn load(dir: &Path) -> Result<Option<Self>, CertError> {
        let (Some(key), Some(cert), Some(ca)) = (
            files::read_optional(&dir.join("worker.key"))?,
            files::read_optional(&dir.join("worker.crt"))?,
            files::read_optional(&dir.join("cluster-ca.crt"))?,
        ) else {
            return Ok(None);
        };
        let key = KeyPair::from_pem(&String::from_utf8_lossy(&key))?;
        let cert_der = pem_to_der(&String::from_utf8_lossy(&cert))?;
        if !crate::key_matches(&cert_der, &key)? {
            // Found here, it is one clear line; found by the TLS handshake, it looks like a
            // coordinator that cannot be reached.
            return Err(CertError::Damaged(format!(
                "worker.key in {} is not the key of worker.crt: this worker's membership is \
                 damaged; remove worker.key, worker.crt and cluster-ca.crt there and join again \
                 with a token",
                dir.display()
            )));
        }
        Ok(Some(Membership {
            ca_der: pem_to_der(&String::from_utf8_lossy(&ca))?,
            cert_der,
            key_der: key.serialize_der(),
        }))
    }

    /// Stores a renewed certificate in `dir`, where this membership is kept, if it is for the
    /// same name and key and lasts longer than the current one. The next connection uses it.
    pub fn store_renewal(&self, dir: &Path, cert_der: &[u8]) -> Result<Membership, CertError> {
        let (old, new) = (crate::cert_info(&self.cert_der)?, crate::cert_info(cert_der)?);
        if (&new.name, &new.key_sha256) != (&old.name, &old.key_sha256) {
            return Err(CertError::Invalid(format!(
                "the renewed certificate is for '{}' with another key, not for this worker ('{}')",
                new.name, old.name
            )));
        }
        if new.not_after <= old.not_after {
            return Err(CertError::Invalid("the renewed certificate expires no later".into()));
        }
        files::write_public(&dir.join("worker.crt"), der_to_pem(cert_der).as_bytes())?;
        Ok(Membership { cert_der: cert_der.to_vec(), ..self.clone() })
    }

    /// The client chain and key, for rustls.
    pub fn client_identity(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (
            vec![CertificateDer::from(self.cert_der.clone())],
            PrivateKeyDer::Pkcs8(self.key_der.clone().into()),
        )
    }
}

fn der_to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Authority;

    #[test]
    fn a_membership_whose_key_is_not_its_certificates_says_so() {
        let (coordinator, worker) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let authority =
            Authority::load_or_create(coordinator.path(), "coordinator.marmot", &[]).unwrap();
        let join = PendingJoin::new("w1").unwrap();
        let cert = authority.sign_worker(&join.csr_der, "w1").unwrap();
        join.complete(worker.path(), cert, authority.ca_der().to_vec()).unwrap();
        assert!(Membership::load(worker.path()).unwrap().is_some());

        // Another worker's key in its place.
        let other = KeyPair::generate().unwrap();
        files::write_private(&worker.path().join("worker.key"), other.serialize_pem().as_bytes())
            .unwrap();
        let Err(e) = Membership::load(worker.path()) else { panic!("a foreign key loaded") };
        assert!(matches!(e, CertError::Damaged(_)), "{e}");
        assert!(e.to_string().contains("worker.key in"), "{e}");
        assert!(e.to_string().contains("join again"), "{e}");
    }

    #[test]
    fn a_renewal_is_stored_only_for_the_same_key_and_name_and_a_later_expiry() {
        let (coordinator, worker) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let short = std::time::Duration::from_secs(60);
        let authority = Authority::load_or_create(coordinator.path(), "coordinator.marmot", &[])
            .unwrap()
            .with_worker_cert_life(short);
        let join = PendingJoin::new("w1").unwrap();
        let cert = authority.sign_worker(&join.csr_der, "w1").unwrap();
        let member =
            join.complete(worker.path(), cert.clone(), authority.ca_der().to_vec()).unwrap();
        let info = crate::cert_info(&cert).unwrap();

        // Renewed for a shorter life: it expires before the stored one even when the renewal
        // is signed in a later second than the original (certificates count whole seconds;
        // renewing for the same life made this test fail across a second's turn).
        let shorter = Authority::load_or_create(coordinator.path(), "coordinator.marmot", &[])
            .unwrap()
            .with_worker_cert_life(short / 2);
        let earlier = shorter.renew_worker(&info).unwrap();
        let Err(e) = member.store_renewal(worker.path(), &earlier) else { panic!("stored") };
        assert!(e.to_string().contains("expires no later"), "{e}");

        let other = PendingJoin::new("w2").unwrap();
        let foreign = authority.sign_worker(&other.csr_der, "w2").unwrap();
        let Err(e) = member.store_renewal(worker.path(), &foreign) else { panic!("stored") };
        assert!(e.to_string().contains("not for this worker ('w1')"), "{e}");

        let longer = Authority::load_or_create(coordinator.path(), "coordinator.marmot", &[])
            .unwrap()
            .with_worker_cert_life(short * 10);
        let renewed = longer.renew_worker(&info).unwrap();
        let stored = member.store_renewal(worker.path(), &renewed).unwrap();
        assert_eq!(stored.cert_der, renewed);
        assert_eq!(Membership::load(worker.path()).unwrap().unwrap().cert_der, renewed);
    }
}
