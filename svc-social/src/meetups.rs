//! Group runs: schedule, edit, cancel, list; RSVP with capacity and a waitlist.
//!
//! The invariants (never more GOING than capacity, the waitlist in arrival order, one answer per
//! runner) hold across any number of replicas sharing the database: every RSVP transaction
//! first bumps the meetup's `version` (`UPDATE … SET version = version + 1`), which takes the
//! meetup row's lock on PostgreSQL (SQLite's `BEGIN IMMEDIATE` serialises writers anyway), then
//! reads the counts and applies [`decide_rsvp`] under that lock. The answer's row is keyed by
//! (meetup, runner); waitlist sequence numbers come from the locked row's `next_seq` and are
//! unique per meetup. Promotions take the lowest sequence number first.

use chrono::{DateTime, Utc};
use runmesh_platform::auth::Caller;
use runmesh_platform::db::begin_write;
use runmesh_proto::runmesh::social::v1 as proto;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::core::{CrewView, Social, require_role};
use crate::crews::{Page, next_token as page_token_after};
use crate::domain::{
    CrewRole, MeetupStatus, PageSize, PageToken, Recurrence, RsvpStatus, Standing, decide_rsvp,
};
use crate::error::Error;
use crate::events;
use crate::store::{meetup, rsvp};
use crate::wire;

/// A meetup's fields, validated.
#[derive(Debug, Clone)]
pub struct MeetupSpec {
    pub title: String,
    pub description: String,
    pub starts_at: DateTime<Utc>,
    pub time_zone: String,
    pub meeting_point: String,
    pub latitude: f64,
    pub longitude: f64,
    pub planned_distance_meters: u32,
    pub pace_groups: Vec<String>,
    pub capacity: u32,
    pub rsvp_deadline: DateTime<Utc>,
    pub members_only: bool,
    pub recurrence: Recurrence,
}

/// The fields `UpdateMeetup` sets, validated.
#[derive(Debug, Clone, Default)]
pub struct MeetupChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub meeting_point: Option<(String, f64, f64)>,
    pub planned_distance_meters: Option<u32>,
    pub pace_groups: Option<Vec<String>>,
    pub capacity: Option<u32>,
    pub rsvp_deadline: Option<DateTime<Utc>>,
    pub members_only: Option<bool>,
}

/// A meetup with the caller's answer.
#[derive(Debug, Clone)]
pub struct MeetupView {
    pub meetup: meetup::Model,
    pub mine: Option<(RsvpStatus, u32)>,
}

/// Going and waitlisted runners, in order.
#[derive(Debug, Clone, Default)]
pub struct Attendance {
    pub going: Vec<rsvp::Model>,
    pub waitlist: Vec<rsvp::Model>,
}

impl Social {
    pub async fn create_meetup(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        spec: MeetupSpec,
    ) -> Result<MeetupView, Error> {
        let txn = begin_write(&self.db).await?;
        self.managed_crew(&txn, caller, crew_id).await?;
        let meetup = insert_meetup(&txn, crew_id, &caller.user_id, &spec).await?;
        txn.commit().await?;
        self.wake();
        Ok(MeetupView { meetup, mine: None })
    }

    /// The meetup and its crew as the caller sees them; `MEETUP_NOT_FOUND` when hidden.
    async fn readable_meetup(
        &self,
        conn: &impl ConnectionTrait,
        caller: &Caller,
        meetup_id: Uuid,
    ) -> Result<(meetup::Model, CrewView), Error> {
        let not_found = || Error::MeetupNotFound(meetup_id.to_string());
        let meetup = meetup::Entity::find_by_id(meetup_id)
            .one(conn)
            .await?
            .ok_or_else(not_found)?;
        let view = self
            .readable_crew(conn, caller, meetup.crew_id)
            .await
            .map_err(|err| match err {
                Error::CrewNotFound(_) => not_found(),
                other => other,
            })?;
        Ok((meetup, view))
    }

