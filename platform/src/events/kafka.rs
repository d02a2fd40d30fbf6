//! The Kafka transport (rdkafka): an idempotent producer for the relay, topic creation, and
//! consumer groups that store an offset only after its event's transaction committed.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prost::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use runmesh_proto::runmesh::events::v1::Envelope;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use super::consumer::{EventHandler, backoff, handle_until_done, next_delay, retry_backoff};
use super::envelope::decode_envelope;
use super::{Delivery, EventError, outbox};

/// Kafka header carrying the W3C trace context of the request that caused the event.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Kafka header carrying the envelope's event id.
pub const EVENT_ID_HEADER: &str = "event-id";
/// Kafka header carrying the full protobuf name of the event.
pub const EVENT_TYPE_HEADER: &str = "event-type";

/// How the Kafka transport connects and creates topics.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// `bootstrap.servers`: `host:port[,host:port…]`.
    pub brokers: String,
    /// Partitions of topics this process creates (existing topics are left as they are).
    pub partitions: i32,
    /// Replication factor of topics this process creates; -1 takes the broker's
    /// `default.replication.factor`.
    pub replication_factor: i32,
    /// How long the producer keeps trying to deliver one message before the relay sees a
    /// failure, backs off and republishes it from the outbox.
    pub message_timeout: Duration,
    /// A consumer silent this long is dropped from its group and its partitions move to the
    /// others (brokers bound it, commonly to 6 s – 30 min).
    pub session_timeout: Duration,
}

impl KafkaOptions {
    /// Defaults for `brokers`: 6 partitions, the broker's default replication factor, 30 s
    /// delivery timeout, 10 s session timeout.
    pub fn new(brokers: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            partitions: 6,
            replication_factor: -1,
            message_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(10),
        }
    }
}

pub(crate) struct KafkaBus {
    options: KafkaOptions,
    /// Replaced after a failed batch (see [`KafkaBus::replace_producer`]).
    producer: Mutex<FutureProducer>,
    admin: AdminClient<DefaultClientContext>,
}

impl KafkaBus {
    pub(crate) fn new(options: KafkaOptions) -> Result<Self, EventError> {
        let producer = Self::producer_config(&options).create()?;
        let admin = ClientConfig::new()
            .set("bootstrap.servers", &options.brokers)
            .create()?;
        Ok(Self {
            producer: Mutex::new(producer),
            admin,
            options,
        })
    }

