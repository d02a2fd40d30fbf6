//! The embedded log (embedded mode): each service's outbox read in place by every consumer
//! group, positions stored with the effects. The same inbox and handler path as Kafka, with the
//! same guarantees, across crashes (a new bus on the same databases is a restarted process).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod events_support;

use std::time::Duration;

use events_support::*;
use runmesh_platform::events::{self, EventBus, LogOptions, log_reader};
use runmesh_platform::testkit::{TestDatabase, TestSqlite};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(40);

fn options() -> LogOptions {
    LogOptions {
        batch_size: 50,
        poll_interval: Duration::from_millis(200),
        maintenance_interval: Duration::from_millis(200),
        ..LogOptions::default()
    }
}

/// A bus as a fresh process has it: nothing in memory, everything from the databases.
fn bus() -> EventBus {
    EventBus::embedded(options())
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

    // A restarted process: a new bus on the same database.
    let bus = self::bus();
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
    // Read by the only group: removed, except the newest row (its sequence is never reused).
    wait_until("the log is trimmed", WAIT, || async {
        events::pending(&db).await.unwrap() <= 1
    })
    .await;
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
    assert!(metrics.contains(r#"function="maintain""#), "{metrics}");
    assert!(metrics.contains(r#"function="handle_logged""#), "{metrics}");

    shutdown.cancel();
    for task in [relay, consumer] {
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("task stops promptly on shutdown")
            .unwrap();
    }
}

/// Stops every task of a test and checks each ends promptly.
async fn stop(shutdown: CancellationToken, tasks: Vec<tokio::task::JoinHandle<()>>) {
    shutdown.cancel();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("task stops promptly on shutdown")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_added_after_ten_thousand_events_receives_every_one() {
    let producer = TestSqlite::create().unwrap();
    let consumer = TestSqlite::create().unwrap();
    let producer_db = connect(&producer.url).await;
    let consumer_db = connect(&consumer.url).await;
    let bus = bus();
    let topic = events::topic("latecomer");
    let aggregates = aggregates(10);
    let shutdown = CancellationToken::new();

    // The source is served (and maintained) while the events are written, with no group yet.
    let source = bus.spawn_relay("producer", producer_db.clone(), shutdown.clone());
    enqueue_counted(&producer_db, &bus, &topic, &aggregates, 0..1_000).await;
    tokio::time::sleep(options().maintenance_interval * 3).await;
    assert_eq!(events::pending(&producer_db).await.unwrap(), 10_000);

    let late = bus.spawn_consumer(
        "latecomer",
        &[&topic],
        consumer_db.clone(),
        CountingHandler::new(0),
        shutdown.clone(),
    );
    wait_for_effects(&consumer_db, 10_000, Duration::from_secs(120)).await;
    assert_each_applied_once_in_order(&consumer_db, 10, 1_000).await;
    stop(shutdown, vec![source, late]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_group_is_retried_without_skipping_and_blocks_neither_producers_nor_other_groups()
{
    let producer = TestSqlite::create().unwrap();
    let healthy = TestSqlite::create().unwrap();
    let failing = TestSqlite::create().unwrap();
    let producer_db = connect(&producer.url).await;
    let healthy_db = connect(&healthy.url).await;
    let failing_db = connect(&failing.url).await;
    let bus = bus();
    let topic = events::topic("failing");
    let aggregates = aggregates(4);
    let shutdown = CancellationToken::new();
    let outage = FailingHandler::new();

    let source = bus.spawn_relay("producer", producer_db.clone(), shutdown.clone());
    let healthy_group = bus.spawn_consumer(
        "healthy",
        &[&topic],
        healthy_db.clone(),
        CountingHandler::new(0),
        shutdown.clone(),
    );
    let failing_group = bus.spawn_consumer(
        "failing",
        &[&topic],
        failing_db.clone(),
        outage.clone(),
        shutdown.clone(),
    );

    // While one group's handler fails, producers write and the other group keeps up.
    enqueue_counted(&producer_db, &bus, &topic, &aggregates, 0..100).await;
    wait_for_effects(&healthy_db, 400, WAIT).await;
    wait_until("the failing handler was retried", WAIT, || async {
        outage.attempts() >= 3
    })
    .await;
    assert_eq!(effect_count(&failing_db).await, 0);
    // Nothing the failing group has not read is removed.
    assert!(events::pending(&producer_db).await.unwrap() >= 400);

    outage.recover();
    wait_for_effects(&failing_db, 400, WAIT).await;
    assert_each_applied_once_in_order(&healthy_db, 4, 100).await;
    assert_each_applied_once_in_order(&failing_db, 4, 100).await;
    wait_until(
        "the log is trimmed once both groups read it",
        WAIT,
        || async { events::pending(&producer_db).await.unwrap() <= 1 },
    )
    .await;
    stop(shutdown, vec![source, healthy_group, failing_group]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_not_seen_within_the_retention_is_forgotten_and_no_longer_holds_events() {
    let producer = TestSqlite::create().unwrap();
    let consumer = TestSqlite::create().unwrap();
    let producer_db = connect(&producer.url).await;
    let consumer_db = connect(&consumer.url).await;
    let bus = EventBus::embedded(LogOptions {
        retention: Duration::from_secs(2),
        ..options()
    });
    let topic = events::topic("retention");
    let aggregates = aggregates(2);
    let shutdown = CancellationToken::new();

    let source = bus.spawn_relay("producer", producer_db.clone(), shutdown.clone());
    // A group reads a little, then goes away for good (its service was removed).
    enqueue_counted(&producer_db, &bus, &topic, &aggregates, 0..10).await;
    let gone = CancellationToken::new();
    let vanished = bus.spawn_consumer(
        "vanished",
        &[&topic],
        consumer_db.clone(),
        CountingHandler::new(0),
        gone.clone(),
    );
    wait_for_effects(&consumer_db, 20, WAIT).await;
    gone.cancel();
    vanished.await.unwrap();
    enqueue_counted(&producer_db, &bus, &topic, &aggregates, 10..20).await;
    assert!(events::pending(&producer_db).await.unwrap() >= 20);

    wait_until("the vanished group is forgotten", WAIT, || async {
        log_reader::Entity::find()
            .filter(log_reader::Column::ConsumerGroup.eq("vanished"))
            .all(&producer_db)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    wait_until(
        "events nobody reads are removed after the retention",
        WAIT,
        || async { events::pending(&producer_db).await.unwrap() <= 1 },
    )
    .await;
    stop(shutdown, vec![source]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgresql_concurrent_writers_lose_nothing_to_a_reader_moving_past_sequences() {
    let producer = TestDatabase::create().await.unwrap();
    let consumer = TestDatabase::create().await.unwrap();
    let producer_db = connect(&producer.url).await;
    let consumer_db = connect(&consumer.url).await;
    let bus = bus();
    let topic = events::topic("pgwriters");
    let shutdown = CancellationToken::new();

    let source = bus.spawn_relay("producer", producer_db.clone(), shutdown.clone());
    let group = bus.spawn_consumer(
        "reader",
        &[&topic],
        consumer_db.clone(),
        CountingHandler::new(0),
        shutdown.clone(),
    );
    // Eight writers, one aggregate each, committing while the reader reads.
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let db = producer_db.clone();
            let bus = bus.clone();
            let topic = topic.clone();
            tokio::spawn(async move {
                let aggregate = vec![format!("aggregate-{writer}")];
                for start in (0..200).step_by(5) {
                    enqueue_counted(&db, &bus, &topic, &aggregate, start..start + 5).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    wait_for_effects(&consumer_db, 1_600, WAIT).await;
    assert_each_applied_once_in_order(&consumer_db, 8, 200).await;
    stop(shutdown, vec![source, group]).await;
}
