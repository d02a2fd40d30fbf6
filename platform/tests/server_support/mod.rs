//! Shared by the `server_*` tests: the test-only ProbeService, a switchable probe, and a real
//! server on 127.0.0.1:0.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use runmesh_platform::config::Settings;
use runmesh_platform::health::Probe;
use runmesh_platform::server::{GrpcServer, GrpcServerBuilder, ServerError};
use runmesh_proto::runmesh::testing::v1::probe_service_server::{ProbeService, ProbeServiceServer};
use runmesh_proto::runmesh::testing::v1::{SleepRequest, SleepResponse};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

pub const PROBE_SERVICE: &str = "runmesh.testing.v1.ProbeService";
pub const WHOLE_SERVER: &str = "";

/// Sleep answers after `delay_ms`; `in_flight` counts calls inside the handler.
#[derive(Clone, Default)]
pub struct Sleeper {
    pub in_flight: Arc<AtomicUsize>,
}

struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl ProbeService for Sleeper {
    async fn sleep(
        &self,
        request: Request<SleepRequest>,
    ) -> Result<Response<SleepResponse>, Status> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _in_flight = InFlight(Arc::clone(&self.in_flight));
        tokio::time::sleep(Duration::from_millis(request.get_ref().delay_ms.into())).await;
        Ok(Response::new(SleepResponse {
            caller_subject: String::new(),
        }))
    }
}

/// A dependency the test turns on and off.
pub struct SwitchProbe {
    pub healthy: AtomicBool,
}

impl SwitchProbe {
    pub fn new(healthy: bool) -> Arc<Self> {
        Arc::new(Self {
            healthy: AtomicBool::new(healthy),
        })
    }

    pub fn set(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Probe for SwitchProbe {
    fn name(&self) -> &str {
        "switch"
    }

    async fn check(&self, _timeout: Duration) -> Result<(), String> {
        if self.healthy.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("switched off".to_owned())
        }
    }
}

pub fn test_settings() -> Settings {
    Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        shutdown_delay: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(10),
        ..Settings::default()
    }
}

pub fn builder(
    settings: &Settings,
    sleeper: Sleeper,
    probes: Vec<Arc<dyn Probe>>,
) -> GrpcServerBuilder {
    let builder = GrpcServer::builder(settings).readiness_interval(Duration::from_millis(100));
    let limit = builder.max_message_bytes();
    builder.add_service(
        ProbeServiceServer::new(sleeper)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit),
        probes,
    )
}

pub struct RunningServer {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub serving: JoinHandle<Result<(), ServerError>>,
}

pub async fn start(builder: GrpcServerBuilder) -> RunningServer {
    let bound = builder.bind().await.unwrap();
    let addr = bound.local_addr();
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(bound.serve(shutdown.clone()));
    RunningServer {
        addr,
        shutdown,
        serving,
    }
}

pub async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub async fn health_status(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    let response = client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap();
    ServingStatus::try_from(response.into_inner().status).unwrap()
}

/// Polls `Check` until `service` reports `expected`; fails after 10 s.
pub async fn wait_for_status(
    client: &mut HealthClient<Channel>,
    service: &str,
    expected: ServingStatus,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = health_status(client, service).await;
        if status == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{service:?} stayed {status:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
