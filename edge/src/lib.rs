//! The edge: the one public door. On one port it serves every public gRPC service as native gRPC
//! (HTTP/2, h2c or TLS with ALPN), gRPC-web and REST/JSON, all derived at runtime from the
//! descriptor set (`runmesh_proto::FILE_DESCRIPTOR_SET`), so a new annotated RPC needs no edge
//! code. Internal services are not reachable through it by any protocol.
//!
//! ```ignore
//! let edge = Edge::bind(EdgeConfig::from_env(&settings)?, shutdown.clone()).await?;
//! println!("HTTP on {}", edge.local_addr());
//! edge.serve().await?;
//! ```
//!
//! - REST: one route per `google.api.http` rule ([`catalog`], [`template`], [`transcode`]);
//!   server-streaming RPCs answer NDJSON, or server-sent events with `Accept: text/event-stream`.
//!   `google.api.HttpBody` bodies travel raw both ways (`raw.rs`): an upload streams into a
//!   client-streaming RPC in chunks, a download streams out with its content type, file name
//!   and length.
//! - Native gRPC proxied to the upstream as bytes (metadata, deadlines, trailers and error
//!   details untouched; bodies stream both ways, so uploads are never buffered whole), and
//!   server reflection describing the public services only (`reflection.rs`).
//! - gRPC-web (binary and text, HTTP/1.1 and HTTP/2) proxied to the upstream.
//! - Connect (unary JSON and binary, server streaming in envelopes) translated to gRPC calls
//!   (`connect.rs`).
//! - `/docs`: an interactive API reference over `/openapi.json`, its assets served by the edge.
//! - Errors: gRPC status → HTTP status and a `google.rpc.Status` JSON body ([`status`]).
//! - CORS allow-list, request ids, trace context, deadlines and the client address forwarded
//!   ([`forward`]), per-client rate limits, body limits, compression, access logs.
//! - `/healthz`, `/readyz` (every public service SERVING upstream), `/openapi.json`
//!   ([`openapi`]) and `/.well-known/jwks.json` (svc-user's keys).

pub mod catalog;
pub mod codec;
pub mod config;
mod connect;
mod docs;
pub mod forward;
mod grpc_web;
mod health;
pub mod openapi;
mod protect;
mod raw;
mod reflection;
mod rest;
pub mod status;
pub mod template;
mod tls;
pub mod transcode;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use prost_reflect::{DynamicMessage, SerializeOptions};
use runmesh_platform::cache::{self, CacheError, SharedCache};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_check_response::ServingStatus;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::compression::predicate::{NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, DefaultPredicate};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::catalog::{Catalog, CatalogError};
pub use crate::config::{CorsOrigins, EdgeConfig, EdgeConfigError, RateLimit, UpstreamConfig};
use crate::forward::ClientAddress;
use crate::status::StatusRenderer;
use crate::upstream::Upstreams;

/// The service whose `GetJwks` answers `/.well-known/jwks.json`.
pub const JWKS_SERVICE: &str = "runmesh.user.v1.UserInternalService";
const JWKS_METHOD: &str = "GetJwks";
/// How long one upstream health check may take for `/readyz`.
const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
const CORS_MAX_AGE: Duration = Duration::from_secs(600);
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Response headers browsers may read: gRPC-web's status, the request id, `Retry-After`.
const EXPOSED_HEADERS: &str =
    "grpc-status,grpc-message,grpc-status-details-bin,x-request-id,retry-after";

