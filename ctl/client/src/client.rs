//! A client of the coordinator's control API: one typed function per route (the routes are
//! [`proto::api::routes`], shared with the server's router), each one HTTP/1.1 request over
//! the coordinator's Unix socket. `marmotctl` and `marmotd demo` both use it.
//!
//! Errors are typed ([`ClientError`]) and read as one line each, with what to do where there
//! is something to do.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use proto::api::{
    routes, ApiError, BenchRequest, BenchResult, BinaryInfo, ClearRequest, ExitReply, ExitRequest,
    JobView, JoinToken, PingRequest, PingResult, RevokeReply, RevokeRequest, Status, UpdateReport,
    UpdateRequest, WorkerView, CHUNKS_HEADER, FIRST_UNIT_HEADER, UNITS_HEADER,
};
use proto::api::{DashboardToken, DashboardTokenRequest, Leaving, LogsReply, Overview};
use proto::api::{FileInfo, OUTPUT_END_HEADER, OUTPUT_SIZE_HEADER};
use proto::job::JobSpec;
use serde::{de::DeserializeOwned, Serialize};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no coordinator at {0}: start `marmotd coordinator` (or `marmotd local`), or point \
         --socket / MARMOT_SOCKET at its socket"
    )]
    NoCoordinator(String),
    #[error(
        "permission denied on {0}: run as the coordinator's user, or start it with \
         --socket-group and join that group"
    )]
    PermissionDenied(String),
    #[error("cannot connect to {path}: {source}")]
    Connect { path: String, source: std::io::Error },
    #[error("the control socket did not speak HTTP: {0}")]
    NotHttp(hyper::Error),
    #[error("the coordinator hung up: {0}")]
    HungUp(hyper::Error),
    /// The coordinator answered with an error: its own words.
    #[error("{message}")]
    Refused { status: u16, message: String },
    /// The coordinator is stopping, and said how.
    #[error("{}", .0.says())]
    Leaving(Leaving),
    #[error("unreadable answer from the coordinator: {0}")]
    Unreadable(String),
    #[error("cannot read {path}: {source}")]
    File { path: String, source: std::io::Error },
}

impl ClientError {
    /// Whether the coordinator may answer if asked again: it is not there (yet), restarting,
    /// or hung up mid-answer. A refusal in its own words is final, except "shutting down".
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::NoCoordinator(_)
            | ClientError::HungUp(_)
            | ClientError::Connect { .. } => true,
            ClientError::Refused { status, .. } => *status == 503,
            ClientError::Leaving(how) => how.may_return(),
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// How a job is submitted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Submit {
    /// The share of its chunks to verify (default: the coordinator's).
    pub verify: Option<f64>,
    /// Queue it even when no worker is connected (the default), or be refused.
    pub wait_for_workers: bool,
}

impl Default for Submit {
    fn default() -> Self {
        Submit { verify: None, wait_for_workers: true }
    }
}

impl Submit {
    /// `POST /v1/jobs` with the query that says this.
    fn path(&self) -> String {
        let mut query = vec![];
        if let Some(share) = self.verify {
            query.push(format!("verify={share}"));
        }
        if !self.wait_for_workers {
            query.push("wait_for_workers=false".into());
        }
        match query.is_empty() {
            true => routes::JOBS.to_string(),
            false => format!("{}?{}", routes::JOBS, query.join("&")),
        }
    }
}

/// A chunk of a series job's results (freefall heights, sweep rows).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesChunk {
    /// The index of its first unit (point, or sweep value).
    pub first_unit: u64,
    /// How many chunks the job's results have in all.
    pub chunks: u64,
    /// How many units the job has in all.
    pub units: u64,
    pub values: Vec<f64>,
}

/// A piece of a command job's output.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputPiece {
    /// Bytes of the delivery, which is `size` bytes in all.
    Bytes { size: u64, bytes: Bytes },
    /// Not ready within the wait: ask again.
    NotYet,
    /// No such delivery will come: the job ended.
    End,
}

/// The control API on one Unix socket.
#[derive(Clone, Debug)]
pub struct Client {
    socket: PathBuf,
}

/// A request's body.
enum Body {
    Empty,
    Json(Bytes),
    /// A file's bytes, streamed a piece at a time (memory stays at one piece).
    File(proto::pieces::FilePieces),
    /// Bytes already in memory.
    Bytes(Bytes),
}

