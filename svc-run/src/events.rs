//! What svc-run publishes, on `runmesh.run.v1.events` keyed by run id (personal records by
//! owner id), through the outbox: each event is written in the transaction of the change it
//! reports. And what it consumes: svc-user's events, into the `runner_profiles` projection
//! (time zone, units, default privacy, birth year, display name); `UserDeleted` erases the
//! runner's runs and originals.

use std::sync::Arc;

use anyhow::Context as _;
use prost::{Message, Name};
use runmesh_platform::events::{self, EnvelopeExt, EventHandler};
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, Set};

use crate::runs;
use crate::store::profile;
use crate::wire;

/// The `source` of svc-run's envelopes.
pub const SOURCE: &str = "svc-run";
/// The domain part of the topic name.
pub const DOMAIN: &str = "run";
/// svc-run's consumer group.
pub const GROUP: &str = "svc-run";

/// `runmesh.run.v1.events`.
pub fn topic() -> String {
    events::topic(DOMAIN)
}

/// Writes `event` about `aggregate_id` to the outbox, in `conn`'s transaction.
pub async fn enqueue<E: Message + Name>(
    conn: &impl ConnectionTrait,
    aggregate_id: &str,
    event: &E,
) -> Result<(), DbErr> {
    events::enqueue(
        conn,
        &topic(),
        &events::new_envelope(SOURCE, aggregate_id, event),
    )
    .await
}

/// `RunDeleted` for `run_id` of `owner_id`, now.
pub fn run_deleted(run_id: &str, owner_id: &str) -> proto::RunDeleted {
    proto::RunDeleted {
        run_id: run_id.to_owned(),
        owner_id: owner_id.to_owned(),
        deleted_at: Some(wire::timestamp(wire::now())),
    }
}

/// The handler of svc-user's events (`runmesh.user.v1.events`, group [`GROUP`]).
pub fn user_events_handler() -> Arc<dyn EventHandler> {
    Arc::new(UserEvents)
}

struct UserEvents;

#[async_trait::async_trait]
impl EventHandler for UserEvents {
    async fn handle(&self, txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<()> {
        if envelope.is::<user_proto::UserRegistered>() {
            let event = envelope.unpack::<user_proto::UserRegistered>()?;
            if let Some(user) = event.user {
                upsert_profile(txn, &user).await?;
            }
        } else if envelope.is::<user_proto::UserProfileUpdated>() {
            let event = envelope.unpack::<user_proto::UserProfileUpdated>()?;
            if let Some(user) = event.user {
                upsert_profile(txn, &user).await?;
            }
        } else if envelope.is::<user_proto::UserDeleted>() {
            let event = envelope.unpack::<user_proto::UserDeleted>()?;
            let erased = runs::erase_owner(txn, &event.user_id)
                .await
                .context("erasing a deleted runner's runs")?;
            profile::Entity::delete_by_id(event.user_id.clone())
                .exec(txn)
                .await?;
            tracing::info!(
                user_id = %event.user_id,
                runs = erased,
                "erased a deleted runner's runs"
            );
        }
        // Other user events concern other services.
        Ok(())
    }
}

/// The projection row of `user`, replacing what was there.
async fn upsert_profile(txn: &DatabaseTransaction, user: &user_proto::User) -> Result<(), DbErr> {
    let row = profile::ActiveModel {
        user_id: Set(user.id.clone()),
        display_name: Set(user.display_name.chars().take(200).collect()),
        time_zone: Set(if user.time_zone.parse::<chrono_tz::Tz>().is_ok() {
            user.time_zone.clone()
        } else {
            String::new()
        }),
        distance_unit: Set(wire::distance_unit_code(user.distance_unit()).to_owned()),
        default_visibility: Set(wire::privacy_code(user.default_run_privacy()).to_owned()),
        birth_year: Set(user.birth_year.and_then(|year| i32::try_from(year).ok())),
        privacy_zone_meters: Set(user
            .privacy_zone_meters
            .and_then(|meters| i32::try_from(meters).ok())),
        updated_at: Set(wire::now()),
    };
    profile::Entity::insert(row)
        .on_conflict(
            OnConflict::column(profile::Column::UserId)
                .update_columns([
                    profile::Column::DisplayName,
                    profile::Column::TimeZone,
                    profile::Column::DistanceUnit,
                    profile::Column::DefaultVisibility,
                    profile::Column::BirthYear,
                    profile::Column::PrivacyZoneMeters,
                    profile::Column::UpdatedAt,
                ])
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
        assert_eq!(topic(), "runmesh.run.v1.events");
        assert_eq!(
            proto::PersonalRecordSet::full_name(),
            "runmesh.run.v1.PersonalRecordSet"
        );
    }
}
