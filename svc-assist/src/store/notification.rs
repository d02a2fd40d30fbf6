use sea_orm::entity::prelude::*;

/// One inbox entry: one per (recipient, event).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    /// UUIDv7: newest first is id order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: String,
    pub event_id: String,
    pub kind: String,
    pub category: String,
    pub title: String,
    pub body: String,
    /// `[[label, value], …]` as JSON.
    pub fields: String,
    pub link: String,
    /// `unread`, `read`, `archived`.
    pub state: String,
    pub urgent: bool,
    /// Whether it shows in the inbox (the runner may turn the inbox off for a category; the row
    /// still anchors the Slack delivery log).
    pub in_inbox: bool,
    pub created_at: ChronoDateTimeUtc,
    pub read_at: Option<ChronoDateTimeUtc>,
    pub archived_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
