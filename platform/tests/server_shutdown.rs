//! Shutdown under load: health turns NOT_SERVING while calls drain, every in-flight call
//! completes, `serve` returns `Ok`, and the listener is closed afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use runmesh_proto::runmesh::testing::v1::SleepRequest;
use runmesh_proto::runmesh::testing::v1::probe_service_client::ProbeServiceClient;
use server_support::{
    PROBE_SERVICE, Sleeper, WHOLE_SERVER, builder, channel, start, test_settings, wait_for_status,
};
use tonic::Streaming;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

const IN_FLIGHT_CALLS: usize = 20;

async fn watch(
    health: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> Streaming<HealthCheckResponse> {
    health
        .watch(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn next_status(stream: &mut Streaming<HealthCheckResponse>) -> Option<ServingStatus> {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the watch answers within 10 s")
        .unwrap()
        .map(|message| ServingStatus::try_from(message.status).unwrap())
}

#[tokio::test]
async fn drains_in_flight_calls_after_reporting_not_serving() {
    let sleeper = Sleeper::default();
    let in_flight = sleeper.in_flight.clone();
    let server = start(builder(&test_settings(), sleeper, Vec::new())).await;

    let mut health = HealthClient::new(channel(server.addr).await);
    wait_for_status(&mut health, PROBE_SERVICE, ServingStatus::Serving).await;
    wait_for_status(&mut health, WHOLE_SERVER, ServingStatus::Serving).await;
    let mut service_watch = watch(&mut health, PROBE_SERVICE).await;
    let mut server_watch = watch(&mut health, WHOLE_SERVER).await;
    assert_eq!(
        next_status(&mut service_watch).await,
        Some(ServingStatus::Serving)
    );
    assert_eq!(
        next_status(&mut server_watch).await,
        Some(ServingStatus::Serving)
    );

    let calls_channel = channel(server.addr).await;
    let calls: Vec<_> = (0..IN_FLIGHT_CALLS)
        .map(|_| {
            let mut client = ProbeServiceClient::new(calls_channel.clone());
            // Long enough that NOT_SERVING surely arrives while they still run (and well
            // within the 10 s shutdown grace).
            tokio::spawn(async move { client.sleep(SleepRequest { delay_ms: 5_000 }).await })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while in_flight.load(Ordering::SeqCst) < IN_FLIGHT_CALLS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "calls never all started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    server.shutdown.cancel();

    assert_eq!(
        next_status(&mut service_watch).await,
        Some(ServingStatus::NotServing)
    );
    assert_eq!(
        next_status(&mut server_watch).await,
        Some(ServingStatus::NotServing)
    );
    assert!(
        in_flight.load(Ordering::SeqCst) > 0,
        "health must turn NOT_SERVING before the calls have drained"
    );
    // Draining ends the watches instead of letting them hold the connection open.
    assert_eq!(next_status(&mut service_watch).await, None);
    assert_eq!(next_status(&mut server_watch).await, None);

    for call in calls {
        let response = call.await.unwrap();
        assert!(response.is_ok(), "in-flight call failed: {response:?}");
    }
    server.serving.await.unwrap().unwrap();

    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "the listener must be closed after shutdown"
    );
}

#[tokio::test]
async fn returns_ok_when_the_grace_runs_out() {
    let settings = runmesh_platform::config::Settings {
        shutdown_delay: Duration::ZERO,
        shutdown_grace: Duration::from_millis(200),
        ..test_settings()
    };
    let sleeper = Sleeper::default();
    let in_flight = sleeper.in_flight.clone();
    let server = start(builder(&settings, sleeper, Vec::new())).await;

    let mut client = ProbeServiceClient::new(channel(server.addr).await);
    let call = tokio::spawn(async move { client.sleep(SleepRequest { delay_ms: 30_000 }).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while in_flight.load(Ordering::SeqCst) < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    server.shutdown.cancel();
    server.serving.await.unwrap().unwrap();
    call.abort();
}
