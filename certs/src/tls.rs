//! rustls configurations for marmot's three kinds of connection.
//!
//! Every config is built with an explicit ring provider and TLS 1.3 only: the provider-less
//! builders panic when two crypto providers end up in the dependency graph.
//!
//! - [`server`]: the coordinator. Client certificates are verified against the cluster CA when
//!   presented, and allowed to be absent so a new worker can join; the daemon accepts only the
//!   join stream from a connection without one.
//! - [`joining_client`]: a worker with only a token. It trusts the coordinator if the chain the
//!   coordinator presents holds a CA whose SHA-256 is the token's, and the coordinator's
//!   certificate verifies against that CA.
//! - [`member_client`]: a worker that joined: the stored CA is its only root, and it presents its
//!   own certificate.

use crate::{cert_sha256_hex, Authority, CertError, Membership};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca_der: &[u8]) -> Result<Arc<RootCertStore>, CertError> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec()))?;
    Ok(Arc::new(roots))
}

/// The coordinator's config.
pub fn server(authority: &Authority, alpn: &[u8]) -> Result<ServerConfig, CertError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots(authority.ca_der())?, provider())
            .allow_unauthenticated()
            .build()?;
    let (chain, key) = authority.server_identity();
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// A joined worker's config: mutual TLS against the stored CA.
pub fn member_client(membership: &Membership, alpn: &[u8]) -> Result<ClientConfig, CertError> {
    let (chain, key) = membership.client_identity();
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(&membership.ca_der)?)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// A joining worker's config: the coordinator's CA is pinned by the token's hash.
pub fn joining_client(ca_sha256: &str, alpn: &[u8]) -> Result<ClientConfig, CertError> {
    let verifier = PinnedCaVerifier { ca_sha256: ca_sha256.to_string(), provider: provider() };
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// Trusts a server whose chain includes the CA named by hash, and whose certificate verifies
/// against that CA with the usual WebPKI checks (signature, validity, name).
#[derive(Debug)]
struct PinnedCaVerifier {
    ca_sha256: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates.iter().find(|c| cert_sha256_hex(c) == self.ca_sha256).ok_or_else(
            || {
                rustls::Error::General(
                    "the coordinator's CA does not match the join token's hash \
                     (another cluster, or a stale token)"
                        .into(),
                )
            },
        )?;
        let roots = roots(ca).map_err(|e| rustls::Error::General(e.to_string()))?;
        let inner = WebPkiServerVerifier::builder_with_provider(roots, self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::PendingJoin;

    #[test]
    fn configs_build_and_worker_certs_are_signed() {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::load_or_create(dir.path(), "coordinator.marmot", &[]).unwrap();
        server(&authority, b"x").unwrap();
        let token = authority.join_token().unwrap();
        joining_client(&token.ca_sha256, b"x").unwrap();

        let pending = PendingJoin::new("laptop-1").unwrap();
        let cert = authority.sign_worker(&pending.csr_der, "laptop-1").unwrap();
        let wdir = dir.path().join("worker");
        let membership = pending.complete(&wdir, cert, authority.ca_der().to_vec()).unwrap();
        member_client(&membership, b"x").unwrap();
        let reloaded = Membership::load(&wdir).unwrap().unwrap();
        assert_eq!(reloaded.cert_der, membership.cert_der);
        assert_eq!(reloaded.ca_der, authority.ca_der());
    }

    #[test]
    fn garbage_csr_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::load_or_create(dir.path(), "coordinator.marmot", &[]).unwrap();
        assert!(authority.sign_worker(b"not a csr", "w").is_err());
    }
}