    fn producer_config(options: &KafkaOptions) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &options.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // The Java client's partitioner, so every producer puts a key in the same partition.
            .set("partitioner", "murmur2_random")
            .set(
                "message.timeout.ms",
                options.message_timeout.as_millis().to_string(),
            );
        config
    }

    fn producer(&self) -> FutureProducer {
        self.producer.lock().clone()
    }

    /// Creates the topics that do not exist yet; existing ones are fine.
    pub(crate) async fn ensure_topics(&self, topics: &[&str]) -> Result<(), EventError> {
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|topic| {
                NewTopic::new(
                    topic,
                    self.options.partitions,
                    TopicReplication::Fixed(self.options.replication_factor),
                )
            })
            .collect();
        let options = AdminOptions::new()
            .request_timeout(Some(Duration::from_secs(10)))
            .operation_timeout(Some(Duration::from_secs(10)));
        for result in self.admin.create_topics(&new_topics, &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(EventError::CreateTopic { topic, code }),
            }
        }
        Ok(())
    }

    /// Sends every row (keyed by aggregate id, with trace context and event id/type headers)
    /// and waits for the broker's acknowledgement of each.
    pub(crate) async fn publish(&self, rows: &[outbox::Model]) -> Delivery {
        let producer = self.producer();
        let mut pending = Vec::with_capacity(rows.len());
        let mut delivery = Delivery {
            acked: Vec::with_capacity(rows.len()),
            error: None,
        };
        for row in rows {
            let record = FutureRecord::to(&row.topic)
                .key(&row.key)
                .payload(&row.envelope)
                .headers(headers(row));
            match producer.send_result(record) {
                Ok(future) => pending.push((row.sequence, future)),
                Err((error, _)) => {
                    delivery.error = Some(error.into());
                    break;
                }
            }
        }
        for (sequence, future) in pending {
            match future.await {
                Ok(Ok(_)) => delivery.acked.push(sequence),
                Ok(Err((error, _))) => {
                    delivery.error.get_or_insert(error.into());
                }
                Err(_canceled) => {
                    delivery.error.get_or_insert(EventError::DeliveryCanceled);
                }
            }
        }
        if delivery.error.is_some() {
            self.replace_producer(producer);
        }
        delivery
    }

    /// Starts over with a fresh producer once every message of a failed batch is resolved: the
    /// failed one may be fatally broken, or hold idempotence state (producer id, sequence
    /// numbers) that the broker no longer accepts, and then it would never deliver again.
    fn replace_producer(&self, failed: FutureProducer) {
        if let Some((code, reason)) = failed.client().fatal_error() {
            tracing::error!(?code, reason, "Kafka producer hit a fatal error");
        }
        match Self::producer_config(&self.options).create::<FutureProducer>() {
            Ok(fresh) => {
                let replaced = std::mem::replace(&mut *self.producer.lock(), fresh);
                // Dropping a producer flushes and joins its threads: not on the runtime.
                tokio::task::spawn_blocking(move || drop((failed, replaced)));
            }
            Err(error) => tracing::error!(%error, "could not create a new Kafka producer"),
        }
    }

    /// `Ok` when the cluster answered a metadata request within `timeout`.
    pub(crate) async fn check(self: Arc<Self>, timeout: Duration) -> Result<(), String> {
        let producer = self.producer();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout))
            .await
            .map_err(|error| error.to_string())?
            .map(drop)
            .map_err(|error| error.to_string())
    }

    fn consumer(&self, group: &str) -> Result<StreamConsumer, KafkaError> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.options.brokers)
            .set("group.id", group)
            .set("client.id", group)
            .set("auto.offset.reset", "earliest")
            // Offsets are committed in the background, but only those stored explicitly, and
            // an offset is stored only after its event's transaction committed.
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", "1000")
            // Notice topics created after subscribing (and re-created after an outage) soon.
            .set("topic.metadata.refresh.interval.ms", "5000")
            .set(
                "session.timeout.ms",
                self.options.session_timeout.as_millis().to_string(),
            )
            .create()
    }

    /// Consumes `topics` as `group` until `shutdown`: for each message, inbox row and handler in
    /// one transaction (retried until it commits), then the offset is stored. Messages that are
    /// not an envelope are logged and skipped.
    pub(crate) async fn consume(
        self: Arc<Self>,
        group: String,
        topics: Vec<String>,
        db: DatabaseConnection,
        handler: Arc<dyn EventHandler>,
        shutdown: CancellationToken,
    ) {
        let consumer = match self.consumer(&group) {
            Ok(consumer) => consumer,
            Err(error) => {
                tracing::error!(group, %error, "invalid Kafka consumer configuration; not consuming");
                return;
            }
        };
        let topic_names: Vec<&str> = topics.iter().map(String::as_str).collect();
        if !self
            .ensure_topics_until_done(&group, &topic_names, &shutdown)
            .await
        {
            return;
        }
        if let Err(error) = consumer.subscribe(&topic_names) {
            tracing::error!(group, %error, "could not subscribe; not consuming");
            return;
        }
        tracing::info!(group, ?topics, "Kafka consumer started");
        self.consume_subscribed(
            &consumer,
            &group,
            &topic_names,
            &db,
            handler.as_ref(),
            &shutdown,
        )
        .await;
        // Closing commits the stored offsets and leaves the group; it blocks, so off the runtime.
        tokio::task::spawn_blocking(move || drop(consumer))
            .await
            .ok();
        tracing::info!(group, "Kafka consumer stopped");
    }

    async fn consume_subscribed(
        &self,
        consumer: &StreamConsumer,
        group: &str,
        topics: &[&str],
        db: &DatabaseConnection,
        handler: &dyn EventHandler,
        shutdown: &CancellationToken,
    ) {
        // librdkafka reconnects and refetches by itself; errors here are reports, so pause
        // only briefly to keep the log readable.
        let receive_pause = || backoff(Duration::from_secs(1));
        let mut receive_retry = receive_pause();
        loop {
            let Some(received) = shutdown.run_until_cancelled(consumer.recv()).await else {
                return;
            };
            let message = match received {
                Ok(message) => message,
                Err(error) => {
                    let delay = next_delay(&mut receive_retry);
                    tracing::warn!(group, %error, retry_in_ms = delay.as_millis() as u64, "Kafka consumer error");
                    if is_unknown_topic(&error) {
                        self.ensure_topics(topics).await.ok();
                    }
                    if shutdown
                        .run_until_cancelled(tokio::time::sleep(delay))
                        .await
                        .is_none()
                    {
                        return;
                    }
                    continue;
                }
            };
            receive_retry = receive_pause();
            match decode_envelope(message.payload().unwrap_or_default()) {
                Ok(envelope) => {
                    if handle_until_done(db, group, handler, &envelope, shutdown)
                        .await
                        .is_none()
                    {
                        return;
                    }
                }
                Err(error) => tracing::error!(
                    group,
                    topic = message.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    %error,
                    "skipping a message that is not an event envelope"
                ),
            }
            if let Err(error) = consumer.store_offset_from_message(&message) {
                // The partition was revoked meanwhile; its new owner redelivers and the inbox
                // skips what was handled here.
                tracing::debug!(group, %error, "could not store offset");
            }
        }
    }

    async fn ensure_topics_until_done(
        &self,
        group: &str,
        topics: &[&str],
        shutdown: &CancellationToken,
    ) -> bool {
        let mut retry = retry_backoff();
        loop {
            let Some(result) = shutdown
                .run_until_cancelled(self.ensure_topics(topics))
                .await
            else {
                return false;
            };
            let Err(error) = result else {
                return true;
            };
            let delay = next_delay(&mut retry);
            tracing::warn!(group, %error, retry_in_ms = delay.as_millis() as u64, "could not ensure topics exist");
            if shutdown
                .run_until_cancelled(tokio::time::sleep(delay))
                .await
                .is_none()
            {
                return false;
            }
        }
    }
}

fn is_unknown_topic(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
    )
}

fn headers(row: &outbox::Model) -> OwnedHeaders {
    let traceparent = Envelope::decode(row.envelope.as_slice())
        .map(|envelope| envelope.traceparent)
        .unwrap_or_default();
    let headers = OwnedHeaders::new_with_capacity(3)
        .insert(Header {
            key: EVENT_ID_HEADER,
            value: Some(&row.event_id),
        })
        .insert(Header {
            key: EVENT_TYPE_HEADER,
            value: Some(&row.event_type),
        });
    if traceparent.is_empty() {
        headers
    } else {
        headers.insert(Header {
            key: TRACEPARENT_HEADER,
            value: Some(&traceparent),
        })
    }
}
