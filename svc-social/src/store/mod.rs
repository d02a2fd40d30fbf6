//! What svc-social keeps in its database: crews, memberships, invites, the board (posts,
//! comments, reactions, reports), meetups and RSVPs, and its projections of other services'
//! data (display names, members' runs) with kudos and run comments. Only svc-social reads these
//! tables.

pub mod comment;
pub mod crew;
pub mod feed_run;
pub mod invite;
pub mod kudos;
pub mod meetup;
pub mod member;
pub mod migration;
pub mod post;
pub mod profile;
pub mod reaction;
pub mod report;
pub mod rsvp;
pub mod run_comment;

pub use migration::Migrator;

/// Whether `err` is a unique-constraint violation.
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
