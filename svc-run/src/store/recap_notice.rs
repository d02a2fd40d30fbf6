use sea_orm::entity::prelude::*;

/// A `RecapReady` already published: one row per runner, period kind and period, written in the
/// transaction that put the event in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "recap_notices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub owner_id: String,
    /// `week` or `year`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    /// The period's first day, `YYYY-MM-DD`, in `time_zone`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub start_date: String,
    /// The runner's time zone the period was computed in.
    pub time_zone: String,
    pub sent_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
