//! `marmotctl dashboard`: the coordinator's dashboard in a browser on this machine, with no
//! `--http` flag: a local port whose requests go to the control socket. `marmotctl
//! dashboard-token`: the token the coordinator's own `--http` dashboard asks for.
//!
//! The port is on 127.0.0.1, where other users of the machine can reach it too, so it asks
//! every request for a secret made for this run, which only the printed URL carries; and it
//! passes on only the dashboard's routes (the page, its feed, logs, `/metrics`, cancel), not
//! the rest of the control API.

use super::print;
use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Router;
use client::Client;
use hyper_util::rt::TokioIo;
use proto::api::routes;
use std::io::Read;
use std::process::ExitCode;
use tokio_util::task::TaskTracker;

pub async fn token(client: &Client, rotate: bool, json: bool) -> Result<ExitCode> {
    let token = client.dashboard_token(rotate).await?;
    print(json, &token, || {
        println!("{}", token.token);
        eprintln!(
            "shown once (the coordinator keeps only its hash): open its --http dashboard as \
             http://ADDRESS:PORT/?token={}",
            token.token
        );
    });
    Ok(ExitCode::SUCCESS)
}

/// What the proxy's handlers share.
#[derive(Clone)]
struct Proxy {
    client: Client,
    secret: String,
    /// The connections to the socket, each driven by a task while its answer streams.
    connections: TaskTracker,
}

pub async fn serve(client: &Client, port: u16) -> Result<ExitCode> {
    // No coordinator, no page: say so now rather than in the browser.
    client.status().await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}: pass another --port"))?;
    let addr = listener.local_addr()?;
    let proxy =
        Proxy { client: client.clone(), secret: secret()?, connections: TaskTracker::new() };
    println!("dashboard: http://{addr}/?token={}", proxy.secret);
    eprintln!("(Ctrl-C stops it)");
    let router = Router::new()
        .route(routes::PAGE, get(forward))
        .route(routes::OVERVIEW, get(forward))
        .route(routes::OVERVIEW_STREAM, get(forward))
        .route(routes::LOGS, get(forward))
        .route(routes::METRICS, get(forward))
        .route(routes::JOB, delete(forward))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not a page of the dashboard") })
        .layer(axum::middleware::from_fn_with_state(proxy.clone(), check_secret))
        .with_state(proxy.clone());
    tokio::select! {
        served = axum::serve(listener, router) => served.context("the dashboard stopped")?,
        _ = tokio::signal::ctrl_c() => {}
    }
    // Open feeds never end by themselves: their connections go with the process.
    proxy.connections.close();
    Ok(ExitCode::SUCCESS)
}

/// A secret for this run: 16 random bytes, in hex.
fn secret() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for the dashboard's secret")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn check_secret(State(proxy): State<Proxy>, request: Request, next: Next) -> Response {
    let query = request.uri().query().unwrap_or("");
    let presented = query.split('&').filter_map(|p| p.strip_prefix("token=")).next_back();
    if presented != Some(proxy.secret.as_str()) {
        let message = "this page needs the URL `marmotctl dashboard` printed (with its token)";
        return (StatusCode::UNAUTHORIZED, message).into_response();
    }
    next.run(request).await
}

/// Sends the request to the control socket and streams the answer back.
async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    let method = request.method().clone();
    let answer = async {
        let stream = proxy.client.connect().await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        proxy.connections.spawn(connection);
        let ask = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .body(Body::empty())?;
        let answer = sender.send_request(ask).await?;
        anyhow::Ok(answer.map(Body::new))
    };
    match answer.await {
        Ok(answer) => answer.into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, format!("the coordinator: {e:#}")).into_response(),
    }
}
