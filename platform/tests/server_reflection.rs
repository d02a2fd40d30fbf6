//! Reflection v1 and v1alpha list the registered services and health, and serve descriptors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use server_support::{PROBE_SERVICE, Sleeper, builder, channel, start, test_settings};
use tonic_reflection::pb::{v1, v1alpha};

const HEALTH: &str = "grpc.health.v1.Health";

#[tokio::test]
async fn v1_lists_services_and_resolves_their_files() {
    let server = start(builder(&test_settings(), Sleeper::default(), Vec::new())).await;
    let mut client =
        v1::server_reflection_client::ServerReflectionClient::new(channel(server.addr).await);

    let requests = [
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        },
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                    PROBE_SERVICE.to_owned(),
                ),
            ),
        },
    ];
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();

    let listed = responses.message().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        listed.message_response
    else {
        panic!("expected a service list, got {listed:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.iter().any(|n| n == PROBE_SERVICE), "{names:?}");
    assert!(names.iter().any(|n| n == HEALTH), "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n == "grpc.reflection.v1.ServerReflection"),
        "{names:?}"
    );

    let file = responses.message().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        file.message_response
    else {
        panic!("expected a file descriptor, got {file:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());

    server.shutdown.cancel();
    server.serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn v1alpha_lists_services() {
    let server = start(builder(&test_settings(), Sleeper::default(), Vec::new())).await;
    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(channel(server.addr).await);

    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();

    let listed = responses.message().await.unwrap().unwrap();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        listed.message_response
    else {
        panic!("expected a service list, got {listed:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.iter().any(|n| n == PROBE_SERVICE), "{names:?}");
    assert!(names.iter().any(|n| n == HEALTH), "{names:?}");

    server.shutdown.cancel();
    server.serving.await.unwrap().unwrap();
}
