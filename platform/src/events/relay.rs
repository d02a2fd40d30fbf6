//! The relay (Kafka mode): moves outbox rows to the broker in sequence order.
//!
//! Each round reads the oldest rows (up to the batch size), publishes them, waits for the
//! transport's acknowledgements and deletes exactly the acknowledged rows. A failure leaves the
//! rest in the outbox; the relay backs off (capped exponential) and tries again, forever.
//! Deleting rows rather than remembering a high-water mark means a row whose sequence was
//! assigned before a slower transaction committed is still published when it shows up.
//!
//! **One publisher per database (PostgreSQL).** Every round runs in one transaction that first
//! takes `pg_try_advisory_xact_lock`; a relay that does not get it skips the round. The lock
//! lives exactly as long as the round's reads and deletes: whoever holds it sees every earlier
//! round's deletes, so two replicas never publish the same rows concurrently or out of order,
//! and a relay whose connection dies loses its lock and its uncommitted deletes together (its
//! rows are republished; consumers' inboxes drop the duplicates). A session-level lock on a
//! dedicated connection would be lost silently if the pool recycled that connection, and
//! `FOR UPDATE SKIP LOCKED` lets two relays publish interleaved batches out of order. The cost
//! is a transaction held open while a batch is in flight (bounded by the delivery timeout).
//! On SQLite (one process) it runs one relay per database without a lock. Embedded mode has no
//! relay: the outbox is read in place (`log.rs`).

use std::collections::HashSet;
use std::time::Duration;

use autometrics::autometrics;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::consumer::{next_delay, retry_backoff};
use std::sync::Arc;

use super::kafka::KafkaBus;
use super::{EventError, outbox};

/// Advisory lock key shared by every relay publishing from one PostgreSQL database.
const PUBLISHER_LOCK_KEY: i64 = 0x0072_756e_6d65_7368; // "runmesh"

/// How often the relay counts the rows waiting in its outbox (`runmesh_outbox_pending`).
const PENDING_MEASURE_INTERVAL: Duration = Duration::from_secs(10);

/// How the relay batches and polls.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Rows published per round.
    pub batch_size: u64,
    /// How often the outbox is checked when nobody calls
    /// [`EventBus::wake_relays`](super::EventBus::wake_relays).
    pub poll_interval: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Outcome of one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Round {
    /// This many rows were published (fewer than a batch means the outbox is drained).
    Published(u64),
    /// Another relay holds the publisher lock.
    NotPublisher,
}

pub(crate) struct Relay {
    source: String,
    db: DatabaseConnection,
    transport: Arc<KafkaBus>,
    options: RelayOptions,
    /// Topics known to exist; forgotten after a failure (the broker may have lost them).
    ensured_topics: HashSet<String>,
}

impl Relay {
    pub(crate) fn new(
        source: &str,
        db: DatabaseConnection,
        transport: Arc<KafkaBus>,
        options: RelayOptions,
    ) -> Self {
        Self {
            source: source.to_owned(),
            db,
            transport,
            options,
            ensured_topics: HashSet::new(),
        }
    }

    pub(crate) async fn run(mut self, mut wake: watch::Receiver<()>, shutdown: CancellationToken) {
        tracing::info!(source = self.source, "outbox relay started");
        let mut retry = retry_backoff();
        let mut measured: Option<std::time::Instant> = None;
        loop {
            wake.borrow_and_update();
            if measured.is_none_or(|at| at.elapsed() >= PENDING_MEASURE_INTERVAL) {
                match outbox::pending(&self.db).await {
                    Ok(rows) => crate::telemetry::record_outbox_pending(&self.source, rows),
                    Err(error) => {
                        tracing::debug!(source = self.source, %error, "cannot count the outbox")
                    }
                }
                measured = Some(std::time::Instant::now());
            }
            let Some(round) = shutdown.run_until_cancelled(self.publish_batch()).await else {
                break;
            };
            let idle = match round {
                Ok(Round::Published(count)) => {
                    retry = retry_backoff();
                    if count >= self.options.batch_size {
                        continue;
                    }
                    self.options.poll_interval
                }
                Ok(Round::NotPublisher) => self.options.poll_interval,
                Err(error) => {
                    self.ensured_topics.clear();
                    let delay = next_delay(&mut retry);
                    tracing::warn!(
                        source = self.source,
                        error = format!("{error:#}"),
                        retry_in_ms = delay.as_millis() as u64,
                        "outbox relay could not publish; events stay in the outbox"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                    continue;
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(idle) => {}
                _ = wake.changed() => {}
            }
        }
        tracing::info!(source = self.source, "outbox relay stopped");
    }

    /// One round: the oldest rows out of the outbox and onto the transport.
    #[autometrics]
    pub(crate) async fn publish_batch(&mut self) -> Result<Round, EventError> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            let db = self.db.clone();
            return self.publish_from(&db).await.map(Round::Published);
        }
        let txn = self.db.begin().await?;
        if !take_publisher_lock(&txn).await? {
            txn.rollback().await?;
            return Ok(Round::NotPublisher);
        }
        let published = self.publish_from(&txn).await;
        // Commit even after a partial failure: the acknowledged rows' deletes must stick.
        txn.commit().await?;
        published.map(Round::Published)
    }

    async fn publish_from(&mut self, conn: &impl ConnectionTrait) -> Result<u64, EventError> {
        let rows = outbox::Entity::find()
            .order_by_asc(outbox::Column::Sequence)
            .limit(self.options.batch_size)
            .all(conn)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        self.ensure_topics(&rows).await?;
        let delivery = self.transport.publish(&rows).await;
        if !delivery.acked.is_empty() {
            outbox::Entity::delete_many()
                .filter(outbox::Column::Sequence.is_in(delivery.acked))
                .exec(conn)
                .await?;
        }
        match delivery.error {
            Some(error) => Err(error),
            None => Ok(rows.len() as u64),
        }
    }

    async fn ensure_topics(&mut self, rows: &[outbox::Model]) -> Result<(), EventError> {
        let missing: Vec<&str> = rows
            .iter()
            .map(|row| row.topic.as_str())
            .filter(|topic| !self.ensured_topics.contains(*topic))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        self.transport.ensure_topics(&missing).await?;
        self.ensured_topics
            .extend(missing.into_iter().map(str::to_owned));
        Ok(())
    }
}

async fn take_publisher_lock(txn: &impl ConnectionTrait) -> Result<bool, EventError> {
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [PUBLISHER_LOCK_KEY.into()],
        ))
        .await?
        .ok_or(EventError::Database(sea_orm::DbErr::RecordNotFound(
            "pg_try_advisory_xact_lock returned no row".to_owned(),
        )))?;
    Ok(row.try_get::<bool>("", "locked")?)
}
