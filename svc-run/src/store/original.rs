use sea_orm::entity::prelude::*;

/// The exact bytes of an imported run's file (in the database for now; object storage later).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "run_originals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: Uuid,
    pub owner_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub bytes: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
