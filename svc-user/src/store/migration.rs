//! svc-user's schema. Never edit a released migration; add a new one.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    blob, boolean, integer_null, string, string_len, string_len_null, string_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

/// Runs svc-user's migrations and the platform's (the event outbox).
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = runmesh_platform::events::migrations();
        migrations.push(Box::new(CreateAccounts));
        migrations.push(Box::new(AddPrivacyZone));
        migrations
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    DisplayName,
    IsOrganizer,
    IsAdmin,
    SlackMemberId,
    NotifyRaceOpening,
    NotifyRegistrationResult,
    NotifyAchievement,
    NotifyCrewActivity,
    DistanceUnit,
    TimeZone,
    BirthYear,
    Gender,
    DefaultRunPrivacy,
    PrivacyZoneMeters,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    CreatedAt,
    ExpiresAt,
    RefreshedAt,
    RevokedAt,
    RevokedReason,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    SessionId,
    CreatedAt,
    SpentAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    PrivateKey,
    PublicKey,
    CreatedAt,
    SignsFrom,
    SignsUntil,
    VerifiesUntil,
}

const ID_LEN: u32 = 36;

struct CreateAccounts;

impl MigrationName for CreateAccounts {
    fn name(&self) -> &str {
        "m20261124_000001_user_accounts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAccounts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(string_len(Users::Id, ID_LEN).primary_key())
                    .col(string_len(Users::Email, 254).unique_key())
                    .col(string(Users::PasswordHash))
                    .col(string_len(Users::DisplayName, 200))
                    .col(boolean(Users::IsOrganizer))
                    .col(boolean(Users::IsAdmin))
                    .col(string_len_null(Users::SlackMemberId, 32))
                    .col(boolean(Users::NotifyRaceOpening))
                    .col(boolean(Users::NotifyRegistrationResult))
                    .col(boolean(Users::NotifyAchievement))
                    .col(boolean(Users::NotifyCrewActivity))
                    .col(string_len(Users::DistanceUnit, 16))
                    .col(string_len(Users::TimeZone, 64))
                    .col(integer_null(Users::BirthYear))
                    .col(string_null(Users::Gender))
                    .col(string_len(Users::DefaultRunPrivacy, 16))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(string_len(Sessions::Id, ID_LEN).primary_key())
                    .col(string_len(Sessions::UserId, ID_LEN))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .col(timestamp_with_time_zone(Sessions::RefreshedAt))
                    .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                    .col(string_len_null(Sessions::RevokedReason, 32))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user_id")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_expires_at")
                    .table(Sessions::Table)
                    .col(Sessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .if_not_exists()
                    .col(string_len(RefreshTokens::TokenHash, 64).primary_key())
                    .col(string_len(RefreshTokens::SessionId, ID_LEN))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::SpentAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_session_id")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::SessionId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .if_not_exists()
                    .col(string_len(SigningKeys::Kid, 64).primary_key())
                    .col(blob(SigningKeys::PrivateKey))
                    .col(blob(SigningKeys::PublicKey))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .col(timestamp_with_time_zone(SigningKeys::SignsFrom))
                    .col(timestamp_with_time_zone(SigningKeys::SignsUntil))
                    .col(timestamp_with_time_zone(SigningKeys::VerifiesUntil))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SigningKeys::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// A runner's privacy zone: metres hidden at the start and end of their runs; null means
/// svc-run's default.
struct AddPrivacyZone;

impl MigrationName for AddPrivacyZone {
    fn name(&self) -> &str {
        "m20261212_000001_user_privacy_zone"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddPrivacyZone {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(integer_null(Users::PrivacyZoneMeters))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::PrivacyZoneMeters)
                    .to_owned(),
            )
            .await
    }
}
