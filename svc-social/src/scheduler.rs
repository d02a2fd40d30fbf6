//! The meetup scheduler: `MeetupReminderDue` once per meetup, `RUNMESH_SOCIAL_REMINDER_LEAD`
//! before it starts, and the next occurrence of a weekly meetup once an occurrence has started.
//!
//! The schedule is the `meetups` table itself, so it survives restarts; each meetup is claimed
//! with `UPDATE … SET reminder_sent_at = now WHERE reminder_sent_at IS NULL` (or
//! `successor_at`) in the transaction that writes its events, so with any number of replicas
//! exactly one fires it.

use std::sync::Arc;
use std::time::Duration;

use runmesh_platform::db::begin_write;
use runmesh_platform::events::EventBus;
use runmesh_proto::runmesh::social::v1 as proto;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::{MeetupStatus, Recurrence, RsvpStatus, next_week};
use crate::error::Error;
use crate::meetups::{MeetupSpec, insert_meetup};
use crate::store::{meetup, rsvp};
use crate::{events, wire};

/// Meetups handled per round at most (the rest in the next round).
const BATCH: u64 = 50;

pub struct MeetupScheduler {
    db: DatabaseConnection,
    bus: Option<EventBus>,
    interval: Duration,
    lead: Duration,
}

impl MeetupScheduler {
    pub fn new(
        db: DatabaseConnection,
        bus: Option<EventBus>,
        interval: Duration,
        lead: Duration,
    ) -> Self {
        Self {
            db,
            bus,
            interval,
            lead,
        }
    }

    /// Fires due reminders and schedules weekly occurrences every `interval` until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(self.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "the meetup scheduler failed; retrying next round");
            }
        }
    }

    /// One round; returns how many reminders and occurrences this call wrote.
    pub async fn tick(&self) -> Result<(usize, usize), Error> {
        let reminded = self.remind_due().await?;
        let scheduled = self.schedule_next().await?;
        if reminded + scheduled > 0
            && let Some(bus) = &self.bus
        {
            bus.wake_relays();
        }
        Ok((reminded, scheduled))
    }

    async fn remind_due(&self) -> Result<usize, Error> {
        let now = wire::now();
        let lead = chrono::Duration::from_std(self.lead).unwrap_or(chrono::Duration::hours(2));
        let due: Vec<Uuid> = meetup::Entity::find()
            .select_only()
            .column(meetup::Column::Id)
            .filter(meetup::Column::Status.eq(MeetupStatus::Scheduled.code()))
            .filter(meetup::Column::StartsAt.lte(now + lead))
            .filter(meetup::Column::StartsAt.gt(now))
            .filter(meetup::Column::ReminderSentAt.is_null())
            .order_by_asc(meetup::Column::StartsAt)
            .limit(BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut reminded = 0;
        for meetup_id in due {
            let txn = begin_write(&self.db).await?;
            let claimed = meetup::Entity::update_many()
                .col_expr(meetup::Column::ReminderSentAt, Expr::value(now))
                .filter(meetup::Column::Id.eq(meetup_id))
                .filter(meetup::Column::ReminderSentAt.is_null())
                .filter(meetup::Column::Status.eq(MeetupStatus::Scheduled.code()))
                .exec(&txn)
                .await?
                .rows_affected;
            if claimed == 0 {
                continue;
            }
            let Some(meetup) = meetup::Entity::find_by_id(meetup_id).one(&txn).await? else {
                continue;
            };
            let going: Vec<String> = rsvp::Entity::find()
                .select_only()
                .column(rsvp::Column::UserId)
                .filter(rsvp::Column::MeetupId.eq(meetup_id))
                .filter(rsvp::Column::Status.eq(RsvpStatus::Going.code()))
                .order_by_asc(rsvp::Column::GoingSince)
                .into_tuple()
                .all(&txn)
                .await?;
            events::enqueue(
                &txn,
                meetup.crew_id,
                &proto::MeetupReminderDue {
                    meetup: Some(wire::meetup_summary(&meetup)),
                    going_user_ids: going,
                },
            )
            .await?;
            txn.commit().await?;
            reminded += 1;
        }
        Ok(reminded)
    }

    async fn schedule_next(&self) -> Result<usize, Error> {
        let now = wire::now();
        let due: Vec<Uuid> = meetup::Entity::find()
            .select_only()
            .column(meetup::Column::Id)
            .filter(meetup::Column::Recurrence.eq(Recurrence::Weekly.code()))
            .filter(meetup::Column::StartsAt.lte(now))
            .filter(meetup::Column::SuccessorAt.is_null())
            .limit(BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut scheduled = 0;
        for meetup_id in due {
            let txn = begin_write(&self.db).await?;
            let claimed = meetup::Entity::update_many()
                .col_expr(meetup::Column::SuccessorAt, Expr::value(now))
                .filter(meetup::Column::Id.eq(meetup_id))
                .filter(meetup::Column::SuccessorAt.is_null())
                .exec(&txn)
                .await?
                .rows_affected;
            if claimed == 0 {
                continue;
            }
            let Some(current) = meetup::Entity::find_by_id(meetup_id).one(&txn).await? else {
                continue;
            };
            let starts_at = next_week(current.starts_at, &current.time_zone);
            let spec = MeetupSpec {
                title: current.title.clone(),
                description: current.description.clone(),
                starts_at,
                time_zone: current.time_zone.clone(),
                meeting_point: current.meeting_point.clone(),
                latitude: current.latitude,
                longitude: current.longitude,
                planned_distance_meters: u32::try_from(current.planned_distance_meters)
                    .unwrap_or(0),
                pace_groups: wire::pace_groups(&current.pace_groups),
                capacity: u32::try_from(current.capacity).unwrap_or(1),
                rsvp_deadline: starts_at - (current.starts_at - current.rsvp_deadline),
                members_only: current.members_only,
                recurrence: Recurrence::Weekly,
            };
            insert_meetup(&txn, current.crew_id, &current.created_by, &spec).await?;
            txn.commit().await?;
            scheduled += 1;
        }
        Ok(scheduled)
    }
}
