//! The control API: HTTP/1.1 with JSON bodies on the coordinator's Unix socket, in the manner
//! of Docker's Engine API, so `curl --unix-socket SOCK http://localhost/v1/workers` works.
//! Routes and bodies are documented with their types in `proto::api`.
//!
//! Request bodies are read as JSON whatever their `Content-Type` (`curl -d` says it sends a
//! form), and every failure, axum's own rejections included (404, 405, 413, a path that does
//! not parse), is answered with the documented `{"error": ...}` body.

use super::dashboard::access::TokenStore;
use super::dashboard::{self, Feed};
use super::driver::Cluster;
use super::error::ClusterError;
use super::http::{self, internal, Failure, JsonBody, Reply};
use super::jobs::TakenOutput;
use super::{fleet, rollout};
use crate::exec::cache::{Arriving, CacheError};
use crate::exec::outbox::Take;
use crate::journal::Record;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRef, Path, Query, Request, State};
use axum::http::{header, HeaderName, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use proto::api::routes;
use proto::api::{
    BenchRequest, BenchResult, BinaryInfo, ClearRequest, ExitReply, ExitRequest, JobView,
    JoinToken, PingRequest, PingResult, RevokeReply, RevokeRequest, Status, UpdateReport,
    UpdateRequest, WorkerView, CHUNKS_HEADER, FIRST_UNIT_HEADER, UNITS_HEADER,
};
use proto::api::{DashboardToken, DashboardTokenRequest};
use proto::api::{FileInfo, OUTPUT_END_HEADER, OUTPUT_PIECE, OUTPUT_SIZE_HEADER};
use proto::job::JobSpec;
use proto::names;
use serde::Deserialize;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The longest a `GET /v1/jobs/{id}?wait_ms=` long poll is held.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The longest ping timeout accepted.
const MAX_PING_TIMEOUT: Duration = Duration::from_secs(300);

/// The API's routes, with the dashboard's; the feed's `stop` ends the live feeds when the API
/// stops.
pub fn router(feed: Feed, tasks: TaskTracker) -> Router {
    let Feed { cluster, stop, tokens } = feed;
    let rollouts = Arc::default();
    let api = dashboard::routes::<Api>()
        .route(routes::STATUS, get(status))
        .route(routes::WORKERS, get(workers))
        .route(routes::PING, post(ping))
        .route(routes::JOBS, get(jobs).post(submit))
        .route(routes::JOB, get(job).delete(dashboard::cancel))
        .route(routes::JOB_CHUNK, get(take_chunk))
        .route(routes::JOB_OUTPUT, get(take_output))
        .route(routes::FILE, get(file_info).put(upload_file))
        .route(routes::JOIN_TOKEN, get(join_token))
        .route(routes::ROTATE_JOIN_TOKEN, post(rotate_join_token))
        .route(routes::EXIT, post(exit))
        .route(routes::REVOKE, post(revoke))
        .route(routes::CLEAR, post(clear))
        .route(routes::BENCH, post(bench))
        .route(routes::BINARIES, post(upload_binary))
        .route(routes::UPDATE, post(update))
        .route(routes::DASHBOARD_TOKEN, post(dashboard_token))
        .fallback(|| async {
            Failure(StatusCode::NOT_FOUND, "no such route: the API lives under /v1/".into())
        })
        .layer(axum::middleware::from_fn_with_state(cluster.clone(), unless_leaving))
        .with_state(Api { cluster, tasks, stop, tokens, rollouts });
    http::with_json_errors(api)
}

/// While the coordinator stops, every request is answered with how it leaves, and so are
/// the reads in flight (long polls of a job, its output, its chunks), at once. Changes
/// (a submission, an upload, a cancel) run to their end.
async fn unless_leaving(State(cluster): State<Cluster>, request: Request, next: Next) -> Response {
    if let Some(how) = cluster.leaving_now() {
        return http::leaving(how);
    }
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    tokio::select! {
        response = next.run(request) => response,
        how = cluster.leaving() => http::leaving(how),
    }
}

/// What the handlers share: the coordinator, the tracker of tasks that must outlive a
/// request (a rollout goes on when its client goes away), and the lock that keeps rollouts
/// to one at a time.
#[derive(Clone)]
struct Api {
    cluster: Cluster,
    tasks: TaskTracker,
    /// Cancelled when the API stops: it ends the dashboard's live feeds.
    stop: CancellationToken,
    /// The dashboard's token.
    tokens: Arc<TokenStore>,
    /// Held while an update rolls out.
    rollouts: Arc<tokio::sync::Mutex<()>>,
}

impl FromRef<Api> for Feed {
    fn from_ref(api: &Api) -> Feed {
        Feed { cluster: api.cluster.clone(), stop: api.stop.clone(), tokens: api.tokens.clone() }
    }
}

impl FromRef<Api> for Cluster {
    fn from_ref(api: &Api) -> Cluster {
        api.cluster.clone()
    }
}

async fn status(State(Api { cluster, .. }): State<Api>) -> Reply<Status> {
    Ok(Json(cluster.status().await?))
}

async fn workers(State(Api { cluster, .. }): State<Api>) -> Reply<Vec<WorkerView>> {
    Ok(Json(cluster.workers().await?))
}

async fn ping(
    State(Api { cluster, .. }): State<Api>,
    JsonBody(req): JsonBody<PingRequest>,
) -> Reply<Vec<PingResult>> {
    let timeout = Duration::from_millis(req.timeout_ms);
    if timeout.is_zero() || timeout > MAX_PING_TIMEOUT {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            "ping timeout must be between 1 ms and 300 s".into(),
        ));
    }
    Ok(Json(fleet::ping(&cluster, req.workers, timeout).await?))
}

