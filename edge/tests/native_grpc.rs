//! Native gRPC through the edge's one port (h2c), as a mobile app calls it: public services with
//! their metadata, deadlines, streams, trailers and rich errors untouched; internal services as
//! if they did not exist; reflection describing the public services only; a 200 MB client
//! stream flowing through without being buffered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};
use runmesh_edge::codec::DynamicCodec;
use runmesh_proto::runmesh::user::v1 as user;
use support::{PASSWORD, edge_config, start_edge, user_and_edge};
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
use tonic_types::StatusExt;

async fn channel(addr: std::net::SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// An edge serving the test library's contracts in front of the echo upstream.
async fn library_edge() -> (support::echo::EchoServer, support::RunningEdge) {
    let upstream = support::echo::start().await;
    let mut config = edge_config(upstream.addr);
    config.descriptor_set = std::borrow::Cow::Owned(support::echo::descriptor_set());
    let edge = start_edge(config).await;
    (upstream, edge)
}

fn library_method(name: &str) -> MethodDescriptor {
    let mut pool = DescriptorPool::global();
    pool.decode_file_descriptor_set(support::echo::descriptor_set().as_slice())
        .unwrap();
    pool.get_service_by_name("edge.test.v1.LibraryService")
        .unwrap()
        .methods()
        .find(|method| method.name() == name)
        .unwrap()
}

fn path(method: &MethodDescriptor) -> PathAndQuery {
    format!("/{}/{}", method.parent_service().full_name(), method.name())
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn public_rpcs_work_over_native_grpc_with_metadata_and_rich_errors() {
    let (_user, edge) = user_and_edge(|_| {}).await;
    let mut users = user::user_service_client::UserServiceClient::new(channel(edge.addr).await);

    let email = format!("native-{}@example.com", uuid::Uuid::now_v7().simple());
    let signed_up = users
        .sign_up(user::SignUpRequest {
            email: email.clone(),
            password: PASSWORD.to_owned(),
            display_name: "Native App".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let token = signed_up.tokens.unwrap().access_token;

    let mut me = tonic::Request::new(user::GetMeRequest {});
    me.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let me = users.get_me(me).await.unwrap().into_inner();
    assert_eq!(me.user.unwrap().email, email);

    let refused = users
        .sign_up(user::SignUpRequest {
            email: "not an email".to_owned(),
            password: PASSWORD.to_owned(),
            display_name: "x".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let details = refused.get_error_details();
    let fields: Vec<String> = details
        .bad_request()
        .expect("field violations pass through the edge")
        .field_violations
        .iter()
        .map(|violation| violation.field.clone())
        .collect();
    assert!(fields.contains(&"email".to_owned()), "{fields:?}");

    let anonymous = users.get_me(user::GetMeRequest {}).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_services_do_not_exist_through_the_edge() {
    let (_user, edge) = user_and_edge(|_| {}).await;
    let mut internal = user::user_internal_service_client::UserInternalServiceClient::new(
        channel(edge.addr).await,
    );
    let refused = internal
        .get_users(user::GetUsersRequest {
            user_ids: vec![uuid::Uuid::now_v7().to_string()],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
    let refused = internal
        .get_jwks(user::GetJwksRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
}

async fn reflect(
    client: &mut ServerReflectionClient<Channel>,
    request: MessageRequest,
) -> Result<MessageResponse, tonic::Status> {
    let outbound = futures::stream::iter([ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    }]);
    let mut inbound = client
        .server_reflection_info(outbound)
        .await
        .unwrap()
        .into_inner();
    let answer: ServerReflectionResponse = inbound.message().await?.unwrap();
    Ok(answer.message_response.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reflection_through_the_edge_describes_public_services_only() {
    let (_user, edge) = user_and_edge(|_| {}).await;
    let mut client = ServerReflectionClient::new(channel(edge.addr).await);

    let MessageResponse::ListServicesResponse(listed) =
        reflect(&mut client, MessageRequest::ListServices(String::new()))
            .await
            .unwrap()
    else {
        panic!("not a service list");
    };
    let names: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"runmesh.user.v1.UserService".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|name| name.ends_with("InternalService")),
        "{names:?}"
    );

    // The public service's file is there, without its internal twin in it.
    let MessageResponse::FileDescriptorResponse(files) = reflect(
        &mut client,
        MessageRequest::FileContainingSymbol("runmesh.user.v1.UserService".to_owned()),
    )
    .await
    .unwrap() else {
        panic!("no file for UserService");
    };
    let described: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| {
            <prost_types::FileDescriptorProto as prost::Message>::decode(bytes.as_slice()).unwrap()
        })
        .flat_map(|file| {
            file.service
                .into_iter()
                .map(|service| service.name().to_owned())
        })
        .collect();
    assert!(
        described.contains(&"UserService".to_owned()),
        "{described:?}"
    );
    assert!(
        !described.contains(&"UserInternalService".to_owned()),
        "{described:?}"
    );

    let hidden = reflect(
        &mut client,
        MessageRequest::FileContainingSymbol("runmesh.user.v1.UserInternalService".to_owned()),
    )
    .await;
    let not_found = match &hidden {
        Err(status) => status.code() == Code::NotFound,
        Ok(MessageResponse::ErrorResponse(error)) => error.error_code == Code::NotFound as i32,
        Ok(_) => false,
    };
    assert!(not_found, "{hidden:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_deadlines_and_trailers_pass_through() {
    let (_upstream, edge) = library_edge().await;
    let mut grpc = tonic::client::Grpc::new(channel(edge.addr).await);
    grpc.ready().await.unwrap();

    let list = library_method("ListBooks");
    let mut request = DynamicMessage::new(list.input());
    request.set_field_by_name("shelf", Value::String("fiction".into()));
    request.set_field_by_name("count", Value::I32(5));
    request.set_field_by_name("fail_at_end", Value::Bool(true));
    let mut stream = grpc
        .server_streaming(
            tonic::Request::new(request),
            path(&list),
            DynamicCodec::new(list.output()),
        )
        .await
        .unwrap()
        .into_inner();
    let mut received = 0;
    let ending = loop {
        match stream.message().await {
            Ok(Some(_)) => received += 1,
            Ok(None) => panic!("the stream ended without its trailing status"),
            Err(status) => break status,
        }
    };
    assert_eq!(received, 5);
    assert_eq!(
        ending.code(),
        Code::Aborted,
        "the trailers' status passes through"
    );

    // The app's deadline and metadata reach the upstream as sent.
    let ping = library_method("Ping");
    let mut request = tonic::Request::new(DynamicMessage::new(ping.input()));
    request.set_timeout(Duration::from_secs(7));
    request
        .metadata_mut()
        .insert("traceparent", TRACEPARENT.parse().unwrap());
    grpc.ready().await.unwrap();
    let echo = grpc
        .unary(request, path(&ping), DynamicCodec::new(ping.output()))
        .await
        .unwrap()
        .into_inner();
    let Value::Map(seen) = echo.get_field_by_name("metadata").unwrap().into_owned() else {
        panic!("no metadata echoed");
    };
    let seen = |name: &str| {
        seen.get(&prost_reflect::MapKey::String(name.to_owned()))
            .and_then(|value| value.as_str().map(str::to_owned))
    };
    assert_eq!(seen("traceparent").as_deref(), Some(TRACEPARENT));
    let timeout = seen("grpc-timeout").expect("the deadline travels upstream");
    let micros: u64 = timeout
        .strip_suffix('u')
        .and_then(|n| n.parse().ok())
        .or_else(|| {
            timeout
                .strip_suffix('m')
                .and_then(|n| n.parse::<u64>().ok())
                .map(|ms| ms * 1000)
        })
        .expect("a grpc-timeout in µs or ms");
    assert!(micros > 0 && micros <= 7_000_000, "{timeout}");

    // A call past its deadline ends with it (answered by whichever side notices first).
    let slow = library_method("Slow");
    let mut request = DynamicMessage::new(slow.input());
    request.set_field_by_name("delay_ms", Value::I32(5_000));
    let mut request = tonic::Request::new(request);
    request.set_timeout(Duration::from_millis(300));
    grpc.ready().await.unwrap();
    let expired = grpc
        .unary(request, path(&slow), DynamicCodec::new(slow.output()))
        .await
        .unwrap_err();
    assert!(
        matches!(expired.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{expired:?}"
    );
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Peak resident memory of this process (test, edge and upstream together), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_200_mb_client_stream_passes_through_without_being_buffered() {
    const PAGES: i64 = 200;
    const PAGE: usize = 1024 * 1024;
    let (_upstream, edge) = library_edge().await;
    let mut grpc = tonic::client::Grpc::new(channel(edge.addr).await);
    grpc.ready().await.unwrap();

    let upload = library_method("UploadPages");
    let page_data = Bytes::from(vec![7_u8; PAGE]);
    let input = upload.input();
    let before = peak_rss();
    let pages = futures::stream::iter((0..PAGES).map(move |_| {
        let mut page = DynamicMessage::new(input.clone());
        page.set_field_by_name("data", Value::Bytes(page_data.clone()));
        page
    }));
    let summary = grpc
        .client_streaming(
            tonic::Request::new(pages),
            path(&upload),
            DynamicCodec::new(upload.output()),
        )
        .await
        .unwrap()
        .into_inner();
    let grown = peak_rss().saturating_sub(before);

    assert_eq!(
        summary.get_field_by_name("pages").unwrap().as_i64(),
        Some(PAGES)
    );
    assert_eq!(
        summary.get_field_by_name("bytes").unwrap().as_i64(),
        Some(PAGES * PAGE as i64)
    );
    // 200 MiB went through; buffering it anywhere would raise the peak by at least that much.
    assert!(
        grown < 64 * 1024 * 1024,
        "peak memory grew by {} MiB while 200 MiB streamed through",
        grown / (1024 * 1024)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_through_the_edge_answers_for_public_services_only() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let (_user, edge) = user_and_edge(|_| {}).await;
    let mut health = HealthClient::new(channel(edge.addr).await);
    let check = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };
    for service in ["", "runmesh.user.v1.UserService"] {
        let answer = health.check(check(service)).await.unwrap().into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    let hidden = health
        .check(check("runmesh.user.v1.UserInternalService"))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_over_its_rate_limit_gets_resource_exhausted_with_retry_info() {
    let upstream = support::echo::start().await;
    let mut config = edge_config(upstream.addr);
    config.descriptor_set = std::borrow::Cow::Owned(support::echo::descriptor_set());
    config.rate_limit = Some(runmesh_edge::RateLimit {
        requests: 2,
        window: Duration::from_secs(60),
    });
    let edge = start_edge(config).await;
    let mut grpc = tonic::client::Grpc::new(channel(edge.addr).await);
    let ping = library_method("Ping");
    let mut answers = Vec::new();
    for _ in 0..3 {
        grpc.ready().await.unwrap();
        answers.push(
            grpc.unary(
                tonic::Request::new(DynamicMessage::new(ping.input())),
                path(&ping),
                DynamicCodec::new(ping.output()),
            )
            .await,
        );
    }
    assert!(answers[0].is_ok() && answers[1].is_ok(), "{answers:?}");
    let refused = answers.pop().unwrap().unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let details = refused.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "RATE_LIMITED");
    assert!(details.retry_info().unwrap().retry_delay.is_some());
}
