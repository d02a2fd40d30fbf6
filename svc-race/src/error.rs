//! Every way an svc-race call can fail, and the one place they become gRPC statuses.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use runmesh_platform::auth::Role;
use runmesh_platform::cache::CacheError;
use runmesh_platform::error::{ApiError, ErrorCode};

use crate::domain::FieldViolation;
use crate::gate::GateError;

/// `ErrorInfo.domain` of svc-race's errors.
pub const ERROR_DOMAIN: &str = "race.runmesh.dev";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {}", describe(.0))]
    InvalidInput(Vec<FieldViolation>),
    #[error("this needs the {0} role")]
    RoleRequired(Role),
    #[error("only the race's organizer or an admin may do this")]
    NotRaceOrganizer,
    #[error("only the runner or the race's organizer may cancel this registration")]
    NotYourRegistration,
    #[error("race {0} not found")]
    RaceNotFound(String),
    #[error("category {0} is not part of this race")]
    CategoryNotFound(String),
    #[error("registration {0} not found")]
    RegistrationNotFound(String),
    #[error("registration opens at {}", rfc3339(.opens_at))]
    RegistrationNotOpen {
        opens_at: DateTime<Utc>,
        closes_at: DateTime<Utc>,
    },
    #[error("registration closed at {}", rfc3339(.closes_at))]
    RegistrationClosed {
        opens_at: DateTime<Utc>,
        closes_at: DateTime<Utc>,
    },
    #[error("registration is open: categories and registration times can no longer change")]
    RegistrationStarted,
    #[error("the race is not published")]
    RaceNotPublished,
    #[error("no place is left in this category, nor on its waitlist")]
    SoldOut,
    #[error("the runner already holds a registration for this race")]
    AlreadyRegistered,
    #[error("the registration with this idempotency key is still being written; retry shortly")]
    RegistrationInProgress,
    #[error("too many registration attempts; retry later")]
    TooManyAttempts { retry_after: Duration },
    #[error("the race changed meanwhile; read it again and retry")]
    Conflict,
    #[error("registration is briefly unavailable; retry shortly")]
    Busy,
    #[error("cache: {0}")]
    Cache(#[from] CacheError),
    #[error("gate: {0}")]
    Gate(#[from] GateError),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("background task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|violation| format!("{} {}", violation.field, violation.description))
        .collect::<Vec<_>>()
        .join("; ")
}

fn rfc3339(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Error {
    /// One invalid field.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        Self::InvalidInput(vec![FieldViolation {
            field: field.to_owned(),
            description: description.into(),
        }])
    }
}

