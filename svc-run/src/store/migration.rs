//! svc-run's schema. Never edit a released migration; add a new one.

use runmesh_platform::db::index;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, blob, boolean, double, double_null, integer, integer_null, string_len,
    string_len_null, text, timestamp_with_time_zone, timestamp_with_time_zone_null, uuid,
    uuid_null,
};

mod progress;
mod recap_notices;
use progress::CreateProgress;
use recap_notices::CreateRecapNotices;

/// Runs svc-run's migrations and the platform's (the event outbox and inbox).
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = runmesh_platform::events::migrations();
        migrations.push(Box::new(CreateRuns));
        migrations.push(Box::new(CreateArchiveImports));
        migrations.push(Box::new(CreateProgress));
        migrations.push(Box::new(CreateRecapNotices));
        migrations
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Runs {
    Table,
    Id,
    OwnerId,
    Sport,
    Title,
    Notes,
    Visibility,
    StartTime,
    EndTime,
    TimeZone,
    ElapsedS,
    MovingS,
    DistanceM,
    ElevationGainM,
    ElevationLossM,
    AverageHeartRate,
    MaxHeartRate,
    AverageCadence,
    MaxCadence,
    AveragePaceSPerKm,
    Source,
    OriginalFileName,
    HasTrack,
    ContentHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RunAnalyses {
    Table,
    RunId,
    Details,
    Streams,
}

#[derive(DeriveIden, Clone, Copy)]
enum RunOriginals {
    Table,
    RunId,
    OwnerId,
    FileName,
    ContentType,
    SizeBytes,
    Bytes,
}

#[derive(DeriveIden, Clone, Copy)]
enum BestEfforts {
    Table,
    RunId,
    Distance,
    OwnerId,
    ElapsedS,
    StartOffsetS,
    AchievedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RunnerProfiles {
    Table,
    UserId,
    DisplayName,
    TimeZone,
    DistanceUnit,
    DefaultVisibility,
    BirthYear,
    PrivacyZoneMeters,
    UpdatedAt,
}

const USER_ID_LEN: u32 = 64;

struct CreateRuns;

impl MigrationName for CreateRuns {
    fn name(&self) -> &str {
        "m20261210_000001_runs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateRuns {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Runs::Table)
                    .if_not_exists()
                    .col(uuid(Runs::Id).primary_key())
                    .col(string_len(Runs::OwnerId, USER_ID_LEN))
                    .col(string_len(Runs::Sport, 16))
                    .col(string_len(Runs::Title, 200))
                    .col(text(Runs::Notes))
                    .col(string_len(Runs::Visibility, 16))
                    .col(timestamp_with_time_zone(Runs::StartTime))
                    .col(timestamp_with_time_zone(Runs::EndTime))
                    .col(string_len(Runs::TimeZone, 64))
                    .col(double(Runs::ElapsedS))
                    .col(double(Runs::MovingS))
                    .col(double(Runs::DistanceM))
                    .col(double_null(Runs::ElevationGainM))
                    .col(double_null(Runs::ElevationLossM))
                    .col(integer_null(Runs::AverageHeartRate))
                    .col(integer_null(Runs::MaxHeartRate))
                    .col(integer_null(Runs::AverageCadence))
                    .col(integer_null(Runs::MaxCadence))
                    .col(double(Runs::AveragePaceSPerKm))
                    .col(string_len(Runs::Source, 16))
                    .col(string_len(Runs::OriginalFileName, 255))
                    .col(boolean(Runs::HasTrack))
                    .col(string_len_null(Runs::ContentHash, 64))
                    .col(timestamp_with_time_zone(Runs::CreatedAt))
                    .col(timestamp_with_time_zone(Runs::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // One upload of the same bytes per runner (NULLs, manual runs, are distinct).
        manager
            .create_index(
                index(
                    "uq_runs_owner_hash",
                    Runs::Table,
                    &[Runs::OwnerId, Runs::ContentHash],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_runs_owner_start",
                Runs::Table,
                &[Runs::OwnerId, Runs::StartTime, Runs::Id],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RunAnalyses::Table)
                    .if_not_exists()
                    .col(uuid(RunAnalyses::RunId).primary_key())
                    .col(blob(RunAnalyses::Details))
                    .col(blob(RunAnalyses::Streams))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RunAnalyses::Table, RunAnalyses::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RunOriginals::Table)
                    .if_not_exists()
                    .col(uuid(RunOriginals::RunId).primary_key())
                    .col(string_len(RunOriginals::OwnerId, USER_ID_LEN))
                    .col(string_len(RunOriginals::FileName, 255))
                    .col(string_len(RunOriginals::ContentType, 100))
                    .col(big_integer(RunOriginals::SizeBytes))
                    .col(blob(RunOriginals::Bytes))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RunOriginals::Table, RunOriginals::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(BestEfforts::Table)
                    .if_not_exists()
                    .col(uuid(BestEfforts::RunId))
                    .col(string_len(BestEfforts::Distance, 16))
                    .col(string_len(BestEfforts::OwnerId, USER_ID_LEN))
                    .col(double(BestEfforts::ElapsedS))
                    .col(double(BestEfforts::StartOffsetS))
                    .col(timestamp_with_time_zone(BestEfforts::AchievedAt))
                    .primary_key(
                        Index::create()
                            .col(BestEfforts::RunId)
                            .col(BestEfforts::Distance),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(BestEfforts::Table, BestEfforts::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_best_efforts_owner",
                BestEfforts::Table,
                // The record lookup's whole order (ties broken by time, then run): one index step.
                &[
                    BestEfforts::OwnerId,
                    BestEfforts::Distance,
                    BestEfforts::ElapsedS,
                    BestEfforts::AchievedAt,
                    BestEfforts::RunId,
                ],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RunnerProfiles::Table)
                    .if_not_exists()
                    .col(string_len(RunnerProfiles::UserId, USER_ID_LEN).primary_key())
                    .col(string_len(RunnerProfiles::DisplayName, 200))
                    .col(string_len(RunnerProfiles::TimeZone, 64))
                    .col(string_len(RunnerProfiles::DistanceUnit, 8))
                    .col(string_len(RunnerProfiles::DefaultVisibility, 16))
                    .col(integer_null(RunnerProfiles::BirthYear))
                    .col(integer_null(RunnerProfiles::PrivacyZoneMeters))
                    .col(timestamp_with_time_zone(RunnerProfiles::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RunnerProfiles::Table.into_iden(),
            BestEfforts::Table.into_iden(),
            RunOriginals::Table.into_iden(),
            RunAnalyses::Table.into_iden(),
            Runs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ArchiveImports {
    Table,
    Id,
    OwnerId,
    State,
    ActivitiesSeen,
    Error,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ArchiveEntries {
    Table,
    ImportId,
    Position,
    Entry,
    Outcome,
    Reason,
    Message,
    RunId,
}

struct CreateArchiveImports;

impl MigrationName for CreateArchiveImports {
    fn name(&self) -> &str {
        "m20261211_000001_archive_imports"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateArchiveImports {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ArchiveImports::Table)
                    .if_not_exists()
                    .col(uuid(ArchiveImports::Id).primary_key())
                    .col(string_len(ArchiveImports::OwnerId, USER_ID_LEN))
                    .col(string_len(ArchiveImports::State, 16))
                    .col(integer(ArchiveImports::ActivitiesSeen))
                    .col(text(ArchiveImports::Error))
                    .col(timestamp_with_time_zone(ArchiveImports::StartedAt))
                    .col(timestamp_with_time_zone_null(ArchiveImports::FinishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_archive_imports_state",
                ArchiveImports::Table,
                &[ArchiveImports::State],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ArchiveEntries::Table)
                    .if_not_exists()
                    .col(uuid(ArchiveEntries::ImportId))
                    .col(integer(ArchiveEntries::Position))
                    .col(string_len(ArchiveEntries::Entry, 255))
                    .col(string_len(ArchiveEntries::Outcome, 16))
                    .col(string_len(ArchiveEntries::Reason, 64))
                    .col(text(ArchiveEntries::Message))
                    .col(uuid_null(ArchiveEntries::RunId))
                    .primary_key(
                        Index::create()
                            .col(ArchiveEntries::ImportId)
                            .col(ArchiveEntries::Position),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ArchiveEntries::Table, ArchiveEntries::ImportId)
                            .to(ArchiveImports::Table, ArchiveImports::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ArchiveEntries::Table.into_iden(),
            ArchiveImports::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
