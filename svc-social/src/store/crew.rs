use sea_orm::entity::prelude::*;

/// A crew. `visibility` holds [`CrewVisibility::code`](crate::domain::CrewVisibility::code).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "crews")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: String,
    pub name: String,
    /// Lower-case name, searched by.
    pub name_key: String,
    pub description: String,
    pub region: String,
    /// Lower-case region, filtered by.
    pub region_key: String,
    pub cover_url: String,
    pub visibility: String,
    pub archived_at: Option<ChronoDateTimeUtc>,
    /// Members (state `member`), kept in the transaction of every change.
    pub member_count: i32,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
