//! The control API client: one HTTP/1.1 request per call over the coordinator's Unix socket.

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use proto::api::ApiError;
use serde::{de::DeserializeOwned, Serialize};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

pub struct Client {
    socket: PathBuf,
}

/// A request's body.
enum Body {
    Empty,
    Json(Bytes),
    /// A file's bytes, streamed a piece at a time (memory stays at one piece).
    File(tokio::fs::File),
}

/// Bytes per piece of a streamed file.
const PIECE: usize = 1 << 20;

type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// A successful answer's status, headers and raw body, for routes that do not answer JSON.
pub struct RawReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Client {
    pub fn new(socket: PathBuf) -> Self {
        Client { socket }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, None::<&()>).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(Method::DELETE, path, None::<&()>).await
    }

    /// A POST of a file's bytes (a binary), streamed, answered with JSON.
    pub async fn post_file<T: DeserializeOwned>(&self, path: &str, file: &Path) -> Result<T> {
        let file = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("cannot read {}", file.display()))?;
        let reply = self.send(Method::POST, path, Body::File(file)).await?;
        serde_json::from_slice(&reply.body).context("unreadable answer from the coordinator")
    }

    /// A GET whose answer is not JSON (errors still are).
    pub async fn get_raw(&self, path: &str) -> Result<RawReply> {
        self.send(Method::GET, path, Body::Empty).await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let body = match body {
            Some(b) => Body::Json(Bytes::from(serde_json::to_vec(b)?)),
            None => Body::Empty,
        };
        let reply = self.send(method, path, body).await?;
        serde_json::from_slice(&reply.body).context("unreadable answer from the coordinator")
    }

    async fn send(&self, method: Method, path: &str, body: Body) -> Result<RawReply> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.connect_error(e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("the control socket did not speak HTTP")?;
        tokio::spawn(conn);
        let full = |bytes: Bytes| Full::new(bytes).map_err(|never| match never {}).boxed();
        let (content_type, body): (_, BoxBody) = match body {
            Body::Empty => ("application/json", full(Bytes::new())),
            Body::Json(bytes) => ("application/json", full(bytes)),
            Body::File(file) => ("application/octet-stream", file_body(file)),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", content_type)
            .body(body)?;
        let response = sender.send_request(request).await.context("the coordinator hung up")?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<ApiError>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            bail!("{message}");
        }
        Ok(RawReply { status, headers, body })
    }

    fn connect_error(&self, e: std::io::Error) -> anyhow::Error {
        let path = self.socket.display();
        match e.kind() {
            ErrorKind::NotFound | ErrorKind::ConnectionRefused => anyhow!(
                "no coordinator at {path}: start `marmotd coordinator` (or `marmotd local`), \
                 or point --socket / MARMOT_SOCKET at its socket"
            ),
            ErrorKind::PermissionDenied => anyhow!(
                "permission denied on {path}: run as the coordinator's user, or start it with \
                 --socket-group and join that group"
            ),
            _ => anyhow!("cannot connect to {path}: {e}"),
        }
    }
}

/// A file as a request body, read a piece at a time as the socket takes it.
fn file_body(file: tokio::fs::File) -> BoxBody {
    use tokio::io::AsyncReadExt;
    let pieces = futures_util::stream::try_unfold(file, |mut file| async move {
        let mut piece = vec![0u8; PIECE];
        let n = file.read(&mut piece).await?;
        piece.truncate(n);
        Ok((n > 0).then(|| (Frame::data(Bytes::from(piece)), file)))
    });
    StreamBody::new(pieces).boxed()
}
