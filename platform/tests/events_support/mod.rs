//! Shared by the event tests: a test event, a handler whose effects can be counted, and
//! helpers to fill the outbox and check what the handler did.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use runmesh_platform::events::{self, Envelope, EnvelopeExt, EventHandler, outbox};
use sea_orm::{
    ActiveValue::NotSet, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    EntityTrait, Set, Statement, TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

/// The event the tests publish: the `number`th event of `aggregate`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Counted {
    #[prost(string, tag = "1")]
    pub aggregate: String,
    #[prost(uint64, tag = "2")]
    pub number: u64,
}

impl prost::Name for Counted {
    const NAME: &'static str = "Counted";
    const PACKAGE: &'static str = "runmesh.testing.v1";
}

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        events::migrations()
    }
}

/// Logs to the test's output, filtered by `RUST_LOG`.
pub fn init_logs() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init()
        .ok();
}

/// Connects, runs the platform's event migrations and creates the handler's `effects` table.
pub async fn connect(url: &str) -> DatabaseConnection {
    init_logs();
    let db = runmesh_platform::db::connect(url).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let effects = match db.get_database_backend() {
        DbBackend::Postgres => {
            "CREATE TABLE effects (applied_order BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, \
             aggregate TEXT NOT NULL, number BIGINT NOT NULL, applications INT NOT NULL)"
        }
        _ => {
            "CREATE TABLE effects (applied_order INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, \
             aggregate TEXT NOT NULL, number BIGINT NOT NULL, applications INT NOT NULL)"
        }
    };
    db.execute_unprepared(effects).await.unwrap();
    db
}

/// Applies each event as a row in `effects`; a second application of one event increments
/// `applications` instead of hiding. Fails the first attempt at every `fail_every`th event, so
/// the retry path is exercised.
pub struct CountingHandler {
    fail_every: u64,
    failed_once: Mutex<HashSet<String>>,
}

impl CountingHandler {
    pub fn new(fail_every: u64) -> Arc<Self> {
        Arc::new(Self {
            fail_every,
            failed_once: Mutex::new(HashSet::new()),
        })
    }

    pub fn failures(&self) -> usize {
        self.failed_once.lock().len()
    }
}

#[async_trait::async_trait]
impl EventHandler for CountingHandler {
    async fn handle(&self, txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<()> {
        let event: Counted = envelope.unpack()?;
        let backend = txn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO effects (event_id, aggregate, number, applications) VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (event_id) DO UPDATE SET applications = effects.applications + 1"
            }
            _ => {
                "INSERT INTO effects (event_id, aggregate, number, applications) VALUES (?, ?, ?, 1) \
                 ON CONFLICT (event_id) DO UPDATE SET applications = effects.applications + 1"
            }
        };
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                envelope.id.clone().into(),
                event.aggregate.clone().into(),
                (event.number as i64).into(),
            ],
        ))
        .await?;
        if self.fail_every > 0
            && event.number.is_multiple_of(self.fail_every)
            && self.failed_once.lock().insert(envelope.id.clone())
        {
            anyhow::bail!("planned failure of event {}", envelope.id);
        }
        Ok(())
    }
}

/// Fails every event until [`recover`](Self::recover) is called, then applies them as
/// [`CountingHandler`] does: a consumer whose dependency is down for a while.
pub struct FailingHandler {
    recovered: std::sync::atomic::AtomicBool,
    attempts: std::sync::atomic::AtomicUsize,
    counting: Arc<CountingHandler>,
}

impl FailingHandler {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            recovered: std::sync::atomic::AtomicBool::new(false),
            attempts: std::sync::atomic::AtomicUsize::new(0),
            counting: CountingHandler::new(0),
        })
    }

    pub fn recover(&self) {
        self.recovered
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Calls made while failing.
    pub fn attempts(&self) -> usize {
        self.attempts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl EventHandler for FailingHandler {
    async fn handle(&self, txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<()> {
        if !self.recovered.load(std::sync::atomic::Ordering::SeqCst) {
            self.attempts
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            anyhow::bail!("the handler's dependency is down");
        }
        self.counting.handle(txn, envelope).await
    }
}

/// Enqueues events `numbers` for each aggregate (interleaved), 50 per transaction, as a
/// service would, and wakes the relays.
pub async fn enqueue_counted(
    db: &DatabaseConnection,
    bus: &events::EventBus,
    topic: &str,
    aggregates: &[String],
    numbers: std::ops::Range<u64>,
) {
    let all: Vec<(String, u64)> = numbers
        .flat_map(|number| aggregates.iter().map(move |a| (a.clone(), number)))
        .collect();
    for chunk in all.chunks(50) {
        let txn = db.begin().await.unwrap();
        for (aggregate, number) in chunk {
            let event = Counted {
                aggregate: aggregate.clone(),
                number: *number,
            };
            let envelope = events::new_envelope("test", aggregate, &event)
                .with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
            events::enqueue(&txn, topic, &envelope).await.unwrap();
        }
        txn.commit().await.unwrap();
        bus.wake_relays();
    }
}

/// Puts bytes that are not an envelope into the outbox, as if something wrote garbage, keyed
/// like `aggregate`'s events so it lands in their partition.
pub async fn enqueue_garbage(db: &DatabaseConnection, topic: &str, aggregate: &str) {
    outbox::Entity::insert(outbox::ActiveModel {
        sequence: NotSet,
        event_id: Set("garbage".to_owned()),
        event_type: Set("garbage".to_owned()),
        topic: Set(topic.to_owned()),
        key: Set(aggregate.to_owned()),
        envelope: Set(b"\xff\xffnot an envelope".to_vec()),
        created_at: Set(chrono::Utc::now()),
    })
    .exec_without_returning(db)
    .await
    .unwrap();
}

pub fn aggregates(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("aggregate-{i}")).collect()
}

pub async fn effect_count(db: &DatabaseConnection) -> u64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM effects",
        ))
        .await
        .expect("counting effects")
        .expect("a count");
    row.try_get::<i64>("", "n").unwrap() as u64
}

/// Waits until `condition` holds, failing the test after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_for_effects(db: &DatabaseConnection, expected: u64, timeout: Duration) {
    wait_until(
        &format!("{expected} effects are applied"),
        timeout,
        || async { effect_count(db).await >= expected },
    )
    .await;
}

/// Every event applied exactly once, and each aggregate's events applied in the order they
/// were enqueued (numbers `0..per_aggregate` with no gap).
pub async fn assert_each_applied_once_in_order(
    db: &DatabaseConnection,
    aggregate_count: usize,
    per_aggregate: u64,
) {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT aggregate, number, applications FROM effects ORDER BY applied_order",
        ))
        .await
        .unwrap();
    let mut applied: HashMap<String, Vec<u64>> = HashMap::new();
    for row in &rows {
        let applications: i32 = row.try_get("", "applications").unwrap();
        assert_eq!(applications, 1, "an effect was applied more than once");
        let aggregate: String = row.try_get("", "aggregate").unwrap();
        let number: i64 = row.try_get("", "number").unwrap();
        applied.entry(aggregate).or_default().push(number as u64);
    }
    assert_eq!(applied.len(), aggregate_count);
    let expected: Vec<u64> = (0..per_aggregate).collect();
    for (aggregate, numbers) in applied {
        assert_eq!(
            numbers, expected,
            "events of {aggregate} missing or out of order"
        );
    }
}
