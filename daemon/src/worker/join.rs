//! First contact: trade the join token's secret for a client certificate.
//!
//! The coordinator is trusted only if its chain holds the CA named by the token's hash; the
//! secret then crosses that authenticated channel with a certificate request, and the signed
//! certificate comes back. Failures that retrying cannot fix (a malformed or refused token,
//! another cluster's CA) are returned as the outer `Err`; network trouble as the inner one.

use super::WorkerConfig;
use crate::fatal::ConfigError;
use crate::transport;
use anyhow::{anyhow, Context, Result};
use certs::member::PendingJoin;
use certs::{JoinToken, Membership};
use proto::wire::{JoinReply, JoinRequest, WorkerOpen};
use proto::{MessageReader, MessageWriter};
use quinn::{ConnectionError, Endpoint};
use std::net::SocketAddr;
use std::time::Duration;

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn join(
    endpoint: &Endpoint,
    addr: SocketAddr,
    token: &str,
    config: &WorkerConfig,
) -> Result<Result<Membership>> {
    let token: JoinToken =
        token.parse().map_err(|e: certs::CertError| ConfigError::error(e.to_string()))?;
    let tls = certs::tls::joining_client(&token.ca_sha256, proto::ALPN)?;
    let client = transport::client_config(tls, config.dead_after, 4)?;
    let connecting = endpoint.connect_with(client, addr, proto::COORDINATOR_SERVER_NAME)?;
    let conn = match connecting.await {
        Ok(conn) => conn,
        Err(ConnectionError::TransportError(e)) => {
            return Err(ConfigError::error(format!(
                "refusing to join {addr}: its certificate does not match the join token ({e}); \
                 check the address and the token"
            )))
        }
        Err(e) => return Ok(Err(anyhow!("join: {e}"))),
    };
    let pending = PendingJoin::new(&config.name)?;
    let request = JoinRequest {
        protocol: proto::PROTOCOL_VERSION,
        name: config.name.clone(),
        secret: token.secret.clone(),
        csr_der: pending.csr_der.clone(),
    };
    let exchange = async {
        let (send, recv) = conn.open_bi().await?;
        let mut writer = MessageWriter::new(send);
        writer.send(&WorkerOpen::Join(request)).await?;
        writer.get_mut().finish()?;
        let reply = MessageReader::new(recv).recv::<JoinReply>().await?;
        reply.context("the coordinator closed the join stream without answering")
    };
    let reply = match tokio::time::timeout(REPLY_TIMEOUT, exchange).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => return Ok(Err(e.context("join"))),
        Err(_) => return Ok(Err(anyhow!("join: no answer within {REPLY_TIMEOUT:?}"))),
    };
    conn.close(transport::codes::DONE, b"joined");
    match reply {
        JoinReply::Refused { reason } => Err(ConfigError::error(format!(
            "the coordinator refused to let this worker join: {reason}"
        ))),
        // The coordinator's own trouble: try again with the backoff, like a network failure.
        JoinReply::Unavailable { reason } => {
            Ok(Err(anyhow!("the coordinator cannot take joins just now: {reason}")))
        }
        JoinReply::Accepted { cert_der, ca_der } => {
            if certs::cert_sha256_hex(&ca_der) != token.ca_sha256 {
                return Err(ConfigError::error(
                    "the coordinator sent a CA that does not match the join token",
                ));
            }
            Ok(Ok(pending.complete(&config.state_dir, cert_der, ca_der)?))
        }
    }
}
