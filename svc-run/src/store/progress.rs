//! What rankings, badges, goals, challenges and race results keep: per-runner period totals
//! (the boards' truth), achievements, goals, challenges with their participants, and the
//! projections of svc-social's crews and svc-race's races and registrations.

/// A runner's totals of public running activities in one board period (`2026-W49`, `2026-12`,
/// `2026`, `all`, in the board time zone). Rows with `runs = 0` are kept (the runner left the
/// board): `updated_at` tells a rebuild what changed while it ran.
pub mod board_total {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "board_totals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub period: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub owner_id: String,
        pub distance_m: f64,
        pub moving_s: f64,
        pub runs: i32,
        pub elevation_m: f64,
        /// The end of the last run counted: when the runner reached these totals.
        pub reached_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Runners who left the boards.
pub mod preference {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ranking_preferences")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub opt_out: bool,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A badge tier a runner holds in a period, with the run that earned it.
pub mod achievement {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "achievements")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub owner_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub badge_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub tier: i32,
        #[sea_orm(primary_key, auto_increment = false)]
        pub period: String,
        pub run_id: Option<Uuid>,
        pub earned_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A runner's goal: one per metric and period.
pub mod goal {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "goals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub owner_id: String,
        /// `distance`, `moving_time`, `runs`, `elevation`.
        pub metric: String,
        /// `week`, `month`, `year`.
        pub period: String,
        pub target: f64,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A goal met in one of its periods (`GoalMet` was sent).
pub mod goal_met {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "goals_met")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub goal_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub period: String,
        pub run_id: Option<Uuid>,
        pub met_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod challenge {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "challenges")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub title: String,
        pub description: String,
        pub metric: String,
        pub target: f64,
        /// Inclusive local dates, `YYYY-MM-DD`.
        pub start_date: String,
        pub end_date: String,
        /// Empty for a global challenge.
        pub crew_id: String,
        pub badge_id: String,
        pub created_by: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A runner in a challenge, with their progress kept current by every run change.
pub mod participant {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "challenge_participants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub challenge_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub joined_at: ChronoDateTimeUtc,
        pub value: f64,
        pub reached_at: Option<ChronoDateTimeUtc>,
        pub completed_at: Option<ChronoDateTimeUtc>,
        pub completed_run_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// svc-social's crews, as its events tell.
pub mod crew {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "crews")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub crew_id: String,
        pub name: String,
        pub archived: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod crew_member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "crew_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub crew_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        /// `owner`, `admin`, `member`.
        pub role: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// svc-race's races: date, venue and categories.
pub mod race {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "races")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub race_id: String,
        pub name: String,
        pub starts_at: ChronoDateTimeUtc,
        pub latitude: Option<f64>,
        pub longitude: Option<f64>,
        /// `id\tdistance_m\tname` lines.
        pub categories: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod registration {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "race_registrations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub registration_id: String,
        pub race_id: String,
        pub category_id: String,
        pub user_id: String,
        /// `confirmed`, `waitlisted`, `cancelled`.
        pub status: String,
        pub bib_number: Option<i32>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A registration's result: the linked run (none after the runner unlinked it).
pub mod race_result {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "race_results")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub registration_id: String,
        pub race_id: String,
        pub category_id: String,
        pub user_id: String,
        pub run_id: Option<Uuid>,
        pub elapsed_s: Option<f64>,
        /// Set by the runner (link or unlink); automatic matching leaves it alone.
        pub manual: bool,
        pub linked_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
