//! gRPC proxying: native gRPC calls are proxied as bytes to the upstream of their service; for
//! gRPC-web, tonic-web turns each call (binary or text, HTTP/1.1 or HTTP/2) into plain gRPC
//! first and turns the answer back. Only methods of public services are reachable.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use autometrics::autometrics;
use futures::future::BoxFuture;
use http::Version;
use http_body_util::BodyExt;
use tonic::body::Body;
use tonic::{Code, Status};
use tonic_web::{GrpcWebLayer, GrpcWebService};
use tower::{Layer, Service, ServiceExt};

use crate::EdgeState;
use crate::forward::{self, ClientAddress};

/// The gRPC-web endpoint: every `application/grpc-web*` request goes here.
pub fn service(state: Arc<EdgeState>) -> GrpcWebService<GrpcProxy> {
    GrpcWebLayer::new().layer(GrpcProxy { state })
}

/// Proxies one native gRPC call (already HTTP/2, already gRPC framing) to its upstream.
pub async fn proxy(
    state: Arc<EdgeState>,
    request: http::Request<axum::body::Body>,
) -> axum::response::Response {
    let request = request.map(Body::new);
    match grpc_call(state, request).await {
        Ok(response) | Err(response) => response.map(axum::body::Body::new),
    }
}

/// Forwards gRPC calls of public services to their upstream.
#[derive(Clone)]
pub struct GrpcProxy {
    state: Arc<EdgeState>,
}

impl Service<http::Request<Body>> for GrpcProxy {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            Ok(match grpc_call(state, request).await {
                Ok(response) | Err(response) => response,
            })
        })
    }
}

/// One proxied call; `Err` holds the edge's own error answer. Metrics count those as errors,
/// except calls to methods that are not public (the caller's mistake).
#[autometrics(error_if = is_edge_failure)]
async fn grpc_call(state: Arc<EdgeState>, mut request: http::Request<Body>) -> ProxyResult {
    let path = request.uri().path().to_owned();
    let Some(method) = state.catalog.public_method(&path) else {
        return Err(Status::unimplemented(format!("{path} is not a public method")).into_http());
    };
    let service = method.parent_service().full_name();
    let Some(channel) = state.upstreams.channel(service) else {
        return Err(Status::unavailable(format!("no upstream for {service}")).into_http());
    };
    let client = request
        .extensions()
        .get::<ClientAddress>()
        .cloned()
        .unwrap_or_else(|| ClientAddress::resolve(None, request.headers(), 0));
    let deadline = forward::deadline(
        request.headers(),
        state.config.timeout_for(service, method.name()),
    );
    forward::proxy_headers(request.headers_mut(), &client, deadline);
    *request.version_mut() = Version::HTTP_2;
    // tonic-web passes the text body's size on as the decoded size; with that hint hyper would
    // announce a wrong content-length upstream. A pass-through frame map drops the hint.
    let request = request.map(|body| Body::new(body.map_frame(std::convert::identity)));

    let started = Instant::now();
    let expired = || Status::deadline_exceeded(format!("deadline of {deadline:?} exceeded"));
    // Bounds the wait for the response headers; a stream's messages flow on after that, and the
    // upstream enforces the deadline it was sent.
    match tokio::time::timeout(deadline, channel.oneshot(request)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) => {
            let status = Status::from_error(error.into());
            if status.code() == Code::Cancelled && started.elapsed() >= deadline {
                Err(expired().into_http())
            } else {
                Err(
                    Status::unavailable(format!("upstream unavailable: {}", status.message()))
                        .into_http(),
                )
            }
        }
        Err(_) => Err(expired().into_http()),
    }
}

type ProxyResult = Result<http::Response<Body>, http::Response<Body>>;

fn is_edge_failure(result: &ProxyResult) -> bool {
    matches!(result, Err(response) if response.headers().get("grpc-status").is_none_or(|code| code != "12"))
}
