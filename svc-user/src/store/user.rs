use sea_orm::entity::prelude::*;

/// An account. Enum-like columns hold the domain's codes (`DistanceUnit::code` and friends).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// A UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Normalised (lower case), unique.
    #[sea_orm(unique)]
    pub email: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    pub display_name: String,
    pub is_organizer: bool,
    pub is_admin: bool,
    pub slack_member_id: Option<String>,
    pub notify_race_opening: bool,
    pub notify_registration_result: bool,
    pub notify_achievement: bool,
    pub notify_crew_activity: bool,
    pub distance_unit: String,
    pub time_zone: String,
    pub birth_year: Option<i32>,
    pub gender: Option<String>,
    pub default_run_privacy: String,
    /// Metres hidden at the start and end of the runner's runs; `None` means svc-run's default.
    pub privacy_zone_meters: Option<i32>,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
