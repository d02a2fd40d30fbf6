//! The delivery audit (`RUNMESH_EVENT_AUDIT`): a consumer group over every service's events in
//! the process that records each event it handles, in arrival order, with how often its handler
//! ran. With exactly-once effects every row says 1; an operator (or a crash test) reads the
//! table to check delivery end to end: nothing missing, nothing twice, each aggregate in order.

use std::sync::Arc;

use runmesh_proto::runmesh::events::v1::Envelope;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::NotSet, DatabaseTransaction, Set};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_pk_auto, blob, integer, string, timestamp_with_time_zone};

use super::EventHandler;

/// The audit's consumer group.
pub const GROUP: &str = "runmesh-event-audit";
/// The audit's database name (`audit.db` under the data directory in embedded mode).
pub const DATABASE: &str = "audit";

/// One audited event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_audit")]
pub struct Model {
    /// Order of first arrival.
    #[sea_orm(primary_key)]
    pub arrival: i64,
    #[sea_orm(unique)]
    pub event_id: String,
    pub event_type: String,
    pub aggregate_id: String,
    pub source: String,
    /// The event's encoded payload (`Any.value`).
    pub payload: Vec<u8>,
    /// How many times the handler ran for this event (1 unless effects were doubled).
    pub times_handled: i32,
    pub first_handled_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The audit database's migrations: the platform's event tables and `event_audit`.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    let mut migrations = super::migrations();
    migrations.push(Box::new(CreateEventAudit));
    migrations
}

/// Migrates the audit database.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        migrations()
    }
}

/// Records every event it is given.
pub fn handler() -> Arc<dyn EventHandler> {
    Arc::new(AuditHandler)
}

struct AuditHandler;

#[async_trait::async_trait]
impl EventHandler for AuditHandler {
    async fn handle(&self, txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<()> {
        Entity::insert(ActiveModel {
            arrival: NotSet,
            event_id: Set(envelope.id.clone()),
            event_type: Set(envelope.r#type.clone()),
            aggregate_id: Set(envelope.aggregate_id.clone()),
            source: Set(envelope.source.clone()),
            payload: Set(envelope
                .payload
                .as_ref()
                .map(|any| any.value.clone())
                .unwrap_or_default()),
            times_handled: Set(1),
            first_handled_at: Set(chrono::Utc::now()),
        })
        .on_conflict(
            OnConflict::column(Column::EventId)
                .value(
                    Column::TimesHandled,
                    Expr::col((Entity, Column::TimesHandled)).add(1),
                )
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum EventAudit {
    Table,
    Arrival,
    EventId,
    EventType,
    AggregateId,
    Source,
    Payload,
    TimesHandled,
    FirstHandledAt,
}

struct CreateEventAudit;

impl MigrationName for CreateEventAudit {
    fn name(&self) -> &str {
        "m20261201_000002_platform_event_audit"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEventAudit {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventAudit::Table)
                    .if_not_exists()
                    .col(big_pk_auto(EventAudit::Arrival))
                    .col(string(EventAudit::EventId).unique_key())
                    .col(string(EventAudit::EventType))
                    .col(string(EventAudit::AggregateId))
                    .col(string(EventAudit::Source))
                    .col(blob(EventAudit::Payload))
                    .col(integer(EventAudit::TimesHandled))
                    .col(timestamp_with_time_zone(EventAudit::FirstHandledAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventAudit::Table).to_owned())
            .await
    }
}
