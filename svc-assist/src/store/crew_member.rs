use sea_orm::entity::prelude::*;

/// Crew membership, from svc-social's events (who hears of a new meetup).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "crew_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub crew_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