/// How long a client should wait before retrying a transient failure.
const RETRY_SOON: Duration = Duration::from_secs(1);

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        let api_error = match err {
            Error::InvalidInput(violations) => {
                let mut api_error =
                    ApiError::new(ErrorCode::InvalidArgument, "INVALID_ARGUMENT", message);
                for violation in violations {
                    api_error = api_error.with_violation(violation.field, violation.description);
                }
                api_error
            }
            Error::RoleRequired(role) => ApiError::permission_denied("ROLE_REQUIRED", message)
                .with_metadata("role", role.as_str()),
            Error::NotRaceOrganizer => ApiError::permission_denied("NOT_RACE_ORGANIZER", message),
            Error::NotYourRegistration => {
                ApiError::permission_denied("NOT_YOUR_REGISTRATION", message)
            }
            Error::RaceNotFound(ref race_id) => {
                ApiError::not_found("RACE_NOT_FOUND", &message).with_metadata("race_id", race_id)
            }
            Error::CategoryNotFound(ref category_id) => {
                ApiError::not_found("CATEGORY_NOT_FOUND", &message)
                    .with_metadata("category_id", category_id)
            }
            Error::RegistrationNotFound(ref registration_id) => {
                ApiError::not_found("REGISTRATION_NOT_FOUND", &message)
                    .with_metadata("registration_id", registration_id)
            }
            Error::RegistrationNotOpen {
                opens_at,
                closes_at,
            } => ApiError::failed_precondition("REGISTRATION_NOT_OPEN", message)
                .with_metadata("registration_opens_at", rfc3339(&opens_at))
                .with_metadata("registration_closes_at", rfc3339(&closes_at)),
            Error::RegistrationClosed {
                opens_at,
                closes_at,
            } => ApiError::failed_precondition("REGISTRATION_CLOSED", message)
                .with_metadata("registration_opens_at", rfc3339(&opens_at))
                .with_metadata("registration_closes_at", rfc3339(&closes_at)),
            Error::RegistrationStarted => {
                ApiError::failed_precondition("REGISTRATION_STARTED", message)
            }
            Error::RaceNotPublished => ApiError::failed_precondition("RACE_NOT_PUBLISHED", message),
            Error::SoldOut => ApiError::failed_precondition("SOLD_OUT", message),
            Error::AlreadyRegistered => ApiError::already_exists("ALREADY_REGISTERED", message),
            Error::RegistrationInProgress => {
                ApiError::aborted("REGISTRATION_IN_PROGRESS", message).with_retry_after(RETRY_SOON)
            }
            Error::TooManyAttempts { retry_after } => {
                ApiError::resource_exhausted("TOO_MANY_ATTEMPTS", message)
                    .with_retry_after(retry_after)
            }
            Error::Conflict => ApiError::aborted("RACE_CHANGED", message),
            Error::Busy | Error::Gate(GateError::Rebuilding) => {
                ApiError::unavailable("REGISTRATION_BUSY", "registration is briefly unavailable")
                    .with_retry_after(RETRY_SOON)
            }
            Error::Cache(CacheError::Unavailable(ref cause))
            | Error::Gate(GateError::Cache(CacheError::Unavailable(ref cause))) => {
                tracing::warn!(error = %cause, "refusing a call: the cache is unavailable");
                ApiError::unavailable("CACHE_UNAVAILABLE", "registration is briefly unavailable")
                    .with_retry_after(RETRY_SOON)
            }
            Error::Cache(source) => ApiError::internal(source),
            Error::Gate(source) => ApiError::internal(source),
            Error::Database(source) => ApiError::internal(source),
            Error::Task(source) => ApiError::internal(source),
        };
        api_error.with_domain(ERROR_DOMAIN)
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        ApiError::from(err).into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeZone;
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn registration_window_errors_carry_the_times() {
        let opens_at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let closes_at = Utc.with_ymd_and_hms(2026, 3, 8, 18, 0, 0).unwrap();
        let status = tonic::Status::from(Error::RegistrationNotOpen {
            opens_at,
            closes_at,
        });
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "REGISTRATION_NOT_OPEN");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(
            info.metadata["registration_opens_at"],
            "2026-03-01T09:00:00Z"
        );
        assert_eq!(
            info.metadata["registration_closes_at"],
            "2026-03-08T18:00:00Z"
        );
    }

    #[test]
    fn the_flood_answers_have_their_codes() {
        for (error, code, reason) in [
            (Error::SoldOut, tonic::Code::FailedPrecondition, "SOLD_OUT"),
            (
                Error::AlreadyRegistered,
                tonic::Code::AlreadyExists,
                "ALREADY_REGISTERED",
            ),
            (
                Error::TooManyAttempts {
                    retry_after: Duration::from_secs(3),
                },
                tonic::Code::ResourceExhausted,
                "TOO_MANY_ATTEMPTS",
            ),
        ] {
            let status = tonic::Status::from(error);
            assert_eq!(status.code(), code);
            assert_eq!(status.get_details_error_info().unwrap().reason, reason);
        }
        let status = tonic::Status::from(Error::TooManyAttempts {
            retry_after: Duration::from_secs(3),
        });
        assert_eq!(
            status.get_details_retry_info().unwrap().retry_delay,
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn database_failures_are_masked() {
        let status = tonic::Status::from(Error::Database(sea_orm::DbErr::Custom(
            "connection to db.internal refused".into(),
        )));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("db.internal"));
    }
}
