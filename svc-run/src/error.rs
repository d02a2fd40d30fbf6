//! Every way an svc-run call can fail, and the one place they become gRPC statuses.

use runmesh_platform::error::{ApiError, ErrorCode};
use runmesh_platform::validation::FieldViolation;

use crate::domain::ParseError;

/// `ErrorInfo.domain` of svc-run's errors.
pub const ERROR_DOMAIN: &str = "run.runmesh.dev";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {}", describe(.0))]
    InvalidInput(Vec<FieldViolation>),
    #[error("the file is larger than {limit} bytes")]
    FileTooLarge { limit: u64 },
    /// The file could not be read as a run (unsupported, corrupt, no track, over a cap).
    #[error("{0}")]
    BadFile(ParseError),
    #[error("this file was already imported as run {run_id}")]
    DuplicateRun { run_id: String },
    #[error("run {0} not found")]
    RunNotFound(String),
    #[error("only the run's owner may do this")]
    NotRunOwner,
    /// A parser panicked on this file (a bug); logged where it happened.
    #[error("the file could not be analysed")]
    AnalysisFailed,
    /// The uploaded export cannot be imported at all (not a zip, a zip bomb, unsafe names).
    #[error("the archive cannot be imported: {0}")]
    BadArchive(String),
    #[error("archive import {0} not found")]
    ImportNotFound(String),
    /// The spool file of an upload could not be written or read.
    #[error("spooling the archive: {0}")]
    Spool(#[from] std::io::Error),
    #[error("{0}")]
    Unimplemented(&'static str),
    /// The boards' cache failed while rebuilding (reads fall back to the database).
    #[error("cache: {0}")]
    Cache(String),
    #[error("challenge {0} not found")]
    ChallengeNotFound(String),
    #[error("challenge {0} has ended")]
    ChallengeFinished(String),
    #[error("goal {0} not found")]
    GoalNotFound(String),
    #[error("race {0} not found")]
    RaceNotFound(String),
    #[error("registration {0} not found")]
    RegistrationNotFound(String),
    #[error("badge {0} not found")]
    BadgeNotFound(String),
    #[error("only admins may create global challenges")]
    AdminRequired,
    #[error("only the crew's owner and admins may create its challenges")]
    CrewAdminRequired,
    #[error("the period {0} has not started yet")]
    PeriodInFuture(String),
    /// Not a crew, or not one of the caller's.
    #[error("crew {0} not found")]
    CrewNotFound(String),
    /// A recap card could not be drawn (a bug: the SVG is built in code).
    #[error("rendering the card: {0}")]
    Render(String),
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

impl Error {
    /// One invalid field.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        Self::InvalidInput(vec![FieldViolation {
            field: field.to_owned(),
            description: description.into(),
        }])
    }
}

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
            Error::FileTooLarge { limit } => {
                ApiError::new(ErrorCode::InvalidArgument, "FILE_TOO_LARGE", message)
                    .with_violation("file", format!("larger than {limit} bytes"))
                    .with_metadata("max_bytes", limit.to_string())
            }
            Error::BadFile(ref parse) => {
                ApiError::new(ErrorCode::InvalidArgument, parse.reason(), message.clone())
                    .with_violation("file", message)
            }
            Error::DuplicateRun { ref run_id } => {
                ApiError::already_exists("DUPLICATE_RUN", &message).with_metadata("run_id", run_id)
            }
            Error::RunNotFound(ref run_id) => {
                ApiError::not_found("RUN_NOT_FOUND", &message).with_metadata("run_id", run_id)
            }
            Error::BadArchive(ref why) => {
                ApiError::new(ErrorCode::InvalidArgument, "BAD_ARCHIVE", message.clone())
                    .with_violation("archive", why.clone())
            }
            Error::ImportNotFound(ref id) => {
                ApiError::not_found("IMPORT_NOT_FOUND", &message).with_metadata("import_id", id)
            }
            Error::Spool(source) => ApiError::internal(source),
            Error::NotRunOwner => ApiError::permission_denied("NOT_RUN_OWNER", message),
            Error::AnalysisFailed => ApiError::new(ErrorCode::Internal, "ANALYSIS_FAILED", message),
            // Never built: the `tonic::Status` conversion answers UNIMPLEMENTED itself.
            Error::Unimplemented(_) => ApiError::internal(message),
            Error::Database(source) => ApiError::internal(source),
            Error::Cache(ref why) => {
                ApiError::new(ErrorCode::Unavailable, "CACHE_UNAVAILABLE", why.clone())
            }
            Error::ChallengeNotFound(ref id) => {
                ApiError::not_found("CHALLENGE_NOT_FOUND", &message)
                    .with_metadata("challenge_id", id)
            }
            Error::ChallengeFinished(ref id) => ApiError::new(
                ErrorCode::FailedPrecondition,
                "CHALLENGE_FINISHED",
                message.clone(),
            )
            .with_metadata("challenge_id", id),
            Error::GoalNotFound(ref id) => {
                ApiError::not_found("GOAL_NOT_FOUND", &message).with_metadata("goal_id", id)
            }
            Error::RaceNotFound(ref id) => {
                ApiError::not_found("RACE_NOT_FOUND", &message).with_metadata("race_id", id)
            }
            Error::RegistrationNotFound(ref id) => {
                ApiError::not_found("REGISTRATION_NOT_FOUND", &message)
                    .with_metadata("registration_id", id)
            }
            Error::BadgeNotFound(ref id) => {
                ApiError::not_found("BADGE_NOT_FOUND", &message).with_metadata("badge_id", id)
            }
            Error::AdminRequired => ApiError::permission_denied("ADMIN_REQUIRED", message),
            Error::CrewAdminRequired => ApiError::permission_denied("CREW_ADMIN_REQUIRED", message),
            Error::Task(source) => ApiError::internal(source),
            Error::PeriodInFuture(ref key) => ApiError::new(
                ErrorCode::FailedPrecondition,
                "PERIOD_IN_FUTURE",
                message.clone(),
            )
            .with_metadata("period", key),
            Error::CrewNotFound(ref id) => {
                ApiError::not_found("CREW_NOT_FOUND", &message).with_metadata("crew_id", id)
            }
            Error::Render(_) => ApiError::new(ErrorCode::Internal, "RENDER_FAILED", message),
        };
        api_error.with_domain(ERROR_DOMAIN)
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        match err {
            // Not in the platform's closed error set: a call this version does not serve.
            Error::Unimplemented(message) => tonic::Status::unimplemented(message),
            err => ApiError::from(err).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn duplicates_name_the_existing_run() {
        let status = tonic::Status::from(Error::DuplicateRun {
            run_id: "r-1".into(),
        });
        assert_eq!(status.code(), tonic::Code::AlreadyExists);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "DUPLICATE_RUN");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.metadata["run_id"], "r-1");
    }

    #[test]
    fn bad_files_carry_the_parser_reason_and_the_field() {
        let status = tonic::Status::from(Error::BadFile(ParseError::CorruptFile(
            "truncated FIT".into(),
        )));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.get_details_error_info().unwrap().reason,
            "CORRUPT_FILE"
        );
        assert_eq!(
            status.get_details_bad_request().unwrap().field_violations[0].field,
            "file"
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
