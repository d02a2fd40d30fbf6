//! svc-social's events: the crew and meetup facts kept to name them in messages and to know a
//! crew's members, and the notifications of meetups, comments and join requests.

use chrono::{DateTime, Utc};
use prost::Name;
use runmesh_platform::events::EnvelopeExt;
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::social::v1 as social;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QuerySelect, Set,
};

use crate::domain::Category;
use crate::notify::planner::Planned;
use crate::store::{crew, crew_member, meetup};

fn time(at: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    at.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
}

/// Projection updates; `true` when the event was one.
pub async fn project(txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<bool> {
    let ty = envelope.r#type.as_str();
    if ty == social::CrewCreated::full_name() {
        if let Some(summary) = envelope.unpack::<social::CrewCreated>()?.crew {
            upsert_crew(txn, &summary).await?;
        }
    } else if ty == social::CrewUpdated::full_name() {
        if let Some(summary) = envelope.unpack::<social::CrewUpdated>()?.crew {
            upsert_crew(txn, &summary).await?;
        }
    } else if ty == social::CrewMemberJoined::full_name() {
        let event = envelope.unpack::<social::CrewMemberJoined>()?;
        crew_member::Entity::insert(crew_member::ActiveModel {
            crew_id: Set(event.crew_id),
            user_id: Set(event.user_id),
        })
        .on_conflict(
            OnConflict::columns([crew_member::Column::CrewId, crew_member::Column::UserId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    } else if ty == social::CrewMemberLeft::full_name() {
        let event = envelope.unpack::<social::CrewMemberLeft>()?;
        crew_member::Entity::delete_many()
            .filter(crew_member::Column::CrewId.eq(event.crew_id))
            .filter(crew_member::Column::UserId.eq(event.user_id))
            .exec(txn)
            .await?;
    } else {
        return Ok(false);
    }
    Ok(true)
}

async fn upsert_crew(
    txn: &DatabaseTransaction,
    summary: &social::CrewSummary,
) -> Result<(), DbErr> {
    crew::Entity::insert(crew::ActiveModel {
        crew_id: Set(summary.crew_id.clone()),
        name: Set(summary.name.chars().take(200).collect()),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(crew::Column::CrewId)
            .update_columns([crew::Column::Name, crew::Column::UpdatedAt])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

async fn upsert_meetup(
    txn: &DatabaseTransaction,
    summary: &social::MeetupSummary,
) -> Result<(), DbErr> {
    meetup::Entity::insert(meetup::ActiveModel {
        meetup_id: Set(summary.meetup_id.clone()),
        crew_id: Set(summary.crew_id.clone()),
        title: Set(summary.title.chars().take(200).collect()),
        starts_at: Set(time(summary.starts_at)),
        meeting_point: Set(summary.meeting_point_name.chars().take(200).collect()),
    })
    .on_conflict(
        OnConflict::column(meetup::Column::MeetupId)
            .update_columns([
                meetup::Column::Title,
                meetup::Column::StartsAt,
                meetup::Column::MeetingPoint,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

async fn crew_name(txn: &DatabaseTransaction, crew_id: &str) -> Result<String, DbErr> {
    Ok(crew::Entity::find_by_id(crew_id.to_owned())
        .one(txn)
        .await?
        .map(|c| c.name)
        .unwrap_or_default())
}

/// A meetup's notification with its facts.
async fn meetup_plan(
    txn: &DatabaseTransaction,
    kind: &'static str,
    summary: &social::MeetupSummary,
    recipients: Vec<String>,
) -> Result<Planned, DbErr> {
    let crew_name = crew_name(txn, &summary.crew_id).await?;
    let starts_at = time(summary.starts_at);
    Ok(Planned::new(kind, Category::CrewActivity, recipients)
        .value("title", summary.title.clone())
        .value("crew_name", crew_name.clone())
        .value("place", summary.meeting_point_name.clone())
        .time("starts_at", starts_at)
        .field("crew", crew_name)
        .time_field("starts_at", starts_at)
        .field("place", summary.meeting_point_name.clone())
        .link(format!(
            "/crews/{}/meetups/{}",
            summary.crew_id, summary.meetup_id
        )))
}

/// The notifications of a social event.
pub async fn plan(txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<Vec<Planned>> {
    let ty = envelope.r#type.as_str();
    let mut plans = Vec::new();
    if ty == social::MeetupScheduled::full_name() {
        let event = envelope.unpack::<social::MeetupScheduled>()?;
        let summary = event.meetup.unwrap_or_default();
        upsert_meetup(txn, &summary).await?;
        let members: Vec<String> = crew_member::Entity::find()
            .select_only()
            .column(crew_member::Column::UserId)
            .filter(crew_member::Column::CrewId.eq(&summary.crew_id))
            .filter(crew_member::Column::UserId.ne(&event.created_by))
            .into_tuple()
            .all(txn)
            .await?;
        plans.push(meetup_plan(txn, "meetup_scheduled", &summary, members).await?);
    } else if ty == social::MeetupReminderDue::full_name() {
        let event = envelope.unpack::<social::MeetupReminderDue>()?;
        let summary = event.meetup.unwrap_or_default();
        upsert_meetup(txn, &summary).await?;
        plans.push(
            meetup_plan(txn, "meetup_reminder", &summary, event.going_user_ids)
                .await?
                .urgent(),
        );
    } else if ty == social::MeetupCancelled::full_name() {
        let event = envelope.unpack::<social::MeetupCancelled>()?;
        let summary = event.meetup.unwrap_or_default();
        plans.push(
            meetup_plan(txn, "meetup_cancelled", &summary, event.notified_user_ids)
                .await?
                .value("reason", event.reason)
                .urgent(),
        );
    } else if ty == social::MeetupPromoted::full_name() {
        let event = envelope.unpack::<social::MeetupPromoted>()?;
        let known = meetup::Entity::find_by_id(event.meetup_id.clone())
            .one(txn)
            .await?;
        let summary = social::MeetupSummary {
            meetup_id: event.meetup_id.clone(),
            crew_id: event.crew_id.clone(),
            title: known.as_ref().map(|m| m.title.clone()).unwrap_or_default(),
            starts_at: known
                .as_ref()
                .and_then(|m| m.starts_at)
                .map(|at| prost_types::Timestamp {
                    seconds: at.timestamp(),
                    nanos: 0,
                }),
            meeting_point_name: known.map(|m| m.meeting_point).unwrap_or_default(),
            ..Default::default()
        };
        plans.push(
            meetup_plan(txn, "meetup_promoted", &summary, vec![event.user_id])
                .await?
                .urgent(),
        );
    } else if ty == social::CommentCreated::full_name() {
        let event = envelope.unpack::<social::CommentCreated>()?;
        let crew_name = crew_name(txn, &event.crew_id).await?;
        let on_run = event.target_kind() == social::CommentTargetKind::Run;
        let link = if on_run {
            format!("/runs/{}", event.target_id)
        } else {
            format!("/crews/{}/posts/{}", event.crew_id, event.target_id)
        };
        let comment = |recipient: &str, reply: bool| {
            Planned::new(
                "comment_created",
                Category::CrewActivity,
                vec![recipient.to_owned()],
            )
            .value("reply", reply)
            .value("crew_name", crew_name.clone())
            .localized(
                "target",
                if on_run { "run" } else { "post" },
                if on_run { "러닝 기록" } else { "게시글" },
            )
            .link(link.clone())
        };
        let parent = event.parent_author_id.as_str();
        if !parent.is_empty() && parent != event.author_id {
            plans.push(comment(parent, true));
        }
        let owner = event.target_owner_id.as_str();
        if !owner.is_empty() && owner != event.author_id && owner != parent {
            plans.push(comment(owner, false));
        }
    } else if ty == social::JoinRequestDecided::full_name() {
        let event = envelope.unpack::<social::JoinRequestDecided>()?;
        let crew_name = crew_name(txn, &event.crew_id).await?;
        plans.push(
            Planned::new(
                "join_request_decided",
                Category::CrewActivity,
                vec![event.user_id],
            )
            .value("approved", event.approved)
            .value("crew_name", crew_name.clone())
            .field("crew", crew_name)
            .link(format!("/crews/{}", event.crew_id)),
        );
    }
    Ok(plans)
}
