use sea_orm::entity::prelude::*;

/// A run from svc-run's events, as the feed shows it (no positions ever arrive).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "feed_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: String,
    pub owner_id: String,
    pub title: String,
    pub start_time: ChronoDateTimeUtc,
    pub distance_meters: f64,
    pub elapsed_seconds: i64,
    pub moving_seconds: i64,
    pub pace_seconds_per_km: f64,
    /// [`RunVisibility::code`](crate::domain::RunVisibility::code).
    pub visibility: String,
    pub kudos_count: i32,
    pub comment_count: i32,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
