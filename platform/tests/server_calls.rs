//! Per-call behaviour: request ids, deadlines, and layers (which health and reflection bypass).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use runmesh_platform::server::{GrpcRoutesService, REQUEST_ID_HEADER};
use runmesh_proto::runmesh::testing::v1::SleepRequest;
use runmesh_proto::runmesh::testing::v1::probe_service_client::ProbeServiceClient;
use server_support::{
    PROBE_SERVICE, Sleeper, builder, channel, health_status, start, test_settings,
};
use tonic::body::Body;
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn returns_the_callers_request_id() {
    let server = start(builder(&test_settings(), Sleeper::default(), Vec::new())).await;
    let mut client = ProbeServiceClient::new(channel(server.addr).await);

    let mut request = Request::new(SleepRequest { delay_ms: 0 });
    request
        .metadata_mut()
        .insert(REQUEST_ID_HEADER, "req-from-the-caller".parse().unwrap());
    let response = client.sleep(request).await.unwrap();

    assert_eq!(
        response.metadata().get(REQUEST_ID_HEADER).unwrap(),
        "req-from-the-caller"
    );
    server.shutdown.cancel();
    server.serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn generates_a_uuid_v7_request_id_when_the_caller_sends_none() {
    let server = start(builder(&test_settings(), Sleeper::default(), Vec::new())).await;
    let mut client = ProbeServiceClient::new(channel(server.addr).await);

    let first = client.sleep(SleepRequest { delay_ms: 0 }).await.unwrap();
    let second = client.sleep(SleepRequest { delay_ms: 0 }).await.unwrap();

    let id = |response: &tonic::Response<_>| {
        let value = response.metadata().get(REQUEST_ID_HEADER).unwrap();
        uuid::Uuid::parse_str(value.to_str().unwrap()).unwrap()
    };
    assert_eq!(id(&first).get_version_num(), 7);
    assert_ne!(id(&first), id(&second));
    server.shutdown.cancel();
    server.serving.await.unwrap().unwrap();
}

/// A client without tonic's `Channel`, which would enforce `grpc-timeout` on its own side (and
/// answer CANCELLED first): here only the server can end the call.
async fn client_without_local_deadlines(
    addr: SocketAddr,
) -> ProbeServiceClient<
    impl tonic::client::GrpcService<
        Body,
        ResponseBody = hyper::body::Incoming,
        Error = hyper::Error,
        Future = impl Send,
    > + Clone,
> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let transport = tower::service_fn(move |request: http::Request<Body>| {
        let mut sender = sender.clone();
        async move { sender.send_request(request).await }
    });
    ProbeServiceClient::with_origin(transport, format!("http://{addr}").parse().unwrap())
}

#[tokio::test]
async fn a_call_past_its_deadline_ends_deadline_exceeded() {
    let sleeper = Sleeper::default();
    let in_flight = sleeper.in_flight.clone();
    let server = start(builder(&test_settings(), sleeper, Vec::new())).await;
    let mut client = client_without_local_deadlines(server.addr).await;

    let mut request = Request::new(SleepRequest { delay_ms: 2000 });
    request.set_timeout(Duration::from_millis(100));
    let status = client.sleep(request).await.unwrap_err();

    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.metadata().get(REQUEST_ID_HEADER).is_some());
    assert_eq!(
        in_flight.load(Ordering::SeqCst),
        0,
        "the handler must be cancelled"
    );
    server.shutdown.cancel();
    server.serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_configured_request_timeout_caps_calls_without_a_deadline() {
    let settings = runmesh_platform::config::Settings {
        grpc_request_timeout: Duration::from_millis(200),
        ..test_settings()
    };
    let server = start(builder(&settings, Sleeper::default(), Vec::new())).await;
    let mut client = client_without_local_deadlines(server.addr).await;

    let status = client
        .sleep(SleepRequest { delay_ms: 5000 })
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    server.shutdown.cancel();
    server.serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn layers_wrap_services_but_not_health_or_reflection() {
    let deny_all = tower::layer::layer_fn(|_inner: GrpcRoutesService| {
        tower::service_fn(|_request: http::Request<Body>| async {
            Ok::<_, Infallible>(Status::permission_denied("denied by layer").into_http::<Body>())
        })
    });
    let server =
        start(builder(&test_settings(), Sleeper::default(), Vec::new()).layer(deny_all)).await;
    let channel = channel(server.addr).await;

    let status = ProbeServiceClient::new(channel.clone())
        .sleep(SleepRequest { delay_ms: 0 })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.metadata().get(REQUEST_ID_HEADER).is_some());

    let mut health = HealthClient::new(channel);
    server_support::wait_for_status(&mut health, PROBE_SERVICE, ServingStatus::Serving).await;
    assert_eq!(
        health_status(&mut health, PROBE_SERVICE).await,
        ServingStatus::Serving
    );
    server.shutdown.cancel();
    server.serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn oversized_messages_are_rejected() {
    let settings = runmesh_platform::config::Settings {
        grpc_max_message_bytes: 16,
        ..test_settings()
    };
    let server = start(builder(&settings, Sleeper::default(), Vec::new())).await;
    let mut health = HealthClient::new(channel(server.addr).await);

    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "x".repeat(64),
        })
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    server.shutdown.cancel();
    server.serving.await.unwrap().unwrap();
}
