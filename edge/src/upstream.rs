//! The gRPC services behind the edge: one lazily connected HTTP/2 channel per distinct address,
//! calls by descriptor with [`DynamicCodec`], and health checks for `/readyz`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use http::Uri;
use http::uri::PathAndQuery;
use prost_reflect::{DynamicMessage, MethodDescriptor};
use tonic::client::Grpc;
use tonic::codec::Streaming;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::catalog::Catalog;
use crate::codec::DynamicCodec;
use crate::config::{EdgeConfigError, UPSTREAMS_VAR, UpstreamConfig};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Channels to the services, by full service name.
#[derive(Debug, Clone)]
pub struct Upstreams {
    by_service: HashMap<String, Channel>,
}

impl Upstreams {
    /// Channels for every service of `catalog` that has an address. Every service named in the
    /// configuration must exist.
    pub fn new(config: &UpstreamConfig, catalog: &Catalog) -> Result<Self, EdgeConfigError> {
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
        let mut channels: BTreeMap<String, Channel> = BTreeMap::new();
        let mut by_service = HashMap::new();
        for name in &known {
            let Some(uri) = config.for_service(name) else {
                continue;
            };
            let channel = channels
                .entry(uri.to_string())
                .or_insert_with(|| connect_lazy(uri))
                .clone();
            by_service.insert(name.clone(), channel);
        }
        Ok(Self { by_service })
    }

    pub fn channel(&self, service: &str) -> Option<Channel> {
        self.by_service.get(service).cloned()
    }

    fn client(&self, method: &MethodDescriptor) -> Result<(Grpc<Channel>, PathAndQuery), Status> {
        let service = method.parent_service().full_name();
        let channel = self
            .channel(service)
            .ok_or_else(|| Status::unimplemented(format!("{service} is not served here")))?;
        let path = PathAndQuery::try_from(format!("/{service}/{}", method.name()))
            .map_err(|error| Status::internal(format!("invalid method path: {error}")))?;
        Ok((Grpc::new(channel), path))
    }

    /// Calls a unary method.
    pub async fn unary(
        &self,
        method: &MethodDescriptor,
        request: Request<DynamicMessage>,
    ) -> Result<Response<DynamicMessage>, Status> {
        let (mut grpc, path) = self.client(method)?;
        grpc.ready().await.map_err(unavailable)?;
        grpc.unary(request, path, DynamicCodec::new(method.output()))
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

fn connect_lazy(uri: &Uri) -> Channel {
    Endpoint::from(uri.clone())
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .connect_lazy()
}

fn unavailable(error: tonic::transport::Error) -> Status {
    Status::unavailable(format!("upstream unavailable: {error}"))
}
