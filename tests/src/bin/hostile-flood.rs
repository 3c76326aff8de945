//! A test fixture: an unauthenticated peer on the LAN that tries to make the coordinator hold
//! memory. It opens COUNT connections (at most 250 at a time) and on each opens as many
//! streams as allowed and sends as much of a 4 MiB first message as the coordinator takes,
//! never finishing it, then holds on until the coordinator closes the connection.
//!
//! Usage: hostile-flood ADDR TOKEN COUNT
//! Prints one line: `connected C refused R streams S bytes B`.
//!
//! Or: hostile-flood ADDR TOKEN hold SOURCES PER_SOURCE SECONDS idle|stall
//! Holds places for SECONDS from SOURCES loopback addresses (127.0.0.10 on), PER_SOURCE
//! connections each, opened again as soon as the coordinator drops one: `idle` ones finish
//! their handshake (no certificate) and send nothing; `stall` ones never finish it (a thread
//! each, blocked in the server certificate's check). Says `holding` on stderr once every
//! connection was tried, and at the end `handshakes H refused R`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Tally {
    connected: AtomicU64,
    refused: AtomicU64,
    streams: AtomicU64,
    bytes: AtomicU64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, addr, token, hold, sources, per_source, seconds, kind] = args.as_slice() {
        anyhow::ensure!(hold == "hold", "usage: hostile-flood ADDR TOKEN hold …");
        let places = Places {
            addr: addr.parse()?,
            token: token.parse()?,
            sources: sources.parse()?,
            per_source: per_source.parse()?,
            until: std::time::Instant::now() + Duration::from_secs(seconds.parse()?),
        };
        return match kind.as_str() {
            "idle" => places.hold_idle().await,
            "stall" => places.hold_stalled(),
            other => anyhow::bail!("unknown kind {other}: idle or stall"),
        };
    }
    let [_, addr, token, count] = args.as_slice() else {
        anyhow::bail!("usage: hostile-flood ADDR TOKEN COUNT");
    };
    let addr: std::net::SocketAddr = addr.parse()?;
    let token: certs::JoinToken = token.parse()?;
    let tls = certs::tls::joining_client(&token.ca_sha256, proto::ALPN)?;
    let client = marmotd::transport::client_config(tls, Duration::from_secs(10), 4)?;
    let endpoint = marmotd::transport::client_endpoint(addr)?;
    let tally = Arc::new(Tally::default());
    let in_flight = Arc::new(tokio::sync::Semaphore::new(250));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count.parse::<u32>()? {
        let permit = in_flight.clone().acquire_owned().await?;
        let (endpoint, client, tally) = (endpoint.clone(), client.clone(), tally.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let Ok(connecting) =
                endpoint.connect_with(client, addr, proto::COORDINATOR_SERVER_NAME)
            else {
                return;
            };
            let Ok(conn) = connecting.await else {
                tally.refused.fetch_add(1, Relaxed);
                return;
            };
            tally.connected.fetch_add(1, Relaxed);
            for _ in 0..4 {
                let Ok(Ok((mut send, _recv))) =
                    tokio::time::timeout(Duration::from_millis(200), conn.open_bi()).await
                else {
                    break;
                };
                tally.streams.fetch_add(1, Relaxed);
                let _ = send.write_all(&(4u32 << 20).to_be_bytes()).await;
                let block = vec![0x5A; 64 * 1024];
                while let Ok(Ok(())) =
                    tokio::time::timeout(Duration::from_millis(500), send.write_all(&block)).await
                {
                    tally.bytes.fetch_add(block.len() as u64, Relaxed);
                }
                std::mem::forget(send); // never finished, never reset
            }
            let _ = tokio::time::timeout(Duration::from_secs(15), conn.closed()).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    println!(
        "connected {} refused {} streams {} bytes {}",
        tally.connected.load(Relaxed),
        tally.refused.load(Relaxed),
        tally.streams.load(Relaxed),
        tally.bytes.load(Relaxed)
    );
    Ok(())
}

/// Places held from several source addresses.
struct Places {
    addr: std::net::SocketAddr,
    token: certs::JoinToken,
    sources: u8,
    per_source: u32,
    until: std::time::Instant,
}

#[derive(Default)]
struct Held {
    handshakes: AtomicU64,
    refused: AtomicU64,
}

impl Places {
    fn source(&self, n: u8) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 10 + n], 0))
    }

    fn report(held: &Held) {
        let (h, r) = (held.handshakes.load(Relaxed), held.refused.load(Relaxed));
        eprintln!("handshakes {h} refused {r}");
    }

    /// Handshakes done and nothing sent, again and again.
    async fn hold_idle(self) -> anyhow::Result<()> {
        let tls = certs::tls::joining_client(&self.token.ca_sha256, proto::ALPN)?;
        let client = marmotd::transport::client_config(tls, Duration::from_secs(10), 4)?;
        let held = Arc::new(Held::default());
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..self.sources {
            let endpoint = quinn::Endpoint::client(self.source(n))?;
            for _ in 0..self.per_source {
                let (endpoint, client, held) = (endpoint.clone(), client.clone(), held.clone());
                let (addr, until) = (self.addr, tokio::time::Instant::from_std(self.until));
                tasks.spawn(async move {
                    while tokio::time::Instant::now() < until {
                        let connecting = endpoint.connect_with(
                            client.clone(),
                            addr,
                            proto::COORDINATOR_SERVER_NAME,
                        );
                        let Ok(connecting) = connecting else { return };
                        match tokio::time::timeout_at(until, connecting).await {
                            Ok(Ok(conn)) => {
                                held.handshakes.fetch_add(1, Relaxed);
                                let _ = tokio::time::timeout_at(until, conn.closed()).await;
                            }
                            Ok(Err(_)) => {
                                held.refused.fetch_add(1, Relaxed);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            Err(_) => return,
                        }
                    }
                });
            }
        }
        eprintln!("holding");
        while tasks.join_next().await.is_some() {}
        Self::report(&held);
        Ok(())
    }

    /// Handshakes that never finish: each connection's thread blocks in the check of the
    /// server's certificate (so it sends nothing more) for 6 s, then tries again.
    fn hold_stalled(self) -> anyhow::Result<()> {
        let held = Arc::new(Held::default());
        let mut threads = Vec::new();
        for n in 0..self.sources {
            for _ in 0..self.per_source {
                let (source, addr, until, held) =
                    (self.source(n), self.addr, self.until, held.clone());
                threads.push(std::thread::spawn(move || {
                    let runtime =
                        tokio::runtime::Builder::new_current_thread().enable_all().build();
                    let Ok(runtime) = runtime else { return };
                    runtime.block_on(async move {
                        let Ok(endpoint) = quinn::Endpoint::client(source) else { return };
                        let Ok(client) = stalling_client(until) else { return };
                        while std::time::Instant::now() < until {
                            let connecting = endpoint.connect_with(
                                client.clone(),
                                addr,
                                proto::COORDINATOR_SERVER_NAME,
                            );
                            let Ok(connecting) = connecting else { return };
                            match connecting.await {
                                Ok(_) => held.handshakes.fetch_add(1, Relaxed),
                                Err(_) => held.refused.fetch_add(1, Relaxed),
                            };
                        }
                    });
                }));
            }
        }
        eprintln!("holding");
        for thread in threads {
            let _ = thread.join();
        }
        Self::report(&held);
        Ok(())
    }
}

fn stalling_client(until: std::time::Instant) -> anyhow::Result<quinn::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Stall { until, provider }))
        .with_no_client_auth();
    tls.alpn_protocols = vec![proto::ALPN.to_vec()];
    marmotd::transport::client_config(tls, Duration::from_secs(10), 4)
}

/// A server certificate check that takes 6 s and fails: the handshake stalls meanwhile.
#[derive(Debug)]
struct Stall {
    until: std::time::Instant,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Stall {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let left = self.until.saturating_duration_since(std::time::Instant::now());
        std::thread::sleep(left.min(Duration::from_secs(6)));
        Err(rustls::Error::General("stalled".into()))
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("stalled".into()))
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("stalled".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
