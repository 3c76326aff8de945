//! The control API: HTTP/1.1 with JSON bodies on the coordinator's Unix socket, in the manner
//! of Docker's Engine API, so `curl --unix-socket SOCK http://localhost/v1/workers` works.
//! Routes and bodies are documented with their types in `proto::api`.

use super::cluster::{Cluster, ClusterError};
use super::rollout;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use proto::api::{
    ApiError, BenchRequest, BenchResult, BinaryInfo, ExitReply, ExitRequest, JobView, JoinToken,
    PingRequest, PingResult, Status, UpdateReport, UpdateRequest, WorkerView, CHUNKS_HEADER,
    FIRST_UNIT_HEADER, UNITS_HEADER,
};
use proto::task::TaskSpec;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The longest a `GET /v1/jobs/{id}?wait_ms=` long poll is held.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The longest ping timeout accepted.
const MAX_PING_TIMEOUT: Duration = Duration::from_secs(300);

pub fn router(cluster: Arc<Cluster>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/workers", get(workers))
        .route("/v1/ping", post(ping))
        .route("/v1/jobs", get(jobs).post(submit))
        .route("/v1/jobs/{id}", get(job).delete(cancel))
        .route("/v1/jobs/{id}/chunks/{chunk}", get(take_chunk))
        .route("/v1/join-token", get(join_token))
        .route("/v1/join-token/rotate", post(rotate_join_token))
        .route("/v1/exit", post(exit))
        .route("/v1/bench", post(bench))
        .route("/v1/binaries", post(upload_binary))
        .route("/v1/update", post(update))
        .fallback(|| async {
            Failure(StatusCode::NOT_FOUND, "no such route: the API lives under /v1/".into())
        })
        .with_state(cluster)
}

/// An error response: a status and an [`ApiError`] body.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(ApiError { error: self.1 })).into_response()
    }
}

impl From<ClusterError> for Failure {
    fn from(e: ClusterError) -> Self {
        let status = match e {
            ClusterError::NotFound(_) => StatusCode::NOT_FOUND,
            ClusterError::Invalid(_) => StatusCode::BAD_REQUEST,
            ClusterError::Unavailable(_) => StatusCode::CONFLICT,
            ClusterError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure(status, e.to_string())
    }
}

type Reply<T> = Result<Json<T>, Failure>;

async fn status(State(cluster): State<Arc<Cluster>>) -> Json<Status> {
    Json(cluster.status())
}

async fn workers(State(cluster): State<Arc<Cluster>>) -> Json<Vec<WorkerView>> {
    Json(cluster.workers())
}

async fn ping(
    State(cluster): State<Arc<Cluster>>,
    Json(req): Json<PingRequest>,
) -> Reply<Vec<PingResult>> {
    let timeout = Duration::from_millis(req.timeout_ms);
    if timeout.is_zero() || timeout > MAX_PING_TIMEOUT {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            "ping timeout must be between 1 ms and 300 s".into(),
        ));
    }
    Ok(Json(cluster.ping(&req.workers, timeout).await?))
}

async fn jobs(State(cluster): State<Arc<Cluster>>) -> Json<Vec<JobView>> {
    Json(cluster.jobs())
}

async fn submit(State(cluster): State<Arc<Cluster>>, Json(spec): Json<TaskSpec>) -> Reply<JobView> {
    Ok(Json(cluster.submit(spec)?))
}

#[derive(Deserialize)]
struct WaitQuery {
    wait_ms: Option<u64>,
}

async fn job(
    State(cluster): State<Arc<Cluster>>,
    Path(id): Path<u64>,
    Query(query): Query<WaitQuery>,
) -> Reply<JobView> {
    let (view, mut ended) = cluster.job(id)?;
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    if view.state.is_finished() || wait.is_zero() {
        return Ok(Json(view));
    }
    let _ = tokio::time::timeout(wait, ended.wait_for(|&ended| ended)).await;
    Ok(Json(cluster.job(id)?.0))
}

/// Hands out one chunk of a series job's results as raw little-endian `f64`s: at 8 bytes a
/// number, JSON would cost more to write and parse than the numbers cost to compute.
async fn take_chunk(
    State(cluster): State<Arc<Cluster>>,
    Path((id, chunk)): Path<(u64, u32)>,
    Query(query): Query<WaitQuery>,
) -> Result<Response, Failure> {
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let (taken, view) = cluster.take_chunk(id, chunk)?;
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

async fn cancel(State(cluster): State<Arc<Cluster>>, Path(id): Path<u64>) -> Reply<JobView> {
    Ok(Json(cluster.cancel(id)?))
}

async fn join_token(State(cluster): State<Arc<Cluster>>) -> Reply<JoinToken> {
    let token = cluster.authority.join_token().map_err(internal)?;
    Ok(Json(JoinToken { token: token.to_string() }))
}

async fn rotate_join_token(State(cluster): State<Arc<Cluster>>) -> Reply<JoinToken> {
    let token = cluster.authority.rotate_join_token().map_err(internal)?;
    tracing::info!("join token rotated: earlier tokens no longer let workers join");
    Ok(Json(JoinToken { token: token.to_string() }))
}

async fn exit(
    State(cluster): State<Arc<Cluster>>,
    Json(req): Json<ExitRequest>,
) -> Reply<ExitReply> {
    if req.workers.is_empty() && !req.all {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            "name the workers to stop, or pass all".into(),
        ));
    }
    let told = cluster.tell_exit(&req.workers)?;
    for name in &told {
        tracing::info!("told worker '{name}' to exit");
    }
    Ok(Json(ExitReply { told }))
}

async fn bench(
    State(cluster): State<Arc<Cluster>>,
    Json(req): Json<BenchRequest>,
) -> Reply<Vec<BenchResult>> {
    if !(100..=10_000).contains(&req.millis) {
        return Err(Failure(StatusCode::BAD_REQUEST, "bench length must be 100 ms to 10 s".into()));
    }
    Ok(Json(cluster.bench(Duration::from_millis(u64::from(req.millis))).await))
}

/// Stores a binary for a later update, streamed to disk as it arrives.
async fn upload_binary(State(cluster): State<Arc<Cluster>>, body: Body) -> Reply<BinaryInfo> {
    let mut upload = rollout::Upload::start(&cluster)?;
    let mut stream = body.into_data_stream();
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.map_err(|e| Failure(StatusCode::BAD_REQUEST, e.to_string()))?;
        upload.write(&bytes)?;
    }
    let info = tokio::task::spawn_blocking(move || upload.finish()).await.map_err(internal)??;
    tracing::info!("stored marmotd {} for {} ({})", info.version, info.arch, info.sha256);
    Ok(Json(info))
}

async fn update(
    State(cluster): State<Arc<Cluster>>,
    Json(request): Json<UpdateRequest>,
) -> Reply<UpdateReport> {
    // Spawned, so a client that goes away mid-rollout does not leave workers drained.
    let rollout = tokio::spawn(async move {
        let Ok(_one_at_a_time) = cluster.rollout_lock.try_lock() else {
            return Err(ClusterError::Unavailable("an update is already rolling out".into()));
        };
        rollout::rollout(cluster.clone(), request).await
    });
    Ok(Json(rollout.await.map_err(internal)??))
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}
