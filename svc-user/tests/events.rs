//! svc-user's events leave through the outbox and reach consumers: over Kafka (with
//! PostgreSQL) and over the in-process bus (embedded mode), in the order they happened.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use runmesh_platform::events::{EventBus, EventHandler};
use runmesh_platform::testkit::{kafka_brokers, unique_name};
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::user::v1 as proto;
use runmesh_proto::runmesh::user::v1::{UserDeleted, UserProfileUpdated, UserRegistered};
use sea_orm::DatabaseTransaction;
use support::{Backend, Harness, Options, PASSWORD, authorized, email, fast_relay, test_config};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Forward(mpsc::UnboundedSender<Envelope>);

#[async_trait::async_trait]
impl EventHandler for Forward {
    async fn handle(&self, _txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<()> {
        self.0.send(envelope.clone())?;
        Ok(())
    }
}

on_both_backends!(account_events_reach_consumers_in_order);

async fn account_events_reach_consumers_in_order(backend: Backend) {
    let bus = match backend {
        Backend::Postgres => EventBus::kafka(&kafka_brokers()).unwrap(),
        Backend::Embedded => EventBus::in_process(),
    }
    .with_relay_options(fast_relay());
    let harness = Harness::start_with(
        backend,
        Options {
            config: test_config(),
            bus: Some(bus.clone()),
        },
    )
    .await;

    let (sender, mut received) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let topic = runmesh_svc_user::events::topic();
    bus.spawn_consumer(
        &unique_name("svc_user_events_test"),
        &[topic.as_str()],
        harness.db.clone(),
        Arc::new(Forward(sender)),
        shutdown,
    );

    let account = harness.sign_up(&email()).await;
    let user_id = account.user.unwrap().id;
    let token = account.tokens.unwrap().access_token;
    harness
        .client()
        .update_profile(authorized(
            proto::UpdateProfileRequest {
                display_name: Some("Ada Byron".to_owned()),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap();
    harness
        .client()
        .delete_account(authorized(
            proto::DeleteAccountRequest {
                password: PASSWORD.to_owned(),
            },
            &token,
        ))
        .await
        .unwrap();

    // The topic is shared with other tests: keep this user's events only.
    let mut events = Vec::new();
    while events.len() < 3 {
        let envelope = tokio::time::timeout(Duration::from_secs(60), received.recv())
            .await
            .expect("events arrive within a minute")
            .unwrap();
        if envelope.aggregate_id == user_id {
            events.push(envelope);
        }
    }
    let payload = |envelope: &Envelope| envelope.payload.as_ref().unwrap().value.clone();
    let registered = UserRegistered::decode(payload(&events[0]).as_slice()).unwrap();
    assert_eq!(registered.user.unwrap().id, user_id);
    let updated = UserProfileUpdated::decode(payload(&events[1]).as_slice()).unwrap();
    assert_eq!(updated.changed_fields, ["display_name"]);
    assert_eq!(updated.user.unwrap().display_name, "Ada Byron");
    let deleted = UserDeleted::decode(payload(&events[2]).as_slice()).unwrap();
    assert_eq!(deleted.user_id, user_id);

    // Published rows leave the outbox (Kafka). The embedded log keeps rows until every group
    // read them, and always its newest row (so SQLite never reuses its sequence).
    let kept = match backend {
        Backend::Postgres => 0,
        Backend::Embedded => 1,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while harness.outbox().await.len() > kept {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox never drained"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
