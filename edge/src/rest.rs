//! REST/JSON requests: find the route, build the request message, call the RPC, answer JSON (or
//! NDJSON / server-sent events for server-streaming RPCs). Raw `google.api.HttpBody` bodies,
//! uploads into client streams and downloads, are [`crate::raw`]'s.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autometrics::autometrics;
use axum::body::Body;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use prost_reflect::DynamicMessage;
use runmesh_platform::error::{ApiError, ErrorCode};
use tonic::Code;

use crate::EdgeState;
use crate::catalog::{BodyRule, Route};
use crate::forward::{self, ClientAddress};
use crate::{raw, transcode};

const NDJSON: &str = "application/x-ndjson";

/// Answers a REST request.
pub async fn handle(state: Arc<EdgeState>, request: http::Request<Body>) -> Response {
    match rest_call(state, request).await {
        Ok(response) | Err(response) => response,
    }
}

/// One transcoded call; `Err` holds the error answer. Metrics count 5xx answers as errors.
#[autometrics(error_if = is_server_error)]
async fn rest_call(
    state: Arc<EdgeState>,
    request: http::Request<Body>,
) -> Result<Response, Response> {
    let (parts, body) = request.into_parts();
    let (route, captures) = find_route(&state, &parts.method, parts.uri.path())
        .map_err(|miss| miss_response(&state, miss, &parts.method, parts.uri.path()))?;
    let client = parts
        .extensions
        .get::<ClientAddress>()
        .cloned()
        .unwrap_or_else(|| ClientAddress::resolve(None, &parts.headers, 0));

    let (json, raw_body) = match &route.body {
        Some(BodyRule::Raw(_)) => (None, Some(body)),
        Some(_) => (read_json_body(&state, body).await?, None),
        None => (None, None),
    };
    let mut message = transcode::request_message(route, captures, parts.uri.query(), json)
        .map_err(|error| state.renderer.api_error(StatusCode::BAD_REQUEST, error))?;

    let service = route.rpc.parent_service().full_name();
    let deadline = forward::deadline(
        &parts.headers,
        state.config.timeout_for(service, route.rpc.name()),
    );
    let metadata = forward::rest_metadata(&parts.headers, &client);

    if route.rpc.is_client_streaming() {
        // The catalog routes a client stream only when its body is a raw upload.
        let (Some(rule), Some(body)) = (&route.body, raw_body) else {
            return Err(internal(
                &state,
                "a client-streaming route without a raw body",
            ));
        };
        let response = raw::upload(
            &state,
            route,
            rule,
            message,
            &parts.headers,
            body,
            metadata,
            deadline,
        )
        .await?;
        return answer(&state, route, &response);
    }
    if let (Some(rule), Some(body)) = (&route.body, raw_body) {
        let data = read_body(&state, body).await?;
        transcode::set_raw_body(&mut message, rule, raw::content_type(&parts.headers), data)
            .map_err(|error| {
                state
                    .renderer
                    .api_error(StatusCode::INTERNAL_SERVER_ERROR, error)
            })?;
    }

    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = metadata;
    request.set_timeout(deadline);
    let started = Instant::now();

    if route.rpc.is_server_streaming() {
        let wants_sse = parts
            .headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.contains("text/event-stream"));
        let call = state.upstreams.server_streaming(&route.rpc, request);
        let stream = within(deadline, started, call)
            .await
            .map_err(|status| state.renderer.response(&status))?
            .into_inner();
        if let Some(raw) = &route.raw_response {
            return raw::download(state.clone(), raw.clone(), stream, deadline, started).await;
        }
        return Ok(stream_response(state.clone(), route, stream, wants_sse));
    }

    let response = within(
        deadline,
        started,
        state.upstreams.unary(&route.rpc, request),
    )
    .await
    .map_err(|status| state.renderer.response(&status))?;
    answer(&state, route, response.get_ref())
}

/// A unary answer: JSON, or the raw bytes of an `HttpBody` answer. `Err` holds the error answer,
/// as in [`rest_call`].
#[allow(clippy::result_large_err)]
fn answer(
    state: &EdgeState,
    route: &Route,
    message: &DynamicMessage,
) -> Result<Response, Response> {
    if let Some(raw) = &route.raw_response {
        return Ok(raw::unary_response(message, raw));
    }
    let json =
        transcode::response_json(message, route.response_body.as_ref()).map_err(|error| {
            state
                .renderer
                .api_error(StatusCode::INTERNAL_SERVER_ERROR, error)
        })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response())
}

fn internal(state: &EdgeState, what: &str) -> Response {
    state.renderer.api_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        ApiError::internal(what.to_owned()),
    )
}

fn is_server_error(result: &Result<Response, Response>) -> bool {
    matches!(result, Err(response) if response.status().is_server_error())
}

/// Runs an upstream call under the deadline. tonic's client answers CANCELLED when the deadline
/// it sent passes; to the client that is DEADLINE_EXCEEDED.
pub(crate) async fn within<T>(
    deadline: Duration,
    started: Instant,
    call: impl Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    let expired = || tonic::Status::deadline_exceeded(format!("deadline of {deadline:?} exceeded"));
    match tokio::time::timeout(deadline, call).await {
        Ok(Err(status)) if status.code() == Code::Cancelled && started.elapsed() >= deadline => {
            Err(expired())
        }
        Ok(result) => result,
        Err(_) => Err(expired()),
    }
}

