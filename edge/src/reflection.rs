//! gRPC server reflection at the edge (v1 and v1alpha), for grpcurl, Postman and `buf curl`
//! pointed at the one public door. It describes the public services (and the edge's health
//! service) only: internal services are
//! removed from the file descriptors before they are registered, so neither listing nor symbol
//! lookup reveals that they exist.

use std::convert::Infallible;

use http::Request;
use prost::Message;
use prost_types::FileDescriptorSet;
use tonic::body::Body;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

use crate::catalog::Catalog;

/// The edge answers `grpc.health.v1.Health` itself ([`crate::health`]).
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

type GrpcService = BoxCloneSyncService<Request<Body>, http::Response<Body>, Infallible>;

/// The reflection services, by gRPC path prefix.
#[derive(Clone)]
pub struct Reflection {
    v1: GrpcService,
    v1alpha: GrpcService,
}

impl Reflection {
    /// Reflection over `descriptor_set` limited to the catalog's public services.
    pub fn new(
        descriptor_set: &[u8],
        catalog: &Catalog,
    ) -> Result<Self, tonic_reflection::server::Error> {
        let public: Vec<String> = catalog
            .public_services()
            .map(|service| service.full_name().to_owned())
            .collect();
        let mut set = FileDescriptorSet::decode(descriptor_set)?;
        for file in &mut set.file {
            let package = file.package().to_owned();
            file.service.retain(|service| {
                let full = if package.is_empty() {
                    service.name().to_owned()
                } else {
                    format!("{package}.{}", service.name())
                };
                public.contains(&full)
            });
        }
        let health = FileDescriptorSet::decode(tonic_health::pb::FILE_DESCRIPTOR_SET)?;
        let configure = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_file_descriptor_set(set.clone())
                .register_file_descriptor_set(health.clone())
                .with_service_name(HEALTH_SERVICE)
                .include_reflection_service(true);
            for service in &public {
                builder = builder.with_service_name(service.clone());
            }
            builder
        };
        Ok(Self {
            v1: BoxCloneSyncService::new(configure().build_v1()?),
            v1alpha: BoxCloneSyncService::new(configure().build_v1alpha()?),
        })
    }

    /// The service answering `path`, when it is a reflection call.
    pub fn route(&self, path: &str) -> Option<GrpcService> {
        let service = path.strip_prefix('/')?.split('/').next()?;
        if service == "grpc.reflection.v1.ServerReflection" {
            Some(self.v1.clone())
        } else if service == "grpc.reflection.v1alpha.ServerReflection" {
            Some(self.v1alpha.clone())
        } else {
            None
        }
    }
}

/// Answers a reflection call.
pub async fn call(
    service: GrpcService,
    request: Request<axum::body::Body>,
) -> axum::response::Response {
    match service.oneshot(request.map(Body::new)).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(never) => match never {},
    }
}
