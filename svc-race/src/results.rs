//! Race results on registrations: svc-run decides which of a runner's runs is their result for
//! a registration (automatically, or the runner's choice through `LinkRaceResult`) and publishes
//! `RaceResultLinked`; svc-race keeps the link on the registration row so every `Registration`
//! it answers shows it. svc-run's events for one runner arrive in order (keyed by owner id), so
//! the latest event is the truth; the consumer's inbox keeps a redelivery from applying twice,
//! and applying one again would change nothing anyway.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::store::registration;

/// A run linked as a registration's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedResult {
    /// svc-run's run id.
    pub run_id: String,
    /// Unset when svc-run sent no (valid) elapsed time.
    pub elapsed_micros: Option<i64>,
    /// When svc-run committed the link.
    pub linked_at: DateTime<Utc>,
}

/// Sets (or with `None` clears) the result of `registration_id`, held by `owner`. Answers
/// whether a registration changed: false for a registration svc-race does not know (or not
/// `owner`'s), which is ignored.
pub async fn record(
    conn: &impl ConnectionTrait,
    registration_id: Uuid,
    owner: &str,
    result: Option<&LinkedResult>,
) -> Result<bool, DbErr> {
    let updated = registration::Entity::update_many()
        .col_expr(
            registration::Column::ResultRunId,
            Expr::value(result.map(|r| r.run_id.clone())),
        )
        .col_expr(
            registration::Column::ResultElapsedMicros,
            Expr::value(result.and_then(|r| r.elapsed_micros)),
        )
        .col_expr(
            registration::Column::ResultLinkedAt,
            Expr::value(result.map(|r| r.linked_at)),
        )
        .filter(registration::Column::Id.eq(registration_id))
        .filter(registration::Column::UserId.eq(owner))
        .exec(conn)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// Clears every result that is run `run_id` (the run is gone). svc-run also unlinks when one run
/// is deleted, but not when an account's runs are erased with it.
pub async fn forget_run(conn: &impl ConnectionTrait, run_id: &str) -> Result<u64, DbErr> {
    let cleared = registration::Entity::update_many()
        .col_expr(
            registration::Column::ResultRunId,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            registration::Column::ResultElapsedMicros,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(
            registration::Column::ResultLinkedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(registration::Column::ResultRunId.eq(run_id))
        .exec(conn)
        .await?;
    Ok(cleared.rows_affected)
}
