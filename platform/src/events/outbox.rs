//! The transactional outbox: events written in the same transaction as the state change that
//! produced them, published later by the relay.

use prost::Message;
use runmesh_proto::runmesh::events::v1::Envelope;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::NotSet, Set};

/// One event waiting to be published. Rows are deleted once the transport acknowledged them.
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

/// How many events wait in the outbox (for operators and tests).
pub async fn pending(conn: &impl ConnectionTrait) -> Result<u64, DbErr> {
    Entity::find().count(conn).await
}