/// Why the edge could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error(transparent)]
    Config(#[from] EdgeConfigError),
    #[error("reading the contracts: {0}")]
    Catalog(#[from] CatalogError),
    #[error("rate-limit counters: {0}")]
    Cache(#[from] CacheError),
    #[error("binding the HTTP listener on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    #[error("TLS certificate or key ({cert}): {source}")]
    Tls {
        cert: String,
        source: std::io::Error,
    },
    #[error("reflection over the contracts: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Entry point: [`Edge::bind`].
#[derive(Debug)]
pub struct Edge;

impl Edge {
    /// Reads the contracts, checks the upstream configuration against them and binds the HTTP
    /// listener (port 0 picks a free one). Upstreams are connected lazily; a public service
    /// without an upstream address is not exposed (and logged).
    pub async fn bind(
        config: EdgeConfig,
        shutdown: CancellationToken,
    ) -> Result<BoundEdge, EdgeError> {
        let mut catalog = Catalog::new(&config.descriptor_set)?;
        let upstreams = Upstreams::new(&config, &catalog)?;
        for service in catalog.public_services() {
            if upstreams.channel(service.full_name()).is_none() {
                tracing::warn!(
                    service = service.full_name(),
                    "no upstream address: the service is not exposed (set {} or {})",
                    config::UPSTREAM_VAR,
                    config::UPSTREAMS_VAR
                );
            }
        }
        catalog.retain_services(|service| upstreams.channel(service).is_some());
        check_timeouts(&config, &catalog)?;
        let cache = cache::connect(config.redis_url.as_deref(), "runmesh:edge").await?;
        let openapi = Bytes::from(openapi::document(&catalog).to_string());
        let reflection = reflection::Reflection::new(&config.descriptor_set, &catalog)?;
        let tls = match &config.tls {
            Some(files) => Some(tls::load(files).await.map_err(|source| EdgeError::Tls {
                cert: files.cert.display().to_string(),
                source,
            })?),
            None => None,
        };
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| EdgeError::Bind {
                addr: config.http_addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| EdgeError::Bind {
            addr: config.http_addr,
            source,
        })?;
        let state = Arc::new(EdgeState {
            renderer: StatusRenderer::new(catalog.pool().clone()),
            catalog,
            upstreams,
            cache,
            openapi,
            reflection,
            draining: CancellationToken::new(),
            config,
        });
        Ok(BoundEdge {
            listener,
            local_addr,
            app: router(state.clone()),
            shutdown,
            state,
            tls,
        })
    }
}

/// A bound edge, ready to [`serve`](Self::serve).
pub struct BoundEdge {
    listener: TcpListener,
    local_addr: SocketAddr,
    app: Router,
    shutdown: CancellationToken,
    state: Arc<EdgeState>,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
}

impl BoundEdge {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until the shutdown token fires: `/readyz` fails at once, the listener closes after
    /// the shutdown delay, and in-flight requests get the shutdown grace to finish.
    pub async fn serve(self) -> Result<(), EdgeError> {
        let Self {
            listener,
            local_addr,
            app,
            shutdown,
            state,
            tls,
        } = self;
        let delay = state.config.shutdown_delay;
        let grace = state.config.shutdown_grace;
        let handle = axum_server::Handle::new();
        {
            let handle = handle.clone();
            let shutdown = shutdown.clone();
            let draining = state.draining.clone();
            tokio::spawn(async move {
                shutdown.cancelled().await;
                draining.cancel();
                tokio::time::sleep(delay).await;
                handle.graceful_shutdown(Some(grace));
            });
        }
        let routes = state.catalog.routes().len();
        let listener = listener.into_std().map_err(EdgeError::Serve)?;
        let make_service = app.into_make_service_with_connect_info::<SocketAddr>();
        match (tls, state.config.tls.clone()) {
            (Some(config), Some(files)) => {
                tokio::spawn(tls::reload_on_change(config.clone(), files, shutdown));
                tracing::info!(addr = %local_addr, routes, "edge serving gRPC (TLS, ALPN h2), gRPC-web and REST");
                axum_server::from_tcp_rustls(listener, config)
                    .map_err(EdgeError::Serve)?
                    .handle(handle)
                    .serve(make_service)
                    .await
                    .map_err(EdgeError::Serve)
            }
            _ => {
                tracing::info!(addr = %local_addr, routes, "edge serving gRPC (h2c), gRPC-web and REST");
                axum_server::from_tcp(listener)
                    .map_err(EdgeError::Serve)?
                    .handle(handle)
                    .serve(make_service)
                    .await
                    .map_err(EdgeError::Serve)
            }
        }
    }
}

/// Shared by every request.
pub(crate) struct EdgeState {
    config: EdgeConfig,
    catalog: Catalog,
    upstreams: Upstreams,
    renderer: StatusRenderer,
    cache: SharedCache,
    openapi: Bytes,
    reflection: reflection::Reflection,
    /// Cancelled when shutdown starts: `/readyz` fails from then on.
    draining: CancellationToken,
}

fn check_timeouts(config: &EdgeConfig, catalog: &Catalog) -> Result<(), EdgeConfigError> {
    for target in config.timeouts.keys() {
        let known = match target.split_once('/') {
            Some((service, method)) => catalog.method(service, method).is_some(),
            None => catalog.pool().get_service_by_name(target).is_some(),
        };
        if !known {
            return Err(EdgeConfigError::new(
                config::TIMEOUTS_VAR,
                format!("{target:?} names no service or method of the contracts"),
            ));
        }
    }
    Ok(())
}

fn router(state: Arc<EdgeState>) -> Router {
    let compress_when = DefaultPredicate::new()
        .and(NotForContentType::const_new("application/grpc-web"))
        .and(NotForContentType::const_new("application/x-ndjson"))
        .and(NotForContentType::const_new("application/connect+"))
        .and(NotRawBody);
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeRequestUuidV7))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            protect::client_address,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(access_span)
                .on_request(())
                .on_response(access_log)
                .on_failure(()),
        )
        // Preflight answers carry the exposed headers too, so a client checking the preflight
        // sees them (CorsLayer sets them on actual responses only, as the Fetch standard asks).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        ))
        .layer(cors_layer(&state.config.cors_origins))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            protect::rate_limit,
        ))
        .layer(CompressionLayer::new().compress_when(compress_when));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi_json))
        .route("/.well-known/jwks.json", get(jwks))
        .merge(docs::routes())
        .fallback(dispatch)
        .layer(layers)
        .with_state(state)
}

