//! The gRPC server every runmesh process runs: many tonic services on one listener, with
//! `grpc.health.v1` driven by dependency probes, reflection v1 and v1alpha, request ids,
//! transport limits from [`Settings`], and a graceful shutdown (NOT_SERVING, a short delay,
//! stop accepting, drain within `shutdown_grace`).
//!
//! ```ignore
//! let running = GrpcServer::builder(&settings)
//!     .layer(auth_layer)
//!     .add_service(UserServiceServer::new(user), vec![database_probe])
//!     .bind()
//!     .await?;
//! println!("gRPC on {}", running.local_addr());
//! running.serve(shutdown).await?;
//! ```

mod call;
mod readiness;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleError;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::HealthReporter;
use tower::util::{BoxCloneService, BoxCloneSyncService};
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};

use crate::config::Settings;
use crate::health::Probe;
pub use call::{REQUEST_ID_HEADER, TRACEPARENT_HEADER, request_id};
use readiness::{DrainingHealth, Readiness, ServiceProbes};

type HttpRequest = http::Request<Body>;
type HttpResponse = http::Response<Body>;

/// The application services as one HTTP service: what layers added with
/// [`GrpcServerBuilder::layer`] wrap. Health and reflection are routed before it, so they never
/// pass through those layers.
pub type GrpcRoutesService = BoxCloneSyncService<HttpRequest, HttpResponse, BoxError>;

type BoxedLayer = Box<dyn FnOnce(GrpcRoutesService) -> GrpcRoutesService + Send>;

/// How often each service's probes run, and how long one probe may take.
const DEFAULT_READINESS_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Entry point: `GrpcServer::builder(&settings)`.
#[derive(Debug)]
pub struct GrpcServer;

impl GrpcServer {
    /// Starts a server description with limits, keepalive, connection age, timeouts and
    /// shutdown timings taken from `settings`.
    pub fn builder(settings: &Settings) -> GrpcServerBuilder {
        GrpcServerBuilder {
            addr: settings.grpc_addr,
            limits: Limits::from(settings),
            routes: Routes::default(),
            services: Vec::new(),
            duplicate: None,
            layers: Vec::new(),
            readiness_interval: DEFAULT_READINESS_INTERVAL,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_message_bytes: usize,
    max_connection_age: Duration,
    keepalive_interval: Duration,
    keepalive_timeout: Duration,
    request_timeout: Duration,
    shutdown_delay: Duration,
    shutdown_grace: Duration,
}

impl From<&Settings> for Limits {
    fn from(settings: &Settings) -> Self {
        Self {
            max_message_bytes: settings.grpc_max_message_bytes,
            max_connection_age: settings.grpc_max_connection_age,
            keepalive_interval: settings.grpc_keepalive_interval,
            keepalive_timeout: settings.grpc_keepalive_timeout,
            request_timeout: settings.grpc_request_timeout,
            shutdown_delay: settings.shutdown_delay,
            shutdown_grace: settings.shutdown_grace,
        }
    }
}

/// Collects services, their probes and layers; [`bind`](Self::bind) opens the listener.
pub struct GrpcServerBuilder {
    addr: SocketAddr,
    limits: Limits,
    routes: Routes,
    services: Vec<ServiceProbes>,
    duplicate: Option<&'static str>,
    layers: Vec<BoxedLayer>,
    readiness_interval: Duration,
    probe_timeout: Duration,
}

impl GrpcServerBuilder {
    /// Adds a tonic service (a generated `XxxServer`) and the probes that decide whether it is
    /// SERVING. Apply [`max_message_bytes`](Self::max_message_bytes) to the generated server
    /// (`max_decoding_message_size` / `max_encoding_message_size`): tonic keeps those limits per
    /// service.
    pub fn add_service<S>(mut self, service: S, probes: Vec<Arc<dyn Probe>>) -> Self
    where
        S: Service<HttpRequest, Error = Infallible> + NamedService + Clone + Send + Sync + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        if self.services.iter().any(|known| known.name == S::NAME) {
            self.duplicate.get_or_insert(S::NAME);
            return self;
        }
        self.routes = self.routes.add_service(service);
        self.services.push(ServiceProbes {
            name: S::NAME,
            probes,
        });
        self
    }

    /// Wraps the application services in `layer` (e.g. the auth layer). The first layer added is
    /// the outermost. Request ids and tracing run outside all of them; health and reflection
    /// bypass them.
    pub fn layer<L, ResBody>(mut self, layer: L) -> Self
    where
        L: Layer<GrpcRoutesService> + Send + 'static,
        L::Service: Service<HttpRequest, Response = http::Response<ResBody>>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<HttpRequest>>::Future: Send + 'static,
        <L::Service as Service<HttpRequest>>::Error: Into<BoxError>,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        self.layers.push(Box::new(move |inner| {
            let service = layer
                .layer(inner)
                .map_response(|response| response.map(Body::new))
                .map_err(Into::<BoxError>::into);
            BoxCloneSyncService::new(service)
        }));
        self
    }

    /// How often dependency probes run (default 2 s).
    pub fn readiness_interval(mut self, interval: Duration) -> Self {
        self.readiness_interval = interval;
        self
    }

    /// How long one probe may take before it counts as failed (default 1 s).
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// The configured message size limit, for the generated servers passed to `add_service`.
    pub fn max_message_bytes(&self) -> usize {
        self.limits.max_message_bytes
    }

