use sea_orm::entity::prelude::*;

/// The crew facts messages name, from svc-social's events.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "crews")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub crew_id: String,
    pub name: String,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
