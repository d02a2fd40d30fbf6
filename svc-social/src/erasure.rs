//! `UserDeleted`: what svc-social erases of a runner, in the consumer's transaction.
//!
//! - memberships end (`CrewMemberLeft`, `ACCOUNT_DELETED`); an owner's crew passes to its oldest
//!   admin, else its oldest member (`CrewMemberRoleChanged`), else it is archived;
//! - RSVPs are withdrawn (a place they held goes to the waitlist, in order);
//! - reactions, reports, kudos and their projected runs are deleted;
//! - posts and comments stay for the crew but lose their author: they show as a deleted member;
//! - the display name is deleted.

use runmesh_proto::runmesh::social::v1 as proto;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::crews::add_member_count;
use crate::domain::{CrewRole, MemberState};
use crate::error::Error;
use crate::store::{
    comment, crew, feed_run, kudos, meetup, member, post, profile, reaction, report, rsvp,
    run_comment,
};
use crate::{events, meetups, wire};

pub async fn erase_user(txn: &DatabaseTransaction, user_id: &str) -> Result<(), Error> {
    let memberships = member::Entity::find()
        .filter(member::Column::UserId.eq(user_id))
        .all(txn)
        .await?;
    for row in memberships {
        member::Entity::delete_by_id((row.crew_id, user_id.to_owned()))
            .exec(txn)
            .await?;
        if row.state != MemberState::Member.code() {
            continue;
        }
        add_member_count(txn, row.crew_id, -1).await?;
        events::enqueue(
            txn,
            row.crew_id,
            &events::member_left(row.crew_id, user_id, proto::CrewLeaveReason::AccountDeleted),
        )
        .await?;
        if row.role == CrewRole::Owner.code() {
            hand_over(txn, row.crew_id).await?;
        }
    }

    let answered: Vec<Uuid> = rsvp::Entity::find()
        .select_only()
        .column(rsvp::Column::MeetupId)
        .filter(rsvp::Column::UserId.eq(user_id))
        .into_tuple()
        .all(txn)
        .await?;
    for meetup_id in answered {
        meetups::withdraw(txn, meetup_id, user_id).await?;
    }

    reaction::Entity::delete_many()
        .filter(reaction::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    report::Entity::delete_many()
        .filter(report::Column::ReporterId.eq(user_id))
        .exec(txn)
        .await?;
    let kudos_runs: Vec<String> = kudos::Entity::find()
        .select_only()
        .column(kudos::Column::RunId)
        .filter(kudos::Column::UserId.eq(user_id))
        .into_tuple()
        .all(txn)
        .await?;
    for run_id in &kudos_runs {
        feed_run::Entity::update_many()
            .col_expr(
                feed_run::Column::KudosCount,
                Expr::col(feed_run::Column::KudosCount).sub(1),
            )
            .filter(feed_run::Column::RunId.eq(run_id))
            .exec(txn)
            .await?;
    }
    kudos::Entity::delete_many()
        .filter(kudos::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    let own_runs: Vec<String> = feed_run::Entity::find()
        .select_only()
        .column(feed_run::Column::RunId)
        .filter(feed_run::Column::OwnerId.eq(user_id))
        .into_tuple()
        .all(txn)
        .await?;
    for run_id in own_runs {
        crate::feed::forget_run(txn, &run_id).await?;
    }

    post::Entity::update_many()
        .col_expr(post::Column::AuthorId, Expr::value(""))
        .filter(post::Column::AuthorId.eq(user_id))
        .exec(txn)
        .await?;
    comment::Entity::update_many()
        .col_expr(comment::Column::AuthorId, Expr::value(""))
        .filter(comment::Column::AuthorId.eq(user_id))
        .exec(txn)
        .await?;
    run_comment::Entity::update_many()
        .col_expr(run_comment::Column::AuthorId, Expr::value(""))
        .filter(run_comment::Column::AuthorId.eq(user_id))
        .exec(txn)
        .await?;
    meetup::Entity::update_many()
        .col_expr(meetup::Column::CreatedBy, Expr::value(""))
        .filter(meetup::Column::CreatedBy.eq(user_id))
        .exec(txn)
        .await?;
    profile::Entity::delete_by_id(user_id.to_owned())
        .exec(txn)
        .await?;
    tracing::info!(%user_id, "erased a deleted runner's social data");
    Ok(())
}

/// The crew's new owner after its owner's account was deleted: the oldest admin, else the
/// oldest member; with nobody left the crew is archived.
async fn hand_over(txn: &DatabaseTransaction, crew_id: Uuid) -> Result<(), Error> {
    let mut heir = None;
    for role in [CrewRole::Admin, CrewRole::Member] {
        heir = member::Entity::find()
            .filter(member::Column::CrewId.eq(crew_id))
            .filter(member::Column::State.eq(MemberState::Member.code()))
            .filter(member::Column::Role.eq(role.code()))
            .order_by_asc(member::Column::Since)
            .order_by_asc(member::Column::UserId)
            .one(txn)
            .await?;
        if heir.is_some() {
            break;
        }
    }
    let now = wire::now();
    match heir {
        Some(heir) => {
            member::Entity::update_many()
                .col_expr(member::Column::Role, Expr::value(CrewRole::Owner.code()))
                .filter(member::Column::CrewId.eq(crew_id))
                .filter(member::Column::UserId.eq(&heir.user_id))
                .exec(txn)
                .await?;
            crew::Entity::update_many()
                .col_expr(crew::Column::OwnerId, Expr::value(heir.user_id.clone()))
                .col_expr(crew::Column::UpdatedAt, Expr::value(now))
                .filter(crew::Column::Id.eq(crew_id))
                .exec(txn)
                .await?;
            let previous = CrewRole::from_code(&heir.role).unwrap_or(CrewRole::Member);
            events::enqueue(
                txn,
                crew_id,
                &events::role_changed(crew_id, &heir.user_id, previous, CrewRole::Owner),
            )
            .await?;
        }
        None => {
            crew::Entity::update_many()
                .col_expr(crew::Column::ArchivedAt, Expr::value(now))
                .col_expr(crew::Column::OwnerId, Expr::value(""))
                .col_expr(crew::Column::UpdatedAt, Expr::value(now))
                .filter(crew::Column::Id.eq(crew_id))
                .exec(txn)
                .await?;
            if let Some(crew) = crew::Entity::find_by_id(crew_id).one(txn).await? {
                events::enqueue(
                    txn,
                    crew_id,
                    &proto::CrewUpdated {
                        crew: Some(wire::crew_summary(&crew)),
                        changed_fields: vec!["archived".to_owned()],
                    },
                )
                .await?;
            }
        }
    }
    Ok(())
}
