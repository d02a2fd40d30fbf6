use sea_orm::entity::prelude::*;

/// One runner's answer to a meetup (one per runner).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "rsvps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub meetup_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    /// [`RsvpStatus::code`](crate::domain::RsvpStatus::code).
    pub status: String,
    /// Order in line: set when waitlisted, kept after promotion.
    pub seq: Option<i64>,
    /// Order of the going list: when the place was taken.
    pub going_since: Option<ChronoDateTimeUtc>,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
