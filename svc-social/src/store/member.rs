use sea_orm::entity::prelude::*;

/// A runner in a crew: a member (with a role), a pending request, or a ban.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "crew_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub crew_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    /// [`MemberState::code`](crate::domain::MemberState::code).
    pub state: String,
    /// [`CrewRole::code`](crate::domain::CrewRole::code).
    pub role: String,
    /// The join request's note.
    pub message: String,
    /// When the runner joined (or requested, or was banned).
    pub since: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
