use sea_orm::entity::prelude::*;

/// An invite code.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "crew_invites")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    pub crew_id: Uuid,
    pub created_by: String,
    pub expires_at: ChronoDateTimeUtc,
    pub max_uses: i32,
    pub uses: i32,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
