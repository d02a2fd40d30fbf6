//! What svc-race keeps in its database: races, their categories, registrations and "notify me"
//! subscriptions. Only svc-race reads these tables. PostgreSQL (or SQLite) is the source of
//! truth; the Redis gate is rebuilt from it.

pub mod category;
pub mod migration;
pub mod race;
pub mod registration;
pub mod subscription;

pub use migration::Migrator;

/// Whether `err` is a unique-constraint violation (the caller then finds out which).
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
