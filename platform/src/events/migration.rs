//! The platform's own tables, included in every service's migrator through
//! [`migrations`](super::migrations). Names are stable: never rename or edit a released
//! migration, add a new one.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_pk_auto, blob, string, timestamp_with_time_zone};

#[derive(DeriveIden)]
enum EventOutbox {
    Table,
    Sequence,
    EventId,
    EventType,
    Topic,
    Key,
    Envelope,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EventLogPosition {
    Table,
    ConsumerGroup,
    Source,
    Position,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum EventLogReader {
    Table,
    ConsumerGroup,
    Topic,
    Position,
    SeenAt,
}

#[derive(DeriveIden)]
enum EventInbox {
    Table,
    ConsumerGroup,
    EventId,
    HandledAt,
}

pub(super) struct CreateEventOutbox;

impl MigrationName for CreateEventOutbox {
    fn name(&self) -> &str {
        "m20261123_000001_platform_event_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEventOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventOutbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(EventOutbox::Sequence))
                    .col(string(EventOutbox::EventId))
                    .col(string(EventOutbox::EventType))
                    .col(string(EventOutbox::Topic))
                    .col(string(EventOutbox::Key))
                    .col(blob(EventOutbox::Envelope))
                    .col(timestamp_with_time_zone(EventOutbox::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventOutbox::Table).to_owned())
            .await
    }
}

pub(super) struct CreateEventInbox;

impl MigrationName for CreateEventInbox {
    fn name(&self) -> &str {
        "m20261123_000002_platform_event_inbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEventInbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventInbox::Table)
                    .if_not_exists()
                    .col(string(EventInbox::ConsumerGroup))
                    .col(string(EventInbox::EventId))
                    .col(timestamp_with_time_zone(EventInbox::HandledAt))
                    .primary_key(
                        Index::create()
                            .col(EventInbox::ConsumerGroup)
                            .col(EventInbox::EventId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventInbox::Table).to_owned())
            .await
    }
}

pub(super) struct CreateEventLog;

impl MigrationName for CreateEventLog {
    fn name(&self) -> &str {
        "m20261201_000001_platform_event_log"
    }
}

/// Embedded mode's durable log: the outbox is read in place by topic and sequence, each consumer
/// group keeps its position per source in its own database (`event_log_position`), and each
/// producer knows who reads it and how far (`event_log_reader`) to remove only what all have read.
#[async_trait::async_trait]
impl MigrationTrait for CreateEventLog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("event_outbox_topic_sequence")
                    .table(EventOutbox::Table)
                    .col(EventOutbox::Topic)
                    .col(EventOutbox::Sequence)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventLogPosition::Table)
                    .if_not_exists()
                    .col(string(EventLogPosition::ConsumerGroup))
                    .col(string(EventLogPosition::Source))
                    .col(big_integer(EventLogPosition::Position))
                    .col(timestamp_with_time_zone(EventLogPosition::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(EventLogPosition::ConsumerGroup)
                            .col(EventLogPosition::Source),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventLogReader::Table)
                    .if_not_exists()
                    .col(string(EventLogReader::ConsumerGroup))
                    .col(string(EventLogReader::Topic))
                    .col(big_integer(EventLogReader::Position))
                    .col(timestamp_with_time_zone(EventLogReader::SeenAt))
                    .primary_key(
                        Index::create()
                            .col(EventLogReader::ConsumerGroup)
                            .col(EventLogReader::Topic),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            EventLogReader::Table.into_iden(),
            EventLogPosition::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("event_outbox_topic_sequence")
                    .table(EventOutbox::Table)
                    .to_owned(),
            )
            .await
    }
}
