//! Rankings, badges, goals, challenges, race results and the crew and race projections.

use runmesh_platform::db::index;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean, double, double_null, integer, integer_null, string_len, text,
    timestamp_with_time_zone, timestamp_with_time_zone_null, uuid, uuid_null,
};

const USER_ID_LEN: u32 = 64;

#[derive(DeriveIden, Clone, Copy)]
enum Runs {
    Table,
    StartLat,
    StartLng,
}

#[derive(DeriveIden, Clone, Copy)]
enum RunnerProfiles {
    Table,
    Gender,
}

#[derive(DeriveIden, Clone, Copy)]
enum BoardTotals {
    Table,
    Period,
    OwnerId,
    DistanceM,
    MovingS,
    Runs,
    ElevationM,
    ReachedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RankingPreferences {
    Table,
    UserId,
    OptOut,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Achievements {
    Table,
    OwnerId,
    BadgeId,
    Tier,
    Period,
    RunId,
    EarnedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Goals {
    Table,
    Id,
    OwnerId,
    Metric,
    Period,
    Target,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum GoalsMet {
    Table,
    GoalId,
    Period,
    RunId,
    MetAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Challenges {
    Table,
    Id,
    Title,
    Description,
    Metric,
    Target,
    StartDate,
    EndDate,
    CrewId,
    BadgeId,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ChallengeParticipants {
    Table,
    ChallengeId,
    UserId,
    JoinedAt,
    Value,
    ReachedAt,
    CompletedAt,
    CompletedRunId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Crews {
    Table,
    CrewId,
    Name,
    Archived,
}

#[derive(DeriveIden, Clone, Copy)]
enum CrewMembers {
    Table,
    CrewId,
    UserId,
    Role,
}

#[derive(DeriveIden, Clone, Copy)]
enum Races {
    Table,
    RaceId,
    Name,
    StartsAt,
    Latitude,
    Longitude,
    Categories,
}

#[derive(DeriveIden, Clone, Copy)]
enum RaceRegistrations {
    Table,
    RegistrationId,
    RaceId,
    CategoryId,
    UserId,
    Status,
    BibNumber,
}

#[derive(DeriveIden, Clone, Copy)]
enum RaceResults {
    Table,
    RegistrationId,
    RaceId,
    CategoryId,
    UserId,
    RunId,
    ElapsedS,
    Manual,
    LinkedAt,
}

pub struct CreateProgress;

impl MigrationName for CreateProgress {
    fn name(&self) -> &str {
        "m20261213_000001_progress"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateProgress {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        for column in [Runs::StartLat, Runs::StartLng] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Runs::Table)
                        .add_column(double_null(column))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(RunnerProfiles::Table)
                    .add_column(string_len(RunnerProfiles::Gender, 16).default(""))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(BoardTotals::Table)
                    .if_not_exists()
                    .col(string_len(BoardTotals::Period, 16))
                    .col(string_len(BoardTotals::OwnerId, USER_ID_LEN))
                    .col(double(BoardTotals::DistanceM))
                    .col(double(BoardTotals::MovingS))
                    .col(integer(BoardTotals::Runs))
                    .col(double(BoardTotals::ElevationM))
                    .col(timestamp_with_time_zone(BoardTotals::ReachedAt))
                    .col(timestamp_with_time_zone(BoardTotals::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(BoardTotals::Period)
                            .col(BoardTotals::OwnerId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_board_totals_changed",
                BoardTotals::Table,
                &[BoardTotals::Period, BoardTotals::UpdatedAt],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RankingPreferences::Table)
                    .if_not_exists()
                    .col(string_len(RankingPreferences::UserId, USER_ID_LEN).primary_key())
                    .col(boolean(RankingPreferences::OptOut))
                    .col(timestamp_with_time_zone(RankingPreferences::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Achievements::Table)
                    .if_not_exists()
                    .col(string_len(Achievements::OwnerId, USER_ID_LEN))
                    .col(string_len(Achievements::BadgeId, 64))
                    .col(integer(Achievements::Tier))
                    .col(string_len(Achievements::Period, 64))
                    .col(uuid_null(Achievements::RunId))
                    .col(timestamp_with_time_zone(Achievements::EarnedAt))
                    .primary_key(
                        Index::create()
                            .col(Achievements::OwnerId)
                            .col(Achievements::BadgeId)
                            .col(Achievements::Tier)
                            .col(Achievements::Period),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Goals::Table)
                    .if_not_exists()
                    .col(uuid(Goals::Id).primary_key())
                    .col(string_len(Goals::OwnerId, USER_ID_LEN))
                    .col(string_len(Goals::Metric, 16))
                    .col(string_len(Goals::Period, 16))
                    .col(double(Goals::Target))
                    .col(timestamp_with_time_zone(Goals::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "uq_goals_owner_metric_period",
                    Goals::Table,
                    &[Goals::OwnerId, Goals::Metric, Goals::Period],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(GoalsMet::Table)
                    .if_not_exists()
                    .col(uuid(GoalsMet::GoalId))
                    .col(string_len(GoalsMet::Period, 16))
                    .col(uuid_null(GoalsMet::RunId))
                    .col(timestamp_with_time_zone(GoalsMet::MetAt))
                    .primary_key(Index::create().col(GoalsMet::GoalId).col(GoalsMet::Period))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Challenges::Table)
                    .if_not_exists()
                    .col(uuid(Challenges::Id).primary_key())
                    .col(string_len(Challenges::Title, 200))
                    .col(text(Challenges::Description))
                    .col(string_len(Challenges::Metric, 16))
                    .col(double(Challenges::Target))
                    .col(string_len(Challenges::StartDate, 10))
                    .col(string_len(Challenges::EndDate, 10))
                    .col(string_len(Challenges::CrewId, USER_ID_LEN))
                    .col(string_len(Challenges::BadgeId, 64))
                    .col(string_len(Challenges::CreatedBy, USER_ID_LEN))
                    .col(timestamp_with_time_zone(Challenges::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ChallengeParticipants::Table)
                    .if_not_exists()
                    .col(uuid(ChallengeParticipants::ChallengeId))
                    .col(string_len(ChallengeParticipants::UserId, USER_ID_LEN))
                    .col(timestamp_with_time_zone(ChallengeParticipants::JoinedAt))
                    .col(double(ChallengeParticipants::Value))
                    .col(timestamp_with_time_zone_null(
                        ChallengeParticipants::ReachedAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        ChallengeParticipants::CompletedAt,
                    ))
                    .col(uuid_null(ChallengeParticipants::CompletedRunId))
                    .primary_key(
                        Index::create()
                            .col(ChallengeParticipants::ChallengeId)
                            .col(ChallengeParticipants::UserId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_challenge_participants_user",
                ChallengeParticipants::Table,
                &[ChallengeParticipants::UserId],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Crews::Table)
                    .if_not_exists()
                    .col(string_len(Crews::CrewId, USER_ID_LEN).primary_key())
                    .col(string_len(Crews::Name, 200))
                    .col(boolean(Crews::Archived))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CrewMembers::Table)
                    .if_not_exists()
                    .col(string_len(CrewMembers::CrewId, USER_ID_LEN))
                    .col(string_len(CrewMembers::UserId, USER_ID_LEN))
                    .col(string_len(CrewMembers::Role, 16))
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
                    .table(Races::Table)
                    .if_not_exists()
                    .col(string_len(Races::RaceId, USER_ID_LEN).primary_key())
                    .col(string_len(Races::Name, 200))
                    .col(timestamp_with_time_zone(Races::StartsAt))
                    .col(double_null(Races::Latitude))
                    .col(double_null(Races::Longitude))
                    .col(text(Races::Categories))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RaceRegistrations::Table)
                    .if_not_exists()
                    .col(string_len(RaceRegistrations::RegistrationId, USER_ID_LEN).primary_key())
                    .col(string_len(RaceRegistrations::RaceId, USER_ID_LEN))
                    .col(string_len(RaceRegistrations::CategoryId, USER_ID_LEN))
                    .col(string_len(RaceRegistrations::UserId, USER_ID_LEN))
                    .col(string_len(RaceRegistrations::Status, 16))
                    .col(integer_null(RaceRegistrations::BibNumber))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_race_registrations_user",
                RaceRegistrations::Table,
                &[RaceRegistrations::UserId],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RaceResults::Table)
                    .if_not_exists()
                    .col(string_len(RaceResults::RegistrationId, USER_ID_LEN).primary_key())
                    .col(string_len(RaceResults::RaceId, USER_ID_LEN))
                    .col(string_len(RaceResults::CategoryId, USER_ID_LEN))
                    .col(string_len(RaceResults::UserId, USER_ID_LEN))
                    .col(uuid_null(RaceResults::RunId))
                    .col(double_null(RaceResults::ElapsedS))
                    .col(boolean(RaceResults::Manual))
                    .col(timestamp_with_time_zone(RaceResults::LinkedAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_race_results_race",
                [RaceResults::RaceId, RaceResults::CategoryId],
            ),
            (
                "idx_race_results_run",
                [RaceResults::RunId, RaceResults::UserId],
            ),
        ] {
            manager
                .create_index(index(name, RaceResults::Table, &columns))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RaceResults::Table.into_iden(),
            RaceRegistrations::Table.into_iden(),
            Races::Table.into_iden(),
            CrewMembers::Table.into_iden(),
            Crews::Table.into_iden(),
            ChallengeParticipants::Table.into_iden(),
            Challenges::Table.into_iden(),
            GoalsMet::Table.into_iden(),
            Goals::Table.into_iden(),
            Achievements::Table.into_iden(),
            RankingPreferences::Table.into_iden(),
            BoardTotals::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