    pub async fn update_meetup(
        &self,
        caller: &Caller,
        meetup_id: Uuid,
        changes: MeetupChanges,
    ) -> Result<MeetupView, Error> {
        let txn = begin_write(&self.db).await?;
        lock(&txn, meetup_id).await?;
        let (meetup, view) = self.readable_meetup(&txn, caller, meetup_id).await?;
        require_role(&view, CrewRole::Admin)?;
        if meetup.status == MeetupStatus::Cancelled.code() {
            return Err(Error::MeetupCancelled);
        }
        let starts_at = changes.starts_at.unwrap_or(meetup.starts_at);
        let deadline = changes.rsvp_deadline.unwrap_or(meetup.rsvp_deadline);
        if deadline > starts_at {
            return Err(Error::invalid(
                "rsvp_deadline",
                "must not be after starts_at",
            ));
        }
        let going = u32::try_from(meetup.going_count).unwrap_or(0);
        if let Some(capacity) = changes.capacity
            && capacity < going
        {
            return Err(Error::CapacityBelowGoing { going });
        }
        let mut active: meetup::ActiveModel = meetup.clone().into();
        if let Some(title) = changes.title {
            active.title = Set(title);
        }
        if let Some(description) = changes.description {
            active.description = Set(description);
        }
        if let Some((name, latitude, longitude)) = changes.meeting_point {
            active.meeting_point = Set(name);
            active.latitude = Set(latitude);
            active.longitude = Set(longitude);
        }
        if let Some(distance) = changes.planned_distance_meters {
            active.planned_distance_meters = Set(i32::try_from(distance).unwrap_or(i32::MAX));
        }
        if let Some(groups) = changes.pace_groups {
            active.pace_groups = Set(groups.join("\n"));
        }
        if let Some(members_only) = changes.members_only {
            active.members_only = Set(members_only);
        }
        if starts_at != meetup.starts_at {
            active.starts_at = Set(starts_at);
            // A moved meetup is reminded again.
            active.reminder_sent_at = Set(None);
        }
        active.rsvp_deadline = Set(deadline);
        if let Some(capacity) = changes.capacity {
            active.capacity = Set(i32::try_from(capacity).unwrap_or(i32::MAX));
        }
        active.updated_at = Set(wire::now());
        let mut meetup = active.update(&txn).await?;
        let free = meetup.capacity - meetup.going_count;
        if free > 0 && meetup.waitlist_count > 0 {
            meetup = promote(&txn, meetup, free).await?;
        }
        let mine = my_rsvp(&txn, meetup_id, &caller.user_id).await?;
        txn.commit().await?;
        self.wake();
        Ok(MeetupView { meetup, mine })
    }

    /// Cancels; everyone going or waitlisted is named in `MeetupCancelled`.
    pub async fn cancel_meetup(
        &self,
        caller: &Caller,
        meetup_id: Uuid,
        reason: String,
    ) -> Result<MeetupView, Error> {
        let txn = begin_write(&self.db).await?;
        lock(&txn, meetup_id).await?;
        let (meetup, view) = self.readable_meetup(&txn, caller, meetup_id).await?;
        require_role(&view, CrewRole::Admin)?;
        if meetup.status == MeetupStatus::Cancelled.code() {
            return Err(Error::MeetupCancelled);
        }
        let now = wire::now();
        let mut active: meetup::ActiveModel = meetup.into();
        active.status = Set(MeetupStatus::Cancelled.code().to_owned());
        active.cancel_reason = Set(reason.clone());
        active.updated_at = Set(now);
        let meetup = active.update(&txn).await?;
        let notified: Vec<String> = rsvp::Entity::find()
            .select_only()
            .column(rsvp::Column::UserId)
            .filter(rsvp::Column::MeetupId.eq(meetup_id))
            .filter(
                rsvp::Column::Status
                    .is_in([RsvpStatus::Going.code(), RsvpStatus::Waitlisted.code()]),
            )
            .order_by_asc(rsvp::Column::UserId)
            .into_tuple()
            .all(&txn)
            .await?;
        events::enqueue(
            &txn,
            meetup.crew_id,
            &proto::MeetupCancelled {
                meetup: Some(wire::meetup_summary(&meetup)),
                reason,
                notified_user_ids: notified,
                cancelled_at: Some(wire::timestamp(now)),
            },
        )
        .await?;
        let mine = my_rsvp(&txn, meetup_id, &caller.user_id).await?;
        txn.commit().await?;
        self.wake();
        Ok(MeetupView { meetup, mine })
    }

