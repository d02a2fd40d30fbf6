//! svc-social's schema (PostgreSQL and SQLite alike). Never edit a released migration; add a
//! new one.

use runmesh_platform::db::index;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, boolean, double, integer, string, text,
    timestamp_with_time_zone, timestamp_with_time_zone_null, uuid, uuid_null,
};

/// Runs svc-social's migrations and the platform's (the event outbox and inbox).
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = runmesh_platform::events::migrations();
        migrations.push(Box::new(CreateSocial));
        migrations
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Crews {
    Table,
    Id,
    OwnerId,
    Name,
    NameKey,
    Description,
    Region,
    RegionKey,
    CoverUrl,
    Visibility,
    ArchivedAt,
    MemberCount,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum CrewMembers {
    Table,
    CrewId,
    UserId,
    State,
    Role,
    Message,
    Since,
}

#[derive(DeriveIden, Clone, Copy)]
enum CrewInvites {
    Table,
    Code,
    CrewId,
    CreatedBy,
    ExpiresAt,
    MaxUses,
    Uses,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum UserProfiles {
    Table,
    UserId,
    DisplayName,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Posts {
    Table,
    Id,
    CrewId,
    AuthorId,
    Category,
    Title,
    Body,
    Pinned,
    Moderation,
    ReportCount,
    CommentCount,
    CreatedAt,
    EditedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Comments {
    Table,
    Id,
    PostId,
    CrewId,
    ParentId,
    AuthorId,
    Body,
    Moderation,
    ReportCount,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Reactions {
    Table,
    TargetId,
    UserId,
    Kind,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Reports {
    Table,
    TargetId,
    ReporterId,
    CrewId,
    Kind,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Meetups {
    Table,
    Id,
    CrewId,
    CreatedBy,
    Title,
    Description,
    StartsAt,
    TimeZone,
    MeetingPoint,
    Latitude,
    Longitude,
    PlannedDistanceMeters,
    PaceGroups,
    Capacity,
    RsvpDeadline,
    MembersOnly,
    Recurrence,
    Status,
    CancelReason,
    GoingCount,
    WaitlistCount,
    NextSeq,
    Version,
    ReminderSentAt,
    SuccessorAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Rsvps {
    Table,
    MeetupId,
    UserId,
    Status,
    Seq,
    GoingSince,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum FeedRuns {
    Table,
    RunId,
    OwnerId,
    Title,
    StartTime,
    DistanceMeters,
    ElapsedSeconds,
    MovingSeconds,
    PaceSecondsPerKm,
    Visibility,
    KudosCount,
    CommentCount,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RunKudos {
    Table,
    RunId,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RunComments {
    Table,
    Id,
    RunId,
    AuthorId,
    Body,
    CreatedAt,
}

struct CreateSocial;

impl MigrationName for CreateSocial {
    fn name(&self) -> &str {
        "m20261201_000001_social"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSocial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Crews::Table)
                    .if_not_exists()
                    .col(uuid(Crews::Id))
                    .col(string(Crews::OwnerId))
                    .col(string(Crews::Name))
                    .col(string(Crews::NameKey))
                    .col(text(Crews::Description))
                    .col(string(Crews::Region))
                    .col(string(Crews::RegionKey))
                    .col(string(Crews::CoverUrl))
                    .col(string(Crews::Visibility))
                    .col(timestamp_with_time_zone_null(Crews::ArchivedAt))
                    .col(integer(Crews::MemberCount))
                    .col(timestamp_with_time_zone(Crews::CreatedAt))
                    .col(timestamp_with_time_zone(Crews::UpdatedAt))
                    .primary_key(Index::create().col(Crews::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CrewMembers::Table)
                    .if_not_exists()
                    .col(uuid(CrewMembers::CrewId))
                    .col(string(CrewMembers::UserId))
                    .col(string(CrewMembers::State))
                    .col(string(CrewMembers::Role))
                    .col(string(CrewMembers::Message))
                    .col(timestamp_with_time_zone(CrewMembers::Since))
                    .primary_key(
                        Index::create()
                            .col(CrewMembers::CrewId)
                            .col(CrewMembers::UserId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CrewInvites::Table)
                    .if_not_exists()
                    .col(string(CrewInvites::Code))
                    .col(uuid(CrewInvites::CrewId))
                    .col(string(CrewInvites::CreatedBy))
                    .col(timestamp_with_time_zone(CrewInvites::ExpiresAt))
                    .col(integer(CrewInvites::MaxUses))
                    .col(integer(CrewInvites::Uses))
                    .col(timestamp_with_time_zone(CrewInvites::CreatedAt))
                    .primary_key(Index::create().col(CrewInvites::Code))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserProfiles::Table)
                    .if_not_exists()
                    .col(string(UserProfiles::UserId))
                    .col(string(UserProfiles::DisplayName))
                    .col(timestamp_with_time_zone(UserProfiles::UpdatedAt))
                    .primary_key(Index::create().col(UserProfiles::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Posts::Table)
                    .if_not_exists()
                    .col(uuid(Posts::Id))
                    .col(uuid(Posts::CrewId))
                    .col(string(Posts::AuthorId))
                    .col(string(Posts::Category))
                    .col(string(Posts::Title))
                    .col(text(Posts::Body))
                    .col(integer(Posts::Pinned))
                    .col(string(Posts::Moderation))
                    .col(integer(Posts::ReportCount))
                    .col(integer(Posts::CommentCount))
                    .col(timestamp_with_time_zone(Posts::CreatedAt))
                    .col(timestamp_with_time_zone_null(Posts::EditedAt))
                    .primary_key(Index::create().col(Posts::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Comments::Table)
                    .if_not_exists()
                    .col(uuid(Comments::Id))
                    .col(uuid(Comments::PostId))
                    .col(uuid(Comments::CrewId))
                    .col(uuid_null(Comments::ParentId))
                    .col(string(Comments::AuthorId))
                    .col(text(Comments::Body))
                    .col(string(Comments::Moderation))
                    .col(integer(Comments::ReportCount))
                    .col(timestamp_with_time_zone(Comments::CreatedAt))
                    .primary_key(Index::create().col(Comments::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Reactions::Table)
                    .if_not_exists()
                    .col(uuid(Reactions::TargetId))
                    .col(string(Reactions::UserId))
                    .col(string(Reactions::Kind))
                    .col(timestamp_with_time_zone(Reactions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Reactions::TargetId)
                            .col(Reactions::UserId)
                            .col(Reactions::Kind),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Reports::Table)
                    .if_not_exists()
                    .col(uuid(Reports::TargetId))
                    .col(string(Reports::ReporterId))
                    .col(uuid(Reports::CrewId))
                    .col(string(Reports::Kind))
                    .col(string(Reports::Reason))
                    .col(timestamp_with_time_zone(Reports::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Reports::TargetId)
                            .col(Reports::ReporterId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Meetups::Table)
                    .if_not_exists()
                    .col(uuid(Meetups::Id))
                    .col(uuid(Meetups::CrewId))
                    .col(string(Meetups::CreatedBy))
                    .col(string(Meetups::Title))
                    .col(text(Meetups::Description))
                    .col(timestamp_with_time_zone(Meetups::StartsAt))
                    .col(string(Meetups::TimeZone))
                    .col(string(Meetups::MeetingPoint))
                    .col(double(Meetups::Latitude))
                    .col(double(Meetups::Longitude))
                    .col(integer(Meetups::PlannedDistanceMeters))
                    .col(string(Meetups::PaceGroups))
                    .col(integer(Meetups::Capacity))
                    .col(timestamp_with_time_zone(Meetups::RsvpDeadline))
                    .col(boolean(Meetups::MembersOnly))
                    .col(string(Meetups::Recurrence))
                    .col(string(Meetups::Status))
                    .col(string(Meetups::CancelReason))
                    .col(integer(Meetups::GoingCount))
                    .col(integer(Meetups::WaitlistCount))
                    .col(big_integer(Meetups::NextSeq))
                    .col(big_integer(Meetups::Version))
                    .col(timestamp_with_time_zone_null(Meetups::ReminderSentAt))
                    .col(timestamp_with_time_zone_null(Meetups::SuccessorAt))
                    .col(timestamp_with_time_zone(Meetups::CreatedAt))
                    .col(timestamp_with_time_zone(Meetups::UpdatedAt))
                    .primary_key(Index::create().col(Meetups::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Rsvps::Table)
                    .if_not_exists()
                    .col(uuid(Rsvps::MeetupId))
                    .col(string(Rsvps::UserId))
                    .col(string(Rsvps::Status))
                    .col(big_integer_null(Rsvps::Seq))
                    .col(timestamp_with_time_zone_null(Rsvps::GoingSince))
                    .col(timestamp_with_time_zone(Rsvps::UpdatedAt))
                    .primary_key(Index::create().col(Rsvps::MeetupId).col(Rsvps::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FeedRuns::Table)
                    .if_not_exists()
                    .col(string(FeedRuns::RunId))
                    .col(string(FeedRuns::OwnerId))
                    .col(string(FeedRuns::Title))
                    .col(timestamp_with_time_zone(FeedRuns::StartTime))
                    .col(double(FeedRuns::DistanceMeters))
                    .col(big_integer(FeedRuns::ElapsedSeconds))
                    .col(big_integer(FeedRuns::MovingSeconds))
                    .col(double(FeedRuns::PaceSecondsPerKm))
                    .col(string(FeedRuns::Visibility))
                    .col(integer(FeedRuns::KudosCount))
                    .col(integer(FeedRuns::CommentCount))
                    .col(timestamp_with_time_zone(FeedRuns::UpdatedAt))
                    .primary_key(Index::create().col(FeedRuns::RunId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RunKudos::Table)
                    .if_not_exists()
                    .col(string(RunKudos::RunId))
                    .col(string(RunKudos::UserId))
                    .col(timestamp_with_time_zone(RunKudos::CreatedAt))
                    .primary_key(Index::create().col(RunKudos::RunId).col(RunKudos::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RunComments::Table)
                    .if_not_exists()
                    .col(uuid(RunComments::Id))
                    .col(string(RunComments::RunId))
                    .col(string(RunComments::AuthorId))
                    .col(string(RunComments::Body))
                    .col(timestamp_with_time_zone(RunComments::CreatedAt))
                    .primary_key(Index::create().col(RunComments::Id))
                    .to_owned(),
            )
            .await?;
        for statement in [
            index(
                "idx_crews_region",
                Crews::Table,
                &[Crews::RegionKey, Crews::Id],
            ),
            index(
                "idx_crew_members_user",
                CrewMembers::Table,
                &[CrewMembers::UserId, CrewMembers::State],
            ),
            index(
                "idx_crew_members_crew",
                CrewMembers::Table,
                &[CrewMembers::CrewId, CrewMembers::State, CrewMembers::Since],
            ),
            index(
                "idx_crew_invites_crew",
                CrewInvites::Table,
                &[CrewInvites::CrewId],
            ),
            // The board: pinned first, then newest (ids are UUIDv7), one index step per page.
            index(
                "idx_posts_board",
                Posts::Table,
                &[Posts::CrewId, Posts::Pinned, Posts::Id],
            ),
            index("idx_posts_author", Posts::Table, &[Posts::AuthorId]),
            index(
                "idx_comments_post",
                Comments::Table,
                &[Comments::PostId, Comments::Id],
            ),
            index(
                "idx_comments_author",
                Comments::Table,
                &[Comments::AuthorId],
            ),
            index("idx_reactions_user", Reactions::Table, &[Reactions::UserId]),
            index(
                "idx_reports_crew",
                Reports::Table,
                &[Reports::CrewId, Reports::CreatedAt],
            ),
            index(
                "idx_meetups_crew",
                Meetups::Table,
                &[Meetups::CrewId, Meetups::StartsAt, Meetups::Id],
            ),
            index(
                "idx_meetups_schedule",
                Meetups::Table,
                &[Meetups::Status, Meetups::StartsAt],
            ),
            index(
                "idx_rsvps_line",
                Rsvps::Table,
                &[Rsvps::MeetupId, Rsvps::Status, Rsvps::Seq],
            ),
            index("idx_rsvps_user", Rsvps::Table, &[Rsvps::UserId]),
            index(
                "idx_feed_runs_owner",
                FeedRuns::Table,
                &[FeedRuns::OwnerId, FeedRuns::StartTime],
            ),
            index("idx_run_kudos_user", RunKudos::Table, &[RunKudos::UserId]),
            index(
                "idx_run_comments_run",
                RunComments::Table,
                &[RunComments::RunId, RunComments::Id],
            ),
            index(
                "idx_run_comments_author",
                RunComments::Table,
                &[RunComments::AuthorId],
            ),
        ] {
            manager.create_index(statement).await?;
        }
        // One waitlist place per sequence number per meetup (NULLs are distinct).
        manager
            .create_index(
                index("uq_rsvps_seq", Rsvps::Table, &[Rsvps::MeetupId, Rsvps::Seq])
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RunComments::Table.into_iden(),
            RunKudos::Table.into_iden(),
            FeedRuns::Table.into_iden(),
            Rsvps::Table.into_iden(),
            Meetups::Table.into_iden(),
            Reports::Table.into_iden(),
            Reactions::Table.into_iden(),
            Comments::Table.into_iden(),
            Posts::Table.into_iden(),
            UserProfiles::Table.into_iden(),
            CrewInvites::Table.into_iden(),
            CrewMembers::Table.into_iden(),
            Crews::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
