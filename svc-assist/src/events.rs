//! What svc-assist consumes (consumer group [`GROUP`]), each event handled once in the
//! consumer's transaction (the platform's inbox dedupes redeliveries; the notification and
//! delivery rows are unique per recipient and event besides):
//! - svc-user's `UserRegistered`/`UserProfileUpdated` into the `runner_profiles` projection
//!   (display name, time zone, Slack member id, notification choices); `UserDeleted` erases the
//!   runner's notifications, deliveries, preferences and Slack ids;
//! - svc-race's registration events and openings, and its race facts (names, categories);
//! - svc-run's personal records, badges (`AchievementUnlocked`), `ChallengeCompleted`, `GoalMet`,
//!   and `RecapReady` (a week's or year's recap to read: the `achievement` category).
//!
//! - svc-social's crews and memberships (who hears of a meetup), meetups scheduled, reminders,
//!   promotions and cancellations, comments on one's posts and runs, join request decisions.
//!
//! svc-assist publishes nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use prost::Name;
use runmesh_platform::events::{self, EnvelopeExt, EventHandler};
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::race::v1 as race_proto;
use runmesh_proto::runmesh::run::v1 as run_proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set};
use tokio::sync::Notify;

use crate::domain::Category;
use crate::notify::planner::{Planned, Planner};
use crate::store::{channel_pref, crew_member, delivery, notification, profile, race, settings};
use crate::wire;

mod social;

/// svc-assist's consumer group.
pub const GROUP: &str = "svc-assist";

/// The topics svc-assist consumes.
pub fn topics() -> Vec<String> {
    ["user", "race", "run", "social"]
        .into_iter()
        .map(events::topic)
        .collect()
}

/// The handler of every consumed topic.
pub fn handler(planner: Arc<Planner>, wake: Arc<Notify>) -> Arc<dyn EventHandler> {
    Arc::new(AssistEvents { planner, wake })
}

struct AssistEvents {
    planner: Arc<Planner>,
    /// Tells the delivery worker there may be work (it also polls).
    wake: Arc<Notify>,
}

#[async_trait::async_trait]
impl EventHandler for AssistEvents {
    async fn handle(&self, txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<()> {
        if self.project(txn, envelope).await? {
            return Ok(());
        }
        let now = Utc::now();
        let mut written = 0;
        for planned in plan(txn, envelope).await? {
            written += self
                .planner
                .write(txn, &envelope.id, &planned, now)
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?
                .len();
        }
        if written > 0 {
            self.wake.notify_one();
        }
        Ok(())
    }
}

impl AssistEvents {
    /// Projection updates; `true` when the event was one (and nothing is notified).
    async fn project(
        &self,
        txn: &DatabaseTransaction,
        envelope: &Envelope,
    ) -> anyhow::Result<bool> {
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
            erase_runner(txn, &event.user_id).await?;
            tracing::info!(user_id = %event.user_id, "erased a deleted runner's notifications");
        } else if let Some(race) = race_of(envelope)? {
            upsert_race(txn, &race).await?;
        } else if social::project(txn, envelope).await? {
        } else {
            return Ok(false);
        }
        Ok(true)
    }
}

/// The race in `RaceCreated`/`RaceUpdated`/`RacePublished`.
fn race_of(envelope: &Envelope) -> anyhow::Result<Option<race_proto::Race>> {
    Ok(if envelope.is::<race_proto::RaceCreated>() {
        envelope.unpack::<race_proto::RaceCreated>()?.race
    } else if envelope.is::<race_proto::RaceUpdated>() {
        envelope.unpack::<race_proto::RaceUpdated>()?.race
    } else if envelope.is::<race_proto::RacePublished>() {
        envelope.unpack::<race_proto::RacePublished>()?.race
    } else {
        None
    })
}

