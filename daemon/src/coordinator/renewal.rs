//! Renewing a member's certificate over its own connection, well before it expires.
//!
//! Worker certificates have a finite life (a year by default), so a lost laptop's certificate
//! stops working on its own even if nobody revokes it. A connected member is sent a new
//! certificate for its same key and name once less than a third of the life is left: a worker
//! that connects at least once in eight months never notices. The worker checks and stores it;
//! its next connection presents it.

use super::driver::Cluster;
use anyhow::{bail, Context, Result};
use certs::CertInfo;
use proto::wire::{CoordinatorOpen, RenewReply};
use proto::{MessageReader, MessageWriter};
use std::time::Duration;

/// Bounds the whole exchange: a certificate is a few hundred bytes.
const RENEW_TIMEOUT: Duration = Duration::from_secs(10);

/// The wall clock in Unix seconds, as certificates count time.
pub fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whether the certificate `member`, checked at `now` (Unix seconds), is due for renewal
/// under a certificate life of `life`.
pub fn due(member: &CertInfo, life: Duration, now: i64) -> bool {
    let left = member.not_after.saturating_sub(now);
    left < i64::try_from(life.as_secs() / 3).unwrap_or(i64::MAX)
}

/// Issues a new certificate for `member` and hands it to the worker on `conn`.
pub async fn renew(cluster: &Cluster, conn: &quinn::Connection, member: &CertInfo) -> Result<()> {
    let cert_der = cluster.facts().authority.renew_worker(member)?;
    let exchange = async {
        let (send, recv) = conn.open_bi().await?;
        MessageWriter::new(send).send(&CoordinatorOpen::Renew { cert_der }).await?;
        let reply = MessageReader::new(recv).recv::<RenewReply>().await?;
        anyhow::Ok(reply)
    };
    let reply = tokio::time::timeout(RENEW_TIMEOUT, exchange)
        .await
        .context("no answer in time")??
        .context("the worker closed the stream without answering")?;
    match reply {
        RenewReply::Stored => Ok(()),
        RenewReply::Failed { reason } => bail!("the worker did not store it: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_the_certificates_clock() {
        let now = unix_now();
        // After 2026-01-01 and before 2100: whole seconds since 1970.
        assert!((1_767_225_600..4_102_444_800).contains(&now), "{now}");
        let system = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        assert!((system.unwrap().as_secs() as i64 - now).abs() <= 1);
    }

    #[test]
    fn due_once_less_than_a_third_of_the_life_is_left() {
        let life = Duration::from_secs(300);
        let cert = |not_after| CertInfo {
            name: "w".into(),
            spki_der: vec![],
            key_sha256: String::new(),
            not_after,
        };
        assert!(!due(&cert(1_000 + 100), life, 1_000), "exactly a third left");
        assert!(due(&cert(1_000 + 99), life, 1_000));
        assert!(due(&cert(500), life, 1_000), "already expired");
        assert!(!due(&cert(i64::MAX), life, 1_000), "a certificate from before finite lives");
        assert!(!due(&cert(1_000), Duration::ZERO, 1_000), "no life, no renewal");
    }
}
