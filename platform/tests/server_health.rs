//! `grpc.health.v1` follows each service's dependency probes, and `""` follows all services.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use runmesh_platform::health::Probe;
use server_support::{
    PROBE_SERVICE, Sleeper, SwitchProbe, WHOLE_SERVER, builder, channel, health_status, start,
    test_settings, wait_for_status,
};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn service_status_follows_its_probe_and_the_server_status_follows_the_services() {
    let database = SwitchProbe::new(false);
    let probes: Vec<std::sync::Arc<dyn Probe>> = vec![database.clone()];
    let server = start(builder(&test_settings(), Sleeper::default(), probes)).await;
    let mut health = HealthClient::new(channel(server.addr).await);

    // Never SERVING before its dependency answered.
    assert_eq!(
        health_status(&mut health, PROBE_SERVICE).await,
        ServingStatus::NotServing
    );
    assert_eq!(
        health_status(&mut health, WHOLE_SERVER).await,
        ServingStatus::NotServing
    );

    database.set(true);
    wait_for_status(&mut health, PROBE_SERVICE, ServingStatus::Serving).await;
    wait_for_status(&mut health, WHOLE_SERVER, ServingStatus::Serving).await;

    database.set(false);
    wait_for_status(&mut health, PROBE_SERVICE, ServingStatus::NotServing).await;
    wait_for_status(&mut health, WHOLE_SERVER, ServingStatus::NotServing).await;

    database.set(true);
    wait_for_status(&mut health, PROBE_SERVICE, ServingStatus::Serving).await;
    wait_for_status(&mut health, WHOLE_SERVER, ServingStatus::Serving).await;

    server.shutdown.cancel();
    server.serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn watch_streams_each_transition() {
    let cache = SwitchProbe::new(true);
    let probes: Vec<std::sync::Arc<dyn Probe>> = vec![cache.clone()];
    let server = start(builder(&test_settings(), Sleeper::default(), probes)).await;
    let mut health = HealthClient::new(channel(server.addr).await);

    let mut watch = health
        .watch(HealthCheckRequest {
            service: PROBE_SERVICE.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut next_status = async || {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), watch.message())
            .await
            .expect("a status within 10 s")
            .unwrap()
            .expect("the watch stays open");
        ServingStatus::try_from(message.status).unwrap()
    };

    let mut status = next_status().await;
    if status == ServingStatus::NotServing {
        status = next_status().await;
    }
    assert_eq!(status, ServingStatus::Serving);

    cache.set(false);
    assert_eq!(next_status().await, ServingStatus::NotServing);
    cache.set(true);
    assert_eq!(next_status().await, ServingStatus::Serving);

    server.shutdown.cancel();
    server.serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn unknown_service_is_not_found() {
    let server = start(builder(&test_settings(), Sleeper::default(), Vec::new())).await;
    let mut health = HealthClient::new(channel(server.addr).await);

    let status = health
        .check(HealthCheckRequest {
            service: "runmesh.nothing.v1.Nothing".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    server.shutdown.cancel();
    server.serving.await.unwrap().unwrap();
}
