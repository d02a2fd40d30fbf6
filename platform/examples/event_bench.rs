//! End-to-end event delivery, embedded log and Kafka side by side: producer tasks write events
//! in service transactions on one SQLite database; one consumer group handles them in another
//! service's SQLite database (inbox row + an effect row per event). Prints events/s from the
//! first write to the last handled event, and delivery latency (commit-side `occurred_at` to the
//! handler) p50/p99/max: once with producers writing as fast as they can (throughput; latency
//! then includes the backlog), once at 5,000 events/s offered (latency at the target load).
//!
//!   cargo run --release -p runmesh-platform --example event_bench [-- EVENTS [PER_TRANSACTION]]
//!
//! Kafka mode uses `RUNMESH_TEST_KAFKA_BROKERS` when set, else starts tansu from
//! `RUNMESH_TEST_TANSU_BIN` or the one `scripts/test` installs under `.tools/venv`
//! (any run of `scripts/test` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use runmesh_platform::events::{self, Envelope, EventBus, EventHandler};
use runmesh_platform::testkit::{Broker, TestSqlite};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio_util::sync::CancellationToken;

const PRODUCERS: u64 = 4;
/// The offered load of the latency runs (the throughput target).
const PACED: u64 = 5_000;

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        events::migrations()
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct BenchEvent {
    #[prost(uint64, tag = "1")]
    number: u64,
}

impl prost::Name for BenchEvent {
    const NAME: &'static str = "BenchEvent";
    const PACKAGE: &'static str = "runmesh.bench.v1";
}

/// Writes an effect row per event and records its delivery latency.
struct Recorder {
    latencies: Mutex<Histogram<u64>>,
    last_handled: Mutex<Option<Instant>>,
}

#[async_trait::async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<()> {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT INTO effects (event_id) VALUES (?)",
            [envelope.id.clone().into()],
        ))
        .await?;
        let occurred = envelope.occurred_at.unwrap_or_default();
        let occurred = chrono::DateTime::from_timestamp(occurred.seconds, occurred.nanos as u32)
            .unwrap_or_default();
        let micros = (chrono::Utc::now() - occurred)
            .num_microseconds()
            .unwrap_or(0);
        self.latencies
            .lock()
            .record(u64::try_from(micros).unwrap_or(0).max(1))
            .ok();
        *self.last_handled.lock() = Some(Instant::now());
        Ok(())
    }
}

async fn database(sqlite: &TestSqlite) -> DatabaseConnection {
    let db = runmesh_platform::db::connect(&sqlite.url).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    db
}

async fn effects(db: &DatabaseConnection) -> u64 {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT COUNT(*) AS n FROM effects",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap() as u64
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// Delivers `total` events, written `per_transaction` at a time as fast as the producers can, or
/// at `rate` events/s in all.
async fn run(bus: EventBus, total: u64, per_transaction: u64, rate: Option<u64>) -> Figures {
    let producer_file = TestSqlite::create().unwrap();
    let consumer_file = TestSqlite::create().unwrap();
    let producer = database(&producer_file).await;
    let consumer = database(&consumer_file).await;
    consumer
        .execute_unprepared("CREATE TABLE effects (event_id TEXT PRIMARY KEY)")
        .await
        .unwrap();
    let topic = events::topic(&format!("bench{}", rand_suffix()));
    let recorder = Arc::new(Recorder {
        latencies: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()),
        last_handled: Mutex::new(None),
    });
    let shutdown = CancellationToken::new();
    let relay = bus.spawn_relay("bench-producer", producer.clone(), shutdown.clone());
    let group = bus.spawn_consumer(
        &format!("bench-consumer-{}", rand_suffix()),
        &[&topic],
        consumer.clone(),
        recorder.clone(),
        shutdown.clone(),
    );
    // Let the consumer join (Kafka: group assignment) before the clock starts.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let started = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer_index| {
            let db = producer.clone();
            let bus = bus.clone();
            let topic = topic.clone();
            tokio::spawn(async move {
                let mine: Vec<u64> = (0..total)
                    .filter(|n| n % PRODUCERS == producer_index)
                    .collect();
                // Each producer writes its share of the rate.
                let mut pace = rate.map(|rate| {
                    let period =
                        Duration::from_secs_f64((per_transaction * PRODUCERS) as f64 / rate as f64);
                    let mut interval = tokio::time::interval(period);
                    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    interval
                });
                for chunk in mine.chunks(per_transaction as usize) {
                    if let Some(pace) = pace.as_mut() {
                        pace.tick().await;
                    }
                    let txn = runmesh_platform::db::begin_write(&db).await.unwrap();
                    let envelopes: Vec<Envelope> = chunk
                        .iter()
                        .map(|&number| {
                            events::new_envelope(
                                "bench",
                                &format!("aggregate-{}", number % 64),
                                &BenchEvent { number },
                            )
                        })
                        .collect();
                    events::enqueue_many(&txn, &topic, &envelopes)
                        .await
                        .unwrap();
                    txn.commit().await.unwrap();
                    bus.wake_relays();
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while effects(&consumer).await < total {
        assert!(Instant::now() < deadline, "events were not all handled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = recorder
        .last_handled
        .lock()
        .map_or(started.elapsed(), |last| last - started);
    shutdown.cancel();
    relay.await.ok();
    group.await.ok();
    let latencies = recorder.latencies.lock();
    Figures {
        per_second: total as f64 / elapsed.as_secs_f64(),
        p50: Duration::from_micros(latencies.value_at_quantile(0.50)),
        p99: Duration::from_micros(latencies.value_at_quantile(0.99)),
        max: Duration::from_micros(latencies.max()),
    }
}

fn rand_suffix() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn print(label: &str, figures: &Figures) {
    println!(
        "{label:<28} {:>10.0} events/s   p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms",
        figures.per_second,
        figures.p50.as_secs_f64() * 1e3,
        figures.p99.as_secs_f64() * 1e3,
        figures.max.as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let total: u64 = args.next().map_or(20_000, |n| n.parse().expect("EVENTS"));
    let per_transaction: u64 = args
        .next()
        .map_or(10, |n| n.parse().expect("PER_TRANSACTION"));
    println!(
        "{total} events, {PRODUCERS} producers, {per_transaction} events per transaction, SQLite producer and consumer databases"
    );

    let embedded = run(EventBus::in_process(), total, per_transaction, None).await;
    print("embedded, as fast as it goes", &embedded);
    let embedded = run(EventBus::in_process(), total, per_transaction, Some(PACED)).await;
    print("embedded, at 5,000/s offered", &embedded);

    let mut _broker = None;
    let brokers = match std::env::var("RUNMESH_TEST_KAFKA_BROKERS") {
        Ok(brokers) => brokers,
        Err(_) => {
            let broker = Broker::start().await.unwrap();
            let brokers = broker.brokers();
            _broker = Some(broker);
            brokers
        }
    };
    let kafka = run(
        EventBus::kafka(&brokers).unwrap(),
        total,
        per_transaction,
        None,
    )
    .await;
    print("kafka, as fast as it goes", &kafka);
    let kafka = run(
        EventBus::kafka(&brokers).unwrap(),
        total,
        per_transaction,
        Some(PACED),
    )
    .await;
    print("kafka, at 5,000/s offered", &kafka);
}
