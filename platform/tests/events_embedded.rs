//! The in-process bus (embedded mode) on SQLite: the same outbox, relay, inbox and handler
//! path as Kafka, with the same guarantees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod events_support;

use std::time::Duration;

use events_support::*;
use runmesh_platform::events::{self, EventBus, RelayOptions};
use runmesh_platform::testkit::TestSqlite;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(40);

fn bus() -> EventBus {
    EventBus::in_process().with_relay_options(RelayOptions {
        batch_size: 50,
        poll_interval: Duration::from_millis(200),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_and_consumer_killed_mid_stream_neither_lose_nor_duplicate_nor_reorder() {
    let sqlite = TestSqlite::create().unwrap();
    let db = connect(&sqlite.url).await;
    let bus = bus();
    let topic = events::topic("inprocess");
    let group = "test-group";
    let aggregates = aggregates(8);
    let handler = CountingHandler::new(97);
    let shutdown = CancellationToken::new();

    enqueue_counted(&db, &bus, &topic, &aggregates, 0..100).await;
    let relay = bus.spawn_relay("test", db.clone(), shutdown.child_token());
    let consumer = bus.spawn_consumer(
        group,
        &[&topic],
        db.clone(),
        handler.clone(),
        shutdown.child_token(),
    );
    wait_for_effects(&db, 100, WAIT).await;
    relay.abort();
    consumer.abort();
    assert!(relay.await.unwrap_err().is_cancelled());
    assert!(consumer.await.unwrap_err().is_cancelled());

    enqueue_counted(&db, &bus, &topic, &aggregates, 100..250).await;
    let relay = bus.spawn_relay("test", db.clone(), shutdown.child_token());
    let consumer = bus.spawn_consumer(
        group,
        &[&topic],
        db.clone(),
        handler.clone(),
        shutdown.child_token(),
    );

    wait_for_effects(&db, 2_000, WAIT).await;
    assert_eq!(events::pending(&db).await.unwrap(), 0);
    assert_each_applied_once_in_order(&db, 8, 250).await;
    assert!(handler.failures() > 0, "failed handlers were retried");

    shutdown.cancel();
    for task in [relay, consumer] {
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("task stops promptly on shutdown")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_groups_each_apply_every_event_once() {
    let first_service = TestSqlite::create().unwrap();
    let second_service = TestSqlite::create().unwrap();
    let producer_db = connect(&first_service.url).await;
    let consumer_db = connect(&second_service.url).await;
    let bus = bus();
    let topic = events::topic("groups");
    let aggregates = aggregates(4);
    let shutdown = CancellationToken::new();

    enqueue_counted(&producer_db, &bus, &topic, &aggregates, 0..50).await;
    let relay = bus.spawn_relay("producer", producer_db.clone(), shutdown.clone());
    // One group on the producer's own database, another on a second service's database.
    let own = bus.spawn_consumer(
        "producer",
        &[&topic],
        producer_db.clone(),
        CountingHandler::new(0),
        shutdown.clone(),
    );
    let other = bus.spawn_consumer(
        "other",
        &[&topic],
        consumer_db.clone(),
        CountingHandler::new(0),
        shutdown.clone(),
    );

    wait_for_effects(&producer_db, 200, WAIT).await;
    wait_for_effects(&consumer_db, 200, WAIT).await;
    assert_each_applied_once_in_order(&producer_db, 4, 50).await;
    assert_each_applied_once_in_order(&consumer_db, 4, 50).await;

    shutdown.cancel();
    for task in [relay, own, other] {
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("task stops promptly on shutdown")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_that_is_not_an_envelope_does_not_stall_the_consumer() {
    autometrics::prometheus_exporter::try_init().ok();
    let sqlite = TestSqlite::create().unwrap();
    let db = connect(&sqlite.url).await;
    let bus = bus();
    let topic = events::topic("poison");
    let aggregates = aggregates(1);
    let shutdown = CancellationToken::new();

    enqueue_garbage(&db, &topic, &aggregates[0]).await;
    enqueue_counted(&db, &bus, &topic, &aggregates, 0..50).await;
    let relay = bus.spawn_relay("test", db.clone(), shutdown.clone());
    let consumer = bus.spawn_consumer(
        "test-group",
        &[&topic],
        db.clone(),
        CountingHandler::new(0),
        shutdown.clone(),
    );

    wait_for_effects(&db, 50, WAIT).await;
    assert_each_applied_once_in_order(&db, 1, 50).await;
    assert!(bus.probe().check(Duration::from_secs(1)).await.is_ok());
    let metrics = autometrics::prometheus_exporter::encode_to_string().unwrap();
    assert!(metrics.contains(r#"function="publish_batch""#), "{metrics}");
    assert!(metrics.contains(r#"function="handle_one""#), "{metrics}");

    shutdown.cancel();
    for task in [relay, consumer] {
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("task stops promptly on shutdown")
            .unwrap();
    }
}
