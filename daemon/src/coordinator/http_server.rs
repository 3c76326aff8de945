//! The `--http` listener, where strangers on the LAN can connect: what they can cost.
//!
//! `axum::serve` keeps a connection as long as its client does and accepts as many as come.
//! Here a connection must send a request's headers within [`HEADER_TIMEOUT`] of opening or of
//! its last response (an idle or slow one is closed), and at most [`MAX_CONNECTIONS`] are
//! served at once: one more is closed as soon as it is accepted. So a few hosts holding idle
//! connections cannot take the coordinator's file descriptors, and the control socket and the
//! members' QUIC endpoint, served apart, go on whatever this listener suffers. (The
//! dashboard's event stream is one long response: it is not cut.)

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a connection has to send a request's headers, from its opening or its last
/// response.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 256;

/// Serves `router` on `listener` until `stop` is cancelled.
pub async fn serve(listener: TcpListener, router: Router, stop: CancellationToken) {
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = TaskTracker::new();
    let mut refused = 0u64;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: wait instead of spinning.
                tracing::warn!("the dashboard could not accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    "the dashboard serves {MAX_CONNECTIONS} connections already: closed one from \
                     {peer} ({refused} so far)"
                );
            }
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let stop = stop.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = stop.cancelled() => {}
            }
            drop(place);
        });
    }
    connections.close();
    connections.wait().await;
}
