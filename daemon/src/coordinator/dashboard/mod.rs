//! The dashboard: one page, its live feed, the logs and `/metrics`, served on the control
//! socket (for `marmotctl dashboard`, `top` and `logs`) and, with `--http ADDR`, on TCP for a
//! browser on another machine (a laptop, a phone on the same Wi-Fi).
//!
//! - The page (`page.html`, embedded in the binary; no build step) draws everything from
//!   [`Overview`]s: it takes the first from `/v1/overview/stream` and every change after,
//!   as server-sent events, and reconnects by itself when the coordinator restarts.
//! - The feed sends an overview when the job table changes (a chunk counted, a worker gone),
//!   at most every [`MIN_GAP`], and at least every [`HEARTBEAT`] (round trips and rates move
//!   without an event). An idle cluster costs one snapshot a second per open page.
//! - [`metrics`]: the same snapshot in Prometheus' format; [`access`]: who may see what on
//!   the `--http` address.

pub mod access;
pub mod metrics;

use super::driver::Cluster;
use super::http::{with_json_errors, Failure, Reply};
use access::TokenStore;
use axum::extract::{FromRef, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use futures_util::Stream;
use proto::api::{routes, JobView, LogsReply, Overview};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The page, as it is served.
pub const PAGE: &str = include_str!("page.html");
/// The least time between two overviews sent to one page.
pub const MIN_GAP: Duration = Duration::from_millis(100);
/// The most time between two overviews sent to one page.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Running jobs the dashboard shows at most (`--max-jobs` may allow thousands), and ended ones.
pub const RUNNING_JOBS: usize = 50;
pub const RECENT_JOBS: usize = 20;

/// The jobs an overview shows: the newest [`RUNNING_JOBS`] running ones, then the newest
/// [`RECENT_JOBS`] ended ones.
pub fn shown_jobs(mut jobs: Vec<JobView>) -> Vec<JobView> {
    jobs.sort_by_key(|j| (j.state.is_finished(), std::cmp::Reverse(j.id)));
    let running = jobs.iter().filter(|j| !j.state.is_finished()).count();
    jobs.truncate(running + RECENT_JOBS);
    jobs.drain(running.min(RUNNING_JOBS)..running);
    jobs
}

/// What the dashboard's handlers need: the coordinator, the token that ends live feeds when
/// the API stops (a feed never ends by itself, and shutdown waits for requests), and the
/// dashboard's own token for `--http`.
#[derive(Clone)]
pub struct Feed {
    pub cluster: Cluster,
    pub stop: CancellationToken,
    pub tokens: Arc<TokenStore>,
}

/// The dashboard's read-only routes, for any router whose state gives a [`Feed`].
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Feed: FromRef<S>,
{
    Router::new()
        .route(routes::PAGE, get(page))
        .route(routes::OVERVIEW, get(overview))
        .route(routes::OVERVIEW_STREAM, get(overview_stream))
        .route(routes::LOGS, get(logs))
        .route(routes::METRICS, get(metrics))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// The coordinator's overview, with the jobs [`shown_jobs`] picks.
async fn shown(cluster: &Cluster) -> Result<Overview, Failure> {
    let mut overview = cluster.overview().await?;
    overview.jobs = shown_jobs(std::mem::take(&mut overview.jobs));
    Ok(overview)
}

async fn overview(State(feed): State<Feed>) -> Reply<Overview> {
    Ok(Json(shown(&feed.cluster).await?))
}

async fn metrics(State(feed): State<Feed>) -> Result<Response, Failure> {
    let overview = shown(&feed.cluster).await?;
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::render(&overview))
        .into_response())
}

/// `GET /v1/logs`'s query.
#[derive(Debug, Deserialize)]
struct LogsQuery {
    worker: Option<String>,
    after: Option<u64>,
    since_ms: Option<u64>,
    limit: Option<usize>,
}

/// Lines one `GET /v1/logs` returns unless it says.
const DEFAULT_LOG_LINES: usize = 200;

async fn logs(State(feed): State<Feed>, Query(q): Query<LogsQuery>) -> Reply<LogsReply> {
    if let Some(name) = &q.worker {
        proto::names::check_worker_name(name).map_err(|e| Failure(StatusCode::BAD_REQUEST, e))?;
        super::fleet::known(&feed.cluster, name.clone()).await?;
    }
    let query = crate::logbook::Query {
        worker: q.worker,
        after: q.after,
        since_ms: q.since_ms,
        limit: q.limit.unwrap_or(DEFAULT_LOG_LINES),
    };
    Ok(Json(feed.cluster.call(move |s, _| s.logs.read(&query)).await?))
}

