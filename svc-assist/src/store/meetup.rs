use sea_orm::entity::prelude::*;

/// The meetup facts messages name, from svc-social's events (a promotion names only the id).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "meetups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub meetup_id: String,
    pub crew_id: String,
    pub title: String,
    pub starts_at: Option<ChronoDateTimeUtc>,
    pub meeting_point: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