/// The projection row of `user`, replacing what was there. A changed Slack member id forgets
/// the old DM channel and any refusal of the old id.
async fn upsert_profile(txn: &DatabaseTransaction, user: &user_proto::User) -> Result<(), DbErr> {
    let choices = user.notification_preferences.unwrap_or_default();
    let member_id = user.slack_member_id.trim().to_owned();
    let existing = profile::Entity::find_by_id(user.id.clone())
        .one(txn)
        .await?;
    let same_slack = existing
        .as_ref()
        .is_some_and(|p| p.slack_member_id == member_id);
    let row = profile::ActiveModel {
        user_id: Set(user.id.clone()),
        display_name: Set(user.display_name.chars().take(200).collect()),
        time_zone: Set(if user.time_zone.parse::<chrono_tz::Tz>().is_ok() {
            user.time_zone.clone()
        } else {
            String::new()
        }),
        slack_member_id: Set(member_id.chars().take(64).collect()),
        slack_channel_id: Set(existing
            .as_ref()
            .filter(|_| same_slack)
            .map(|p| p.slack_channel_id.clone())
            .unwrap_or_default()),
        slack_invalid: Set(existing
            .as_ref()
            .filter(|_| same_slack)
            .map(|p| p.slack_invalid.clone())
            .unwrap_or_default()),
        slack_next_post_at: Set(existing.as_ref().and_then(|p| p.slack_next_post_at)),
        pref_race_opening: Set(choices.race_opening),
        pref_registration: Set(choices.registration_result),
        pref_achievement: Set(choices.achievement),
        pref_crew_activity: Set(choices.crew_activity),
        updated_at: Set(Utc::now()),
    };
    profile::Entity::insert(row)
        .on_conflict(
            OnConflict::column(profile::Column::UserId)
                .update_columns([
                    profile::Column::DisplayName,
                    profile::Column::TimeZone,
                    profile::Column::SlackMemberId,
                    profile::Column::SlackChannelId,
                    profile::Column::SlackInvalid,
                    profile::Column::PrefRaceOpening,
                    profile::Column::PrefRegistration,
                    profile::Column::PrefAchievement,
                    profile::Column::PrefCrewActivity,
                    profile::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Everything svc-assist holds about `user_id`.
pub async fn erase_runner(txn: &DatabaseTransaction, user_id: &str) -> Result<(), DbErr> {
    delivery::Entity::delete_many()
        .filter(delivery::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    notification::Entity::delete_many()
        .filter(notification::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    channel_pref::Entity::delete_many()
        .filter(channel_pref::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    settings::Entity::delete_by_id(user_id.to_owned())
        .exec(txn)
        .await?;
    crew_member::Entity::delete_many()
        .filter(crew_member::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    profile::Entity::delete_by_id(user_id.to_owned())
        .exec(txn)
        .await?;
    Ok(())
}

async fn upsert_race(txn: &DatabaseTransaction, race: &race_proto::Race) -> Result<(), DbErr> {
    let categories: serde_json::Map<String, serde_json::Value> = race
        .categories
        .iter()
        .map(|c| {
            (
                c.category_id.clone(),
                serde_json::Value::String(c.name.clone()),
            )
        })
        .collect();
    race::Entity::insert(race::ActiveModel {
        race_id: Set(race.race_id.clone()),
        name: Set(race.name.chars().take(200).collect()),
        categories: Set(serde_json::Value::Object(categories).to_string()),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(race::Column::RaceId)
            .update_columns([
                race::Column::Name,
                race::Column::Categories,
                race::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// The race's name and the category's, from the projection (empty when unknown).
async fn race_names(
    txn: &DatabaseTransaction,
    race_id: &str,
    category_id: &str,
) -> Result<(String, String), DbErr> {
    let Some(row) = race::Entity::find_by_id(race_id.to_owned())
        .one(txn)
        .await?
    else {
        return Ok((String::new(), String::new()));
    };
    let category = serde_json::from_str::<serde_json::Value>(&row.categories)
        .ok()
        .and_then(|map| {
            map.get(category_id)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Ok((row.name, category))
}

fn time(at: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    at.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
}

/// The notifications an event becomes (most events: none).
pub async fn plan(txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<Vec<Planned>> {
    if envelope.r#type.starts_with("runmesh.social.") {
        return social::plan(txn, envelope).await;
    }
    Ok(plan_one(txn, envelope).await?.into_iter().collect())
}

async fn plan_one(
    txn: &DatabaseTransaction,
    envelope: &Envelope,
) -> anyhow::Result<Option<Planned>> {
    let ty = envelope.r#type.as_str();
    Ok(match ty {
        _ if ty == race_proto::RegistrationOpened::full_name() => {
            let event = envelope.unpack::<race_proto::RegistrationOpened>()?;
            Some(
                Planned::new("race_opening", Category::RaceOpening, event.subscriber_ids)
                    .value("race_name", event.race_name.clone())
                    .time("opens_at", time(event.registration_opens_at))
                    .time("closes_at", time(event.registration_closes_at))
                    .field("race", event.race_name)
                    .time_field("closes_at", time(event.registration_closes_at))
                    .link(format!("/races/{}", event.race_id)),
            )
        }
        _ if ty == race_proto::RegistrationConfirmed::full_name() => {
            let registration = envelope
                .unpack::<race_proto::RegistrationConfirmed>()?
                .registration
                .unwrap_or_default();
            Some(registration_plan(txn, "registration_confirmed", &registration).await?)
        }
        _ if ty == race_proto::RegistrationWaitlisted::full_name() => {
            let registration = envelope
                .unpack::<race_proto::RegistrationWaitlisted>()?
                .registration
                .unwrap_or_default();
            Some(registration_plan(txn, "registration_waitlisted", &registration).await?)
        }
        _ if ty == race_proto::WaitlistPromoted::full_name() => {
            let registration = envelope
                .unpack::<race_proto::WaitlistPromoted>()?
                .registration
                .unwrap_or_default();
            Some(
                registration_plan(txn, "waitlist_promoted", &registration)
                    .await?
                    .urgent(),
            )
        }
        _ if ty == race_proto::RegistrationCancelled::full_name() => {
            let event = envelope.unpack::<race_proto::RegistrationCancelled>()?;
            let registration = event.registration.unwrap_or_default();
            let by_organizer =
                !event.cancelled_by.is_empty() && event.cancelled_by != registration.user_id;
            Some(
                registration_plan(txn, "registration_cancelled", &registration)
                    .await?
                    .value("by_organizer", by_organizer),
            )
        }
        _ if ty == run_proto::PersonalRecordSet::full_name() => {
            let event = envelope.unpack::<run_proto::PersonalRecordSet>()?;
            if event.restored {
                // An earlier effort became the record again after a deletion: not news.
                return Ok(None);
            }
            let distance = wire::effort_distance_label(event.distance());
            let elapsed = wire::duration_label(event.elapsed_time);
            let previous = event
                .previous_elapsed_time
                .map(|d| wire::duration_label(Some(d)))
                .unwrap_or_default();
            Some(
                Planned::new(
                    "personal_record",
                    Category::Achievement,
                    vec![event.owner_id],
                )
                .value("distance", distance.clone())
                .value("time", elapsed.clone())
                .value("previous", previous)
                .field("distance", distance)
                .field("time", elapsed)
                .link(format!("/runs/{}", event.run_id)),
            )
        }
        _ if ty == run_proto::AchievementUnlocked::full_name() => {
            let event = envelope.unpack::<run_proto::AchievementUnlocked>()?;
            let achievement = event.achievement.unwrap_or_default();
            let badge = achievement.badge.clone().unwrap_or_default();
            let name = badge.name.unwrap_or_default();
            let (en, ko) = if name.en.is_empty() && name.ko.is_empty() {
                (achievement.badge_id.clone(), achievement.badge_id.clone())
            } else {
                (name.en, name.ko)
            };
            Some(
                Planned::new(
                    "achievement_unlocked",
                    Category::Achievement,
                    vec![event.owner_id],
                )
                .localized("badge_name", &en, &ko)
                .value("tier", achievement.tier)
                .value("period", achievement.period.clone())
                .field("points", achievement.points.to_string())
                .link("/me/achievements"),
            )
        }
        _ if ty == run_proto::ChallengeCompleted::full_name() => {
            let event = envelope.unpack::<run_proto::ChallengeCompleted>()?;
            Some(
                Planned::new(
                    "challenge_completed",
                    Category::Achievement,
                    vec![event.owner_id],
                )
                .value("title", event.title)
                .link(format!("/challenges/{}", event.challenge_id)),
            )
        }
        _ if ty == run_proto::GoalMet::full_name() => {
            let event = envelope.unpack::<run_proto::GoalMet>()?;
            let goal = event.goal.unwrap_or_default();
            let (en, ko) = wire::goal_labels(&goal);
            Some(
                Planned::new("goal_met", Category::Achievement, vec![event.owner_id])
                    .localized("goal", &en, &ko)
                    .value("from_date", event.from_date)
                    .value("to_date", event.to_date)
                    .link("/me/goals"),
            )
        }
        _ if ty == run_proto::RecapReady::full_name() => {
            recap_plan(envelope.unpack::<run_proto::RecapReady>()?)
        }
        _ => None,
    })
}

/// `RecapReady`: the headline figures and the recap's paths (svc-run's
/// `/v1/me/recaps/{period}/{date}` and its `card.png`). Under the `achievement` preference —
/// like badges, records and goals it is news about the runner's own running — and not urgent,
/// so quiet hours and digests hold it. An unknown period or malformed date (the link would lead
/// nowhere) is logged and not notified.
fn recap_plan(event: run_proto::RecapReady) -> Option<Planned> {
    let period = event.period.trim();
    if !matches!(period, "week" | "month" | "year") {
        tracing::warn!(period = %event.period, owner_id = %event.owner_id, "RecapReady for an unknown period; not notified");
        return None;
    }
    let Ok(date) = chrono::NaiveDate::parse_from_str(event.date.trim(), "%Y-%m-%d") else {
        tracing::warn!(date = %event.date, owner_id = %event.owner_id, "RecapReady with a malformed date; not notified");
        return None;
    };
    let day = date.format("%Y-%m-%d").to_string();
    let recap_path = format!("/v1/me/recaps/{period}/{day}");
    let card_path = format!("{recap_path}/card.png");
    let distance = wire::km_label(event.distance_meters);
    let (time_en, time_ko) = wire::moving_time_labels(event.moving_time);
    Some(
        Planned::new("recap_ready", Category::Achievement, vec![event.owner_id])
            .value("period", period)
            .value("date", day)
            .value("year", chrono::Datelike::year(&date))
            .value("runs", event.runs)
            .value("distance", distance.clone())
            .localized("moving_time", &time_en, &time_ko)
            .value("active_days", event.active_days)
            .value("recap_path", recap_path.clone())
            .value("card_path", card_path.clone())
            .field("runs", event.runs.to_string())
            .field("distance", distance)
            .localized_field("moving_time", &time_en, &time_ko)
            .field("active_days", event.active_days.to_string())
            .link_field("recap_card", card_path)
            .link(recap_path)
            .language_links(),
    )
}

async fn registration_plan(
    txn: &DatabaseTransaction,
    kind: &'static str,
    registration: &race_proto::Registration,
) -> anyhow::Result<Planned> {
    let (race_name, category_name) =
        race_names(txn, &registration.race_id, &registration.category_id).await?;
    let bib = registration
        .bib_number
        .map(|b| b.to_string())
        .unwrap_or_default();
    let position = registration
        .waitlist_position
        .map(|p| p.to_string())
        .unwrap_or_default();
    Ok(Planned::new(
        kind,
        Category::Registration,
        vec![registration.user_id.clone()],
    )
    .value("race_name", race_name.clone())
    .value("category_name", category_name.clone())
    .value("bib", bib.clone())
    .value("position", position.clone())
    .field("race", race_name)
    .field("category", category_name)
    .field("bib", bib)
    .field("waitlist_position", position)
    .link(format!("/races/{}", registration.race_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recap(period: &str, date: &str) -> run_proto::RecapReady {
        run_proto::RecapReady {
            owner_id: "mia".into(),
            period: period.into(),
            date: date.into(),
            time_zone: "Asia/Seoul".into(),
            distance_meters: 42_195.0,
            runs: 5,
            moving_time: Some(prost_types::Duration {
                seconds: 13_800,
                nanos: 0,
            }),
            active_days: 4,
        }
    }

    #[test]
    fn a_recap_links_to_itself_and_its_card() {
        let Some(planned) = recap_plan(recap("week", "2025-01-06")) else {
            panic!("a week's recap is notified");
        };
        assert_eq!(planned.kind, "recap_ready");
        assert_eq!(planned.category, Category::Achievement);
        assert!(!planned.urgent);
        assert_eq!(planned.recipients, ["mia"]);
        assert_eq!(
            planned.link_path.as_deref(),
            Some("/v1/me/recaps/week/2025-01-06")
        );
        assert!(planned.language_links);
        assert!(
            planned
                .fields
                .iter()
                .any(|(key, value)| *key == "recap_card"
                    && matches!(value, crate::notify::planner::FieldValue::Link(path)
                if path == "/v1/me/recaps/week/2025-01-06/card.png"))
        );
        assert_eq!(planned.context["runs"], 5);
        assert_eq!(planned.context["distance"], "42.2 km");
        assert_eq!(planned.context["year"], 2025);
        assert!(recap_plan(recap("year", "2025-01-01")).is_some());
        // A link that would lead nowhere is not sent.
        assert!(recap_plan(recap("fortnight", "2025-01-06")).is_none());
        assert!(recap_plan(recap("week", "06/01/2025")).is_none());
    }

    #[test]
    fn consumes_every_domain_topic() {
        assert_eq!(
            topics(),
            [
                "runmesh.user.v1.events",
                "runmesh.race.v1.events",
                "runmesh.run.v1.events",
                "runmesh.social.v1.events"
            ]
        );
    }
}
