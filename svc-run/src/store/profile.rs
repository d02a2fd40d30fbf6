use sea_orm::entity::prelude::*;

/// What svc-run knows of a runner's profile, from svc-user's events (never read from svc-user).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runner_profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub display_name: String,
    /// IANA name; empty when the runner set none.
    pub time_zone: String,
    /// `km` or `mile`; empty when unset.
    pub distance_unit: String,
    /// A visibility code (`private`, `crews`, `public`); empty when unset.
    pub default_visibility: String,
    pub birth_year: Option<i32>,
    /// Metres hidden at the start and end of the runner's runs from everyone else; `None`
    /// means the configured default (`RUNMESH_RUN_PRIVACY_ZONE_M`).
    pub privacy_zone_meters: Option<i32>,
    /// `female`, `male`, `non_binary`; empty when unset (gender boards only).
    pub gender: String,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