/// `DELETE /v1/jobs/{id}`: on the control socket, and on the `--http` dashboard.
pub async fn cancel(State(cluster): State<Cluster>, Path(id): Path<u64>) -> Reply<JobView> {
    Ok(Json(cluster.try_call(move |s, now| s.jobs.cancel(now, id)).await?))
}

/// The live feed: an overview now, then one per change (see the module's doc).
async fn overview_stream(
    State(feed): State<Feed>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, Failure> {
    let changes = feed.cluster.call(|s, _| s.jobs.subscribe_changes()).await?;
    let start = (feed, changes, None::<Instant>);
    let events = futures_util::stream::unfold(start, |(feed, mut changes, last)| async move {
        if let Some(last) = last {
            tokio::select! {
                _ = feed.stop.cancelled() => return None,
                changed = changes.changed() => changed.ok()?,
                _ = tokio::time::sleep(HEARTBEAT) => {}
            }
            tokio::select! {
                _ = feed.stop.cancelled() => return None,
                _ = tokio::time::sleep_until(last + MIN_GAP) => {}
            }
            // What changed during the gap is in this overview.
            changes.borrow_and_update();
        }
        let overview = shown(&feed.cluster).await.ok()?;
        let event = Event::default().json_data(&overview).ok()?;
        Some((Ok(event), (feed, changes, Some(Instant::now()))))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Binds `--http`'s address (the flag's parser made `PORT` alone loopback), failing in words.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        crate::fatal::ConfigError::error(format!(
            "--http {addr}: cannot listen there ({e}): pass a free port, or a local address"
        ))
    })
}

/// State of the `--http` server: the feed, and whether its address is loopback.
#[derive(Clone)]
struct Http {
    feed: Feed,
    loopback: bool,
}

impl FromRef<Http> for Feed {
    fn from_ref(http: &Http) -> Feed {
        http.feed.clone()
    }
}

impl FromRef<Http> for Cluster {
    fn from_ref(http: &Http) -> Cluster {
        http.feed.cluster.clone()
    }
}

/// The `--http` server's routes: the dashboard's, and cancel, behind [`access`]'s rule.
pub fn http_router(feed: Feed, loopback: bool) -> Router {
    let http = Http { feed, loopback };
    let router = routes::<Http>()
        .route(routes::JOB, delete(cancel))
        .fallback(|| async { Failure(StatusCode::NOT_FOUND, "no such page".into()) })
        .layer(axum::middleware::from_fn_with_state(http.clone(), check_access))
        .with_state(http);
    with_json_errors(router)
}

/// Lets a request through if [`access`]'s rule allows it, else answers 401.
async fn check_access(State(http): State<Http>, request: Request, next: Next) -> Response {
    if access::needs_token(http.loopback, request.method()) {
        let presented = access::presented(request.headers(), request.uri().query());
        if let Err(refusal) = http.feed.tokens.check(presented.as_deref()) {
            return Failure(StatusCode::UNAUTHORIZED, refusal.to_string()).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::api::JobState;

    fn job(id: u64, state: JobState) -> JobView {
        let mut view: JobView = serde_json::from_value(serde_json::json!({
            "id": id, "task": "pi", "spec": {"pi": {"samples": 1, "seed": 0}}, "state": "running",
            "chunks_done": 0, "chunks_total": 1, "units_done": 0, "units_total": 1,
            "elapsed_seconds": 0.0, "chunks_rerun": 0, "result": null, "error": null
        }))
        .unwrap();
        view.state = state;
        view
    }

    #[test]
    fn an_overview_shows_the_newest_running_jobs_then_the_newest_ended() {
        let mut jobs: Vec<JobView> = (1..=100).map(|id| job(id, JobState::Running)).collect();
        jobs.extend((101..=150).map(|id| job(id, JobState::Done)));
        let shown: Vec<u64> = shown_jobs(jobs).iter().map(|j| j.id).collect();
        let running: Vec<u64> = (51..=100).rev().collect();
        let ended: Vec<u64> = (131..=150).rev().collect();
        assert_eq!(shown, [running, ended].concat());
        let few = vec![job(3, JobState::Failed), job(1, JobState::Running), job(2, JobState::Done)];
        let shown: Vec<u64> = shown_jobs(few).iter().map(|j| j.id).collect();
        assert_eq!(shown, [1, 3, 2]);
    }
}
