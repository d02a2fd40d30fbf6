//! svc-race's schema. Never edit a released migration; add a new one.

use runmesh_platform::db::index;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, double_null, integer, integer_null, string_len, string_len_null,
    text, timestamp_with_time_zone, timestamp_with_time_zone_null, uuid,
};

/// Runs svc-race's migrations and the platform's (the event outbox and inbox).
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = runmesh_platform::events::migrations();
        migrations.push(Box::new(CreateRaces));
        migrations.push(Box::new(AddRegistrationResults));
        migrations
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Races {
    Table,
    Id,
    OrganizerId,
    Name,
    Description,
    Region,
    RegionKey,
    Venue,
    Latitude,
    Longitude,
    StartsAt,
    RegistrationOpensAt,
    RegistrationClosesAt,
    OfficialUrl,
    Status,
    OpeningAnnouncedAt,
    CreatedAt,
    UpdatedAt,
    PublishedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RaceCategories {
    Table,
    Id,
    RaceId,
    Position,
    Name,
    DistanceMeters,
    Capacity,
    WaitlistCapacity,
    FeeCurrency,
    FeeAmountMinor,
    FirstBib,
}

#[derive(DeriveIden, Clone, Copy)]
enum Registrations {
    Table,
    Id,
    RaceId,
    CategoryId,
    UserId,
    Status,
    Place,
    BibNumber,
    WaitlistPlace,
    WaitlistSeq,
    IdempotencyKey,
    CreatedAt,
    UpdatedAt,
    ResultRunId,
    ResultElapsedMicros,
    ResultLinkedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum OpeningSubscriptions {
    Table,
    RaceId,
    UserId,
    CreatedAt,
}

const USER_ID_LEN: u32 = 64;
/// svc-run's run ids are UUIDs; kept as text, as another service's ids are.
const RUN_ID_LEN: u32 = 64;

struct CreateRaces;

impl MigrationName for CreateRaces {
    fn name(&self) -> &str {
        "m20261201_000001_race_registrations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateRaces {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Races::Table)
                    .if_not_exists()
                    .col(uuid(Races::Id).primary_key())
                    .col(string_len(Races::OrganizerId, USER_ID_LEN))
                    .col(string_len(Races::Name, 200))
                    .col(text(Races::Description))
                    .col(string_len(Races::Region, 100))
                    .col(string_len(Races::RegionKey, 100))
                    .col(string_len(Races::Venue, 200))
                    .col(double_null(Races::Latitude))
                    .col(double_null(Races::Longitude))
                    .col(timestamp_with_time_zone(Races::StartsAt))
                    .col(timestamp_with_time_zone(Races::RegistrationOpensAt))
                    .col(timestamp_with_time_zone(Races::RegistrationClosesAt))
                    .col(string_len(Races::OfficialUrl, 2048))
                    .col(string_len(Races::Status, 16))
                    .col(timestamp_with_time_zone_null(Races::OpeningAnnouncedAt))
                    .col(timestamp_with_time_zone(Races::CreatedAt))
                    .col(timestamp_with_time_zone(Races::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Races::PublishedAt))
                    .to_owned(),
            )
            .await?;
        for statement in [
            index(
                "idx_races_listing",
                Races::Table,
                &[Races::Status, Races::StartsAt, Races::Id],
            ),
            index(
                "idx_races_opening",
                Races::Table,
                &[Races::Status, Races::RegistrationOpensAt],
            ),
            index("idx_races_organizer", Races::Table, &[Races::OrganizerId]),
        ] {
            manager.create_index(statement).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(RaceCategories::Table)
                    .if_not_exists()
                    .col(uuid(RaceCategories::Id).primary_key())
                    .col(uuid(RaceCategories::RaceId))
                    .col(integer(RaceCategories::Position))
                    .col(string_len(RaceCategories::Name, 100))
                    .col(integer(RaceCategories::DistanceMeters))
                    .col(integer(RaceCategories::Capacity))
                    .col(integer(RaceCategories::WaitlistCapacity))
                    .col(string_len(RaceCategories::FeeCurrency, 3))
                    .col(big_integer(RaceCategories::FeeAmountMinor))
                    .col(integer(RaceCategories::FirstBib))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RaceCategories::Table, RaceCategories::RaceId)
                            .to(Races::Table, Races::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_race_categories_race",
                RaceCategories::Table,
                &[RaceCategories::RaceId, RaceCategories::DistanceMeters],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Registrations::Table)
                    .if_not_exists()
                    .col(uuid(Registrations::Id).primary_key())
                    .col(uuid(Registrations::RaceId))
                    .col(uuid(Registrations::CategoryId))
                    .col(string_len(Registrations::UserId, USER_ID_LEN))
                    .col(string_len(Registrations::Status, 16))
                    .col(integer_null(Registrations::Place))
                    .col(integer_null(Registrations::BibNumber))
                    .col(integer_null(Registrations::WaitlistPlace))
                    .col(big_integer_null(Registrations::WaitlistSeq))
                    .col(string_len(Registrations::IdempotencyKey, 64))
                    .col(timestamp_with_time_zone(Registrations::CreatedAt))
                    .col(timestamp_with_time_zone(Registrations::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Registrations::Table, Registrations::RaceId)
                            .to(Races::Table, Races::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Registrations::Table, Registrations::CategoryId)
                            .to(RaceCategories::Table, RaceCategories::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The invariants, enforced by the database whatever the gate believes: one registration
        // per runner and race; each confirmed place, bib and waitlist place held once. Places
        // are 1..=capacity, so confirmed registrations never exceed capacity. (NULLs are
        // distinct in unique indexes on both PostgreSQL and SQLite.)
        for mut statement in [
            index(
                "uq_registrations_runner",
                Registrations::Table,
                &[Registrations::RaceId, Registrations::UserId],
            ),
            index(
                "uq_registrations_place",
                Registrations::Table,
                &[Registrations::CategoryId, Registrations::Place],
            ),
            index(
                "uq_registrations_bib",
                Registrations::Table,
                &[Registrations::RaceId, Registrations::BibNumber],
            ),
            index(
                "uq_registrations_waitlist_place",
                Registrations::Table,
                &[Registrations::CategoryId, Registrations::WaitlistPlace],
            ),
            index(
                "uq_registrations_waitlist_seq",
                Registrations::Table,
                &[Registrations::CategoryId, Registrations::WaitlistSeq],
            ),
        ] {
            manager.create_index(statement.unique().to_owned()).await?;
        }
        for statement in [
            index(
                "idx_registrations_race",
                Registrations::Table,
                &[Registrations::RaceId, Registrations::Id],
            ),
            index(
                "idx_registrations_user",
                Registrations::Table,
                &[Registrations::UserId, Registrations::Id],
            ),
            index(
                "idx_registrations_waitlist",
                Registrations::Table,
                &[
                    Registrations::CategoryId,
                    Registrations::Status,
                    Registrations::WaitlistSeq,
                ],
            ),
        ] {
            manager.create_index(statement).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(OpeningSubscriptions::Table)
                    .if_not_exists()
                    .col(uuid(OpeningSubscriptions::RaceId))
                    .col(string_len(OpeningSubscriptions::UserId, USER_ID_LEN))
                    .col(timestamp_with_time_zone(OpeningSubscriptions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(OpeningSubscriptions::RaceId)
                            .col(OpeningSubscriptions::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(OpeningSubscriptions::Table, OpeningSubscriptions::RaceId)
                            .to(Races::Table, Races::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OpeningSubscriptions::Table.into_iden(),
            Registrations::Table.into_iden(),
            RaceCategories::Table.into_iden(),
            Races::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The run svc-run linked as each registration's result (`RaceResultLinked`), with an index to
/// find a deleted run's links.
struct AddRegistrationResults;

impl MigrationName for AddRegistrationResults {
    fn name(&self) -> &str {
        "m20261220_000001_registration_results"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddRegistrationResults {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        for column in [
            string_len_null(Registrations::ResultRunId, RUN_ID_LEN),
            big_integer_null(Registrations::ResultElapsedMicros),
            timestamp_with_time_zone_null(Registrations::ResultLinkedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Registrations::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(index(
                "idx_registrations_result_run",
                Registrations::Table,
                &[Registrations::ResultRunId],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_registrations_result_run")
                    .table(Registrations::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Registrations::ResultLinkedAt,
            Registrations::ResultElapsedMicros,
            Registrations::ResultRunId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Registrations::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
