//! svc-user as the runtime runs it (`runmesh up`): `UserService` through
//! `runmesh_platform::service::run` on embedded defaults, reached by a plain gRPC client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use runmesh_platform::auth::{MeshKey, ServiceTokenIssuer};
use runmesh_platform::config::Settings;
use runmesh_platform::service::{Service, run};
use runmesh_proto::runmesh::user::v1 as proto;
use runmesh_proto::runmesh::user::v1::user_internal_service_client::UserInternalServiceClient;
use runmesh_proto::runmesh::user::v1::user_service_client::UserServiceClient;
use runmesh_svc_user::UserService;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn runs_embedded_through_the_platform_runtime() {
    let data = tempfile::tempdir().unwrap();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let settings = Settings {
        grpc_addr: loopback,
        metrics_addr: loopback,
        data_dir: data.path().to_path_buf(),
        shutdown_delay: Duration::ZERO,
        ..Settings::default()
    };
    let service: Arc<dyn Service> = Arc::new(UserService::from_env(&settings).unwrap());
    let shutdown = CancellationToken::new();
    let (ready, listening) = tokio::sync::oneshot::channel();
    let running = tokio::spawn(run(
        settings,
        vec![service],
        "runmesh-svc-user-test",
        None,
        shutdown.clone(),
        Some(ready),
    ));
    let addr = listening.await.unwrap().grpc;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();

    let mut health = HealthClient::new(channel.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: "runmesh.user.v1.UserService".to_owned(),
            })
            .await
            .map(|response| response.into_inner().status);
        if status.as_ref().ok() == Some(&(ServingStatus::Serving as i32)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never SERVING: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut users = UserServiceClient::new(channel.clone());
    let signed_up = users
        .sign_up(proto::SignUpRequest {
            email: "runtime@example.org".to_owned(),
            password: "Long run on Sunday, 30k".to_owned(),
            display_name: "Runner".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let tokens = signed_up.tokens.unwrap();
    let mut request = tonic::Request::new(proto::GetMeRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", tokens.access_token).parse().unwrap(),
    );
    let me = users
        .get_me(request)
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(me.email, "runtime@example.org");

    // Internal RPCs need a service token signed with the process's mesh key (no
    // RUNMESH_SERVICE_SECRET here, as in `runmesh up`).
    let anonymous = UserInternalServiceClient::new(channel.clone())
        .get_users(proto::GetUsersRequest {
            user_ids: vec![me.id.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(
        anonymous.code(),
        tonic::Code::Unauthenticated,
        "{anonymous:?}"
    );
    let credentials = ServiceTokenIssuer::new("race", MeshKey::process()).credentials("user");
    let keys = UserInternalServiceClient::with_interceptor(channel, credentials)
        .get_jwks(proto::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(!keys.is_empty());
    assert!(
        data.path().join("user.db").exists(),
        "embedded mode keeps user.db in the data dir"
    );

    shutdown.cancel();
    running.await.unwrap().unwrap();
}
