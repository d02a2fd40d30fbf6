use sea_orm::entity::prelude::*;

/// The race facts messages name, from svc-race's events.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "races")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub race_id: String,
    pub name: String,
    /// `{category_id: name}` as JSON.
    pub categories: String,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