/// Why no route answers a request.
enum RouteMiss {
    BadPath(String),
    NotFound,
    /// The path exists for these other methods.
    MethodNotAllowed(String),
}

/// The most specific route for `method` and `path`.
fn find_route<'s>(
    state: &'s EdgeState,
    method: &Method,
    path: &str,
) -> Result<(&'s Route, Vec<String>), RouteMiss> {
    let mut best: Option<(&Route, Vec<String>)> = None;
    let mut allowed: Vec<&Method> = Vec::new();
    for route in state.catalog.routes() {
        let captures = match route.template.matches(path) {
            Ok(Some(captures)) => captures,
            Ok(None) => continue,
            Err(bad) => return Err(RouteMiss::BadPath(bad.to_string())),
        };
        if route.http_method != *method {
            allowed.push(&route.http_method);
            continue;
        }
        let better = best.as_ref().is_none_or(|(current, _)| {
            route.template.specificity() > current.template.specificity()
        });
        if better {
            best = Some((
                route,
                captures.into_iter().map(|(_, value)| value).collect(),
            ));
        }
    }
    if let Some(found) = best {
        return Ok(found);
    }
    if allowed.is_empty() {
        return Err(RouteMiss::NotFound);
    }
    allowed.sort_by_key(|method| method.as_str());
    allowed.dedup();
    let allow = allowed
        .iter()
        .map(|method| method.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Err(RouteMiss::MethodNotAllowed(allow))
}

/// 400 for an undecodable path, 404 for an unknown one, 405 (with `Allow`) for a known path
/// with another method.
fn miss_response(state: &EdgeState, miss: RouteMiss, method: &Method, path: &str) -> Response {
    match miss {
        RouteMiss::BadPath(description) => state.renderer.api_error(
            StatusCode::BAD_REQUEST,
            ApiError::invalid_argument("path", description),
        ),
        RouteMiss::NotFound => state.renderer.api_error(
            StatusCode::NOT_FOUND,
            ApiError::not_found("ROUTE_NOT_FOUND", format!("no route for {method} {path}")),
        ),
        RouteMiss::MethodNotAllowed(allow) => {
            let mut response = state.renderer.api_error(
                StatusCode::METHOD_NOT_ALLOWED,
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    "METHOD_NOT_ALLOWED",
                    format!("{method} is not allowed on {path} (allowed: {allow})"),
                ),
            );
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
    }
}

/// The whole body, within the size limit.
async fn read_body(state: &EdgeState, body: Body) -> Result<Bytes, Response> {
    let limit = state.config.max_body_bytes;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(state.renderer.api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                ApiError::resource_exhausted(
                    "BODY_TOO_LARGE",
                    format!("the request body exceeds {limit} bytes"),
                ),
            ))
        }
        Err(error) => Err(state.renderer.api_error(
            StatusCode::BAD_REQUEST,
            ApiError::invalid_argument("body", format!("could not be read: {error}")),
        )),
    }
}

/// The body as JSON, within the size limit; an empty body is no body.
async fn read_json_body(
    state: &EdgeState,
    body: Body,
) -> Result<Option<serde_json::Value>, Response> {
    let bytes = read_body(state, body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|error| {
        state.renderer.api_error(
            StatusCode::BAD_REQUEST,
            ApiError::invalid_argument("body", format!("is not valid JSON: {error}")),
        )
    })
}

/// A server stream as NDJSON (`{"result": …}` per message, `{"error": status}` if it fails) or
/// as server-sent events (`data:` per message, `event: error` if it fails).
fn stream_response(
    state: Arc<EdgeState>,
    route: &Route,
    stream: tonic::Streaming<DynamicMessage>,
    sse: bool,
) -> Response {
    let response_body = route.response_body.clone();
    let items = stream.map(move |item| match item {
        Ok(message) => match transcode::response_json(&message, response_body.as_ref()) {
            Ok(json) => Ok(Bytes::from(json)),
            Err(error) => Err(tonic::Status::from(error)),
        },
        Err(status) => Err(status),
    });
    if sse {
        let renderer = state.renderer.clone();
        let events = items.map(move |item| {
            Ok::<_, Infallible>(match item {
                Ok(json) => Event::default().data(String::from_utf8_lossy(&json)),
                Err(status) => Event::default()
                    .event("error")
                    .data(String::from_utf8_lossy(&renderer.json(&status))),
            })
        });
        return Sse::new(events).into_response();
    }
    let renderer = state.renderer.clone();
    let lines = items.map(move |item| {
        let (key, json) = match item {
            Ok(json) => ("result", json),
            Err(status) => ("error", renderer.json(&status)),
        };
        let mut line = Vec::with_capacity(json.len() + 12);
        line.extend_from_slice(b"{\"");
        line.extend_from_slice(key.as_bytes());
        line.extend_from_slice(b"\":");
        line.extend_from_slice(&json);
        line.extend_from_slice(b"}\n");
        Ok::<_, Infallible>(Bytes::from(line))
    });
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON))],
        Body::from_stream(lines),
    )
        .into_response()
}
