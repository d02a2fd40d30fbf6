//! Announces registration openings: at `registration_opens_at` of a published race, one
//! `RegistrationOpened` (split per 500 subscribers) goes to the outbox.
//!
//! The schedule is the `races` table itself, so it survives restarts; a race is claimed with
//! `UPDATE … SET opening_announced_at = now WHERE opening_announced_at IS NULL` in the
//! transaction that writes its events, so with any number of replicas exactly one announces it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use runmesh_platform::db::begin_write;
use runmesh_platform::events::EventBus;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::catalog::load_record;
use crate::domain::RaceStatus;
use crate::events;
use crate::store::{race, subscription};
use crate::wire;

/// Races announced per round at most (the rest in the next round).
const BATCH: u64 = 50;

pub struct OpeningScheduler {
    db: DatabaseConnection,
    bus: Option<EventBus>,
    interval: Duration,
}

impl OpeningScheduler {
    pub fn new(db: DatabaseConnection, bus: Option<EventBus>, interval: Duration) -> Self {
        Self { db, bus, interval }
    }

    /// Announces due openings every `interval` until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(self.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            if let Err(error) = self.announce_due().await {
                tracing::warn!(%error, "announcing registration openings failed; retrying next round");
            }
        }
    }

    /// Announces every published race whose registration opened and was not announced yet;
    /// returns how many this call announced.
    pub async fn announce_due(&self) -> Result<usize, DbErr> {
        let now = wire::now();
        let due: Vec<Uuid> = race::Entity::find()
            .select_only()
            .column(race::Column::Id)
            .filter(race::Column::Status.eq(RaceStatus::Published.code()))
            .filter(race::Column::RegistrationOpensAt.lte(now))
            .filter(race::Column::OpeningAnnouncedAt.is_null())
            .order_by_asc(race::Column::RegistrationOpensAt)
            .limit(BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut announced = 0;
        for race_id in due {
            if self.announce(race_id).await? {
                announced += 1;
            }
        }
        if announced > 0
            && let Some(bus) = &self.bus
        {
            bus.wake_relays();
        }
        Ok(announced)
    }

    /// `false` when another replica announced it first.
    async fn announce(&self, race_id: Uuid) -> Result<bool, DbErr> {
        let txn = begin_write(&self.db).await?;
        let now = wire::now();
        let claimed = race::Entity::update_many()
            .col_expr(race::Column::OpeningAnnouncedAt, Expr::value(now))
            .filter(race::Column::Id.eq(race_id))
            .filter(race::Column::OpeningAnnouncedAt.is_null())
            .filter(race::Column::RegistrationOpensAt.lte(now))
            .exec(&txn)
            .await?
            .rows_affected;
        if claimed == 0 {
            return Ok(false);
        }
        let Some(record) = load_record(&txn, race_id).await? else {
            return Ok(false);
        };
        let subscribers: Vec<String> = subscription::Entity::find()
            .select_only()
            .column(subscription::Column::UserId)
            .filter(subscription::Column::RaceId.eq(race_id))
            .order_by_asc(subscription::Column::CreatedAt)
            .into_tuple()
            .all(&txn)
            .await?;
        let race = wire::race_message(&record, Utc::now());
        for event in events::registration_opened(&race, &subscribers) {
            events::enqueue(&txn, race_id, &event).await?;
        }
        txn.commit().await?;
        tracing::info!(%race_id, subscribers = subscribers.len(), "registration opened");
        Ok(true)
    }
}
