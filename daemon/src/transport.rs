//! QUIC endpoints for both roles, and the transport settings that make a dead peer visible.
//!
//! QUIC's idle timer is marmot's dead-peer detector (crash, pulled cable, suspended laptop):
//! with keep-alives every fifth of `dead_after`, a silent peer is declared dead within
//! `dead_after` on both ends. The negotiated timeout is the smaller of the two peers' values.

mod congestion;

use anyhow::{Context, Result};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Endpoint, IdleTimeout, TransportConfig, VarInt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Application close and stream error codes.
pub mod codes {
    use quinn::VarInt;
    /// Normal end: shutdown, or a join that completed.
    pub const DONE: VarInt = VarInt::from_u32(0);
    /// A chunk was cancelled by the coordinator.
    pub const CANCELLED: VarInt = VarInt::from_u32(1);
    /// The peer broke the protocol (bad frame, unexpected message).
    pub const PROTOCOL: VarInt = VarInt::from_u32(2);
    /// The peer was refused (bad token, no certificate, incompatible version).
    pub const REFUSED: VarInt = VarInt::from_u32(3);
    /// A newer connection from the same worker replaced this one.
    pub const REPLACED: VarInt = VarInt::from_u32(4);
    /// The worker is leaving because it was told to exit.
    pub const EXITING: VarInt = VarInt::from_u32(5);
    /// The worker is re-executing itself on a new binary.
    pub const UPDATING: VarInt = VarInt::from_u32(6);
    /// The coordinator made room for newer connections waiting to authenticate: try again.
    pub const BUSY: VarInt = VarInt::from_u32(7);
    /// The worker's machine is going to sleep: it comes back when it wakes.
    pub const SLEEPING: VarInt = VarInt::from_u32(8);
}

/// Why a connection ended, in words: what the peer's close code means (with its reason, if it
/// gave one), rather than quinn's `closed by peer: 0`.
pub fn closed_in_words(e: &quinn::ConnectionError) -> String {
    use quinn::ConnectionError as E;
    let close = match e {
        E::ApplicationClosed(close) => close,
        E::TimedOut => return "nothing heard from it in time (asleep, unplugged, or gone)".into(),
        E::Reset => return "its connection was reset (it restarted and forgot it)".into(),
        E::LocallyClosed => return "closed from this side".into(),
        other => return other.to_string(),
    };
    let reason = String::from_utf8_lossy(&close.reason);
    // The code says what happened; the reason is added where it says why.
    let (said, why) = match close.error_code {
        codes::DONE => ("it closed the connection (shutting down, or done)", false),
        codes::CANCELLED => ("it cancelled", false),
        codes::PROTOCOL => ("it found the protocol broken", true),
        codes::REFUSED => ("it was refused", true),
        codes::REPLACED => ("a newer connection of the same worker replaced it", false),
        codes::EXITING => ("it exited as told", false),
        codes::UPDATING => ("it is restarting on a new binary", false),
        codes::BUSY => ("it was busy with other connections (try again)", true),
        codes::SLEEPING => ("its machine is going to sleep", false),
        code => return format!("closed with code {code}: {}", proto::names::shown(&reason)),
    };
    match why && !reason.is_empty() {
        true => format!("{said}: {}", proto::names::shown(&reason)),
        false => said.to_string(),
    }
}

/// What an unauthenticated connection may have sent us and we not yet read, in all streams.
/// A member's connection is given more once it has said hello (see `coordinator::session`).
pub const UNAUTHENTICATED_RECEIVE_WINDOW: u32 = 64 * 1024;

/// What one stream may hold received and unread: a chunk result frame streams through it.
const STREAM_RECEIVE_WINDOW: u32 = 1024 * 1024;

/// What one stream from the coordinator may hold received and unread on a worker.
const WORKER_STREAM_RECEIVE_WINDOW: u32 = 4 * 1024 * 1024;
/// What all the coordinator's streams may hold received and unread on a worker.
const WORKER_RECEIVE_WINDOW: u32 = 16 * 1024 * 1024;

/// The default time after which a silent peer is considered dead.
pub const DEFAULT_DEAD_AFTER: Duration = Duration::from_secs(5);

