//! Domain events: transactional outbox → relay → Kafka (or the embedded log) → consumer with
//! an inbox. Delivery is at-least-once and ordered per aggregate; handlers take effect exactly
//! once per consumer group.
//!
//! How a service uses it:
//! - build an [`Envelope`] with [`new_envelope`] and write it with [`enqueue`] in the same
//!   database transaction as the state change, then [`EventBus::wake_relays`] after commit;
//! - run [`EventBus::spawn_relay`] once per service database, and
//!   [`EventBus::spawn_consumer`] per consumer group with an [`EventHandler`];
//! - include [`migrations`] in the service's migrator and register [`EventBus::probe`].
//!
//! Decisions:
//! - **Envelope**: every event is a protobuf `Envelope` (UUIDv7 id, full type name, time,
//!   aggregate id, `traceparent`, source) with the typed event in an `Any`, on the topic
//!   `runmesh.<domain>.v1.events` ([`topic`]), keyed by aggregate id.
//! - **Outbox**: rows get an auto-increment sequence (publish order) and are deleted once the
//!   transport acknowledged them, so no high-water mark can skip a late-committing row. On
//!   PostgreSQL each relay round runs in a transaction holding `pg_try_advisory_xact_lock`, so
//!   one relay per database publishes at a time (the reasons are in `relay.rs`).
//! - **Kafka**: idempotent producer (`enable.idempotence`, `acks=all`) keeps each partition's
//!   order across retries; delivery is awaited before a row is deleted. After a failed batch
//!   only the acknowledged rows are deleted, the rest are republished in sequence order by a
//!   fresh producer (one whose messages timed out may hold idempotence state the broker has
//!   dropped, and would never deliver again). A message that times out while a later one of
//!   its partition gets through is the one case that can reorder an aggregate; a generous
//!   [`KafkaOptions::message_timeout`] makes it rare. Consumers commit
//!   automatically but only offsets stored explicitly, and an offset is stored only after the
//!   transaction holding the inbox row and the handler's effects committed. Handler failures
//!   are retried with capped exponential backoff, never skipped; bytes that are not an envelope
//!   are logged and skipped (a poison message must not stall the partition). Both sides create
//!   missing topics (idempotently) before use.
//! - **Embedded log** (embedded mode, `log.rs`): no relay and no copy; each service's outbox is
//!   the log, read in place by every consumer group of the process, which stores its position
//!   per source in its own database in the transaction holding the inbox rows and the handler's
//!   effects. Nothing is lost or doubled by a crash at any point; rows are removed once every
//!   known group has read them. Same handlers, inbox and guarantees as Kafka.
//! - **No Kafka transactions**: at-least-once delivery plus the inbox is simpler and works the
//!   same over both transports.

pub mod audit;
mod consumer;
mod envelope;
pub mod inbox;
mod kafka;
mod log;
mod migration;
pub mod outbox;
mod relay;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use consumer::EventHandler;
pub use envelope::{EnvelopeExt, new_envelope, topic};
pub use kafka::{EVENT_ID_HEADER, EVENT_TYPE_HEADER, KafkaOptions, TRACEPARENT_HEADER};
pub use log::{LogOptions, position as log_position, reader as log_reader};
pub use outbox::{enqueue, enqueue_many, pending};
pub use relay::RelayOptions;
pub use runmesh_proto::runmesh::events::v1::Envelope;

use crate::health::Probe;

/// Errors of the event system.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("creating topic {topic}: {code}")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("the producer was dropped before the broker acknowledged the message")]
    DeliveryCanceled,
    #[error("the envelope has no payload")]
    MissingPayload,
    #[error("the envelope has no id")]
    MissingId,
    #[error("the envelope carries {actual}, not {expected}")]
    UnexpectedType { expected: String, actual: String },
    #[error("decoding: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// The platform's event tables (`event_outbox`, `event_inbox`, `event_log_position`,
/// `event_log_reader`); every service's migrator includes them.
pub fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
    vec![
        Box::new(migration::CreateEventOutbox),
        Box::new(migration::CreateEventInbox),
        Box::new(migration::CreateEventLog),
    ]
}

/// What the transport did with one batch of outbox rows.
pub(crate) struct Delivery {
    /// Sequences of the rows the transport acknowledged.
    pub acked: Vec<i64>,
    /// The first failure, if any row was not acknowledged.
    pub error: Option<EventError>,
}

#[derive(Clone)]
pub(crate) enum Transport {
    Kafka(Arc<kafka::KafkaBus>),
    Embedded(Arc<log::EmbeddedLog>),
}

