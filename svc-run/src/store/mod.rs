//! What svc-run keeps in its database: runs (with their analysis), the original files, each
//! run's best efforts (personal records are derived from them, so deleting a run restores the
//! previous record by itself), and the projection of svc-user's profiles. Only svc-run reads
//! these tables. Strava bulk-export imports keep their progress in [`archive`];
//! the recap notices already published are in [`recap_notice`].

pub mod analysis;
pub mod archive;
pub mod effort;
pub mod migration;
pub mod original;
pub mod profile;
pub mod progress;
pub mod recap_notice;
pub mod run;

pub use migration::Migrator;

/// Whether `err` is a unique-constraint violation.
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
