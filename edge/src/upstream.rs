//! The gRPC services behind the edge: one [`PeerChannel`] per distinct address (every address of
//! the name, balanced and re-resolved: a headless Service's pods), calls by descriptor with
//! [`DynamicCodec`], and health checks for `/readyz`.
//!
//! Calls the edge proxies for clients go over the balanced channel as they are: the client's
//! deadline, no retries (the client decides, from the status and its `RetryInfo`). The edge's
//! own calls to internal RPCs (svc-user's `GetJwks` for `/.well-known/jwks.json`) carry a
//! service token naming the edge and are retried on `UNAVAILABLE` under the retry budget.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use http::uri::PathAndQuery;
use prost_reflect::{DynamicMessage, MethodDescriptor};
use runmesh_platform::auth::{ServiceTokenIssuer, is_internal_service, service_audience};
use runmesh_platform::peer::{PeerChannel, PeerOptions};
use tonic::client::Grpc;
use tonic::codec::Streaming;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::catalog::Catalog;
use crate::codec::{DynamicCodec, FallibleCodec};
use crate::config::{EdgeConfig, EdgeConfigError, UPSTREAM_VAR, UPSTREAMS_VAR};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The edge's name in the service tokens of its own calls.
const EDGE_SERVICE: &str = "edge";

/// Channels to the services, by full service name.
#[derive(Debug, Clone)]
pub struct Upstreams {
    by_service: HashMap<String, PeerChannel>,
    /// Signs the service tokens of the edge's own calls to internal RPCs.
    identity: ServiceTokenIssuer,
    timeouts: BTreeMap<String, Duration>,
    request_timeout: Duration,
}

impl Upstreams {
    /// Channels for every service of `catalog` that has an address. Every service named in the
    /// configuration must exist. Needs a Tokio runtime (each channel resolves its name in a task).
    pub fn new(edge: &EdgeConfig, catalog: &Catalog) -> Result<Self, EdgeConfigError> {
        let config = &edge.upstreams;
        let known: Vec<String> = catalog
            .pool()
            .services()
            .map(|service| service.full_name().to_owned())
            .collect();
        for service in config.services.keys() {
            if !known.contains(service) {
                return Err(EdgeConfigError::new(
                    UPSTREAMS_VAR,
                    format!("unknown service {service:?} (known: {})", known.join(", ")),
                ));
            }
        }
        let mut channels: BTreeMap<String, PeerChannel> = BTreeMap::new();
        let mut by_service = HashMap::new();
        for name in &known {
            let Some(uri) = config.for_service(name) else {
                continue;
            };
            let key = uri.to_string();
            let channel = match channels.get(&key) {
                Some(channel) => channel.clone(),
                None => {
                    let channel =
                        PeerChannel::connect(&key, peer_options(edge)).map_err(|error| {
                            let variable = if config.services.contains_key(name) {
                                UPSTREAMS_VAR
                            } else {
                                UPSTREAM_VAR
                            };
                            EdgeConfigError::new(variable, error.to_string())
                        })?;
                    channels.insert(key, channel.clone());
                    channel
                }
            };
            by_service.insert(name.clone(), channel);
        }
        Ok(Self {
            by_service,
            identity: ServiceTokenIssuer::new(EDGE_SERVICE, edge.mesh_key.clone()),
            timeouts: edge.timeouts.clone(),
            request_timeout: edge.request_timeout,
        })
    }

    /// The balanced channel to `service`'s upstream.
    pub fn channel(&self, service: &str) -> Option<Channel> {
        self.by_service.get(service).map(PeerChannel::channel)
    }

    fn peer(&self, service: &str) -> Result<&PeerChannel, Status> {
        self.by_service
            .get(service)
            .ok_or_else(|| Status::unimplemented(format!("{service} is not served here")))
    }

    fn client(&self, method: &MethodDescriptor) -> Result<(Grpc<Channel>, PathAndQuery), Status> {
        let service = method.parent_service().full_name();
        let channel = self.peer(service)?.channel();
        Ok((Grpc::new(channel), method_path(method)?))
    }