/// Raw `google.api.HttpBody` answers go as the upstream sent them, with their `Content-Length`.
#[derive(Debug, Clone, Copy)]
struct NotRawBody;

impl Predicate for NotRawBody {
    fn should_compress<B>(&self, response: &http::Response<B>) -> bool
    where
        B: http_body::Body,
    {
        response.extensions().get::<raw::RawBody>().is_none()
    }
}

/// By content type: native gRPC (`application/grpc`, `application/grpc+proto`) is proxied as
/// is, or answered here for reflection; gRPC-web is translated by tonic-web and proxied;
/// everything else is REST.
async fn dispatch(State(state): State<Arc<EdgeState>>, request: Request) -> Response {
    if protect::native_grpc(&request) {
        if let Some(reflection) = state.reflection.route(request.uri().path()) {
            return reflection::call(reflection, request).await;
        }
        if request.uri().path().starts_with("/grpc.health.v1.Health/") {
            let health = health::service(state.clone());
            return match health.oneshot(request.map(tonic::body::Body::new)).await {
                Ok(response) => response.map(Body::new),
                Err(never) => match never {},
            };
        }
        // No total body limit: a client stream may carry hundreds of MB and flows through
        // without being buffered; each message is bounded by the upstream's message limit.
        return grpc_web::proxy(state, request).await;
    }
    if connect::is_connect(&request) {
        return connect::handle(state, request).await;
    }
    if protect::grpc_web_content_type(&request).is_none() {
        return rest::handle(state, request).await;
    }
    let limit = state.config.max_body_bytes;
    let request = request.map(|body| http_body_util::Limited::new(body, limit));
    match grpc_web::service(state).oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}

fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let allow_origin = match origins {
        CorsOrigins::None => AllowOrigin::list([]),
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    let request_headers = [
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        HeaderName::from_static("x-grpc-web"),
        HeaderName::from_static("x-user-agent"),
        HeaderName::from_static("grpc-timeout"),
        connect::PROTOCOL_VERSION,
        connect::TIMEOUT_MS,
        X_REQUEST_ID,
        HeaderName::from_static("traceparent"),
        HeaderName::from_static("tracestate"),
    ];
    let response_headers: Vec<HeaderName> = EXPOSED_HEADERS
        .split(',')
        .map(HeaderName::from_static)
        .collect();
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(request_headers)
        .expose_headers(response_headers)
        .max_age(CORS_MAX_AGE)
}

/// Time-ordered request ids, like the gRPC servers'.
#[derive(Debug, Clone, Copy)]
struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

fn access_span(request: &http::Request<Body>) -> Span {
    let request_id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let client = request
        .extensions()
        .get::<ClientAddress>()
        .and_then(|client| client.ip)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    tracing::info_span!(
        "http",
        method = %request.method(),
        path = request.uri().path(),
        request_id,
        client,
    )
}

/// One line per request: status (and gRPC status when answered in the headers), latency.
fn access_log(response: &http::Response<Body>, latency: Duration, _span: &Span) {
    let grpc_status = response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info!(
        status = response.status().as_u16(),
        grpc_status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
}

/// The process is up.
async fn healthz() -> Response {
    json_response(StatusCode::OK, &serde_json::json!({"status": "SERVING"}))
}

/// Ready when every public service answers SERVING upstream, and not draining.
async fn readyz(State(state): State<Arc<EdgeState>>) -> Response {
    if state.draining.is_cancelled() {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "DRAINING"}),
        );
    }
    let services: Vec<String> = state
        .catalog
        .public_services()
        .map(|service| service.full_name().to_owned())
        .collect();
    let checks = services
        .iter()
        .map(|service| state.upstreams.health(service, READY_CHECK_TIMEOUT));
    let results = futures::future::join_all(checks).await;
    let mut ready = true;
    let mut report = serde_json::Map::new();
    for (service, result) in services.into_iter().zip(results) {
        let text = match result {
            Ok(ServingStatus::Serving) => "SERVING".to_owned(),
            Ok(other) => {
                ready = false;
                other.as_str_name().to_owned()
            }
            Err(error) => {
                ready = false;
                format!("UNREACHABLE: {error}")
            }
        };
        report.insert(service, serde_json::Value::String(text));
    }
    let (status, word) = if ready {
        (StatusCode::OK, "SERVING")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING")
    };
    json_response(
        status,
        &serde_json::json!({"status": word, "services": report}),
    )
}

async fn openapi_json(State(state): State<Arc<EdgeState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.openapi.clone(),
    )
        .into_response()
}

/// svc-user's public keys, called by name so the edge does not depend on svc-user's crate.
async fn jwks(State(state): State<Arc<EdgeState>>) -> Response {
    let Some(method) = state.catalog.method(JWKS_SERVICE, JWKS_METHOD) else {
        return state.renderer.response(&tonic::Status::not_found(format!(
            "{JWKS_SERVICE}/{JWKS_METHOD} is not in the contracts"
        )));
    };
    let mut request = tonic::Request::new(DynamicMessage::new(method.input()));
    request.set_timeout(state.config.timeout_for(JWKS_SERVICE, JWKS_METHOD));
    let response = match state.upstreams.unary(&method, request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return state.renderer.response(&status),
    };
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    let options = SerializeOptions::new().use_proto_field_name(true);
    if let Err(error) = response.serialize_with_options(&mut serializer, &options) {
        return state.renderer.api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            runmesh_platform::error::ApiError::internal(error),
        );
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            ),
        ],
        out,
    )
        .into_response()
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}
