use sea_orm::entity::prelude::*;

/// A category of a race. Confirmed registrations hold places `1..=capacity` (unique per
/// category), waitlisted ones places `1..=waitlist_capacity`; a confirmed place `p` carries bib
/// `first_bib + p - 1`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "race_categories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub race_id: Uuid,
    /// Order within the race.
    pub position: i32,
    pub name: String,
    pub distance_meters: i32,
    pub capacity: i32,
    pub waitlist_capacity: i32,
    /// Empty for a free race.
    pub fee_currency: String,
    pub fee_amount_minor: i64,
    pub first_bib: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::race::Entity",
        from = "Column::RaceId",
        to = "super::race::Column::Id"
    )]
    Race,
}

impl Related<super::race::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Race.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
