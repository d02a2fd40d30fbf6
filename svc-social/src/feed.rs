//! The crew feed: members' runs from svc-run's events (`feed_runs`), with kudos and comments.
//!
//! Privacy: a run enters the projection only as svc-run shared it (`VISIBILITY_CREWS` or
//! `VISIBILITY_PUBLIC`); a private run (or one whose visibility is unknown) is removed from it,
//! and an update to private removes it. Crew-mates see `CREWS` runs, anyone who may read the
//! crew sees `PUBLIC` ones. Runs in events carry no positions at all, so no start or end inside
//! a privacy zone can show.

use std::collections::HashMap;

use runmesh_platform::auth::Caller;
use runmesh_platform::db::begin_write;
use runmesh_proto::runmesh::run::v1 as run_proto;
use runmesh_proto::runmesh::social::v1 as proto;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};
use uuid::Uuid;

use crate::core::{Action, Social};
use crate::crews::{Page, next_token as page_token_after};
use crate::domain::{MemberState, PageSize, PageToken, RunVisibility, period};
use crate::error::Error;
use crate::events;
use crate::store::{feed_run, kudos, member, run_comment};
use crate::wire;

/// A feed run with whether the caller gave kudos.
#[derive(Debug, Clone)]
pub struct FeedItem {
    pub run: feed_run::Model,
    pub kudos_given: bool,
}

/// One member's totals.
#[derive(Debug, Clone, Default)]
pub struct MemberTotals {
    pub user_id: String,
    pub runs: u32,
    pub distance_meters: f64,
    pub moving_seconds: u64,
}

/// A crew's totals over a period.
#[derive(Debug, Clone)]
pub struct Totals {
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
    pub members: Vec<MemberTotals>,
}

fn run_visibility(visibility: run_proto::Visibility) -> RunVisibility {
    match visibility {
        run_proto::Visibility::Crews => RunVisibility::Crews,
        run_proto::Visibility::Public => RunVisibility::Public,
        // Unknown is treated as private: never more than the owner allowed.
        run_proto::Visibility::Private | run_proto::Visibility::Unspecified => {
            RunVisibility::Private
        }
    }
}

