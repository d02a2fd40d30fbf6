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
    .exec_without_returning(&txn)
    .await?;
    if inserted == 0 {
        txn.rollback().await?;
        return Ok(Handled::Redelivery);
    }
    handler.handle(&txn, envelope).await?;
    txn.commit().await?;
    Ok(Handled::Applied)
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
    let mut retry = retry_backoff();
    let mut attempt = 1_u32;
    loop {
        let result = shutdown
            .run_until_cancelled(handle_one(db, group, handler, envelope))
            .await?;
        match result {
            Ok(handled) => {
                if handled == Handled::Redelivery {
                    tracing::debug!(group, event_id = %envelope.id, "redelivered event skipped");
                }
                return Some(handled);
            }
            Err(error) => {
                let delay = next_delay(&mut retry);
                tracing::warn!(
                    group,
                    event_id = %envelope.id,
                    event_type = %envelope.r#type,
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    error = format!("{error:#}"),
                    "event handler failed; retrying"
                );
                shutdown
                    .run_until_cancelled(tokio::time::sleep(delay))
                    .await?;
                attempt = attempt.saturating_add(1);
            }
        }
    }
}
