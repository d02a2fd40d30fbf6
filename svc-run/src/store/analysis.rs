use sea_orm::entity::prelude::*;

/// The bulky part of a run's analysis: `details` is an encoded `runmesh.run.v1.Run` holding only
/// the splits and best efforts; `streams` an encoded `GetRunStreamsResponse`, unmasked (empty for
/// manual runs).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "run_analyses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: Uuid,
    pub details: Vec<u8>,
    pub streams: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