/// `RunRecorded`/`RunUpdated`: the run as the feed shows it, or gone when private.
pub async fn project_run(txn: &DatabaseTransaction, run: &run_proto::Run) -> Result<(), DbErr> {
    let visibility = run_visibility(run.visibility());
    if visibility == RunVisibility::Private {
        feed_run::Entity::delete_by_id(run.run_id.clone())
            .exec(txn)
            .await?;
        return Ok(());
    }
    let seconds = |duration: &Option<prost_types::Duration>| {
        duration.as_ref().map_or(0, |d| std::cmp::max(d.seconds, 0))
    };
    let row = feed_run::ActiveModel {
        run_id: Set(run.run_id.clone()),
        owner_id: Set(run.owner_id.clone()),
        title: Set(run.title.chars().take(200).collect()),
        start_time: Set(run
            .start_time
            .as_ref()
            .and_then(wire::from_timestamp)
            .unwrap_or_else(wire::now)),
        distance_meters: Set(run.distance_meters),
        elapsed_seconds: Set(seconds(&run.elapsed_time)),
        moving_seconds: Set(seconds(&run.moving_time)),
        pace_seconds_per_km: Set(run.average_pace_seconds_per_km),
        visibility: Set(visibility.code().to_owned()),
        kudos_count: Set(0),
        comment_count: Set(0),
        updated_at: Set(wire::now()),
    };
    feed_run::Entity::insert(row)
        .on_conflict(
            OnConflict::column(feed_run::Column::RunId)
                .update_columns([
                    feed_run::Column::Title,
                    feed_run::Column::StartTime,
                    feed_run::Column::DistanceMeters,
                    feed_run::Column::ElapsedSeconds,
                    feed_run::Column::MovingSeconds,
                    feed_run::Column::PaceSecondsPerKm,
                    feed_run::Column::Visibility,
                    feed_run::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// `RunDeleted`: the run, its kudos and comments are gone.
pub async fn forget_run(txn: &DatabaseTransaction, run_id: &str) -> Result<(), DbErr> {
    feed_run::Entity::delete_by_id(run_id.to_owned())
        .exec(txn)
        .await?;
    kudos::Entity::delete_many()
        .filter(kudos::Column::RunId.eq(run_id))
        .exec(txn)
        .await?;
    run_comment::Entity::delete_many()
        .filter(run_comment::Column::RunId.eq(run_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// The members of `crew_id`, as a subquery.
fn members_of(crew_id: Uuid) -> sea_orm::sea_query::SelectStatement {
    member::Entity::find()
        .select_only()
        .column(member::Column::UserId)
        .filter(member::Column::CrewId.eq(crew_id))
        .filter(member::Column::State.eq(MemberState::Member.code()))
        .into_query()
}

impl Social {
    /// The visibilities the caller sees in `crew_id`'s feed.
    async fn feed_scope(&self, caller: &Caller, crew_id: Uuid) -> Result<Vec<&'static str>, Error> {
        let view = self.readable_crew(&self.db, caller, crew_id).await?;
        Ok(if view.standing.is_member() {
            vec![RunVisibility::Crews.code(), RunVisibility::Public.code()]
        } else {
            vec![RunVisibility::Public.code()]
        })
    }

    /// Members' runs, newest first.
    pub async fn crew_feed(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<Page<FeedItem>, Error> {
        let scope = self.feed_scope(caller, crew_id).await?;
        let mut query = feed_run::Entity::find()
            .filter(feed_run::Column::OwnerId.in_subquery(members_of(crew_id)))
            .filter(feed_run::Column::Visibility.is_in(scope));
        if let Some(after) = after {
            let at = wire::from_micros(after.sort_key);
            query = query.filter(
                Condition::any()
                    .add(feed_run::Column::StartTime.lt(at))
                    .add(
                        Condition::all()
                            .add(feed_run::Column::StartTime.eq(at))
                            .add(feed_run::Column::RunId.lt(after.id)),
                    ),
            );
        }
        let runs = query
            .order_by_desc(feed_run::Column::StartTime)
            .order_by_desc(feed_run::Column::RunId)
            .limit(size.0)
            .all(&self.db)
            .await?;
        let next = page_token_after(&runs, size.0, |run| {
            PageToken::after(run.start_time.timestamp_micros(), run.run_id.clone())
        });
        let given: Vec<String> = kudos::Entity::find()
            .select_only()
            .column(kudos::Column::RunId)
            .filter(kudos::Column::UserId.eq(&caller.user_id))
            .filter(kudos::Column::RunId.is_in(runs.iter().map(|run| run.run_id.clone())))
            .into_tuple()
            .all(&self.db)
            .await?;
        let items = runs
            .into_iter()
            .map(|run| FeedItem {
                kudos_given: given.contains(&run.run_id),
                run,
            })
            .collect();
        Ok((items, next))
    }

    /// A run the caller sees in some feed: their own, a public one, or a crew-mate's shared with
    /// crews. `RUN_NOT_FOUND` otherwise.
    async fn visible_run(
        &self,
        conn: &impl ConnectionTrait,
        caller: &Caller,
        run_id: &str,
    ) -> Result<feed_run::Model, Error> {
        let not_found = || Error::RunNotFound(run_id.to_owned());
        let run = feed_run::Entity::find_by_id(run_id.to_owned())
            .one(conn)
            .await?
            .ok_or_else(not_found)?;
        if run.owner_id == caller.user_id || run.visibility == RunVisibility::Public.code() {
            return Ok(run);
        }
        if run.visibility != RunVisibility::Crews.code() {
            return Err(not_found());
        }
        let mates = member::Entity::find()
            .filter(member::Column::UserId.eq(&caller.user_id))
            .filter(member::Column::State.eq(MemberState::Member.code()))
            .filter(
                member::Column::CrewId.in_subquery(
                    member::Entity::find()
                        .select_only()
                        .column(member::Column::CrewId)
                        .filter(member::Column::UserId.eq(&run.owner_id))
                        .filter(member::Column::State.eq(MemberState::Member.code()))
                        .into_query(),
                ),
            )
            .one(conn)
            .await?;
        if mates.is_none() {
            return Err(not_found());
        }
        Ok(run)
    }

    /// Kudos once per runner; answers the run's count.
    pub async fn give_kudos(&self, caller: &Caller, run_id: &str) -> Result<u32, Error> {
        let txn = begin_write(&self.db).await?;
        self.visible_run(&txn, caller, run_id).await?;
        let inserted = kudos::Entity::insert(kudos::ActiveModel {
            run_id: Set(run_id.to_owned()),
            user_id: Set(caller.user_id.clone()),
            created_at: Set(wire::now()),
        })
        .on_conflict(
            OnConflict::columns([kudos::Column::RunId, kudos::Column::UserId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted > 0 {
            feed_run::Entity::update_many()
                .col_expr(
                    feed_run::Column::KudosCount,
                    Expr::col(feed_run::Column::KudosCount).add(1),
                )
                .filter(feed_run::Column::RunId.eq(run_id))
                .exec(&txn)
                .await?;
        }
        let run = feed_run::Entity::find_by_id(run_id.to_owned())
            .one(&txn)
            .await?
            .ok_or_else(|| Error::RunNotFound(run_id.to_owned()))?;
        txn.commit().await?;
        Ok(u32::try_from(run.kudos_count).unwrap_or(0))
    }

    pub async fn comment_on_run(
        &self,
        caller: &Caller,
        run_id: &str,
        body: String,
    ) -> Result<run_comment::Model, Error> {
        self.rate_limit(caller, Action::Comment).await?;
        let txn = begin_write(&self.db).await?;
        let run = self.visible_run(&txn, caller, run_id).await?;
        let now = wire::now();
        let comment = run_comment::ActiveModel {
            id: Set(Uuid::now_v7()),
            run_id: Set(run_id.to_owned()),
            author_id: Set(caller.user_id.clone()),
            body: Set(body),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        feed_run::Entity::update_many()
            .col_expr(
                feed_run::Column::CommentCount,
                Expr::col(feed_run::Column::CommentCount).add(1),
            )
            .filter(feed_run::Column::RunId.eq(run_id))
            .exec(&txn)
            .await?;
        events::enqueue_keyed(
            &txn,
            run_id,
            &proto::CommentCreated {
                crew_id: String::new(),
                target_kind: proto::CommentTargetKind::Run.into(),
                target_id: run_id.to_owned(),
                comment_id: comment.id.to_string(),
                author_id: caller.user_id.clone(),
                target_owner_id: run.owner_id,
                parent_author_id: String::new(),
                created_at: Some(wire::timestamp(now)),
            },
        )
        .await?;
        txn.commit().await?;
        self.wake();
        Ok(comment)
    }

    pub async fn list_run_comments(
        &self,
        caller: &Caller,
        run_id: &str,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<Page<run_comment::Model>, Error> {
        self.visible_run(&self.db, caller, run_id).await?;
        let mut query = run_comment::Entity::find().filter(run_comment::Column::RunId.eq(run_id));
        if let Some(after) = after {
            let id = Uuid::parse_str(&after.id).unwrap_or_default();
            query = query.filter(run_comment::Column::Id.gt(id));
        }
        let rows = query
            .order_by_asc(run_comment::Column::Id)
            .limit(size.0)
            .all(&self.db)
            .await?;
        let next = page_token_after(&rows, size.0, |row| PageToken::after(0, row.id.to_string()));
        Ok((rows, next))
    }

    /// The crew's totals for the current week or month over the runs the caller may see.
    pub async fn crew_totals(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        month: bool,
    ) -> Result<Totals, Error> {
        let scope = self.feed_scope(caller, crew_id).await?;
        let (start, end) = period(wire::now(), month);
        let rows: Vec<(String, f64, i64)> = feed_run::Entity::find()
            .select_only()
            .column(feed_run::Column::OwnerId)
            .column(feed_run::Column::DistanceMeters)
            .column(feed_run::Column::MovingSeconds)
            .filter(feed_run::Column::OwnerId.in_subquery(members_of(crew_id)))
            .filter(feed_run::Column::Visibility.is_in(scope))
            .filter(feed_run::Column::StartTime.gte(start))
            .filter(feed_run::Column::StartTime.lt(end))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut by_member: HashMap<String, MemberTotals> = HashMap::new();
        for (owner, distance, moving) in rows {
            let entry = by_member
                .entry(owner.clone())
                .or_insert_with(|| MemberTotals {
                    user_id: owner,
                    ..MemberTotals::default()
                });
            entry.runs += 1;
            entry.distance_meters += distance;
            entry.moving_seconds += u64::try_from(moving).unwrap_or(0);
        }
        let mut members: Vec<MemberTotals> = by_member.into_values().collect();
        members.sort_by(|a, b| {
            b.distance_meters
                .total_cmp(&a.distance_meters)
                .then_with(|| a.user_id.cmp(&b.user_id))
        });
        Ok(Totals {
            start,
            end,
            members,
        })
    }
}
