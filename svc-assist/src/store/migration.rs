//! svc-assist's schema. Never edit a released migration; add a new one.

use runmesh_platform::db::index;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean, integer, string_len, text, timestamp_with_time_zone, timestamp_with_time_zone_null,
    uuid,
};

/// Runs svc-assist's migrations and the platform's (the event outbox and inbox).
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = runmesh_platform::events::migrations();
        migrations.push(Box::new(CreateNotifications));
        migrations.push(Box::new(CreateMeetups));
        migrations.push(Box::new(crate::assistant::store::CreateAssistant));
        migrations
    }
}

const ID_LEN: u32 = 64;

#[derive(DeriveIden, Clone, Copy)]
enum RunnerProfiles {
    Table,
    UserId,
    DisplayName,
    TimeZone,
    SlackMemberId,
    SlackChannelId,
    SlackInvalid,
    SlackNextPostAt,
    PrefRaceOpening,
    PrefRegistration,
    PrefAchievement,
    PrefCrewActivity,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum NotificationSettings {
    Table,
    UserId,
    Language,
    QuietEnabled,
    QuietStart,
    QuietEnd,
    DigestCategories,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum NotificationChannelPrefs {
    Table,
    UserId,
    Category,
    Channel,
    Enabled,
}

#[derive(DeriveIden, Clone, Copy)]
enum Notifications {
    Table,
    Id,
    UserId,
    EventId,
    Kind,
    Category,
    Title,
    Body,
    Fields,
    Link,
    State,
    Urgent,
    InInbox,
    CreatedAt,
    ReadAt,
    ArchivedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Deliveries {
    Table,
    Id,
    NotificationId,
    UserId,
    EventId,
    Channel,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    RequestStartedAt,
    LastError,
    SentAt,
    ExternalId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Races {
    Table,
    RaceId,
    Name,
    Categories,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Crews {
    Table,
    CrewId,
    Name,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum CrewMembers {
    Table,
    CrewId,
    UserId,
}

#[derive(DeriveIden, Clone, Copy)]
enum SlackWorkspace {
    Table,
    TokenFingerprint,
    StoppedReason,
    PausedUntil,
    UpdatedAt,
}

struct CreateNotifications;

impl MigrationName for CreateNotifications {
    fn name(&self) -> &str {
        "m20261215_000001_notifications"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateNotifications {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RunnerProfiles::Table)
                    .if_not_exists()
                    .col(string_len(RunnerProfiles::UserId, ID_LEN).primary_key())
                    .col(string_len(RunnerProfiles::DisplayName, 200))
                    .col(string_len(RunnerProfiles::TimeZone, 64))
                    .col(string_len(RunnerProfiles::SlackMemberId, 64))
                    .col(string_len(RunnerProfiles::SlackChannelId, 64))
                    .col(string_len(RunnerProfiles::SlackInvalid, 200))
                    .col(timestamp_with_time_zone_null(
                        RunnerProfiles::SlackNextPostAt,
                    ))
                    .col(boolean(RunnerProfiles::PrefRaceOpening))
                    .col(boolean(RunnerProfiles::PrefRegistration))
                    .col(boolean(RunnerProfiles::PrefAchievement))
                    .col(boolean(RunnerProfiles::PrefCrewActivity))
                    .col(timestamp_with_time_zone(RunnerProfiles::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NotificationSettings::Table)
                    .if_not_exists()
                    .col(string_len(NotificationSettings::UserId, ID_LEN).primary_key())
                    .col(string_len(NotificationSettings::Language, 8))
                    .col(boolean(NotificationSettings::QuietEnabled))
                    .col(integer(NotificationSettings::QuietStart))
                    .col(integer(NotificationSettings::QuietEnd))
                    .col(string_len(NotificationSettings::DigestCategories, 200))
                    .col(timestamp_with_time_zone(NotificationSettings::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NotificationChannelPrefs::Table)
                    .if_not_exists()
                    .col(string_len(NotificationChannelPrefs::UserId, ID_LEN))
                    .col(string_len(NotificationChannelPrefs::Category, 32))
                    .col(string_len(NotificationChannelPrefs::Channel, 16))
                    .col(boolean(NotificationChannelPrefs::Enabled))
                    .primary_key(
                        Index::create()
                            .col(NotificationChannelPrefs::UserId)
                            .col(NotificationChannelPrefs::Category)
                            .col(NotificationChannelPrefs::Channel),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .if_not_exists()
                    .col(uuid(Notifications::Id).primary_key())
                    .col(string_len(Notifications::UserId, ID_LEN))
                    .col(string_len(Notifications::EventId, ID_LEN))
                    .col(string_len(Notifications::Kind, 64))
                    .col(string_len(Notifications::Category, 32))
                    .col(text(Notifications::Title))
                    .col(text(Notifications::Body))
                    .col(text(Notifications::Fields))
                    .col(text(Notifications::Link))
                    .col(string_len(Notifications::State, 16))
                    .col(boolean(Notifications::Urgent))
                    .col(boolean(Notifications::InInbox))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .col(timestamp_with_time_zone_null(Notifications::ArchivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "uq_notifications_user_event",
                    Notifications::Table,
                    &[Notifications::UserId, Notifications::EventId],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_notifications_inbox",
                Notifications::Table,
                &[
                    Notifications::UserId,
                    Notifications::State,
                    Notifications::Id,
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_notifications_user_created",
                Notifications::Table,
                &[Notifications::UserId, Notifications::CreatedAt],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .if_not_exists()
                    .col(uuid(Deliveries::Id).primary_key())
                    .col(uuid(Deliveries::NotificationId))
                    .col(string_len(Deliveries::UserId, ID_LEN))
                    .col(string_len(Deliveries::EventId, ID_LEN))
                    .col(string_len(Deliveries::Channel, 16))
                    .col(string_len(Deliveries::Status, 16))
                    .col(integer(Deliveries::Attempts))
                    .col(timestamp_with_time_zone(Deliveries::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Deliveries::LeaseUntil))
                    .col(timestamp_with_time_zone_null(Deliveries::RequestStartedAt))
                    .col(text(Deliveries::LastError))
                    .col(timestamp_with_time_zone_null(Deliveries::SentAt))
                    .col(string_len(Deliveries::ExternalId, 64))
                    .col(timestamp_with_time_zone(Deliveries::CreatedAt))
                    .col(timestamp_with_time_zone(Deliveries::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "uq_deliveries_event_user_channel",
                    Deliveries::Table,
                    &[Deliveries::EventId, Deliveries::UserId, Deliveries::Channel],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        for statement in [
            index(
                "idx_deliveries_due",
                Deliveries::Table,
                &[Deliveries::Status, Deliveries::NextAttemptAt],
            ),
            index(
                "idx_deliveries_notification",
                Deliveries::Table,
                &[Deliveries::NotificationId],
            ),
            index(
                "idx_deliveries_user",
                Deliveries::Table,
                &[Deliveries::UserId, Deliveries::Status],
            ),
        ] {
            manager.create_index(statement).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Races::Table)
                    .if_not_exists()
                    .col(string_len(Races::RaceId, ID_LEN).primary_key())
                    .col(string_len(Races::Name, 200))
                    .col(text(Races::Categories))
                    .col(timestamp_with_time_zone(Races::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Crews::Table)
                    .if_not_exists()
                    .col(string_len(Crews::CrewId, ID_LEN).primary_key())
                    .col(string_len(Crews::Name, 200))
                    .col(timestamp_with_time_zone(Crews::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CrewMembers::Table)
                    .if_not_exists()
                    .col(string_len(CrewMembers::CrewId, ID_LEN))
                    .col(string_len(CrewMembers::UserId, ID_LEN))
                    .primary_key(
                        Index::create()
                            .col(CrewMembers::CrewId)
                            .col(CrewMembers::UserId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_crew_members_user",
                CrewMembers::Table,
                &[CrewMembers::UserId],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SlackWorkspace::Table)
                    .if_not_exists()
                    .col(string_len(SlackWorkspace::TokenFingerprint, 64).primary_key())
                    .col(string_len(SlackWorkspace::StoppedReason, 200))
                    .col(timestamp_with_time_zone_null(SlackWorkspace::PausedUntil))
                    .col(timestamp_with_time_zone(SlackWorkspace::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SlackWorkspace::Table.into_iden(),
            CrewMembers::Table.into_iden(),
            Crews::Table.into_iden(),
            Races::Table.into_iden(),
            Deliveries::Table.into_iden(),
            Notifications::Table.into_iden(),
            NotificationChannelPrefs::Table.into_iden(),
            NotificationSettings::Table.into_iden(),
            RunnerProfiles::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Meetups {
    Table,
    MeetupId,
    CrewId,
    Title,
    StartsAt,
    MeetingPoint,
}

struct CreateMeetups;

impl MigrationName for CreateMeetups {
    fn name(&self) -> &str {
        "m20261215_000002_notify_meetups"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateMeetups {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Meetups::Table)
                    .if_not_exists()
                    .col(string_len(Meetups::MeetupId, ID_LEN).primary_key())
                    .col(string_len(Meetups::CrewId, ID_LEN))
                    .col(string_len(Meetups::Title, 200))
                    .col(timestamp_with_time_zone_null(Meetups::StartsAt))
                    .col(string_len(Meetups::MeetingPoint, 200))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Meetups::Table).if_exists().to_owned())
            .await
    }
}
