use sea_orm::entity::prelude::*;

/// One message to one channel: unique per (event, recipient, channel), written in the
/// consumer's transaction, so a redelivered event or a restart never sends twice.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub notification_id: Uuid,
    pub user_id: String,
    pub event_id: String,
    pub channel: String,
    /// See `domain::DeliveryStatus`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: ChronoDateTimeUtc,
    /// While `sending`: the claim's end; a claim past it was lost with its worker.
    pub lease_until: Option<ChronoDateTimeUtc>,
    /// Set once the request may have left (the claim is then settled as AMBIGUOUS if lost).
    pub request_started_at: Option<ChronoDateTimeUtc>,
    pub last_error: String,
    pub sent_at: Option<ChronoDateTimeUtc>,
    /// Slack's message `ts`.
    pub external_id: String,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
