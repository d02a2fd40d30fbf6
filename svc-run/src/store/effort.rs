use sea_orm::entity::prelude::*;

/// A run's best effort at one standard distance (`distance` is the domain's key: `5k`, ...).
/// A runner's personal record at a distance is their fastest effort (the earliest on a tie).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "best_efforts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub distance: String,
    pub owner_id: String,
    pub elapsed_s: f64,
    pub start_offset_s: f64,
    /// The run's start.
    pub achieved_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
