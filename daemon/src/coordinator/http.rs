//! What the control API and the dashboard share of HTTP: the JSON error every failure
//! answers with ([`Failure`], and [`errors_as_json`] for axum's own rejections), and JSON
//! request bodies read whatever their `Content-Type` says ([`JsonBody`]).

use super::error::ClusterError;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use proto::api::{ApiError, Leaving};
use serde::de::DeserializeOwned;

/// A JSON request body, read whatever its `Content-Type` says; a body that is not JSON for
/// the route is a 400 with a JSON error.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Failure> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Failure(e.status(), e.body_text()))?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            Failure(
                StatusCode::BAD_REQUEST,
                format!("the request body is not what this route takes: {e}"),
            )
        })
    }
}

/// The largest error body of axum's own that is carried over into the JSON error.
const MAX_ERROR_TEXT: usize = 64 * 1024;

/// `router` with every failure answered in JSON ([`errors_as_json`] around all of it: around
/// its routes one by one, as `Router::layer` puts it, a 405 would be rewritten before axum
/// adds its `Allow` header, and could not say what is allowed).
pub fn with_json_errors(router: Router) -> Router {
    Router::new().fallback_service(router).layer(axum::middleware::from_fn(errors_as_json))
}

/// Rewrites any failure that is not JSON yet (axum's rejections answer in plain text, or
/// nothing) as `{"error": ...}`, keeping its status and headers such as `Allow`.
pub async fn errors_as_json(request: Request, next: Next) -> Response {
    // Both are reference-counted clones: nothing is copied for the requests that succeed.
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok());
            let path = uri.path();
            match allowed {
                Some(allowed) => format!("{method} is not allowed on {path} (allowed: {allowed})"),
                None => format!("{method} is not allowed on {path}"),
            }
        }
        _ if text.is_empty() => status.canonical_reason().unwrap_or("request failed").to_string(),
        _ => text,
    };
    let body = serde_json::to_vec(&ApiError::new(error)).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// An error response: a status and an [`ApiError`] body.
pub struct Failure(pub StatusCode, pub String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(ApiError::new(self.1))).into_response()
    }
}

/// The answer of a coordinator that is stopping: 503, with how it leaves.
pub fn leaving(how: Leaving) -> Response {
    let error = ApiError { error: how.says().to_string(), leaving: Some(how) };
    (StatusCode::SERVICE_UNAVAILABLE, Json(error)).into_response()
}

impl From<ClusterError> for Failure {
    fn from(e: ClusterError) -> Self {
        let status = match e {
            ClusterError::NotFound(_) => StatusCode::NOT_FOUND,
            ClusterError::Invalid(_) => StatusCode::BAD_REQUEST,
            ClusterError::Unavailable(_) => StatusCode::CONFLICT,
            ClusterError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ClusterError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
        };
        Failure(status, e.to_string())
    }
}

pub type Reply<T> = Result<Json<T>, Failure>;

/// An internal error, as a 500.
pub fn internal(e: impl std::fmt::Display) -> Failure {
    Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}
