//! What every consumer does with one delivered event, whatever the transport: inbox row and
//! handler in one transaction, retried until it commits.

use std::time::Duration;

use autometrics::autometrics;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use runmesh_proto::runmesh::events::v1::Envelope;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, DatabaseTransaction, EntityTrait, Set, TransactionTrait};
use tokio_util::sync::CancellationToken;

use super::inbox;

/// Reacts to events. Runs inside the consumer's database transaction, which also records the
/// event in the inbox: write effects through `txn` only, and they happen exactly once per
/// consumer group even though delivery is at-least-once. An error rolls everything back and
/// the event is retried (with backoff) until it succeeds; it is never skipped.
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<()>;
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    /// The handler ran and its transaction committed.
    Applied,
    /// The inbox already had the event: a redelivery, nothing done.
    Redelivery,
}

/// Exponential backoff from 100 ms, doubling up to `max` plus up to 100% jitter, that never
/// gives up.
pub(crate) fn backoff(max: Duration) -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Backoff between attempts at a failed handler or relay round.
pub(crate) fn retry_backoff() -> ExponentialBackoff {
    backoff(Duration::from_secs(5))
}

/// The next delay of a backoff that never gives up.
pub(crate) fn next_delay(backoff: &mut ExponentialBackoff) -> Duration {
    backoff.next().unwrap_or(Duration::from_secs(5))
}

/// Records the event in `group`'s inbox and runs the handler, in one transaction.
#[autometrics]
pub(crate) async fn handle_one(
    db: &DatabaseConnection,
    group: &str,
    handler: &dyn EventHandler,
    envelope: &Envelope,
) -> anyhow::Result<Handled> {
    let txn = db.begin().await?;
    if !record_in_inbox(&txn, group, envelope).await? {
        txn.rollback().await?;
        return Ok(Handled::Redelivery);
    }
    handler.handle(&txn, envelope).await?;
    txn.commit().await?;
    Ok(Handled::Applied)
}

