//! svc-race as the runtime runs it in embedded mode (`runmesh up`): `RaceService` through
//! `runmesh_platform::service::run` on SQLite under the data dir, the in-memory cache and the
//! in-process bus; health, a registration, and a restart that keeps it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use runmesh_platform::config::Settings;
use runmesh_platform::testkit::TestIssuer;
use runmesh_proto::runmesh::race::v1 as proto;
use support::{Node, category, client, open_race, publish_race, register, test_config};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn embedded_settings(data_dir: &std::path::Path) -> Settings {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    Settings {
        grpc_addr: loopback,
        metrics_addr: loopback,
        data_dir: data_dir.to_path_buf(),
        shutdown_delay: Duration::ZERO,
        ..Settings::default()
    }
}

async fn wait_until_serving(addr: SocketAddr) {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut health = HealthClient::new(channel);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: "runmesh.race.v1.RaceService".to_owned(),
            })
            .await
            .map(|response| response.into_inner().status);
        if status.as_ref().ok() == Some(&(ServingStatus::Serving as i32)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never SERVING: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_embedded_and_a_restart_keeps_every_registration() {
    let data = tempfile::tempdir().unwrap();
    let issuer = TestIssuer::new();
    let node = Node::start(embedded_settings(data.path()), test_config(), &issuer).await;
    wait_until_serving(node.addr).await;
    let race = publish_race(
        &client(node.addr),
        &issuer,
        "organizer-1",
        open_race("Embedded", vec![category("10K", 10_000, 2, 1)]),
    )
    .await;
    let mut before = Vec::new();
    for n in 0..3 {
        before.push(
            register(
                &client(node.addr),
                &issuer,
                &race,
                0,
                &format!("runner-{n}"),
                "k",
            )
            .await
            .unwrap(),
        );
    }
    assert!(
        data.path().join("race.db").exists(),
        "embedded mode keeps race.db in the data dir"
    );
    node.stop().await;

    // The in-memory gate is gone with the process; SQLite kept every registration.
    let node = Node::start(embedded_settings(data.path()), test_config(), &issuer).await;
    wait_until_serving(node.addr).await;
    for (n, registration) in before.iter().enumerate() {
        let again = register(
            &client(node.addr),
            &issuer,
            &race,
            0,
            &format!("runner-{n}"),
            "k",
        )
        .await
        .unwrap();
        assert_eq!(&again, registration);
    }
    let status = register(&client(node.addr), &issuer, &race, 0, "runner-9", "k")
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let race = client(node.addr)
        .get_race(proto::GetRaceRequest {
            race_id: race.race_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(race.availability[0].confirmed, 2);
    assert_eq!(race.availability[0].waitlisted, 1);
    node.stop().await;
}
