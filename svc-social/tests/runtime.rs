//! svc-social as the runtime runs it in embedded mode (`runmesh up`): `SocialService` through
//! `runmesh_platform::service::run` on SQLite under the data dir; health SERVING. And a
//! membership event leaving through the outbox and reaching another consumer group (svc-run's
//! crew boards consume these) over the in-process bus.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use runmesh_platform::config::Settings;
use runmesh_platform::events::{EventBus, EventHandler, RelayOptions};
use runmesh_platform::testkit::{TestIssuer, unique_name};
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::social::v1 as proto;
use sea_orm::DatabaseTransaction;
use support::{Backend, Harness, Node, authorized, client, test_config};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_embedded_and_answers_health_serving() {
    let data = tempfile::tempdir().unwrap();
    let issuer = TestIssuer::new();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let settings = Settings {
        grpc_addr: loopback,
        metrics_addr: loopback,
        data_dir: data.path().to_path_buf(),
        shutdown_delay: Duration::ZERO,
        ..Settings::default()
    };
    let node = Node::start(settings, test_config(), &issuer).await;
    let channel = Channel::from_shared(format!("http://{}", node.addr))
        .unwrap()
        .connect_lazy();
    let mut health = HealthClient::new(channel);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: "runmesh.social.v1.CrewService".to_owned(),
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
    let crew = client(node.addr)
        .create_crew(authorized(
            &issuer,
            proto::CreateCrewRequest {
                name: "Embedded crew".to_owned(),
                visibility: proto::CrewVisibility::Public.into(),
                ..Default::default()
            },
            "owner",
            &["runner"],
        ))
        .await
        .unwrap()
        .into_inner()
        .crew
        .unwrap();
    assert_eq!(crew.member_count, 1);
    assert!(data.path().join("social.db").exists());
    node.stop().await;
}

struct Forward(mpsc::UnboundedSender<Envelope>);

#[async_trait::async_trait]
impl EventHandler for Forward {
    async fn handle(&self, _txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<()> {
        self.0.send(envelope.clone())?;
        Ok(())
    }
}

on_both_backends!(membership_events_reach_a_consumer);

async fn membership_events_reach_a_consumer(backend: Backend) {
    let bus = EventBus::in_process().with_relay_options(RelayOptions {
        batch_size: 64,
        poll_interval: Duration::from_millis(100),
    });
    let h = Harness::start_with(backend, test_config(), Some(bus.clone())).await;
    let (sender, mut received) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let topic = runmesh_svc_social::events::topic();
    bus.spawn_consumer(
        &unique_name("crew_boards_test"),
        &[topic.as_str()],
        h.db.clone(),
        Arc::new(Forward(sender)),
        shutdown,
    );
    let crew = h
        .crew("owner", "Event crew", proto::CrewVisibility::Public)
        .await;
    h.join(&crew.crew_id, "joiner").await.unwrap();
    let mut joined = Vec::new();
    while joined.len() < 2 {
        let envelope = tokio::time::timeout(Duration::from_secs(30), received.recv())
            .await
            .expect("events arrive")
            .unwrap();
        assert_eq!(envelope.aggregate_id, crew.crew_id);
        let payload = envelope.payload.unwrap();
        if payload.type_url.ends_with("CrewMemberJoined") {
            joined.push(proto::CrewMemberJoined::decode(payload.value.as_slice()).unwrap());
        }
    }
    assert_eq!(joined[0].user_id, "owner");
    assert_eq!(joined[0].role(), proto::CrewEventRole::Owner);
    assert_eq!(joined[1].user_id, "joiner");
    assert_eq!(joined[1].role(), proto::CrewEventRole::Member);
}