/// Adds the event to `group`'s inbox in `txn`; false when it was there already (a redelivery).
async fn record_in_inbox(
    txn: &DatabaseTransaction,
    group: &str,
    envelope: &Envelope,
) -> Result<bool, sea_orm::DbErr> {
    let inserted = inbox::Entity::insert(inbox::ActiveModel {
        consumer_group: Set(group.to_owned()),
        event_id: Set(envelope.id.clone()),
        handled_at: Set(chrono::Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([inbox::Column::ConsumerGroup, inbox::Column::EventId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(inserted > 0)
}

/// One record of the embedded log: its sequence in the source's outbox, and its envelope
/// (`None` when the bytes are not an envelope: skipped, but passed).
pub(crate) struct Logged {
    pub sequence: i64,
    pub envelope: Option<Envelope>,
}

/// Handles `events` of the embedded log (read from `source`, in sequence order) in one
/// transaction on the consumer's database: each new event's inbox row and effects, and the
/// group's position in `source` moved past the last of them. A crash before the commit leaves
/// all of it undone; after it, none is handled again.
#[autometrics]
pub(crate) async fn handle_logged(
    db: &DatabaseConnection,
    group: &str,
    handler: &dyn EventHandler,
    source: &str,
    events: &[Logged],
) -> anyhow::Result<()> {
    let Some(last) = events.last() else {
        return Ok(());
    };
    let txn = crate::db::begin_write(db).await?;
    for envelope in events.iter().filter_map(|event| event.envelope.as_ref()) {
        if record_in_inbox(&txn, group, envelope).await? {
            handler.handle(&txn, envelope).await?;
        }
    }
    super::log::save_position(&txn, group, source, last.sequence).await?;
    txn.commit().await?;
    Ok(())
}

/// Handles `events` of the embedded log until they are committed: all in one transaction when
/// that works, else one at a time, each retried with backoff until it commits (a failing event
/// holds back the later ones of its source, never skipped). `None` when `shutdown` fired first.
pub(crate) async fn handle_logged_until_done(
    db: &DatabaseConnection,
    group: &str,
    handler: &dyn EventHandler,
    source: &str,
    events: &[Logged],
    shutdown: &CancellationToken,
) -> Option<()> {
    if events.len() > 1
        && shutdown
            .run_until_cancelled(handle_logged(db, group, handler, source, events))
            .await?
            .is_ok()
    {
        crate::telemetry::record_handled(group, events.iter().map(Logged::delay_seconds));
        return Some(());
    }
    for event in events {
        let envelope = event.envelope.as_ref();
        let retrying = RetryingMark::new(group);
        retry_until_done(
            shutdown,
            || handle_logged(db, group, handler, source, std::slice::from_ref(event)),
            |error, attempt, delay| {
                retrying.failed();
                tracing::warn!(
                    group,
                    source,
                    sequence = event.sequence,
                    event_id = envelope.map(|e| e.id.as_str()),
                    event_type = envelope.map(|e| e.r#type.as_str()),
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    error = format!("{error:#}"),
                    "event handler failed; retrying"
                );
            },
        )
        .await?;
        crate::telemetry::record_handled(group, [event.delay_seconds()]);
    }
    Some(())
}

impl Logged {
    /// Seconds from the event's `occurred_at` until now (0 when it has none).
    fn delay_seconds(&self) -> f64 {
        self.envelope.as_ref().map_or(0.0, delay_seconds)
    }
}

/// Seconds from `envelope`'s `occurred_at` until now (0 when it has none or is from the future).
fn delay_seconds(envelope: &Envelope) -> f64 {
    let Some(occurred) = envelope.occurred_at.as_ref() else {
        return 0.0;
    };
    let now = chrono::Utc::now();
    let occurred = occurred.seconds as f64 + f64::from(occurred.nanos) / 1e9;
    let now = now.timestamp() as f64 + f64::from(now.timestamp_subsec_nanos()) / 1e9;
    (now - occurred).max(0.0)
}

/// Counts a consumer's failed attempts and marks it as held back (`runmesh_event_consumer_retrying`)
/// from the first failure until it is dropped, after the event finally committed (or shutdown).
struct RetryingMark<'a> {
    group: &'a str,
    marked: std::sync::atomic::AtomicBool,
}

impl<'a> RetryingMark<'a> {
    fn new(group: &'a str) -> Self {
        Self {
            group,
            marked: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn failed(&self) {
        crate::telemetry::record_handler_failure(self.group);
        if !self.marked.swap(true, std::sync::atomic::Ordering::Relaxed) {
            crate::telemetry::record_retrying(self.group, true);
        }
    }
}

impl Drop for RetryingMark<'_> {
    fn drop(&mut self) {
        if self.marked.load(std::sync::atomic::Ordering::Relaxed) {
            crate::telemetry::record_retrying(self.group, false);
        }
    }
}

/// Runs `attempt` until it succeeds, with backoff between failures, each told to `report`
/// (error, attempt number, delay before the next). `None` when `shutdown` fired first.
pub(crate) async fn retry_until_done<T, E, Attempt, Fut>(
    shutdown: &CancellationToken,
    mut attempt: Attempt,
    report: impl Fn(&E, u32, Duration),
) -> Option<T>
where
    Attempt: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut retry = retry_backoff();
    let mut attempts = 1_u32;
    loop {
        match shutdown.run_until_cancelled(attempt()).await? {
            Ok(done) => return Some(done),
            Err(error) => {
                let delay = next_delay(&mut retry);
                report(&error, attempts, delay);
                shutdown
                    .run_until_cancelled(tokio::time::sleep(delay))
                    .await?;
                attempts = attempts.saturating_add(1);
            }
        }
    }
}

/// Handles one event, retrying with backoff until it commits. `None` when `shutdown` fired
/// first (the event was not handled and its offset must not be stored).
pub(crate) async fn handle_until_done(
    db: &DatabaseConnection,
    group: &str,
    handler: &dyn EventHandler,
    envelope: &Envelope,
    shutdown: &CancellationToken,
) -> Option<Handled> {
    let retrying = RetryingMark::new(group);
    let handled = retry_until_done(
        shutdown,
        || handle_one(db, group, handler, envelope),
        |error, attempt, delay| {
            retrying.failed();
            tracing::warn!(
                group,
                event_id = %envelope.id,
                event_type = %envelope.r#type,
                attempt,
                retry_in_ms = delay.as_millis() as u64,
                error = format!("{error:#}"),
                "event handler failed; retrying"
            );
        },
    )
    .await?;
    crate::telemetry::record_handled(group, [delay_seconds(envelope)]);
    if handled == Handled::Redelivery {
        tracing::debug!(group, event_id = %envelope.id, "redelivered event skipped");
    }
    Some(handled)
}
