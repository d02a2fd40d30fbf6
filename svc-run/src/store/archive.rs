//! Strava bulk-export imports: one `archive_imports` row per upload (its state survives a restart
//! of the service) and one `archive_entries` row per activity of the export's `activities.csv`
//! once it was handled (imported, skipped or failed). The entry row of an imported activity is
//! written in the transaction of its run, so a resumed import never imports an activity twice.

/// `archive_imports`.
pub mod import {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "archive_imports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub owner_id: String,
        /// `running`, `done` or `failed`.
        pub state: String,
        /// Rows of `activities.csv`, once read.
        pub activities_seen: i32,
        /// Why the archive as a whole could not be read (`failed`).
        pub error: String,
        pub started_at: ChronoDateTimeUtc,
        pub finished_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `archive_entries`.
pub mod entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "archive_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub import_id: Uuid,
        /// The activity's row in `activities.csv` (0 is the first row after the header).
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i32,
        /// The activity's file in the export, else `activities.csv row N`.
        pub entry: String,
        /// `imported`, `skipped` or `failed`.
        pub outcome: String,
        /// The reason of a skip or failure (`DUPLICATE_RUN`, `CORRUPT_FILE`, ...).
        pub reason: String,
        pub message: String,
        pub run_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