    /// The crew's meetups by start time (upcoming ones unless `include_past`).
    pub async fn list_meetups(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        include_past: bool,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<Page<MeetupView>, Error> {
        self.readable_crew(&self.db, caller, crew_id).await?;
        let mut query = meetup::Entity::find().filter(meetup::Column::CrewId.eq(crew_id));
        if !include_past {
            query = query.filter(meetup::Column::StartsAt.gte(wire::now()));
        }
        if let Some(after) = after {
            let at = wire::from_micros(after.sort_key);
            let id = Uuid::parse_str(&after.id).unwrap_or_default();
            query = query.filter(
                Condition::any().add(meetup::Column::StartsAt.gt(at)).add(
                    Condition::all()
                        .add(meetup::Column::StartsAt.eq(at))
                        .add(meetup::Column::Id.gt(id)),
                ),
            );
        }
        let meetups = query
            .order_by_asc(meetup::Column::StartsAt)
            .order_by_asc(meetup::Column::Id)
            .limit(size.0)
            .all(&self.db)
            .await?;
        let next = page_token_after(&meetups, size.0, |meetup| {
            PageToken::after(meetup.starts_at.timestamp_micros(), meetup.id.to_string())
        });
        let mut views = Vec::with_capacity(meetups.len());
        for meetup in meetups {
            let mine = my_rsvp(&self.db, meetup.id, &caller.user_id).await?;
            views.push(MeetupView { meetup, mine });
        }
        Ok((views, next))
    }

    pub async fn get_meetup(
        &self,
        caller: &Caller,
        meetup_id: Uuid,
    ) -> Result<(MeetupView, Attendance), Error> {
        let (meetup, _) = self.readable_meetup(&self.db, caller, meetup_id).await?;
        let mine = my_rsvp(&self.db, meetup_id, &caller.user_id).await?;
        let attendance = attendance(&self.db, meetup_id).await?;
        Ok((MeetupView { meetup, mine }, attendance))
    }

    /// A meetup the caller may watch, read fresh (for [`crate::watch`]).
    pub async fn watchable_meetup(
        &self,
        caller: &Caller,
        meetup_id: Uuid,
    ) -> Result<meetup::Model, Error> {
        Ok(self.readable_meetup(&self.db, caller, meetup_id).await?.0)
    }

    /// Answers going or not going; the caller's resulting status and waitlist position.
    pub async fn rsvp(
        &self,
        caller: &Caller,
        meetup_id: Uuid,
        going: bool,
    ) -> Result<MeetupView, Error> {
        // Who may answer is checked first, outside the meetup's lock.
        let (seen, view) = self.readable_meetup(&self.db, caller, meetup_id).await?;
        match view.standing {
            Standing::Banned => return Err(Error::Banned),
            Standing::Member(_) => {}
            Standing::None | Standing::Requested if seen.members_only => {
                return Err(Error::MembersOnly);
            }
            Standing::None | Standing::Requested => {}
        }
        if view.crew.archived_at.is_some() {
            return Err(Error::CrewArchived);
        }
        // The same answer again changes nothing whatever the counts: answered without the lock.
        let current = rsvp::Entity::find_by_id((meetup_id, caller.user_id.clone()))
            .one(&self.db)
            .await?
            .and_then(|row| RsvpStatus::from_code(&row.status));
        if decide_rsvp(current, going, 0, 0).unchanged
            && seen.status != MeetupStatus::Cancelled.code()
        {
            if now_past(seen.rsvp_deadline) {
                return Err(Error::RsvpClosed);
            }
            let mine = my_rsvp(&self.db, meetup_id, &caller.user_id).await?;
            return Ok(MeetupView { meetup: seen, mine });
        }
        let _queue = self.rsvp_queue(meetup_id).await;
        let txn = begin_write(&self.db).await?;
        lock(&txn, meetup_id).await?;
        let meetup = meetup::Entity::find_by_id(meetup_id)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::MeetupNotFound(meetup_id.to_string()))?;
        if meetup.status == MeetupStatus::Cancelled.code() {
            return Err(Error::MeetupCancelled);
        }
        let now = wire::now();
        if now > meetup.rsvp_deadline {
            return Err(Error::RsvpClosed);
        }
        let current = rsvp::Entity::find_by_id((meetup_id, caller.user_id.clone()))
            .one(&txn)
            .await?;
        let previous = current
            .as_ref()
            .and_then(|row| RsvpStatus::from_code(&row.status));
        let outcome = decide_rsvp(
            previous,
            going,
            u32::try_from(meetup.going_count).unwrap_or(0),
            u32::try_from(meetup.capacity).unwrap_or(0),
        );
        if outcome.unchanged {
            // Nothing to write: the version bump is rolled back with the transaction.
            let mine = my_rsvp(&txn, meetup_id, &caller.user_id).await?;
            drop(txn);
            return Ok(MeetupView { meetup, mine });
        }
        let mut meetup = meetup;
        let mut next = meetup::ActiveModel::from(meetup.clone());
        let (mut going_count, mut waitlist_count) = (meetup.going_count, meetup.waitlist_count);
        match previous {
            Some(RsvpStatus::Going) => going_count -= 1,
            Some(RsvpStatus::Waitlisted) => waitlist_count -= 1,
            _ => {}
        }
        let (seq, going_since) = match outcome.status {
            RsvpStatus::Going => {
                going_count += 1;
                (None, Some(now))
            }
            RsvpStatus::Waitlisted => {
                waitlist_count += 1;
                next.next_seq = Set(meetup.next_seq + 1);
                (Some(meetup.next_seq), None)
            }
            RsvpStatus::NotGoing => (None, None),
        };
        rsvp::Entity::insert(rsvp::ActiveModel {
            meetup_id: Set(meetup_id),
            user_id: Set(caller.user_id.clone()),
            status: Set(outcome.status.code().to_owned()),
            seq: Set(seq),
            going_since: Set(going_since),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([rsvp::Column::MeetupId, rsvp::Column::UserId])
                .update_columns([
                    rsvp::Column::Status,
                    rsvp::Column::Seq,
                    rsvp::Column::GoingSince,
                    rsvp::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        next.going_count = Set(going_count);
        next.waitlist_count = Set(waitlist_count);
        next.updated_at = Set(now);
        meetup = next.update(&txn).await?;
        if outcome.frees_place && meetup.waitlist_count > 0 {
            meetup = promote(&txn, meetup, 1).await?;
        }
        // A runner who just joined the line is last in it; nobody else moves.
        let position = match outcome.status {
            RsvpStatus::Waitlisted => u32::try_from(meetup.waitlist_count).unwrap_or(0),
            RsvpStatus::Going | RsvpStatus::NotGoing => 0,
        };
        let mine = Some((outcome.status, position));
        events::enqueue(
            &txn,
            meetup.crew_id,
            &proto::MeetupRsvpChanged {
                meetup_id: meetup_id.to_string(),
                crew_id: meetup.crew_id.to_string(),
                user_id: caller.user_id.clone(),
                previous_status: wire::event_rsvp(previous).into(),
                status: wire::event_rsvp(Some(outcome.status)).into(),
                waitlist_position: mine.map_or(0, |(_, position)| position),
                changed_at: Some(wire::timestamp(now)),
            },
        )
        .await?;
        txn.commit().await?;
        self.wake();
        Ok(MeetupView { meetup, mine })
    }
}

fn now_past(deadline: chrono::DateTime<Utc>) -> bool {
    wire::now() > deadline
}

/// Bumps the meetup's version: the row lock every change of its RSVPs holds (and what watchers
/// compare). `MEETUP_NOT_FOUND` when there is no such meetup.
pub(crate) async fn lock(conn: &impl ConnectionTrait, meetup_id: Uuid) -> Result<(), Error> {
    let updated = meetup::Entity::update_many()
        .col_expr(
            meetup::Column::Version,
            Expr::col(meetup::Column::Version).add(1),
        )
        .filter(meetup::Column::Id.eq(meetup_id))
        .exec(conn)
        .await?
        .rows_affected;
    if updated == 0 {
        return Err(Error::MeetupNotFound(meetup_id.to_string()));
    }
    Ok(())
}

/// Promotes up to `places` waitlisted runners, lowest sequence number first (`MeetupPromoted`
/// each). Under the meetup's lock.
pub(crate) async fn promote(
    txn: &DatabaseTransaction,
    meetup: meetup::Model,
    places: i32,
) -> Result<meetup::Model, Error> {
    let line = rsvp::Entity::find()
        .filter(rsvp::Column::MeetupId.eq(meetup.id))
        .filter(rsvp::Column::Status.eq(RsvpStatus::Waitlisted.code()))
        .order_by_asc(rsvp::Column::Seq)
        .limit(u64::try_from(std::cmp::max(places, 0)).unwrap_or(0))
        .all(txn)
        .await?;
    if line.is_empty() {
        return Ok(meetup);
    }
    let now = wire::now();
    let promoted = i32::try_from(line.len()).unwrap_or(i32::MAX);
    for row in &line {
        rsvp::Entity::update_many()
            .col_expr(rsvp::Column::Status, Expr::value(RsvpStatus::Going.code()))
            .col_expr(rsvp::Column::GoingSince, Expr::value(now))
            .col_expr(rsvp::Column::UpdatedAt, Expr::value(now))
            .filter(rsvp::Column::MeetupId.eq(meetup.id))
            .filter(rsvp::Column::UserId.eq(&row.user_id))
            .exec(txn)
            .await?;
        events::enqueue(
            txn,
            meetup.crew_id,
            &proto::MeetupPromoted {
                meetup_id: meetup.id.to_string(),
                crew_id: meetup.crew_id.to_string(),
                user_id: row.user_id.clone(),
                promoted_at: Some(wire::timestamp(now)),
            },
        )
        .await?;
    }
    let mut active = meetup::ActiveModel::from(meetup.clone());
    active.going_count = Set(meetup.going_count + promoted);
    active.waitlist_count = Set(meetup.waitlist_count - promoted);
    Ok(active.update(txn).await?)
}

/// Takes back a runner's answers to the crew's upcoming members-only meetups: they left the
/// crew (or were removed), so the place goes to the waitlist.
pub(crate) async fn withdraw_from_members_only(
    txn: &DatabaseTransaction,
    crew_id: Uuid,
    user_id: &str,
) -> Result<(), Error> {
    let upcoming: Vec<Uuid> = meetup::Entity::find()
        .select_only()
        .column(meetup::Column::Id)
        .filter(meetup::Column::CrewId.eq(crew_id))
        .filter(meetup::Column::MembersOnly.eq(true))
        .filter(meetup::Column::Status.eq(MeetupStatus::Scheduled.code()))
        .filter(meetup::Column::StartsAt.gt(wire::now()))
        .into_tuple()
        .all(txn)
        .await?;
    if upcoming.is_empty() {
        return Ok(());
    }
    let answered: Vec<Uuid> = rsvp::Entity::find()
        .select_only()
        .column(rsvp::Column::MeetupId)
        .filter(rsvp::Column::UserId.eq(user_id))
        .filter(rsvp::Column::MeetupId.is_in(upcoming))
        .into_tuple()
        .all(txn)
        .await?;
    for meetup_id in answered {
        withdraw(txn, meetup_id, user_id).await?;
    }
    Ok(())
}

/// Takes back a runner's answer (their account is gone), promoting the waitlist when they were
/// going.
pub(crate) async fn withdraw(
    txn: &DatabaseTransaction,
    meetup_id: Uuid,
    user_id: &str,
) -> Result<(), Error> {
    lock(txn, meetup_id).await?;
    let Some(row) = rsvp::Entity::find_by_id((meetup_id, user_id.to_owned()))
        .one(txn)
        .await?
    else {
        return Ok(());
    };
    let Some(meetup) = meetup::Entity::find_by_id(meetup_id).one(txn).await? else {
        return Ok(());
    };
    rsvp::Entity::delete_by_id((meetup_id, user_id.to_owned()))
        .exec(txn)
        .await?;
    let mut active = meetup::ActiveModel::from(meetup.clone());
    match RsvpStatus::from_code(&row.status) {
        Some(RsvpStatus::Going) => {
            active.going_count = Set(meetup.going_count - 1);
            let meetup = active.update(txn).await?;
            if meetup.status == MeetupStatus::Scheduled.code() && meetup.waitlist_count > 0 {
                promote(txn, meetup, 1).await?;
            }
        }
        Some(RsvpStatus::Waitlisted) => {
            active.waitlist_count = Set(meetup.waitlist_count - 1);
            active.update(txn).await?;
        }
        _ => {}
    }
    Ok(())
}

/// The caller's status and (when waitlisted) 1-based position.
pub(crate) async fn my_rsvp(
    conn: &impl ConnectionTrait,
    meetup_id: Uuid,
    user_id: &str,
) -> Result<Option<(RsvpStatus, u32)>, Error> {
    let Some(row) = rsvp::Entity::find_by_id((meetup_id, user_id.to_owned()))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let Some(status) = RsvpStatus::from_code(&row.status) else {
        return Ok(None);
    };
    let position = match (status, row.seq) {
        (RsvpStatus::Waitlisted, Some(seq)) => {
            rsvp::Entity::find()
                .filter(rsvp::Column::MeetupId.eq(meetup_id))
                .filter(rsvp::Column::Status.eq(RsvpStatus::Waitlisted.code()))
                .filter(rsvp::Column::Seq.lte(seq))
                .count(conn)
                .await?
        }
        _ => 0,
    };
    Ok(Some((status, u32::try_from(position).unwrap_or(u32::MAX))))
}

/// Going (in the order places were taken) and the waitlist (in line).
pub(crate) async fn attendance(
    conn: &impl ConnectionTrait,
    meetup_id: Uuid,
) -> Result<Attendance, Error> {
    let going = rsvp::Entity::find()
        .filter(rsvp::Column::MeetupId.eq(meetup_id))
        .filter(rsvp::Column::Status.eq(RsvpStatus::Going.code()))
        .order_by_asc(rsvp::Column::GoingSince)
        .order_by_asc(rsvp::Column::UserId)
        .all(conn)
        .await?;
    let waitlist = rsvp::Entity::find()
        .filter(rsvp::Column::MeetupId.eq(meetup_id))
        .filter(rsvp::Column::Status.eq(RsvpStatus::Waitlisted.code()))
        .order_by_asc(rsvp::Column::Seq)
        .all(conn)
        .await?;
    Ok(Attendance { going, waitlist })
}

/// Writes a meetup and its `MeetupScheduled`.
pub(crate) async fn insert_meetup(
    txn: &DatabaseTransaction,
    crew_id: Uuid,
    created_by: &str,
    spec: &MeetupSpec,
) -> Result<meetup::Model, Error> {
    let now = wire::now();
    let meetup = meetup::ActiveModel {
        id: Set(Uuid::now_v7()),
        crew_id: Set(crew_id),
        created_by: Set(created_by.to_owned()),
        title: Set(spec.title.clone()),
        description: Set(spec.description.clone()),
        starts_at: Set(spec.starts_at),
        time_zone: Set(spec.time_zone.clone()),
        meeting_point: Set(spec.meeting_point.clone()),
        latitude: Set(spec.latitude),
        longitude: Set(spec.longitude),
        planned_distance_meters: Set(i32::try_from(spec.planned_distance_meters).unwrap_or(0)),
        pace_groups: Set(spec.pace_groups.join("\n")),
        capacity: Set(i32::try_from(spec.capacity).unwrap_or(i32::MAX)),
        rsvp_deadline: Set(spec.rsvp_deadline),
        members_only: Set(spec.members_only),
        recurrence: Set(spec.recurrence.code().to_owned()),
        status: Set(MeetupStatus::Scheduled.code().to_owned()),
        cancel_reason: Set(String::new()),
        going_count: Set(0),
        waitlist_count: Set(0),
        next_seq: Set(1),
        version: Set(0),
        reminder_sent_at: Set(None),
        successor_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await?;
    events::enqueue(
        txn,
        crew_id,
        &proto::MeetupScheduled {
            meetup: Some(wire::meetup_summary(&meetup)),
            created_by: created_by.to_owned(),
        },
    )
    .await?;
    Ok(meetup)
}
