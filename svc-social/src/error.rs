//! Every way an svc-social call can fail, and the one place they become gRPC statuses.

use std::time::Duration;

use runmesh_platform::cache::CacheError;
use runmesh_platform::error::{ApiError, ErrorCode};

use crate::domain::{CrewRole, FieldViolation};

/// `ErrorInfo.domain` of svc-social's errors.
pub const ERROR_DOMAIN: &str = "social.runmesh.dev";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {}", describe(.0))]
    InvalidInput(Vec<FieldViolation>),
    #[error("crew {0} not found")]
    CrewNotFound(String),
    #[error("post {0} not found")]
    PostNotFound(String),
    #[error("comment {0} not found")]
    CommentNotFound(String),
    #[error("meetup {0} not found")]
    MeetupNotFound(String),
    #[error("run {0} not found")]
    RunNotFound(String),
    #[error("{0} is not a member of this crew")]
    MemberNotFound(String),
    #[error("only members of this crew may do this")]
    NotAMember,
    #[error("this needs the crew's {0} role")]
    CrewRoleRequired(CrewRole),
    #[error("the caller is banned from this crew")]
    Banned,
    #[error("already a member of this crew (or a request is pending)")]
    AlreadyMember,
    #[error("the invite is unknown, expired or used up")]
    InviteInvalid,
    #[error("this crew is joined by invite only")]
    InviteRequired,
    #[error("the owner must transfer ownership before leaving")]
    OwnerMustTransfer,
    #[error("the crew is archived")]
    CrewArchived,
    #[error("RSVPs closed at the deadline")]
    RsvpClosed,
    #[error("the meetup was cancelled")]
    MeetupCancelled,
    #[error("the meetup has started")]
    MeetupStarted,
    #[error("capacity can't drop below the {going} runners going")]
    CapacityBelowGoing { going: u32 },
    #[error("this meetup is for members only")]
    MembersOnly,
    #[error("{what} too fast; retry later")]
    RateLimited {
        what: &'static str,
        retry_after: Duration,
    },
    #[error("cache: {0}")]
    Cache(#[from] CacheError),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
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
            Error::CrewNotFound(ref id) => {
                ApiError::not_found("CREW_NOT_FOUND", &message).with_metadata("crew_id", id)
            }
            Error::PostNotFound(ref id) => {
                ApiError::not_found("POST_NOT_FOUND", &message).with_metadata("post_id", id)
            }
            Error::CommentNotFound(ref id) => {
                ApiError::not_found("COMMENT_NOT_FOUND", &message).with_metadata("comment_id", id)
            }
            Error::MeetupNotFound(ref id) => {
                ApiError::not_found("MEETUP_NOT_FOUND", &message).with_metadata("meetup_id", id)
            }
            Error::RunNotFound(ref id) => {
                ApiError::not_found("RUN_NOT_FOUND", &message).with_metadata("run_id", id)
            }
            Error::MemberNotFound(ref id) => {
                ApiError::not_found("MEMBER_NOT_FOUND", &message).with_metadata("user_id", id)
            }
            Error::NotAMember => ApiError::permission_denied("NOT_A_MEMBER", message),
            Error::CrewRoleRequired(role) => {
                ApiError::permission_denied("CREW_ROLE_REQUIRED", message)
                    .with_metadata("role", role.code())
            }
            Error::Banned => ApiError::permission_denied("BANNED", message),
            Error::MembersOnly => ApiError::permission_denied("MEMBERS_ONLY", message),
            Error::InviteRequired => ApiError::permission_denied("INVITE_REQUIRED", message),
            Error::AlreadyMember => ApiError::already_exists("ALREADY_MEMBER", message),
            Error::InviteInvalid => ApiError::failed_precondition("INVITE_INVALID", message),
            Error::OwnerMustTransfer => {
                ApiError::failed_precondition("OWNER_MUST_TRANSFER", message)
            }
            Error::CrewArchived => ApiError::failed_precondition("CREW_ARCHIVED", message),
            Error::RsvpClosed => ApiError::failed_precondition("RSVP_CLOSED", message),
            Error::MeetupCancelled => ApiError::failed_precondition("MEETUP_CANCELLED", message),
            Error::MeetupStarted => ApiError::failed_precondition("MEETUP_STARTED", message),
            Error::CapacityBelowGoing { going } => {
                ApiError::failed_precondition("CAPACITY_BELOW_GOING", message)
                    .with_metadata("going_count", going.to_string())
            }
            Error::RateLimited { what, retry_after } => {
                ApiError::resource_exhausted("RATE_LIMITED", message)
                    .with_metadata("action", what)
                    .with_retry_after(retry_after)
            }
            Error::Cache(CacheError::Unavailable(ref cause)) => {
                tracing::warn!(error = %cause, "refusing a call: the cache is unavailable");
                ApiError::unavailable("CACHE_UNAVAILABLE", "briefly unavailable")
                    .with_retry_after(RETRY_SOON)
            }
            Error::Cache(source) => ApiError::internal(source),
            Error::Database(source) => ApiError::internal(source),
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

    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn rate_limits_carry_retry_info() {
        let status = tonic::Status::from(Error::RateLimited {
            what: "posting",
            retry_after: Duration::from_secs(7),
        });
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            status.get_details_error_info().unwrap().reason,
            "RATE_LIMITED"
        );
        assert_eq!(
            status.get_details_retry_info().unwrap().retry_delay,
            Some(Duration::from_secs(7))
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
