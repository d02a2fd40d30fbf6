//! The recap notices already published (`RecapReady`, once per runner and period), and an index
//! on runs' start time for the scheduler's "who ran in this period" reads.

use runmesh_platform::db::index;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_len, timestamp_with_time_zone};

const USER_ID_LEN: u32 = 64;

#[derive(DeriveIden, Clone, Copy)]
enum Runs {
    Table,
    StartTime,
}

#[derive(DeriveIden, Clone, Copy)]
enum RecapNotices {
    Table,
    OwnerId,
    Period,
    StartDate,
    TimeZone,
    SentAt,
}

pub struct CreateRecapNotices;

impl MigrationName for CreateRecapNotices {
    fn name(&self) -> &str {
        "m20261216_000001_recap_notices"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateRecapNotices {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RecapNotices::Table)
                    .if_not_exists()
                    .col(string_len(RecapNotices::OwnerId, USER_ID_LEN))
                    .col(string_len(RecapNotices::Period, 8))
                    // `YYYY-MM-DD`, the period's first day in the runner's time zone then.
                    .col(string_len(RecapNotices::StartDate, 10))
                    .col(string_len(RecapNotices::TimeZone, 64))
                    .col(timestamp_with_time_zone(RecapNotices::SentAt))
                    .primary_key(
                        Index::create()
                            .col(RecapNotices::OwnerId)
                            .col(RecapNotices::Period)
                            .col(RecapNotices::StartDate),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("idx_runs_start", Runs::Table, &[Runs::StartTime])
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_runs_start")
                    .table(Runs::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(RecapNotices::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