/// The longest gap between keep-alives: well inside the 30 s after which common NATs and
/// home routers forget a UDP mapping, so a worker behind one stays reachable whatever
/// `--dead-after` is.
pub const MAX_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How often a silent connection sends a keep-alive: a fifth of `dead_after` (so a dead peer
/// is noticed within it), at most [`MAX_KEEP_ALIVE`], at least 20 ms.
pub fn keep_alive(dead_after: Duration) -> Duration {
    (dead_after / 5).clamp(Duration::from_millis(20), MAX_KEEP_ALIVE)
}

/// Transport settings: `dead_after` idle timeout, keep-alives, and how many bidirectional
/// streams the *peer* may open to us.
pub fn transport_config(dead_after: Duration, peer_streams: u32) -> Result<TransportConfig> {
    let mut t = TransportConfig::default();
    // Sending a keep-alive restarts QUIC's idle timer too, so a dead peer is noticed up to one
    // keep-alive interval after the idle timeout: the two add up to `dead_after`.
    let keep_alive = keep_alive(dead_after);
    let idle = IdleTimeout::try_from(dead_after.saturating_sub(keep_alive))
        .context("--dead-after is too long")?;
    t.max_idle_timeout(Some(idle));
    t.keep_alive_interval(Some(keep_alive));
    t.max_concurrent_bidi_streams(VarInt::from_u32(peer_streams));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    // Cubic on a LAN, BBR on a far link: see `congestion`.
    t.congestion_controller_factory(Arc::new(congestion::NearOrFarConfig::default()));
    Ok(t)
}

/// The coordinator's endpoint, bound to `listen`.
///
/// `reset_key` signs stateless resets and keys the connection-ID generator. Kept across
/// restarts (in the state dir), it lets a restarted coordinator recognise its previous life's
/// connection IDs and answer their packets with a reset the workers believe, so they reconnect
/// at once instead of after `dead_after`.
pub fn server_endpoint(
    listen: SocketAddr,
    tls: rustls::ServerConfig,
    dead_after: Duration,
    reset_key: &[u8],
) -> Result<Endpoint> {
    let crypto = QuicServerConfig::try_from(tls).context("TLS config unusable for QUIC")?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    // Every connection starts unauthenticated, so it starts small: one stream (a worker opens
    // exactly one, for its join, hello or trial) and a small window, raised once it proves
    // itself. The streams the coordinator opens are bounded by the worker's own limits.
    let mut transport = transport_config(dead_after, 1)?;
    transport.receive_window(UNAUTHENTICATED_RECEIVE_WINDOW.into());
    transport.stream_receive_window(STREAM_RECEIVE_WINDOW.into());
    config.transport_config(Arc::new(transport));
    // Handshakes waiting for the accept loop, and the bytes they may buffer, are bounded too.
    config.max_incoming(256);
    config.incoming_buffer_size(64 * 1024);
    config.incoming_buffer_size_total(4 * 1024 * 1024);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, reset_key);
    let cid_key = ring::hmac::sign(&key, b"marmot connection ids");
    let cid_key = u64::from_le_bytes(cid_key.as_ref()[..8].try_into()?);
    let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(key));
    endpoint_config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    let socket = std::net::UdpSocket::bind(listen)
        .with_context(|| format!("cannot listen on UDP {listen}"))?;
    Endpoint::new(endpoint_config, Some(config), socket, Arc::new(quinn::TokioRuntime))
        .with_context(|| format!("cannot listen on UDP {listen}"))
}

/// A client endpoint on an ephemeral port of the coordinator address's family.
pub fn client_endpoint(coordinator: SocketAddr) -> Result<Endpoint> {
    let bind: SocketAddr =
        if coordinator.is_ipv6() { "[::]:0".parse()? } else { "0.0.0.0:0".parse()? };
    Endpoint::client(bind).with_context(|| format!("cannot bind a UDP socket on {bind}"))
}

/// A client config from rustls settings; `peer_streams` is how many chunk and ping streams the
/// coordinator may have open to this worker at once.
pub fn client_config(
    tls: rustls::ClientConfig,
    dead_after: Duration,
    peer_streams: u32,
) -> Result<quinn::ClientConfig> {
    let crypto = QuicClientConfig::try_from(tls).context("TLS config unusable for QUIC")?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = transport_config(dead_after, peer_streams)?;
    // What the coordinator sends (binaries, commands' files) may fill a long fat link: a
    // window is the most a stream can move per round trip (4 MiB: 40 MB/s at 100 ms).
    transport.stream_receive_window(WORKER_STREAM_RECEIVE_WINDOW.into());
    transport.receive_window(WORKER_RECEIVE_WINDOW.into());
    config.transport_config(Arc::new(transport));
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_connection_is_said_in_words() {
        let closed = |code, reason: &'static str| {
            let close = quinn::ApplicationClose { error_code: code, reason: reason.into() };
            closed_in_words(&quinn::ConnectionError::ApplicationClosed(close))
        };
        assert_eq!(closed(codes::DONE, ""), "it closed the connection (shutting down, or done)");
        assert_eq!(
            closed(codes::UPDATING, "restarting on a new binary"),
            "it is restarting on a new binary"
        );
        assert_eq!(
            closed(codes::REFUSED, "certificate revoked"),
            "it was refused: 'certificate revoked'"
        );
        assert_eq!(closed(codes::EXITING, ""), "it exited as told");
        assert_eq!(
            closed(codes::REPLACED, ""),
            "a newer connection of the same worker replaced it"
        );
        assert_eq!(closed(quinn::VarInt::from_u32(99), "odd\n"), "closed with code 99: 'odd\\n'");
        let timed_out = closed_in_words(&quinn::ConnectionError::TimedOut);
        assert!(timed_out.starts_with("nothing heard from it"), "{timed_out}");
    }

    #[test]
    fn keep_alives_come_every_fifth_of_dead_after_and_inside_a_nats_timeout() {
        assert_eq!(keep_alive(Duration::from_secs(5)), Duration::from_secs(1));
        assert_eq!(keep_alive(Duration::from_secs(75)), MAX_KEEP_ALIVE);
        assert_eq!(keep_alive(Duration::from_secs(600)), MAX_KEEP_ALIVE);
        assert_eq!(keep_alive(Duration::from_millis(50)), Duration::from_millis(20));
        assert!(MAX_KEEP_ALIVE <= Duration::from_secs(25));
    }
}
