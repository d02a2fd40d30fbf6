use sea_orm::entity::prelude::*;

/// A group run. `going_count`, `waitlist_count`, `next_seq` change only under the row's lock:
/// every RSVP transaction first bumps `version`, which takes it (and tells watchers).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "meetups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub crew_id: Uuid,
    pub created_by: String,
    pub title: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub starts_at: ChronoDateTimeUtc,
    pub time_zone: String,
    pub meeting_point: String,
    pub latitude: f64,
    pub longitude: f64,
    pub planned_distance_meters: i32,
    /// Pace group names, one per line.
    pub pace_groups: String,
    pub capacity: i32,
    pub rsvp_deadline: ChronoDateTimeUtc,
    pub members_only: bool,
    pub recurrence: String,
    pub status: String,
    pub cancel_reason: String,
    pub going_count: i32,
    pub waitlist_count: i32,
    /// The next waitlist sequence number.
    pub next_seq: i64,
    /// Bumped by every change (the lock, and what watchers compare).
    pub version: i64,
    pub reminder_sent_at: Option<ChronoDateTimeUtc>,
    /// Set when the next weekly occurrence was scheduled.
    pub successor_at: Option<ChronoDateTimeUtc>,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
