//! Tiny-job load: CLIENTS concurrent clients, each submitting 1-sample pi jobs and waiting for
//! their results (submit, then long poll), JOBS in all, each client over one keep-alive HTTP
//! connection to the control socket (as a script or a service using the API would; marmotctl
//! opens one per command). Prints the throughput and the round trip's median and p99.
//!
//! Usage: tiny-load SOCKET CLIENTS JOBS   (start a cluster first: `marmotd local --workers 2`)

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::time::{Duration, Instant};

/// One client's connection.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn open(socket: &str) -> anyhow::Result<Connection> {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .with_context(|| format!("no coordinator at {socket}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Connection { sender })
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &'static str,
    ) -> anyhow::Result<Value> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{method} {path}: {status} {}", String::from_utf8_lossy(&body));
        }
        Ok(serde_json::from_slice(&body)?)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, socket, clients, jobs] = args.as_slice() else {
        bail!("usage: tiny-load SOCKET CLIENTS JOBS");
    };
    let (clients, jobs): (usize, usize) = (clients.parse()?, jobs.parse()?);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let socket = socket.clone();
            let mine = jobs / clients + usize::from(i < jobs % clients);
            tokio::spawn(async move {
                let mut conn = Connection::open(&socket).await?;
                let mut times = Vec::with_capacity(mine);
                for _ in 0..mine {
                    let start = Instant::now();
                    let job = r#"{"pi":{"samples":1,"seed":1}}"#;
                    let mut view = conn.call("POST", "/v1/jobs", job).await?;
                    while view["state"] == "running" {
                        let path = format!("/v1/jobs/{}?wait_ms=1000", view["id"]);
                        view = conn.call("GET", &path, "").await?;
                    }
                    if view["state"] != "done" {
                        bail!("job {} ended {}", view["id"], view["state"]);
                    }
                    times.push(start.elapsed());
                }
                anyhow::Ok(times)
            })
        })
        .collect();
    let mut times: Vec<Duration> = vec![];
    for task in tasks {
        times.extend(task.await.context("a client panicked")??);
    }
    let wall = started.elapsed().as_secs_f64();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{} tiny jobs by {clients} clients in {wall:.3} s: {:.0} jobs/s; round trip median {:.3} ms, p99 {:.3} ms",
        times.len(),
        times.len() as f64 / wall,
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
    Ok(())
}
