use sea_orm::entity::prelude::*;

/// A runner's registration. Unique per (race, user): a runner holds at most one, cancelled ones
/// included. `status` holds [`RegistrationStatus::code`](crate::domain::RegistrationStatus::code).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registrations")]
pub struct Model {
    /// A UUIDv7, so ids sort by creation time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub race_id: Uuid,
    pub category_id: Uuid,
    pub user_id: String,
    pub status: String,
    /// The confirmed place (`1..=capacity`), unique per category while held.
    pub place: Option<i32>,
    /// Unique per race while held.
    pub bib_number: Option<i32>,
    /// The waitlist place (`1..=waitlist_capacity`), unique per category while held.
    pub waitlist_place: Option<i32>,
    /// Waitlist order (unique per category); kept after promotion.
    pub waitlist_seq: Option<i64>,
    /// Empty when the client sent none.
    pub idempotency_key: String,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
    /// The run svc-run linked as the registration's result (`RaceResultLinked`); the three
    /// `result_*` columns are set together, or all NULL while no run is linked.
    pub result_run_id: Option<String>,
    /// The linked run's elapsed time in microseconds.
    pub result_elapsed_micros: Option<i64>,
    pub result_linked_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
