use sea_orm::entity::prelude::*;

/// A comment on a post, or a reply to one (one level).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "comments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub post_id: Uuid,
    pub crew_id: Uuid,
    pub parent_id: Option<Uuid>,
    /// Empty once the author's account was deleted.
    pub author_id: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub moderation: String,
    pub report_count: i32,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