#[derive(Deserialize)]
struct JobsQuery {
    /// Every ended job the journal keeps, not only the recent ones in memory.
    #[serde(default)]
    all: bool,
}

/// The most ended jobs `GET /v1/jobs?all=true` lists (the journal keeps at least
/// `--keep-results-count`, 10,000 by default).
const MAX_LISTED: u64 = 100_000;

async fn jobs(
    State(Api { cluster, .. }): State<Api>,
    Query(query): Query<JobsQuery>,
) -> Reply<Vec<JobView>> {
    let mut views = cluster.call(|s, now| s.jobs.list(now)).await?;
    if query.all {
        let journal = cluster.journal().await?;
        let kept = journal.ended_jobs(MAX_LISTED).await.map_err(internal)?;
        let listed: std::collections::BTreeSet<u64> = views.iter().map(|v| v.id).collect();
        views.extend(kept.into_iter().filter(|v| !listed.contains(&v.id)));
        views.sort_by_key(|v| v.id);
    }
    Ok(Json(views))
}

/// Who is on the other end of the control socket, from the kernel (`SO_PEERCRED`), once per
/// connection.
#[derive(Clone, Debug)]
pub struct Peer {
    uid: Option<u32>,
    /// The user's name, looked up (reading `/etc/passwd`) at the connection's first submit and
    /// kept for the rest of it: a client that submits over one keep-alive connection does not
    /// pay for it per job.
    described: Arc<OnceLock<String>>,
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, tokio::net::UnixListener>,
    > for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        Peer { uid: stream.io().peer_cred().ok().map(|cred| cred.uid()), described: Arc::default() }
    }
}

impl Peer {
    /// The peer as the journal records a job's client: `alice (uid 1000)`.
    fn describe(&self) -> String {
        let describe = || {
            let Some(uid) = self.uid else { return "unknown".into() };
            match nix::unistd::User::from_uid(uid.into()) {
                Ok(Some(user)) => format!("{} (uid {uid})", user.name),
                _ => format!("uid {uid}"),
            }
        };
        self.described.get_or_init(describe).clone()
    }
}

#[derive(Deserialize)]
struct SubmitQuery {
    /// The share of chunks also run on a second worker and compared (default: the cluster's).
    verify: Option<f64>,
    /// `false`: refused when no worker is connected, rather than queued.
    wait_for_workers: Option<bool>,
}

async fn submit(
    State(Api { cluster, .. }): State<Api>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Query(query): Query<SubmitQuery>,
    JsonBody(spec): JsonBody<JobSpec>,
) -> Reply<JobView> {
    let wait = query.wait_for_workers.unwrap_or(true);
    Ok(Json(cluster.submit(spec, query.verify, wait, peer.describe()).await?))
}

#[derive(Deserialize)]
struct WaitQuery {
    wait_ms: Option<u64>,
}

async fn job(
    State(Api { cluster, .. }): State<Api>,
    Path(id): Path<u64>,
    Query(query): Query<WaitQuery>,
) -> Reply<JobView> {
    let (view, mut ended) = match cluster.try_call(move |s, now| s.jobs.job(now, id)).await {
        Err(ClusterError::NotFound(message)) => {
            // Ended, and no longer in memory: the journal keeps it until its retention ends.
            let kept = cluster.journal().await?.ended_job(id).await.map_err(internal)?;
            let view = kept.ok_or(ClusterError::NotFound(message))?;
            cluster.call(move |s, _| s.journal.append(vec![Record::Read { job: id }])).await?;
            return Ok(Json(view));
        }
        found => found?,
    };
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    if view.state.is_finished() || wait.is_zero() {
        return Ok(Json(view));
    }
    let _ = tokio::time::timeout(wait, ended.wait_for(|&ended| ended)).await;
    Ok(Json(cluster.try_call(move |s, now| s.jobs.job(now, id)).await?.0))
}

