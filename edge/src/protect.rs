//! Per-client protection: the client's address (for limits, logs and upstream) and a fixed-window
//! rate limit per address, counted in the platform cache (Redis across replicas, or memory).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use runmesh_platform::error::ApiError;

use crate::EdgeState;
use crate::forward::ClientAddress;
use crate::status::to_status;

/// Paths that probes call; never rate limited.
const PROBE_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// Resolves the [`ClientAddress`] once and stores it in the request extensions.
pub async fn client_address(
    State(state): State<Arc<EdgeState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = ClientAddress::from_request(&request, state.config.trusted_proxies);
    request.extensions_mut().insert(client);
    next.run(request).await
}

/// Refuses a client over its budget with 429 (REST and Connect, each with its error body) or
/// RESOURCE_EXHAUSTED with `RetryInfo` (native gRPC and gRPC-web), the HTTP answers with
/// `Retry-After`. When the counter store fails the
/// request goes through: a cache outage must not take the API down.
pub async fn rate_limit(
    State(state): State<Arc<EdgeState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(limit) = state.config.rate_limit else {
        return next.run(request).await;
    };
    if PROBE_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Some(ip) = request
        .extensions()
        .get::<ClientAddress>()
        .and_then(|client| client.ip)
    else {
        return next.run(request).await;
    };
    let decision = match state
        .cache
        .rate_limit(&format!("rate:{ip}"), limit.requests, limit.window)
        .await
    {
        Ok(decision) => decision,
        Err(error) => {
            tracing::warn!(%error, "rate limit counters unavailable; letting the request through");
            return next.run(request).await;
        }
    };
    if decision.allowed {
        return next.run(request).await;
    }
    let retry_after = decision.retry_after.max(Duration::from_secs(1));
    let error = ApiError::resource_exhausted(
        "RATE_LIMITED",
        format!(
            "too many requests from {ip}: at most {} per {}",
            limit.requests,
            humantime::format_duration(limit.window)
        ),
    )
    .with_retry_after(retry_after);
    if crate::connect::is_connect(&request) {
        return crate::connect::error_response(state.catalog.pool(), &to_status(error), None);
    }
    if native_grpc(&request) {
        // A trailers-only gRPC answer: the status and its details where gRPC clients read them.
        return to_status(error).into_http::<Body>().into_response();
    }
    if let Some(content_type) = grpc_web_content_type(&request) {
        let mut response = to_status(error).into_http::<Body>().into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return response;
    }
    state
        .renderer
        .api_error(StatusCode::TOO_MANY_REQUESTS, error)
}

/// The request's content type when it is a gRPC-web call (answered in kind).
pub fn grpc_web_content_type<B>(request: &http::Request<B>) -> Option<HeaderValue> {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .filter(|value| value.as_bytes().starts_with(b"application/grpc-web"))
        .cloned()
}

/// A native gRPC call: `application/grpc` or `application/grpc+…` (not gRPC-web) over HTTP/2.
pub fn native_grpc<B>(request: &http::Request<B>) -> bool {
    request.version() == http::Version::HTTP_2
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| {
                let value = value.as_bytes();
                value == b"application/grpc"
                    || value.starts_with(b"application/grpc+")
                    || value.starts_with(b"application/grpc;")
            })
}
