//! What wraps every call: request ids, the tracing span, and deadlines.

use std::convert::Infallible;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use tonic::Status;
use tonic::body::Body;
use tower::{Service, ServiceExt};
use tower_http::classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{MakeRequestId, RequestId};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::{Level, Span};

/// Metadata key carrying the request id, taken from the call or generated (UUIDv7), and
/// returned in the response metadata.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// W3C trace context header, recorded in the call's span.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The request id of a call (always present on calls served by [`super::GrpcServer`]).
pub fn request_id<T>(request: &tonic::Request<T>) -> Option<&str> {
    request
        .metadata()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
}

/// Time-ordered ids, so they sort like the logs they appear in.
#[derive(Debug, Clone, Copy)]
pub(super) struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

fn call_span(request: &http::Request<Body>) -> Span {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let span = tracing::info_span!(
        "grpc",
        rpc = request.uri().path(),
        request_id = header(REQUEST_ID_HEADER).unwrap_or_default(),
        traceparent = tracing::field::Empty,
    );
    if let Some(traceparent) = header(TRACEPARENT_HEADER) {
        span.record("traceparent", traceparent);
    }
    span
}

/// Codes that say the caller got something wrong: logged at DEBUG with every response, while
/// server-side failures (INTERNAL, UNAVAILABLE, UNKNOWN, …) are logged at WARN.
const CALLER_CODES: [GrpcCode; 11] = [
    GrpcCode::Cancelled,
    GrpcCode::InvalidArgument,
    GrpcCode::DeadlineExceeded,
    GrpcCode::NotFound,
    GrpcCode::AlreadyExists,
    GrpcCode::PermissionDenied,
    GrpcCode::ResourceExhausted,
    GrpcCode::FailedPrecondition,
    GrpcCode::Aborted,
    GrpcCode::OutOfRange,
    GrpcCode::Unauthenticated,
];

type MakeCallSpan = fn(&http::Request<Body>) -> Span;

pub(super) type CallTraceLayer = TraceLayer<SharedClassifier<GrpcErrorsAsFailures>, MakeCallSpan>;

pub(super) fn trace_layer() -> CallTraceLayer {
    let classifier = CALLER_CODES.into_iter().fold(
        GrpcErrorsAsFailures::new(),
        GrpcErrorsAsFailures::with_success,
    );
    TraceLayer::new(SharedClassifier::new(classifier))
        .make_span_with(call_span as MakeCallSpan)
        .on_response(DefaultOnResponse::new().level(Level::DEBUG))
        .on_failure(DefaultOnFailure::new().level(Level::WARN))
}

/// Runs each call under `min(grpc-timeout, max)` and answers DEADLINE_EXCEEDED when it runs
/// out, dropping the handler's future. (tonic's `Server::timeout` answers CANCELLED instead.)
/// Only the wait for the response headers is bounded, so streams may outlive it.
pub(super) fn with_deadlines<S>(
    inner: S,
    max: Duration,
) -> impl Service<
    http::Request<Body>,
    Response = http::Response<Body>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ 'static
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    tower::service_fn(move |request: http::Request<Body>| {
        let deadline = grpc_timeout(request.headers()).map_or(max, |asked| asked.min(max));
        let call = inner.clone().oneshot(request);
        async move {
            match tokio::time::timeout(deadline, call).await {
                Ok(response) => response,
                Err(_) => Ok(Status::deadline_exceeded(format!(
                    "deadline of {deadline:?} exceeded"
                ))
                .into_http()),
            }
        }
    })
}

/// The `grpc-timeout` header: 1 to 8 digits and a unit (H, M, S, m, u, n). Malformed values
/// are ignored, as other gRPC servers do.
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", HeaderValue::from_str(value).ok()?);
        grpc_timeout(&headers)
    }

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("4S"), Some(Duration::from_secs(4)));
        assert_eq!(parse("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse("250u"), Some(Duration::from_micros(250)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
    }

    #[test]
    fn ignores_malformed_values() {
        for value in ["", "m", "100", "100x", "123456789S", "-1S", "1.5S", "é"] {
            assert_eq!(parse(value), None, "{value:?}");
        }
    }
}