/// Hands out one chunk of a series job's results as raw little-endian `f64`s: at 8 bytes a
/// number, JSON would cost more to write and parse than the numbers cost to compute.
async fn take_chunk(
    State(Api { cluster, .. }): State<Api>,
    Path((id, chunk)): Path<(u64, u32)>,
    Query(query): Query<WaitQuery>,
) -> Result<Response, Failure> {
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let (taken, view) =
            cluster.try_call(move |s, now| s.jobs.take_chunk(now, id, chunk)).await?;
        match taken {
            Ok(taken) => {
                let mut body = Vec::with_capacity(taken.values.len() * 8);
                for v in &taken.values {
                    body.extend_from_slice(&v.to_le_bytes());
                }
                let headers = [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (HeaderName::from_static(FIRST_UNIT_HEADER), taken.first_unit.to_string()),
                    (HeaderName::from_static(CHUNKS_HEADER), view.chunks_total.to_string()),
                    (HeaderName::from_static(UNITS_HEADER), view.units_total.to_string()),
                ];
                return Ok((headers, body).into_response());
            }
            Err(mut changed) => {
                let woke = tokio::time::timeout_at(deadline, changed.changed()).await;
                if !matches!(woke, Ok(Ok(()))) {
                    return Ok(StatusCode::NO_CONTENT.into_response());
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct OutputQuery {
    offset: Option<u64>,
    wait_ms: Option<u64>,
}

/// Hands out a piece of a command job's output: delivery `n` from `offset`, read from its
/// spool file. Asking for delivery `n` removes the spool files of those before it.
async fn take_output(
    State(Api { cluster, .. }): State<Api>,
    Path((id, n)): Path<(u64, u64)>,
    Query(query): Query<OutputQuery>,
) -> Result<Response, Failure> {
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let (TakenOutput { take, changed, let_go }, journal, appended) = cluster
            .try_call(move |s, now| {
                let taken = s.jobs.take_output(now, id, n)?;
                Ok((taken, s.journal.clone(), s.journal_records()))
            })
            .await?;
        if !let_go.is_empty() {
            // Once the journal says the client has them: a restart before would deliver them
            // again, so it must find them.
            let journal = journal.clone();
            tokio::spawn(async move {
                journal.synced(appended).await;
                let _ = tokio::task::spawn_blocking(move || {
                    for path in let_go {
                        let _ = std::fs::remove_file(path);
                    }
                })
                .await;
            });
        }
        match (take, changed) {
            (Take::Ready(delivery), _) => {
                let offset = query.offset.unwrap_or(0);
                // Handed out only once the journal has its chunk as counted: a delivery the
                // client printed is never run, and printed, again after a restart.
                // (Until then, as for output not ready yet: the client asks again.)
                if tokio::time::timeout_at(deadline, journal.synced(appended)).await.is_err() {
                    return Ok(StatusCode::NO_CONTENT.into_response());
                }
                let (size, bytes) = read_piece(&delivery.spool, offset).await.map_err(internal)?;
                let headers = [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (HeaderName::from_static(OUTPUT_SIZE_HEADER), size.to_string()),
                ];
                return Ok((headers, bytes).into_response());
            }
            (Take::Gone, _) => {
                let end = [(HeaderName::from_static(OUTPUT_END_HEADER), "true")];
                return Ok((StatusCode::NO_CONTENT, end).into_response());
            }
            (Take::NotYet, changed) => {
                let woke = match changed {
                    Some(mut changed) => {
                        tokio::time::timeout_at(deadline, changed.changed()).await.is_ok()
                    }
                    None => false,
                };
                if !woke {
                    return Ok(StatusCode::NO_CONTENT.into_response());
                }
            }
        }
    }
}

/// A spool file's size, and at most [`OUTPUT_PIECE`] of its bytes from `offset`.
async fn read_piece(path: &std::path::Path, offset: u64) -> std::io::Result<(u64, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    let size = file.metadata().await?.len();
    let want = size.saturating_sub(offset).min(OUTPUT_PIECE);
    let mut bytes = vec![0u8; want as usize];
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    file.read_exact(&mut bytes).await?;
    Ok((size, bytes))
}

#[derive(Deserialize)]
struct SizeQuery {
    size: u64,
}

/// Whether the file store has a file.
async fn file_info(
    State(Api { cluster, .. }): State<Api>,
    Path(sha256): Path<String>,
) -> Reply<FileInfo> {
    let path = cluster.stores().files.path(&sha256).ok_or_else(|| {
        Failure(StatusCode::NOT_FOUND, format!("no file {} in the store", names::shown(&sha256)))
    })?;
    let size = tokio::fs::metadata(&path).await.map_err(internal)?.len();
    Ok(Json(FileInfo { sha256, size }))
}

/// Stores a file for commands, streamed to disk as it arrives and checked against its
/// SHA-256 before it is kept.
async fn upload_file(
    State(Api { cluster, .. }): State<Api>,
    Path(sha256): Path<String>,
    Query(SizeQuery { size }): Query<SizeQuery>,
    body: Body,
) -> Reply<FileInfo> {
    let bad = |e: CacheError| Failure(StatusCode::BAD_REQUEST, e.to_string());
    let mut arriving =
        Arriving::open(&cluster.stores().files, &sha256, size, 0).await.map_err(bad)?;
    let mut stream = body.into_data_stream();
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.map_err(|e| Failure(StatusCode::BAD_REQUEST, e.to_string()))?;
        arriving.write(bytes).await.map_err(bad)?;
    }
    arriving.finish().await.map_err(bad)?;
    Ok(Json(FileInfo { sha256, size }))
}

async fn dashboard_token(
    State(Api { tokens, .. }): State<Api>,
    JsonBody(request): JsonBody<DashboardTokenRequest>,
) -> Reply<DashboardToken> {
    let token = tokens.make(request.rotate)?;
    tracing::info!(
        "a dashboard token was {}",
        if request.rotate { "made in place of the old one" } else { "made" }
    );
    Ok(Json(DashboardToken { token }))
}

async fn join_token(State(Api { cluster, .. }): State<Api>) -> Reply<JoinToken> {
    let token = cluster.facts().authority.join_token().map_err(internal)?;
    Ok(Json(JoinToken { token: token.to_string() }))
}

async fn rotate_join_token(State(Api { cluster, .. }): State<Api>) -> Reply<JoinToken> {
    let token = cluster.facts().authority.rotate_join_token().map_err(internal)?;
    tracing::info!("join token rotated: earlier tokens no longer let workers join");
    Ok(Json(JoinToken { token: token.to_string() }))
}

async fn exit(
    State(Api { cluster, .. }): State<Api>,
    JsonBody(req): JsonBody<ExitRequest>,
) -> Reply<ExitReply> {
    if req.workers.is_empty() && !req.all {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            "name the workers to stop, or pass all".into(),
        ));
    }
    Ok(Json(ExitReply { told: fleet::exit(&cluster, req.workers).await? }))
}

