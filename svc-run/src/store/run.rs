use sea_orm::entity::prelude::*;

/// A run's summary. `sport`, `visibility` and `source` hold the codes of [`crate::wire`]; the
/// bulky parts of the analysis are in [`super::analysis`], read only by GetRun and
/// GetRunStreams.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    /// A UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: String,
    pub sport: String,
    pub title: String,
    pub notes: String,
    pub visibility: String,
    pub start_time: ChronoDateTimeUtc,
    /// `start_time` + elapsed time, for the overlap check.
    pub end_time: ChronoDateTimeUtc,
    pub time_zone: String,
    pub elapsed_s: f64,
    pub moving_s: f64,
    pub distance_m: f64,
    pub elevation_gain_m: Option<f64>,
    pub elevation_loss_m: Option<f64>,
    pub average_heart_rate: Option<i32>,
    pub max_heart_rate: Option<i32>,
    pub average_cadence: Option<i32>,
    pub max_cadence: Option<i32>,
    pub average_pace_s_per_km: f64,
    pub source: String,
    pub original_file_name: String,
    pub has_track: bool,
    /// sha256 of the uploaded bytes (hex); unique per owner. `None` for manual runs.
    pub content_hash: Option<String>,
    /// Where the track starts (imported runs with positions): race results match the venue.
    pub start_lat: Option<f64>,
    pub start_lng: Option<f64>,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