    /// Calls a unary method. A method of an internal service is the edge's own call (clients
    /// never reach one: the catalog routes public services only): it goes with a service token
    /// of the edge's, and is retried on `UNAVAILABLE`.
    pub async fn unary(
        &self,
        method: &MethodDescriptor,
        request: Request<DynamicMessage>,
    ) -> Result<Response<DynamicMessage>, Status> {
        let service = method.parent_service().full_name();
        if is_internal_service(service) {
            return self.internal_unary(method, request.into_inner()).await;
        }
        let (mut grpc, path) = self.client(method)?;
        grpc.ready().await.map_err(unavailable)?;
        grpc.unary(request, path, DynamicCodec::new(method.output()))
            .await
    }

    async fn internal_unary(
        &self,
        method: &MethodDescriptor,
        message: DynamicMessage,
    ) -> Result<Response<DynamicMessage>, Status> {
        let service = method.parent_service().full_name();
        let peer = self.peer(service)?;
        let path = method_path(method)?;
        let credentials = self.identity.credentials(service_audience(service));
        let timeout = crate::config::timeout_for(
            &self.timeouts,
            self.request_timeout,
            service,
            method.name(),
        );
        peer.unary_within(timeout, message, |channel, mut request| {
            let path = path.clone();
            let codec = DynamicCodec::new(method.output());
            let token = credentials.attach(request.metadata_mut());
            async move {
                token?;
                let mut grpc = Grpc::new(channel);
                grpc.ready().await.map_err(unavailable)?;
                grpc.unary(request, path, codec).await
            }
        })
        .await
    }

    /// Calls a server-streaming method.
    pub async fn server_streaming(
        &self,
        method: &MethodDescriptor,
        request: Request<DynamicMessage>,
    ) -> Result<Response<Streaming<DynamicMessage>>, Status> {
        let (mut grpc, path) = self.client(method)?;
        grpc.ready().await.map_err(unavailable)?;
        grpc.server_streaming(request, path, DynamicCodec::new(method.output()))
            .await
    }

    /// Calls a client-streaming method with a request stream that may fail: an `Err` item resets
    /// the upstream stream.
    pub async fn client_streaming<S>(
        &self,
        method: &MethodDescriptor,
        request: Request<S>,
    ) -> Result<Response<DynamicMessage>, Status>
    where
        S: futures::Stream<Item = Result<DynamicMessage, Status>> + Send + 'static,
    {
        let (mut grpc, path) = self.client(method)?;
        grpc.ready().await.map_err(unavailable)?;
        grpc.client_streaming(request, path, FallibleCodec::new(method.output()))
            .await
    }

    /// The `grpc.health.v1` status of `service` at its upstream, or why it could not be asked.
    pub async fn health(&self, service: &str, timeout: Duration) -> Result<ServingStatus, String> {
        let channel = self
            .channel(service)
            .ok_or_else(|| "no upstream configured".to_owned())?;
        let mut request = Request::new(HealthCheckRequest {
            service: service.to_owned(),
        });
        request.set_timeout(timeout);
        let mut client = HealthClient::new(channel);
        match tokio::time::timeout(timeout, client.check(request)).await {
            Ok(Ok(response)) => Ok(ServingStatus::try_from(response.into_inner().status)
                .unwrap_or(ServingStatus::Unknown)),
            Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}

/// Every address of the upstream's name, balanced; the deadline of the edge's own calls.
fn peer_options(edge: &EdgeConfig) -> PeerOptions {
    let mut options = PeerOptions::default().with_timeout(edge.request_timeout);
    options.connect_timeout = CONNECT_TIMEOUT;
    options.keepalive_interval = KEEPALIVE_INTERVAL;
    options.keepalive_timeout = KEEPALIVE_TIMEOUT;
    options
}

fn method_path(method: &MethodDescriptor) -> Result<PathAndQuery, Status> {
    let service = method.parent_service().full_name();
    PathAndQuery::try_from(format!("/{service}/{}", method.name()))
        .map_err(|error| Status::internal(format!("invalid method path: {error}")))
}

fn unavailable(error: tonic::transport::Error) -> Status {
    Status::unavailable(format!("upstream unavailable: {error}"))
}