async fn clear(
    State(Api { cluster, .. }): State<Api>,
    JsonBody(req): JsonBody<ClearRequest>,
) -> Reply<ClearRequest> {
    fleet::clear(&cluster, req.worker.clone()).await?;
    Ok(Json(req))
}

async fn revoke(
    State(Api { cluster, .. }): State<Api>,
    JsonBody(req): JsonBody<RevokeRequest>,
) -> Reply<RevokeReply> {
    Ok(Json(fleet::revoke(&cluster, req.worker).await?))
}

async fn bench(
    State(Api { cluster, .. }): State<Api>,
    JsonBody(req): JsonBody<BenchRequest>,
) -> Reply<Vec<BenchResult>> {
    if !(100..=10_000).contains(&req.millis) {
        return Err(Failure(StatusCode::BAD_REQUEST, "bench length must be 100 ms to 10 s".into()));
    }
    Ok(Json(fleet::bench(&cluster, Duration::from_millis(u64::from(req.millis))).await?))
}

/// Stores a binary for a later update, streamed to disk as it arrives.
async fn upload_binary(State(Api { cluster, .. }): State<Api>, body: Body) -> Reply<BinaryInfo> {
    let mut upload = rollout::Upload::start(&cluster).await?;
    let mut stream = body.into_data_stream();
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.map_err(|e| Failure(StatusCode::BAD_REQUEST, e.to_string()))?;
        upload = upload.write(bytes.to_vec()).await?;
    }
    let info = tokio::task::spawn_blocking(move || upload.finish()).await.map_err(internal)??;
    tracing::info!("stored marmotd {} for {} ({})", info.version, info.arch, info.sha256);
    Ok(Json(info))
}

async fn update(
    State(Api { cluster, tasks, rollouts, .. }): State<Api>,
    JsonBody(request): JsonBody<UpdateRequest>,
) -> Reply<UpdateReport> {
    // A task of its own, so a client that goes away mid-rollout does not leave workers
    // drained; the API's tracker waits for it on shutdown.
    let rollout = tasks.spawn(async move {
        let Ok(_one_at_a_time) = rollouts.try_lock() else {
            return Err(ClusterError::Unavailable("an update is already rolling out".into()));
        };
        rollout::rollout(&cluster, request).await
    });
    Ok(Json(rollout.await.map_err(internal)??))
}
