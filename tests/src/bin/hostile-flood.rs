//! A test fixture: an unauthenticated peer on the LAN that tries to make the coordinator hold
//! memory. It opens COUNT connections (at most 250 at a time) and on each opens as many
//! streams as allowed and sends as much of a 4 MiB first message as the coordinator takes,
//! never finishing it, then holds on until the coordinator closes the connection.
//!
//! Usage: hostile-flood ADDR TOKEN COUNT
//! Prints one line: `connected C refused R streams S bytes B`.

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
