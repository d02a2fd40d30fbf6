use sea_orm::entity::prelude::*;

/// A runner who asked to be told when a race's registration opens.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "opening_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub race_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
