//! Internal RPCs need a service identity: the platform's gRPC server with the auth layer as
//! `service::run` builds it, on a loopback port, hosting the test-only `ProbeInternalService`
//! (audience `testing`) beside the public `ProbeService`, called with tonic clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auth_support::*;
use runmesh_platform::auth::service_token::{MESH_ISSUER, ServiceClaims};
use runmesh_platform::auth::{
    AuthLayer, MeshKey, SERVICE_TOKEN_HEADER, ServiceTokenIssuer, ServiceTokenVerifier,
    StaticKeySource, optional_caller, optional_service_caller,
};
use runmesh_platform::config::Settings;
use runmesh_platform::peer::{PeerChannel, PeerOptions};
use runmesh_platform::server::GrpcServer;
use runmesh_proto::runmesh::testing::v1::probe_internal_service_client::ProbeInternalServiceClient;
use runmesh_proto::runmesh::testing::v1::probe_internal_service_server::{
    ProbeInternalService, ProbeInternalServiceServer,
};
use runmesh_proto::runmesh::testing::v1::probe_service_client::ProbeServiceClient;
use runmesh_proto::runmesh::testing::v1::probe_service_server::{ProbeService, ProbeServiceServer};
use runmesh_proto::runmesh::testing::v1::{
    SleepRequest, SleepResponse, WhoamiRequest, WhoamiResponse,
};
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tonic_types::StatusExt;

/// The internal probe: answers with the calling component, counting how often it ran.
#[derive(Clone, Default)]
struct Internal {
    calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl ProbeInternalService for Internal {
    async fn whoami(
        &self,
        request: Request<WhoamiRequest>,
    ) -> Result<Response<WhoamiResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let caller = optional_service_caller(&request)
            .ok_or_else(|| Status::internal("the layer let a call through without a caller"))?;
        Ok(Response::new(WhoamiResponse {
            service: caller.service,
        }))
    }
}

/// The public probe: answers with the runner's subject ("" when anonymous).
#[derive(Clone, Default)]
struct Public;

#[tonic::async_trait]
impl ProbeService for Public {
    async fn sleep(
        &self,
        request: Request<SleepRequest>,
    ) -> Result<Response<SleepResponse>, Status> {
        Ok(Response::new(SleepResponse {
            caller_subject: optional_caller(&request)
                .map(|caller| caller.user_id)
                .unwrap_or_default(),
        }))
    }
}

struct Mesh {
    addr: SocketAddr,
    /// The mesh key the server checks service tokens with.
    key: MeshKey,
    /// Signs runner tokens the server accepts.
    runner_key: TestKey,
    internal_calls: Arc<AtomicUsize>,
    _stop: DropGuard,
}

impl Mesh {
    /// A server as `service::run` builds it; `service_tokens: false` leaves the mesh verifier
    /// out of the auth layer.
    async fn start(service_tokens: bool) -> Self {
        let key = MeshKey::random();
        let runner_key = TestKey::ed25519("k1");
        let runner_tokens = verifier(
            config(),
            Arc::new(StaticKeySource::new(jwks(&[&runner_key]))),
        );
        let mut layer = AuthLayer::new(runner_tokens);
        if service_tokens {
            layer = layer.with_service_tokens(Arc::new(ServiceTokenVerifier::new(key.clone())));
        }
        let internal = Internal::default();
        let internal_calls = Arc::clone(&internal.calls);
        let settings = Settings {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shutdown_delay: Duration::ZERO,
            ..Settings::default()
        };
        let server = GrpcServer::builder(&settings)
            .layer(layer)
            .add_service(ProbeServiceServer::new(Public), vec![])
            .add_service(ProbeInternalServiceServer::new(internal), vec![])
            .bind()
            .await
            .unwrap();
        let addr = server.local_addr();
        let stop = CancellationToken::new();
        tokio::spawn(server.serve(stop.clone()));
        Self {
            addr,
            key,
            runner_key,
            internal_calls,
            _stop: stop.drop_guard(),
        }
    }

    fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_lazy()
    }

    /// Whoami with `metadata` set.
    async fn whoami(&self, metadata: &[(&'static str, String)]) -> Result<String, Status> {
        let mut request = Request::new(WhoamiRequest {});
        for (name, value) in metadata {
            request.metadata_mut().insert(*name, value.parse().unwrap());
        }
        ProbeInternalServiceClient::new(self.channel())
            .whoami(request)
            .await
            .map(|response| response.into_inner().service)
    }

    async fn with_service_token(&self, token: String) -> Result<String, Status> {
        self.whoami(&[(SERVICE_TOKEN_HEADER, token)]).await
    }

    fn issuer(&self, service: &str) -> ServiceTokenIssuer {
        ServiceTokenIssuer::new(service, self.key.clone())
    }

    fn runner_token(&self) -> String {
        self.runner_key.sign(&claims())
    }

    fn internal_calls(&self) -> usize {
        self.internal_calls.load(Ordering::SeqCst)
    }
}

#[track_caller]
fn assert_refused(result: Result<String, Status>, code: Code, reason: &str) {
    let status = result.expect_err("the internal call was accepted");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(
        status.get_details_error_info().map(|info| info.reason),
        Some(reason.to_owned()),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_valid_service_token_reaches_the_handler_as_its_caller() {
    let mesh = Mesh::start(true).await;
    let token = mesh.issuer("race").token("testing").unwrap();

    assert_eq!(mesh.with_service_token(token).await.unwrap(), "race");
    assert_eq!(mesh.internal_calls(), 1);
}

#[tokio::test]
async fn anonymous_internal_calls_are_unauthenticated() {
    let mesh = Mesh::start(true).await;

    assert_refused(
        mesh.whoami(&[]).await,
        Code::Unauthenticated,
        "SERVICE_TOKEN_REQUIRED",
    );
    assert_eq!(mesh.internal_calls(), 0);
}

#[tokio::test]
async fn runner_tokens_do_not_open_internal_rpcs() {
    let mesh = Mesh::start(true).await;
    let runner = mesh.runner_token();

    // The runner's token is valid: the public service takes it.
    let subject = ProbeServiceClient::new(mesh.channel())
        .sleep({
            let mut request = Request::new(SleepRequest { delay_ms: 0 });
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {runner}").parse().unwrap());
            request
        })
        .await
        .unwrap()
        .into_inner()
        .caller_subject;
    assert_eq!(subject, "user-42");

    assert_refused(
        mesh.whoami(&[("authorization", format!("Bearer {runner}"))])
            .await,
        Code::Unauthenticated,
        "SERVICE_TOKEN_REQUIRED",
    );
    // Nor in the service token's place: it is not signed with the mesh key.
    assert_refused(
        mesh.with_service_token(runner).await,
        Code::Unauthenticated,
        "SERVICE_TOKEN_INVALID",
    );
    assert_eq!(mesh.internal_calls(), 0);
}

#[tokio::test]
async fn expired_forged_and_other_audience_tokens_are_refused() {
    let mesh = Mesh::start(true).await;
    let now = now();
    let claims = |aud: &str, iat: u64, exp: u64| ServiceClaims {
        iss: MESH_ISSUER.to_owned(),
        sub: "race".to_owned(),
        aud: aud.to_owned(),
        iat,
        exp,
        jti: uuid::Uuid::new_v4().to_string(),
    };

    let expired = mesh
        .issuer("race")
        .sign(&claims("testing", now - 200, now - 140))
        .unwrap();
    assert_refused(
        mesh.with_service_token(expired).await,
        Code::Unauthenticated,
        "SERVICE_TOKEN_EXPIRED",
    );

    let forged = ServiceTokenIssuer::new("race", MeshKey::random())
        .token("testing")
        .unwrap();
    assert_refused(
        mesh.with_service_token(forged).await,
        Code::Unauthenticated,
        "SERVICE_TOKEN_INVALID",
    );

    let for_user = mesh.issuer("race").token("user").unwrap();
    assert_refused(
        mesh.with_service_token(for_user).await,
        Code::PermissionDenied,
        "SERVICE_NOT_ALLOWED",
    );

    let other_issuer = mesh
        .issuer("race")
        .sign(&ServiceClaims {
            iss: "someone-else".to_owned(),
            ..claims("testing", now, now + 60)
        })
        .unwrap();
    assert_refused(
        mesh.with_service_token(other_issuer).await,
        Code::Unauthenticated,
        "SERVICE_TOKEN_INVALID",
    );

    // `alg: none` with the right claims.
    let unsigned = unsigned_token("k", &claims("testing", now, now + 60));
    assert_refused(
        mesh.with_service_token(unsigned).await,
        Code::Unauthenticated,
        "SERVICE_TOKEN_INVALID",
    );
    assert_eq!(mesh.internal_calls(), 0);
}

#[tokio::test]
async fn without_a_mesh_key_every_internal_call_is_refused() {
    let mesh = Mesh::start(false).await;
    let token = mesh.issuer("race").token("testing").unwrap();

    assert_refused(
        mesh.with_service_token(token).await,
        Code::Unauthenticated,
        "SERVICE_TOKEN_INVALID",
    );
    assert_eq!(mesh.internal_calls(), 0);
}

#[tokio::test]
async fn a_peer_channel_with_credentials_attaches_a_fresh_token_to_each_call() {
    let mesh = Mesh::start(true).await;
    let peer = PeerChannel::connect(
        &format!("http://{}", mesh.addr),
        PeerOptions::default().with_credentials(mesh.issuer("edge").credentials("testing")),
    )
    .unwrap();

    for _ in 0..3 {
        let answer = peer
            .unary(WhoamiRequest {}, |channel, request| async move {
                ProbeInternalServiceClient::new(channel)
                    .whoami(request)
                    .await
            })
            .await
            .unwrap();
        assert_eq!(answer.into_inner().service, "edge");
    }
    assert_eq!(mesh.internal_calls(), 3);
}
