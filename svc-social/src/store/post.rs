use sea_orm::entity::prelude::*;

/// A post on a crew board.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "posts")]
pub struct Model {
    /// A UUIDv7, so ids sort by creation time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub crew_id: Uuid,
    /// Empty once the author's account was deleted.
    pub author_id: String,
    pub category: String,
    pub title: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    /// 1 when pinned (sorted first).
    pub pinned: i32,
    /// [`Moderation::code`](crate::domain::Moderation::code).
    pub moderation: String,
    /// Distinct reporters.
    pub report_count: i32,
    pub comment_count: i32,
    pub created_at: ChronoDateTimeUtc,
    pub edited_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