    /// Binds the listener (port 0 picks a free one). Every service, and the server as a whole
    /// (`""`), reports NOT_SERVING until its probes pass.
    pub async fn bind(self) -> Result<BoundGrpcServer, ServerError> {
        if let Some(name) = self.duplicate {
            return Err(ServerError::DuplicateService(name));
        }
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: self.addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: self.addr,
            source,
        })?;

        let reporter = HealthReporter::new();
        let names: Vec<&'static str> = self.services.iter().map(|s| s.name).collect();
        readiness::set_all_not_serving(&reporter, &names).await;

        let draining = CancellationToken::new();
        let infrastructure = infrastructure_routes(&reporter, &draining, &names, self.limits)?;
        let routes =
            ServiceExt::<HttpRequest>::map_err(self.routes.prepare(), |never| -> BoxError {
                match never {}
            });
        let application = self
            .layers
            .into_iter()
            .rev()
            .fold(BoxCloneSyncService::new(routes), |inner, layer| {
                layer(inner)
            });
        // A layer's error becomes the gRPC status it carries (UNKNOWN if it carries none).
        let application = HandleError::new(
            application
                .map_request(|request: http::Request<axum::body::Body>| request.map(Body::new)),
            |error: BoxError| async move { Status::from_error(error).into_http::<Body>() },
        );
        let router = infrastructure
            .into_axum_router()
            .fallback_service(application);
        let service = ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(call::MakeRequestUuidV7))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(call::trace_layer())
            .service(call::with_deadlines(
                Routes::from(router),
                self.limits.request_timeout,
            ))
            .map_response(|response| response.map(Body::new));

        Ok(BoundGrpcServer {
            listener,
            local_addr,
            reporter,
            readiness: Readiness {
                services: self.services,
                interval: self.readiness_interval,
                probe_timeout: self.probe_timeout,
            },
            service: BoxCloneService::new(service),
            draining,
            limits: self.limits,
        })
    }
}

/// Health (with per-service status) and reflection v1 + v1alpha, listing exactly the served
/// services.
fn infrastructure_routes(
    reporter: &HealthReporter,
    draining: &CancellationToken,
    services: &[&'static str],
    limits: Limits,
) -> Result<Routes, ServerError> {
    let health = HealthServer::new(DrainingHealth::new(reporter.clone(), draining.clone()))
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);

    let advertised = services.iter().copied().chain([
        <HealthServer<DrainingHealth> as NamedService>::NAME,
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]);
    let reflection = || {
        advertised.clone().fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(runmesh_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(
                    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
                ),
            |builder, name| builder.with_service_name(name),
        )
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|error| ServerError::Reflection(format!("{error:?}")))?
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|error| ServerError::Reflection(format!("{error:?}")))?
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);

    Ok(Routes::new(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha))
}

/// A server whose listener is open; [`serve`](Self::serve) runs it until shutdown.
pub struct BoundGrpcServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    reporter: HealthReporter,
    readiness: Readiness,
    service: BoxCloneService<HttpRequest, HttpResponse, Infallible>,
    draining: CancellationToken,
    limits: Limits,
}

impl BoundGrpcServer {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` is cancelled, then: every health status (and `""`) turns
    /// NOT_SERVING, the listener stays open for `shutdown_delay` so load balancers notice, then
    /// closes; in-flight calls get `shutdown_grace` to finish. Returns `Ok` once drained (or
    /// when the grace runs out, after logging how it ended).
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), ServerError> {
        let Self {
            listener,
            local_addr,
            reporter,
            readiness,
            service,
            draining,
            limits,
        } = self;
        let services: Vec<&str> = readiness.services.iter().map(|s| s.name).collect();

        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(limits.keepalive_interval))
            .http2_keepalive_timeout(Some(limits.keepalive_timeout))
            .max_connection_age(limits.max_connection_age)
            .max_connection_age_grace(limits.shutdown_grace)
            .serve_with_incoming_shutdown(service, incoming, draining.clone().cancelled_owned());
        let mut serving = tokio::spawn(server);

        let stop_readiness = CancellationToken::new();
        let readiness_task = tokio::spawn(readiness.run(reporter.clone(), stop_readiness.clone()));
        tracing::info!(addr = %local_addr, ?services, "gRPC server listening");

        let stopped_early = tokio::select! {
            result = &mut serving => Some(result),
            () = shutdown.cancelled() => None,
        };
        stop_readiness.cancel();
        if let Err(error) = readiness_task.await {
            tracing::error!(%error, "readiness loop failed");
        }
        if let Some(result) = stopped_early {
            return match result? {
                Ok(()) => Err(ServerError::StoppedUnexpectedly),
                Err(error) => Err(error.into()),
            };
        }

        readiness::set_all_not_serving(&reporter, &services).await;
        tracing::info!(
            delay = ?limits.shutdown_delay,
            grace = ?limits.shutdown_grace,
            "shutting down: health is NOT_SERVING; the listener closes after the delay"
        );
        tokio::select! {
            result = &mut serving => return Ok(result??),
            () = tokio::time::sleep(limits.shutdown_delay) => {}
        }

        draining.cancel();
        match tokio::time::timeout(limits.shutdown_grace, &mut serving).await {
            Ok(result) => {
                result??;
                tracing::info!("gRPC server drained and stopped");
            }
            Err(_) => {
                serving.abort();
                tracing::warn!(
                    grace = ?limits.shutdown_grace,
                    "calls still running when the shutdown grace ran out; stopping anyway"
                );
            }
        }
        Ok(())
    }
}

/// Why the gRPC server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listener could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Two services with the same gRPC name were added.
    #[error("service {0} was added twice")]
    DuplicateService(&'static str),
    /// The descriptor set could not feed reflection.
    #[error("reflection: {0}")]
    Reflection(String),
    /// The transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The server task panicked.
    #[error("gRPC server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The server stopped before shutdown was requested.
    #[error("gRPC server stopped before shutdown was requested")]
    StoppedUnexpectedly,
}