/// The handle services use to publish and consume events, over Kafka or in process. Cheap to
/// clone; clones share the transport.
#[derive(Clone)]
pub struct EventBus {
    transport: Transport,
    relay_wake: Arc<watch::Sender<()>>,
    relay_options: RelayOptions,
}

impl EventBus {
    /// Kafka at `brokers` (`host:port[,…]`) with default [`KafkaOptions`]. Connects lazily: a
    /// broker that is down now only delays publishing.
    pub fn kafka(brokers: &str) -> Result<Self, EventError> {
        Self::kafka_with(KafkaOptions::new(brokers))
    }

    /// Kafka with explicit options.
    pub fn kafka_with(options: KafkaOptions) -> Result<Self, EventError> {
        Ok(Self::over(Transport::Kafka(Arc::new(
            kafka::KafkaBus::new(options)?,
        ))))
    }

    /// The embedded log with default [`LogOptions`] (one process): share one instance between
    /// every service in the process.
    pub fn in_process() -> Self {
        Self::embedded(LogOptions::default())
    }

    /// The embedded log: every service's outbox is read in place by every consumer group of
    /// this process, durably (see `log.rs`). Share one instance between every service in the
    /// process. Its poll interval also serves as the consumers' fallback when not woken.
    pub fn embedded(options: LogOptions) -> Self {
        Self::over(Transport::Embedded(Arc::new(log::EmbeddedLog::new(
            options,
        ))))
    }

    fn over(transport: Transport) -> Self {
        Self {
            transport,
            relay_wake: Arc::new(watch::Sender::new(())),
            relay_options: RelayOptions::default(),
        }
    }

    /// Relays spawned from now on batch and poll as `options` say.
    pub fn with_relay_options(mut self, options: RelayOptions) -> Self {
        self.relay_options = options;
        self
    }

    /// Tells every relay of this bus to look at its outbox now rather than at its next poll.
    /// Call it after the transaction that enqueued events committed.
    pub fn wake_relays(&self) {
        self.relay_wake.send_replace(());
    }

    /// Publishes `db`'s outbox until `shutdown`: to Kafka, or as the embedded log's source
    /// `source` (read in place by every consumer group, cleaned up as they pass). `source` also
    /// names the service in logs; it must be stable across restarts in embedded mode, where
    /// consumers store their positions by it.
    pub fn spawn_relay(
        &self,
        source: &str,
        db: DatabaseConnection,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        match &self.transport {
            Transport::Kafka(kafka) => {
                let relay =
                    relay::Relay::new(source, db, kafka.clone(), self.relay_options.clone());
                tokio::spawn(relay.run(self.relay_wake.subscribe(), shutdown))
            }
            Transport::Embedded(log) => {
                let source = log.register_source(source, db);
                tokio::spawn(log.clone().maintain_source(source, shutdown))
            }
        }
    }

    /// Consumes `topics` as consumer group `group` until `shutdown`, handling each event once
    /// (per group) in a transaction on `db`, whose migrator must include [`migrations`].
    pub fn spawn_consumer(
        &self,
        group: &str,
        topics: &[&str],
        db: DatabaseConnection,
        handler: Arc<dyn EventHandler>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        let group = group.to_owned();
        let topics = topics.iter().map(|topic| (*topic).to_owned()).collect();
        match &self.transport {
            Transport::Kafka(kafka) => {
                tokio::spawn(kafka.clone().consume(group, topics, db, handler, shutdown))
            }
            Transport::Embedded(log) => tokio::spawn(log.clone().consume(
                group,
                topics,
                db,
                handler,
                self.relay_wake.subscribe(),
                shutdown,
            )),
        }
    }

    /// Reachability of the bus for readiness: Kafka answers a metadata request in time; the
    /// embedded log is the services' own databases, probed on their own.
    pub fn probe(&self) -> Arc<dyn Probe> {
        Arc::new(BusProbe(self.transport.clone()))
    }
}

struct BusProbe(Transport);

#[async_trait::async_trait]
impl Probe for BusProbe {
    fn name(&self) -> &str {
        match self.0 {
            Transport::Kafka(_) => "kafka",
            Transport::Embedded(_) => "event-log",
        }
    }

    async fn check(&self, timeout: Duration) -> Result<(), String> {
        match &self.0 {
            Transport::Kafka(kafka) => kafka.clone().check(timeout).await,
            Transport::Embedded(_) => Ok(()),
        }
    }
}
