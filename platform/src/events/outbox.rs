//! The transactional outbox: events written in the same transaction as the state change that
//! produced them, published later by the relay.

use std::sync::atomic::{AtomicBool, Ordering};

use prost::Message;
use runmesh_proto::runmesh::events::v1::Envelope;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::NotSet, DbBackend, Set, Statement};

/// Set once this process reads a PostgreSQL outbox as the embedded log, whose readers move past
/// sequences: from then on, outbox writers on PostgreSQL hold a per-database advisory lock until
/// they commit, so sequences become visible in order. Kafka mode deletes acknowledged rows
/// instead and needs no order of visibility.
pub(crate) static SERIALISE_POSTGRES_WRITERS: AtomicBool = AtomicBool::new(false);

/// Advisory lock key of outbox writers (see [`SERIALISE_POSTGRES_WRITERS`]).
const WRITER_LOCK_KEY: i64 = 0x0072_756e_6c6f_6777; // "runlogw"

/// One row per event; rows are deleted once the transport acknowledged them (Kafka) or every
/// consumer group has read them (the embedded log).

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_outbox")]
pub struct Model {
    /// Publish order: assigned on insert, never reused.
    #[sea_orm(primary_key)]
    pub sequence: i64,
    pub event_id: String,
    pub event_type: String,
    pub topic: String,
    /// The aggregate id, used as the message key so one aggregate's events stay in order.
    pub key: String,
    /// The encoded [`Envelope`].
    pub envelope: Vec<u8>,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Writes `envelope` to the outbox for `topic`, in whatever transaction `conn` is. Call it after
/// the state change in the same transaction (so two transactions on one aggregate enqueue in the
/// order they commit), then [`EventBus::wake_relays`](super::EventBus::wake_relays) once the
/// transaction committed for low latency.
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    topic: &str,
    envelope: &Envelope,
) -> Result<(), DbErr> {
    enqueue_many(conn, topic, std::slice::from_ref(envelope)).await
}

/// Writes `envelopes` to the outbox for `topic` in one statement, in order, in whatever
/// transaction `conn` is (see [`enqueue`]).
pub async fn enqueue_many(
    conn: &impl ConnectionTrait,
    topic: &str,
    envelopes: &[Envelope],
) -> Result<(), DbErr> {
    if envelopes.is_empty() {
        return Ok(());
    }
    if SERIALISE_POSTGRES_WRITERS.load(Ordering::Relaxed)
        && conn.get_database_backend() == DbBackend::Postgres
    {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [WRITER_LOCK_KEY.into()],
        ))
        .await?;
    }
    let now = chrono::Utc::now();
    let rows = envelopes.iter().map(|envelope| ActiveModel {
        sequence: NotSet,
        event_id: Set(envelope.id.clone()),
        event_type: Set(envelope.r#type.clone()),
        topic: Set(topic.to_owned()),
        key: Set(envelope.aggregate_id.clone()),
        envelope: Set(envelope.encode_to_vec()),
        created_at: Set(now),
    });
    Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// How many events the outbox holds: waiting to be published (Kafka), or retained as the log
/// until every consumer group has read them (embedded mode).
pub async fn pending(conn: &impl ConnectionTrait) -> Result<u64, DbErr> {
    Entity::find().count(conn).await
}
