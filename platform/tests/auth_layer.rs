//! AuthLayer in a real tonic server on a loopback port, called with a tonic client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auth_support::*;
use runmesh_platform::auth::{AuthLayer, StaticKeySource, optional_caller};
use runmesh_proto::runmesh::testing::v1::probe_service_client::ProbeServiceClient;
use runmesh_proto::runmesh::testing::v1::probe_service_server::{ProbeService, ProbeServiceServer};
use runmesh_proto::runmesh::testing::v1::{SleepRequest, SleepResponse};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

/// Answers with the caller's subject ("" when anonymous) and counts how often it ran.
#[derive(Clone, Default)]
struct Probe {
    calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl ProbeService for Probe {
    async fn sleep(
        &self,
        request: Request<SleepRequest>,
    ) -> Result<Response<SleepResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let caller_subject = optional_caller(&request)
            .map(|caller| caller.user_id)
            .unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(request.get_ref().delay_ms.into())).await;
        Ok(Response::new(SleepResponse { caller_subject }))
    }
}

struct TestServer {
    addr: SocketAddr,
    handler_calls: Arc<AtomicUsize>,
    key: TestKey,
}

impl TestServer {
    async fn start() -> Self {
        let key = TestKey::ed25519("k1");
        let verifier = verifier(config(), Arc::new(StaticKeySource::new(jwks(&[&key]))));
        let probe = Probe::default();
        let handler_calls = Arc::clone(&probe.calls);

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<ProbeServiceServer<Probe>>()
            .await;

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            Server::builder()
                .layer(AuthLayer::new(verifier))
                .add_service(health_service)
                .add_service(ProbeServiceServer::new(probe))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        Self {
            addr,
            handler_calls,
            key,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Calls Sleep with `authorization` set to `authorization` when given.
    async fn sleep(&self, authorization: Option<&str>) -> Result<String, Status> {
        let mut client = ProbeServiceClient::new(self.channel().await);
        let mut request = Request::new(SleepRequest { delay_ms: 10 });
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        client
            .sleep(request)
            .await
            .map(|response| response.into_inner().caller_subject)
    }

    fn handler_calls(&self) -> usize {
        self.handler_calls.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler_as_its_caller() {
    let server = TestServer::start().await;
    let token = server.key.sign(&claims());

    let subject = server
        .sleep(Some(&format!("Bearer {token}")))
        .await
        .unwrap();

    assert_eq!(subject, "user-42");
    assert_eq!(server.handler_calls(), 1);
}

#[tokio::test]
async fn a_call_without_a_token_goes_on_anonymously() {
    let server = TestServer::start().await;

    let subject = server.sleep(None).await.unwrap();

    assert_eq!(subject, "");
    assert_eq!(server.handler_calls(), 1);
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated_and_no_handler_runs() {
    let server = TestServer::start().await;
    let impostor = TestKey::ed25519("k1");
    let mut expired = claims();
    expired.nbf = now() - 600;
    expired.iat = expired.nbf;
    expired.exp = now() - 120;
    let mut foreign_audience = claims();
    foreign_audience.aud = "someone-else".into();

    let cases = [
        (
            "expired",
            format!("Bearer {}", server.key.sign(&expired)),
            "TOKEN_EXPIRED",
        ),
        (
            "wrong key",
            format!("Bearer {}", impostor.sign(&claims())),
            "TOKEN_INVALID",
        ),
        (
            "alg none",
            format!("Bearer {}", unsigned_token("k1", &claims())),
            "TOKEN_INVALID",
        ),
        (
            "hs256 with the public key",
            format!(
                "Bearer {}",
                hmac_token("k1", &server.key.public_key, &claims())
            ),
            "TOKEN_INVALID",
        ),
        (
            "wrong audience",
            format!("Bearer {}", server.key.sign(&foreign_audience)),
            "TOKEN_INVALID",
        ),
        ("garbage", "Bearer nonsense".to_string(), "TOKEN_INVALID"),
        (
            "not bearer",
            "Basic dXNlcjpwYXNz".to_string(),
            "TOKEN_INVALID",
        ),
    ];

    for (case, authorization, reason) in cases {
        let status = server.sleep(Some(&authorization)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{case}");
        let info = status.get_details_error_info().expect(case);
        assert_eq!(info.reason, reason, "{case}");
        assert_eq!(info.domain, "runmesh.dev", "{case}");
    }
    assert_eq!(server.handler_calls(), 0);
}

#[tokio::test]
async fn health_needs_no_token_and_ignores_a_bad_one() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);

    for authorization in [None, Some("Bearer nonsense")] {
        let mut request = Request::new(HealthCheckRequest {
            service: "runmesh.testing.v1.ProbeService".into(),
        });
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        let response = health.check(request).await.unwrap().into_inner();
        assert_eq!(response.status(), ServingStatus::Serving);
    }
    assert_eq!(server.handler_calls(), 0);
}
