//! What svc-run publishes, on `runmesh.run.v1.events` keyed by run id (personal records and
//! `RecapReady`, see [`crate::recap_notices`], by owner id), through the outbox: each event is written in the transaction of the change it
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
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set,
};

use crate::boards::{Boards, Scope};
use crate::config::RunConfig;
use crate::runs;
use crate::store::{profile, recap_notice};
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
            recap_notice::Entity::delete_many()
                .filter(recap_notice::Column::OwnerId.eq(event.user_id.as_str()))
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
        gender: Set(wire::gender_code(user.gender()).to_owned()),
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
                    profile::Column::Gender,
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

/// The handler of everything svc-run consumes (group [`GROUP`]): svc-user's events as
/// [`user_events_handler`], plus svc-social's crews and memberships and svc-race's races and
/// registrations, keeping the live boards in step with membership changes.
pub fn consumer(config: RunConfig, boards: Arc<Boards>) -> Arc<dyn EventHandler> {
    Arc::new(Consumer { config, boards })
}

/// The topics of [`consumer`].
pub fn consumed_topics() -> Vec<String> {
    ["user", "social", "race"]
        .iter()
        .map(|domain| events::topic(domain))
        .collect()
}

struct Consumer {
    config: RunConfig,
    boards: Arc<Boards>,
}

#[async_trait::async_trait]
impl EventHandler for Consumer {
    async fn handle(&self, txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<()> {
        // Profile changes move the runner between age-group and gender boards.
        if envelope.is::<user_proto::UserProfileUpdated>() {
            UserEvents.handle(txn, envelope).await?;
            let event = envelope.unpack::<user_proto::UserProfileUpdated>()?;
            if let Some(user) = event.user {
                self.boards
                    .apply_in(
                        txn,
                        &user.id,
                        &self.boards.live_periods(),
                        &Boards::all_profile_scopes(),
                    )
                    .await?;
            }
            return Ok(());
        }
        if envelope.is::<user_proto::UserDeleted>() {
            UserEvents.handle(txn, envelope).await?;
            // Their totals are gone: off every live board.
            let event = envelope.unpack::<user_proto::UserDeleted>()?;
            self.boards
                .apply_in(
                    txn,
                    &event.user_id,
                    &self.boards.live_periods(),
                    &Boards::all_profile_scopes(),
                )
                .await?;
            return Ok(());
        }
        if envelope.r#type.starts_with("runmesh.user.") {
            return UserEvents.handle(txn, envelope).await;
        }
        if let Some(user) = social::handle(txn, envelope).await? {
            let (user, left) = user;
            let removed: Vec<Scope> = left.into_iter().map(Scope::Crew).collect();
            self.boards
                .apply_in(txn, &user, &self.boards.live_periods(), &removed)
                .await?;
            return Ok(());
        }
        race::handle(txn, &self.config, envelope).await
    }
}

