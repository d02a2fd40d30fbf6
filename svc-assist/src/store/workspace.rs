use sea_orm::entity::prelude::*;

/// The Slack workspace's delivery state, shared by every replica: keyed by a fingerprint of the
/// bot token, so a replaced token starts afresh.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "slack_workspace")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_fingerprint: String,
    /// Why delivery stopped (`invalid_auth`…); empty while active.
    pub stopped_reason: String,
    /// No call before this (Slack's `Retry-After`).
    pub paused_until: Option<ChronoDateTimeUtc>,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