type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// A successful answer's status, headers and raw body.
struct RawReply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Client {
    pub fn new(socket: PathBuf) -> Self {
        Client { socket }
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<Status> {
        self.call(Method::GET, routes::STATUS, None::<&()>).await
    }

    /// `GET /v1/workers`.
    pub async fn workers(&self) -> Result<Vec<WorkerView>> {
        self.call(Method::GET, routes::WORKERS, None::<&()>).await
    }

    /// `POST /v1/ping`.
    pub async fn ping(&self, request: &PingRequest) -> Result<Vec<PingResult>> {
        self.call(Method::POST, routes::PING, Some(request)).await
    }

    /// `POST /v1/jobs`: queues a job, as `how` says.
    pub async fn submit(&self, spec: &JobSpec, how: &Submit) -> Result<JobView> {
        self.call(Method::POST, &how.path(), Some(spec)).await
    }

    /// `GET /v1/jobs`: the running jobs and the recent ended ones; with `all`, every ended
    /// job the journal still keeps.
    pub async fn jobs(&self, all: bool) -> Result<Vec<JobView>> {
        let path = if all { format!("{}?all=true", routes::JOBS) } else { routes::JOBS.into() };
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// `GET /v1/jobs/{id}?wait_ms=`: the job, answered early when it ends within `wait_ms`.
    pub async fn job(&self, id: u64, wait_ms: u64) -> Result<JobView> {
        let path = format!("{}?wait_ms={wait_ms}", routes::job(id));
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// `DELETE /v1/jobs/{id}`: cancels the job.
    pub async fn cancel(&self, id: u64) -> Result<JobView> {
        self.call(Method::DELETE, &routes::job(id), None::<&()>).await
    }

    /// `GET /v1/jobs/{id}/chunks/{k}?wait_ms=`: chunk `k` of a series job's results, or
    /// `None` when it is not ready within `wait_ms`.
    pub async fn take_chunk(
        &self,
        id: u64,
        chunk: u32,
        wait_ms: u64,
    ) -> Result<Option<SeriesChunk>> {
        let path = format!("{}?wait_ms={wait_ms}", routes::job_chunk(id, chunk));
        let reply = self.send(Method::GET, &path, Body::Empty).await?;
        if reply.status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let header = |name: &str| -> Result<u64> {
            let value = reply.headers.get(name).and_then(|v| v.to_str().ok());
            value
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| ClientError::Unreadable(format!("no {name} header")))
        };
        let (first_unit, chunks, units) =
            (header(FIRST_UNIT_HEADER)?, header(CHUNKS_HEADER)?, header(UNITS_HEADER)?);
        if reply.body.len() % 8 != 0 {
            return Err(ClientError::Unreadable(format!(
                "chunk {chunk} of job {id} came back cut short"
            )));
        }
        let values = reply
            .body
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect();
        Ok(Some(SeriesChunk { first_unit, chunks, units, values }))
    }

    /// `GET /v1/files/{sha256}`: whether the coordinator's store has the file.
    pub async fn has_file(&self, sha256: &str) -> Result<bool> {
        match self.call::<(), FileInfo>(Method::GET, &routes::file(sha256), None).await {
            Ok(_) => Ok(true),
            Err(ClientError::Refused { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `PUT /v1/files/{sha256}?size=N`: uploads a file for commands, streamed from `file`.
    pub async fn upload_file(&self, file: &Path, sha256: &str, size: u64) -> Result<FileInfo> {
        let opened = open(file, size).await?;
        let path = format!("{}?size={size}", routes::file(sha256));
        let reply = self.send(Method::PUT, &path, Body::File(opened)).await?;
        parse(&reply.body)
    }

    /// `PUT /v1/files/{sha256}?size=N`: uploads a file for commands from memory.
    pub async fn upload_bytes(&self, bytes: Bytes, sha256: &str) -> Result<FileInfo> {
        let path = format!("{}?size={}", routes::file(sha256), bytes.len());
        let reply = self.send(Method::PUT, &path, Body::Bytes(bytes)).await?;
        parse(&reply.body)
    }

    /// `GET /v1/jobs/{id}/output/{n}?offset=O&wait_ms=W`: a piece of delivery `n` of a command
    /// job's output.
    pub async fn take_output(
        &self,
        id: u64,
        n: u64,
        offset: u64,
        wait_ms: u64,
    ) -> Result<OutputPiece> {
        let path = format!("{}?offset={offset}&wait_ms={wait_ms}", routes::job_output(id, n));
        let reply = self.send(Method::GET, &path, Body::Empty).await?;
        if reply.status == StatusCode::NO_CONTENT {
            let end = reply.headers.contains_key(OUTPUT_END_HEADER);
            return Ok(if end { OutputPiece::End } else { OutputPiece::NotYet });
        }
        let size = reply
            .headers
            .get(OUTPUT_SIZE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Unreadable(format!("no {OUTPUT_SIZE_HEADER} header")))?;
        Ok(OutputPiece::Bytes { size, bytes: reply.body })
    }

    /// `GET /v1/join-token`.
    pub async fn join_token(&self) -> Result<JoinToken> {
        self.call(Method::GET, routes::JOIN_TOKEN, None::<&()>).await
    }

    /// `POST /v1/join-token/rotate`.
    pub async fn rotate_join_token(&self) -> Result<JoinToken> {
        self.call(Method::POST, routes::ROTATE_JOIN_TOKEN, Some(&())).await
    }

    /// `POST /v1/exit`.
    pub async fn exit(&self, request: &ExitRequest) -> Result<ExitReply> {
        self.call(Method::POST, routes::EXIT, Some(request)).await
    }

    /// `POST /v1/revoke`.
    pub async fn revoke(&self, worker: String) -> Result<RevokeReply> {
        self.call(Method::POST, routes::REVOKE, Some(&RevokeRequest { worker })).await
    }

    /// `POST /v1/clear`.
    pub async fn clear(&self, worker: String) -> Result<ClearRequest> {
        self.call(Method::POST, routes::CLEAR, Some(&ClearRequest { worker })).await
    }

    /// `POST /v1/bench`.
    pub async fn bench(&self, millis: u32) -> Result<Vec<BenchResult>> {
        self.call(Method::POST, routes::BENCH, Some(&BenchRequest { millis })).await
    }

    /// `POST /v1/binaries`: uploads a `marmotd` for a later update, streamed from `file`.
    pub async fn upload_binary(&self, file: &Path) -> Result<BinaryInfo> {
        let size = tokio::fs::metadata(file).await.map_err(|e| file_error(file, e))?.len();
        let opened = open(file, size).await?;
        let reply = self.send(Method::POST, routes::BINARIES, Body::File(opened)).await?;
        parse(&reply.body)
    }

    /// `POST /v1/update`: answers when the rollout is over.
    pub async fn update(&self, request: &UpdateRequest) -> Result<UpdateReport> {
        self.call(Method::POST, routes::UPDATE, Some(request)).await
    }

    /// `GET /v1/overview`: everything the dashboard shows.
    pub async fn overview(&self) -> Result<Overview> {
        self.call(Method::GET, routes::OVERVIEW, None::<&()>).await
    }

    /// `GET /v1/logs`: kept log lines, of one worker or all.
    pub async fn logs(&self, query: &LogsQuery) -> Result<LogsReply> {
        self.call(Method::GET, &query.path(), None::<&()>).await
    }

    /// `POST /v1/dashboard-token`: makes the `--http` dashboard's token (a new one with
    /// `rotate`).
    pub async fn dashboard_token(&self, rotate: bool) -> Result<DashboardToken> {
        let request = DashboardTokenRequest { rotate };
        self.call(Method::POST, routes::DASHBOARD_TOKEN, Some(&request)).await
    }

    /// A connection to the socket, for requests of the caller's own making (the dashboard's
    /// local proxy), with the same errors as every call.
    pub async fn connect(&self) -> Result<tokio::net::UnixStream> {
        tokio::net::UnixStream::connect(&self.socket).await.map_err(|e| self.connect_error(e))
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let body = match body {
            Some(b) => Body::Json(Bytes::from(
                serde_json::to_vec(b).map_err(|e| ClientError::Unreadable(e.to_string()))?,
            )),
            None => Body::Empty,
        };
        let reply = self.send(method, path, body).await?;
        parse(&reply.body)
    }

    async fn send(&self, method: Method, path: &str, body: Body) -> Result<RawReply> {
        let stream = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ClientError::NotHttp)?;
        let full = |bytes: Bytes| Full::new(bytes).map_err(|never| match never {}).boxed();
        let (content_type, body): (_, BoxBody) = match body {
            Body::Empty => ("application/json", full(Bytes::new())),
            Body::Json(bytes) => ("application/json", full(bytes)),
            Body::File(file) => ("application/octet-stream", file_body(file)),
            Body::Bytes(bytes) => ("application/octet-stream", full(bytes)),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", content_type)
            .body(body)
            .map_err(|e| ClientError::Unreadable(e.to_string()))?;
        // The connection is driven here, beside the exchange, not by a task of its own: it
        // ends with this call.
        let exchange = async {
            let response = sender.send_request(request).await.map_err(ClientError::HungUp)?;
            let (status, headers) = (response.status(), response.headers().clone());
            let body = response.into_body().collect().await.map_err(ClientError::HungUp)?;
            Ok::<_, ClientError>(RawReply { status, headers, body: body.to_bytes() })
        };
        tokio::pin!(exchange, conn);
        let reply = tokio::select! {
            biased;
            reply = &mut exchange => reply?,
            done = &mut conn => {
                done.map_err(ClientError::HungUp)?;
                // Closed after answering: the answer is complete.
                exchange.await?
            }
        };
        if !reply.status.is_success() {
            return Err(refusal(reply.status, &reply.body));
        }
        Ok(reply)
    }

    fn connect_error(&self, e: std::io::Error) -> ClientError {
        let path = self.socket.display().to_string();
        match e.kind() {
            ErrorKind::NotFound | ErrorKind::ConnectionRefused => ClientError::NoCoordinator(path),
            ErrorKind::PermissionDenied => ClientError::PermissionDenied(path),
            _ => ClientError::Connect { path, source: e },
        }
    }
}

/// A failure's answer: the coordinator's words, or how it leaves.
fn refusal(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ApiError>(body) {
        Ok(ApiError { leaving: Some(how), .. }) => ClientError::Leaving(how),
        Ok(e) => ClientError::Refused { status: status.as_u16(), message: e.error },
        Err(_) => ClientError::Refused {
            status: status.as_u16(),
            message: String::from_utf8_lossy(body).into_owned(),
        },
    }
}

/// Which log lines to ask for (`GET /v1/logs`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogsQuery {
    /// One worker's; `None` for all (and the coordinator's).
    pub worker: Option<String>,
    /// Lines after this number (a follower's last `next`).
    pub after: Option<u64>,
    /// Lines logged at or after this Unix time, in milliseconds.
    pub since_ms: Option<u64>,
    pub limit: Option<usize>,
}

impl LogsQuery {
    fn path(&self) -> String {
        let mut pairs = vec![];
        if let Some(worker) = &self.worker {
            // Worker names are letters, digits, '-', '_' and '.': nothing to escape.
            pairs.push(format!("worker={worker}"));
        }
        if let Some(after) = self.after {
            pairs.push(format!("after={after}"));
        }
        if let Some(since) = self.since_ms {
            pairs.push(format!("since_ms={since}"));
        }
        if let Some(limit) = self.limit {
            pairs.push(format!("limit={limit}"));
        }
        match pairs.is_empty() {
            true => routes::LOGS.to_string(),
            false => format!("{}?{}", routes::LOGS, pairs.join("&")),
        }
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| ClientError::Unreadable(e.to_string()))
}

/// The first `size` bytes of `file`, to send a piece at a time.
async fn open(file: &Path, size: u64) -> Result<proto::pieces::FilePieces> {
    proto::pieces::FilePieces::open(file, 0, size).await.map_err(|e| file_error(file, e))
}

fn file_error(file: &Path, source: std::io::Error) -> ClientError {
    ClientError::File { path: file.display().to_string(), source }
}

/// A file as a request body, read a piece at a time as the socket takes it.
fn file_body(pieces: proto::pieces::FilePieces) -> BoxBody {
    let pieces = futures_util::stream::try_unfold(pieces, |mut pieces| async move {
        let piece = pieces.next().await.map_err(std::io::Error::other)?;
        Ok(piece.map(|piece| (Frame::data(Bytes::from(piece)), pieces)))
    });
    StreamBody::new(pieces).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopping_coordinators_answer_says_whether_to_wait_for_it() {
        let answer = |leaving: Option<Leaving>| {
            let body = serde_json::to_vec(&ApiError { error: "words".into(), leaving }).unwrap();
            refusal(StatusCode::SERVICE_UNAVAILABLE, &body)
        };
        let gone = answer(Some(Leaving::Gone));
        assert!(matches!(gone, ClientError::Leaving(Leaving::Gone)) && !gone.is_transient());
        assert!(gone.to_string().contains("stopped for good"), "{gone}");
        for how in [Leaving::Restarting, Leaving::Stopping] {
            assert!(answer(Some(how)).is_transient(), "{how:?}");
        }
        let plain = answer(None);
        assert!(
            matches!(&plain, ClientError::Refused { status: 503, message } if message == "words")
        );
        assert!(plain.is_transient(), "a 503 in the coordinator's words is asked again");
        let not_json = refusal(StatusCode::BAD_GATEWAY, b"oops");
        assert!(
            matches!(&not_json, ClientError::Refused { status: 502, message } if message == "oops")
        );
        assert!(!not_json.is_transient());
    }

    #[test]
    fn a_submission_asks_for_what_differs_from_the_defaults() {
        let path = |verify, wait_for_workers| Submit { verify, wait_for_workers }.path();
        assert_eq!(path(None, true), "/v1/jobs");
        assert_eq!(path(Some(0.5), true), "/v1/jobs?verify=0.5");
        assert_eq!(path(None, false), "/v1/jobs?wait_for_workers=false");
        assert_eq!(path(Some(1.0), false), "/v1/jobs?verify=1&wait_for_workers=false");
    }
}
