use sea_orm::entity::prelude::*;

/// A runner's own notification settings (absent: defaults).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    /// `ko` or `en`.
    pub language: String,
    pub quiet_enabled: bool,
    /// Minutes after local midnight.
    pub quiet_start: i32,
    pub quiet_end: i32,
    /// Category codes, comma-separated.
    pub digest_categories: String,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
