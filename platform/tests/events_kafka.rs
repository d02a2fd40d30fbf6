//! Outbox → relay → Kafka (tansu) → consumer with inbox, on real PostgreSQL, through relay and
//! consumer crashes, a broker outage and a poison message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod events_support;

use std::time::Duration;

use events_support::*;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use runmesh_platform::events::{self, EventBus, KafkaOptions, RelayOptions};
use runmesh_platform::testkit::{Broker, TestDatabase, kafka_brokers, unique_name};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(40);

fn bus(brokers: &str) -> EventBus {
    let mut options = KafkaOptions::new(brokers);
    options.partitions = 3;
    options.message_timeout = Duration::from_secs(5);
    options.session_timeout = Duration::from_secs(6);
    EventBus::kafka_with(options)
        .unwrap()
        .with_relay_options(RelayOptions {
            batch_size: 50,
            poll_interval: Duration::from_millis(200),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relays_killed_mid_stream_neither_lose_nor_duplicate_nor_reorder() {
    let database = TestDatabase::create().await.unwrap();
    let db = connect(&database.url).await;
    let bus = bus(&kafka_brokers());
    let topic = events::topic(&unique_name("relaykill"));
    let aggregates = aggregates(8);
    let handler = CountingHandler::new(97);
    let shutdown = CancellationToken::new();
    let consumer = bus.spawn_consumer(
        &unique_name("group"),
        &[&topic],
        db.clone(),
        handler.clone(),
        shutdown.clone(),
    );

    enqueue_counted(&db, &bus, &topic, &aggregates, 0..125).await;
    // Two replicas of the relay on one database, as with two pods of a service.
    let first = bus.spawn_relay("test", db.clone(), shutdown.child_token());
    let second = bus.spawn_relay("test", db.clone(), shutdown.child_token());
    wait_until("the relays published something", WAIT, || async {
        events::pending(&db).await.unwrap() < 1_000
    })
    .await;
    first.abort();
    second.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    assert!(second.await.unwrap_err().is_cancelled());

    enqueue_counted(&db, &bus, &topic, &aggregates, 125..250).await;
    let relay = bus.spawn_relay("test", db.clone(), shutdown.child_token());
    let replica = bus.spawn_relay("test", db.clone(), shutdown.child_token());

    wait_for_effects(&db, 2_000, WAIT).await;
    assert_eq!(events::pending(&db).await.unwrap(), 0);
    assert_each_applied_once_in_order(&db, 8, 250).await;
    assert!(handler.failures() > 0, "failed handlers were retried");

    shutdown.cancel();
    for task in [consumer, relay, replica] {
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("task stops promptly on shutdown")
            .unwrap();
    }
}

/// Sets the committed offset of every partition of `topic` back to 0 for `group`, as if the
/// consumer had crashed before any commit: everything is delivered again.
async fn rewind_group(brokers: &str, group: &str, topic: &str, partitions: i32) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    for partition in 0..partitions {
        offsets
            .add_partition_offset(topic, partition, Offset::Offset(0))
            .unwrap();
    }
    let committed = tokio::task::spawn_blocking(move || {
        consumer.commit(&offsets, CommitMode::Sync)?;
        consumer.committed_offsets(offsets, Duration::from_secs(10))
    })
    .await
    .unwrap()
    .unwrap();
    for element in committed.elements() {
        assert_eq!(element.offset(), Offset::Offset(0), "the group was rewound");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_killed_mid_stream_gets_redeliveries_and_applies_each_event_once() {
    let database = TestDatabase::create().await.unwrap();
    let db = connect(&database.url).await;
    let brokers = kafka_brokers();
    let bus = bus(&brokers);
    let topic = events::topic(&unique_name("consumerkill"));
    let group = unique_name("group");
    let aggregates = aggregates(8);
    let handler = CountingHandler::new(0);
    let shutdown = CancellationToken::new();
    let relay = bus.spawn_relay("test", db.clone(), shutdown.clone());

    enqueue_counted(&db, &bus, &topic, &aggregates, 0..125).await;
    let consumer = bus.spawn_consumer(
        &group,
        &[&topic],
        db.clone(),
        handler.clone(),
        shutdown.child_token(),
    );
    wait_for_effects(&db, 200, WAIT).await;
    consumer.abort();
    assert!(consumer.await.unwrap_err().is_cancelled());
    let handled_before_crash = effect_count(&db).await;

    rewind_group(&brokers, &group, &topic, 3).await;
    enqueue_counted(&db, &bus, &topic, &aggregates, 125..250).await;
    let consumer = bus.spawn_consumer(
        &group,
        &[&topic],
        db.clone(),
        handler.clone(),
        shutdown.child_token(),
    );

    wait_for_effects(&db, 2_000, WAIT).await;
    assert!(handled_before_crash < 2_000);
    assert_each_applied_once_in_order(&db, 8, 250).await;

    shutdown.cancel();
    for task in [consumer, relay] {
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("task stops promptly on shutdown")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_written_while_the_broker_is_down_wait_in_the_outbox_and_arrive_after() {
    let database = TestDatabase::create().await.unwrap();
    let db = connect(&database.url).await;
    let mut broker = Broker::start().await.unwrap();
    let bus = bus(&broker.brokers());
    let before_outage = events::topic(&unique_name("before"));
    let during_outage = events::topic(&unique_name("during"));
    let aggregates = aggregates(4);
    let handler = CountingHandler::new(0);
    let shutdown = CancellationToken::new();
    let relay = bus.spawn_relay("test", db.clone(), shutdown.clone());
    let consumer = bus.spawn_consumer(
        &unique_name("group"),
        &[&before_outage, &during_outage],
        db.clone(),
        handler.clone(),
        shutdown.clone(),
    );
    let probe = bus.probe();

    enqueue_counted(&db, &bus, &before_outage, &aggregates, 0..100).await;
    wait_for_effects(&db, 400, WAIT).await;
    probe.check(Duration::from_secs(5)).await.unwrap();

    // The restarted broker is a new, empty one (in-memory storage), so what matters is that
    // nothing written during the outage leaves the outbox before a broker acknowledged it.
    broker.stop();
    enqueue_counted(&db, &bus, &during_outage, &aggregates, 0..100).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(events::pending(&db).await.unwrap(), 400);
    assert!(probe.check(Duration::from_secs(1)).await.is_err());
    assert_eq!(effect_count(&db).await, 400);

    broker.resume().await.unwrap();
    wait_for_effects(&db, 800, WAIT).await;
    assert_eq!(events::pending(&db).await.unwrap(), 0);
    probe.check(Duration::from_secs(5)).await.unwrap();

    let rows = effect_count(&db).await;
    assert_eq!(rows, 800);
    shutdown.cancel();
    for task in [consumer, relay] {
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("task stops promptly on shutdown")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_that_is_not_an_envelope_does_not_stall_the_consumer() {
    let database = TestDatabase::create().await.unwrap();
    let db = connect(&database.url).await;
    let bus = bus(&kafka_brokers());
    let topic = events::topic(&unique_name("poison"));
    let aggregates = aggregates(1);
    let shutdown = CancellationToken::new();

    enqueue_garbage(&db, &topic, &aggregates[0]).await;
    enqueue_counted(&db, &bus, &topic, &aggregates, 0..50).await;
    let relay = bus.spawn_relay("test", db.clone(), shutdown.clone());
    let consumer = bus.spawn_consumer(
        &unique_name("group"),
        &[&topic],
        db.clone(),
        CountingHandler::new(0),
        shutdown.clone(),
    );

    wait_for_effects(&db, 50, WAIT).await;
    assert_each_applied_once_in_order(&db, 1, 50).await;

    shutdown.cancel();
    for task in [consumer, relay] {
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("task stops promptly on shutdown")
            .unwrap();
    }
}
