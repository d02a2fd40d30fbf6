use sea_orm::entity::prelude::*;

/// A race. `status` holds [`RaceStatus::code`](crate::domain::RaceStatus::code).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "races")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organizer_id: String,
    pub name: String,
    pub description: String,
    pub region: String,
    /// `region` in lower case, for the listing filter.
    pub region_key: String,
    pub venue: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub starts_at: ChronoDateTimeUtc,
    pub registration_opens_at: ChronoDateTimeUtc,
    pub registration_closes_at: ChronoDateTimeUtc,
    pub official_url: String,
    pub status: String,
    /// When the `RegistrationOpened` event was written; `None` until then.
    pub opening_announced_at: Option<ChronoDateTimeUtc>,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
    pub published_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::category::Entity")]
    Category,
}

impl Related<super::category::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Category.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
