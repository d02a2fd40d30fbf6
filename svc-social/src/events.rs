//! What svc-social publishes, on `runmesh.social.v1.events` keyed by crew id (so one crew's
//! events stay in order), through the outbox: each event is written in the transaction of the
//! change it reports. And what it consumes (consumer group [`GROUP`]):
//! - svc-user's events into the `user_profiles` projection (display names); `UserDeleted`
//!   erases the runner's personal data (see [`crate::erasure`]);
//! - svc-run's `RunRecorded`/`RunUpdated`/`RunDeleted` into the `feed_runs` projection (see
//!   [`crate::feed`]).

use std::sync::Arc;

use prost::{Message, Name};
use runmesh_platform::events::{self, EnvelopeExt, EventHandler};
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::run::v1 as run_proto;
use runmesh_proto::runmesh::social::v1 as proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, Set};
use uuid::Uuid;

use crate::domain::CrewRole;
use crate::store::profile;
use crate::{erasure, feed, wire};

/// The `source` of svc-social's envelopes.
pub const SOURCE: &str = "svc-social";
/// The domain part of the topic name.
pub const DOMAIN: &str = "social";
/// svc-social's consumer group.
pub const GROUP: &str = "svc-social";

/// `runmesh.social.v1.events`.
pub fn topic() -> String {
    events::topic(DOMAIN)
}

/// The topics svc-social consumes.
pub fn consumed_topics() -> Vec<String> {
    vec![events::topic("user"), events::topic("run")]
}

/// Writes `event` about crew `crew_id` to the outbox, in `conn`'s transaction.
pub async fn enqueue<E: Message + Name>(
    conn: &impl ConnectionTrait,
    crew_id: Uuid,
    event: &E,
) -> Result<(), DbErr> {
    events::enqueue(
        conn,
        &topic(),
        &events::new_envelope(SOURCE, &crew_id.to_string(), event),
    )
    .await
}

pub fn event_role(role: CrewRole) -> proto::CrewEventRole {
    match role {
        CrewRole::Owner => proto::CrewEventRole::Owner,
        CrewRole::Admin => proto::CrewEventRole::Admin,
        CrewRole::Member => proto::CrewEventRole::Member,
    }
}

/// `event` about crew `crew_id` in its envelope, for [`enqueue_many`].
pub fn envelope<E: Message + Name>(crew_id: Uuid, event: &E) -> events::Envelope {
    events::new_envelope(SOURCE, &crew_id.to_string(), event)
}

/// Writes `envelopes` to the outbox in one statement, in `conn`'s transaction.
pub async fn enqueue_many(
    conn: &impl ConnectionTrait,
    envelopes: &[events::Envelope],
) -> Result<(), DbErr> {
    events::enqueue_many(conn, &topic(), envelopes).await
}

/// Writes `event` keyed by `key` (a run id for run comments) to the outbox, in `conn`'s
/// transaction.
pub async fn enqueue_keyed<E: Message + Name>(
    conn: &impl ConnectionTrait,
    key: &str,
    event: &E,
) -> Result<(), DbErr> {
    events::enqueue(conn, &topic(), &events::new_envelope(SOURCE, key, event)).await
}

/// `CrewMemberJoined` now.
pub fn member_joined(crew_id: Uuid, user_id: &str, role: CrewRole) -> proto::CrewMemberJoined {
    proto::CrewMemberJoined {
        crew_id: crew_id.to_string(),
        user_id: user_id.to_owned(),
        role: event_role(role).into(),
        joined_at: Some(wire::timestamp(wire::now())),
    }
}

/// `CrewMemberLeft` now.
pub fn member_left(
    crew_id: Uuid,
    user_id: &str,
    reason: proto::CrewLeaveReason,
) -> proto::CrewMemberLeft {
    proto::CrewMemberLeft {
        crew_id: crew_id.to_string(),
        user_id: user_id.to_owned(),
        reason: reason.into(),
        left_at: Some(wire::timestamp(wire::now())),
    }
}

/// `CrewMemberRoleChanged` now.
pub fn role_changed(
    crew_id: Uuid,
    user_id: &str,
    previous: CrewRole,
    role: CrewRole,
) -> proto::CrewMemberRoleChanged {
    proto::CrewMemberRoleChanged {
        crew_id: crew_id.to_string(),
        user_id: user_id.to_owned(),
        previous_role: event_role(previous).into(),
        role: event_role(role).into(),
        changed_at: Some(wire::timestamp(wire::now())),
    }
}

/// The handler of svc-user's and svc-run's events (group [`GROUP`]).
pub fn handler() -> Arc<dyn EventHandler> {
    Arc::new(Consumed)
}

struct Consumed;

#[async_trait::async_trait]
impl EventHandler for Consumed {
    async fn handle(&self, txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<()> {
        if envelope.is::<user_proto::UserRegistered>() {
            if let Some(user) = envelope.unpack::<user_proto::UserRegistered>()?.user {
                upsert_profile(txn, &user).await?;
            }
        } else if envelope.is::<user_proto::UserProfileUpdated>() {
            if let Some(user) = envelope.unpack::<user_proto::UserProfileUpdated>()?.user {
                upsert_profile(txn, &user).await?;
            }
        } else if envelope.is::<user_proto::UserDeleted>() {
            let event = envelope.unpack::<user_proto::UserDeleted>()?;
            erasure::erase_user(txn, &event.user_id).await?;
        } else if envelope.is::<run_proto::RunRecorded>() {
            if let Some(run) = envelope.unpack::<run_proto::RunRecorded>()?.run {
                feed::project_run(txn, &run).await?;
            }
        } else if envelope.is::<run_proto::RunUpdated>() {
            if let Some(run) = envelope.unpack::<run_proto::RunUpdated>()?.run {
                feed::project_run(txn, &run).await?;
            }
        } else if envelope.is::<run_proto::RunDeleted>() {
            let event = envelope.unpack::<run_proto::RunDeleted>()?;
            feed::forget_run(txn, &event.run_id).await?;
        }
        // Other events concern other services.
        Ok(())
    }
}

/// The projection row of `user`, replacing what was there.
async fn upsert_profile(txn: &DatabaseTransaction, user: &user_proto::User) -> Result<(), DbErr> {
    let row = profile::ActiveModel {
        user_id: Set(user.id.clone()),
        display_name: Set(user.display_name.chars().take(200).collect()),
        updated_at: Set(wire::now()),
    };
    profile::Entity::insert(row)
        .on_conflict(
            OnConflict::column(profile::Column::UserId)
                .update_columns([profile::Column::DisplayName, profile::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_scheme() {
        assert_eq!(topic(), "runmesh.social.v1.events");
        assert_eq!(
            proto::CrewMemberJoined::full_name(),
            "runmesh.social.v1.CrewMemberJoined"
        );
        assert_eq!(
            consumed_topics(),
            ["runmesh.user.v1.events", "runmesh.run.v1.events"]
        );
    }
}