mod social {
    use runmesh_platform::events::EnvelopeExt;
    use runmesh_proto::runmesh::events::v1::Envelope;
    use runmesh_proto::runmesh::social::v1 as social_proto;
    use sea_orm::sea_query::OnConflict;
    use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};

    use crate::store::progress::{crew, crew_member};

    fn role(role: social_proto::CrewEventRole) -> &'static str {
        match role {
            social_proto::CrewEventRole::Owner => "owner",
            social_proto::CrewEventRole::Admin => "admin",
            social_proto::CrewEventRole::Member | social_proto::CrewEventRole::Unspecified => {
                "member"
            }
        }
    }

    async fn upsert_crew(
        txn: &DatabaseTransaction,
        summary: &social_proto::CrewSummary,
    ) -> anyhow::Result<()> {
        crew::Entity::insert(crew::ActiveModel {
            crew_id: Set(summary.crew_id.clone()),
            name: Set(summary.name.chars().take(200).collect()),
            archived: Set(summary.archived),
        })
        .on_conflict(
            OnConflict::column(crew::Column::CrewId)
                .update_columns([crew::Column::Name, crew::Column::Archived])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }

    async fn set_member(
        txn: &DatabaseTransaction,
        crew_id: &str,
        user_id: &str,
        role: &str,
    ) -> anyhow::Result<()> {
        crew_member::Entity::insert(crew_member::ActiveModel {
            crew_id: Set(crew_id.to_owned()),
            user_id: Set(user_id.to_owned()),
            role: Set(role.to_owned()),
        })
        .on_conflict(
            OnConflict::columns([crew_member::Column::CrewId, crew_member::Column::UserId])
                .update_column(crew_member::Column::Role)
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }

    /// The crew projection; answers the runner whose boards change and the crews they left.
    pub async fn handle(
        txn: &DatabaseTransaction,
        envelope: &Envelope,
    ) -> anyhow::Result<Option<(String, Vec<String>)>> {
        if envelope.is::<social_proto::CrewCreated>() {
            let event = envelope.unpack::<social_proto::CrewCreated>()?;
            if let Some(summary) = &event.crew {
                upsert_crew(txn, summary).await?;
            }
        } else if envelope.is::<social_proto::CrewUpdated>() {
            let event = envelope.unpack::<social_proto::CrewUpdated>()?;
            if let Some(summary) = &event.crew {
                upsert_crew(txn, summary).await?;
            }
        } else if envelope.is::<social_proto::CrewMemberJoined>() {
            let event = envelope.unpack::<social_proto::CrewMemberJoined>()?;
            set_member(txn, &event.crew_id, &event.user_id, role(event.role())).await?;
            return Ok(Some((event.user_id, Vec::new())));
        } else if envelope.is::<social_proto::CrewMemberRoleChanged>() {
            let event = envelope.unpack::<social_proto::CrewMemberRoleChanged>()?;
            set_member(txn, &event.crew_id, &event.user_id, role(event.role())).await?;
        } else if envelope.is::<social_proto::CrewMemberLeft>() {
            let event = envelope.unpack::<social_proto::CrewMemberLeft>()?;
            crew_member::Entity::delete_many()
                .filter(crew_member::Column::CrewId.eq(event.crew_id.clone()))
                .filter(crew_member::Column::UserId.eq(event.user_id.clone()))
                .exec(txn)
                .await?;
            return Ok(Some((event.user_id, vec![event.crew_id])));
        }
        Ok(None)
    }
}

mod race {
    use runmesh_platform::events::EnvelopeExt;
    use runmesh_proto::runmesh::events::v1::Envelope;
    use runmesh_proto::runmesh::race::v1 as race_proto;
    use sea_orm::sea_query::OnConflict;
    use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};

    use crate::config::RunConfig;
    use crate::progress;
    use crate::store::progress::{race, registration};
    use crate::wire;

    async fn upsert_race(txn: &DatabaseTransaction, race: &race_proto::Race) -> anyhow::Result<()> {
        let Some(starts_at) = race.starts_at.as_ref().and_then(wire::from_timestamp) else {
            return Ok(());
        };
        let categories = race
            .categories
            .iter()
            .map(|c| {
                format!(
                    "{}\t{}\t{}",
                    c.category_id,
                    c.distance_meters,
                    c.name.replace(['\t', '\n'], " ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        race::Entity::insert(race::ActiveModel {
            race_id: Set(race.race_id.clone()),
            name: Set(race.name.chars().take(200).collect()),
            starts_at: Set(starts_at),
            latitude: Set(race.coordinates.as_ref().map(|c| c.latitude)),
            longitude: Set(race.coordinates.as_ref().map(|c| c.longitude)),
            categories: Set(categories),
        })
        .on_conflict(
            OnConflict::column(race::Column::RaceId)
                .update_columns([
                    race::Column::Name,
                    race::Column::StartsAt,
                    race::Column::Latitude,
                    race::Column::Longitude,
                    race::Column::Categories,
                ])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }

    async fn upsert_registration(
        txn: &DatabaseTransaction,
        reg: &race_proto::Registration,
    ) -> anyhow::Result<()> {
        let status = match reg.status() {
            race_proto::RegistrationStatus::Confirmed => "confirmed",
            race_proto::RegistrationStatus::Waitlisted => "waitlisted",
            _ => "cancelled",
        };
        registration::Entity::insert(registration::ActiveModel {
            registration_id: Set(reg.registration_id.clone()),
            race_id: Set(reg.race_id.clone()),
            category_id: Set(reg.category_id.clone()),
            user_id: Set(reg.user_id.clone()),
            status: Set(status.to_owned()),
            bib_number: Set(reg.bib_number.and_then(|b| i32::try_from(b).ok())),
        })
        .on_conflict(
            OnConflict::column(registration::Column::RegistrationId)
                .update_columns([
                    registration::Column::CategoryId,
                    registration::Column::Status,
                    registration::Column::BibNumber,
                ])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }

    /// The race and registration projections; a change re-links the runners concerned.
    pub async fn handle(
        txn: &DatabaseTransaction,
        config: &RunConfig,
        envelope: &Envelope,
    ) -> anyhow::Result<()> {
        let mut runners = Vec::new();
        let race = if envelope.is::<race_proto::RaceCreated>() {
            envelope.unpack::<race_proto::RaceCreated>()?.race
        } else if envelope.is::<race_proto::RaceUpdated>() {
            envelope.unpack::<race_proto::RaceUpdated>()?.race
        } else if envelope.is::<race_proto::RacePublished>() {
            envelope.unpack::<race_proto::RacePublished>()?.race
        } else {
            None
        };
        if let Some(race) = race {
            upsert_race(txn, &race).await?;
            runners = registration::Entity::find()
                .filter(registration::Column::RaceId.eq(race.race_id.clone()))
                .all(txn)
                .await?
                .into_iter()
                .map(|r| r.user_id)
                .collect();
        }
        let registration = if envelope.is::<race_proto::RegistrationConfirmed>() {
            envelope
                .unpack::<race_proto::RegistrationConfirmed>()?
                .registration
        } else if envelope.is::<race_proto::WaitlistPromoted>() {
            envelope
                .unpack::<race_proto::WaitlistPromoted>()?
                .registration
        } else if envelope.is::<race_proto::RegistrationWaitlisted>() {
            envelope
                .unpack::<race_proto::RegistrationWaitlisted>()?
                .registration
        } else if envelope.is::<race_proto::RegistrationCancelled>() {
            envelope
                .unpack::<race_proto::RegistrationCancelled>()?
                .registration
        } else {
            None
        };
        if let Some(reg) = registration {
            upsert_registration(txn, &reg).await?;
            runners.push(reg.user_id);
        }
        runners.sort();
        runners.dedup();
        for runner in runners {
            progress::refresh(txn, config, &runner, &[]).await?;
        }
        Ok(())
    }
}
