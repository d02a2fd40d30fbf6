//! Every way an svc-user call can fail, and the one place they become gRPC statuses.

use std::time::Duration;

use runmesh_platform::auth::{AuthError, Role};
use runmesh_platform::cache::CacheError;
use runmesh_platform::error::{ApiError, ErrorCode};

use crate::credentials::HashError;
use crate::domain::FieldViolation;
use crate::keys::KeyError;
use crate::tokens::TokenError;

/// `ErrorInfo.domain` of svc-user's errors.
pub const ERROR_DOMAIN: &str = "user.runmesh.dev";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {}", describe(.0))]
    InvalidInput(Vec<FieldViolation>),
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Unknown email or wrong password: deliberately the same error.
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// A password confirming a sensitive change is wrong; `field` names it.
    #[error("the password is wrong")]
    WrongPassword { field: &'static str },
    #[error("too many failed sign-in attempts; try again later")]
    TooManyAttempts { retry_after: Duration },
    #[error("this call needs a bearer token")]
    TokenRequired,
    #[error("the refresh token is not valid")]
    RefreshTokenInvalid,
    #[error("the refresh token was already used; the session is revoked")]
    RefreshTokenReused,
    #[error("the session has ended; sign in again")]
    SessionEnded,
    #[error("user {0} not found")]
    UserNotFound(String),
    #[error("this needs the {0} role")]
    RoleRequired(Role),
    #[error("admins cannot revoke their own admin role")]
    CannotRevokeOwnAdmin,
    #[error("the sign-in rate limiter is unavailable: {0}")]
    RateLimiterUnavailable(#[source] CacheError),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("password hashing: {0}")]
    Hashing(#[from] HashError),
    #[error("tokens: {0}")]
    Tokens(#[from] TokenError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
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
            Error::EmailTaken => ApiError::already_exists("EMAIL_TAKEN", message)
                .with_violation("email", "is already registered"),
            Error::InvalidCredentials => ApiError::unauthenticated("INVALID_CREDENTIALS", message),
            Error::WrongPassword { field } => {
                ApiError::new(ErrorCode::InvalidArgument, "WRONG_PASSWORD", message)
                    .with_violation(field, "is not the account's current password")
            }
            Error::TooManyAttempts { retry_after } => {
                ApiError::resource_exhausted("TOO_MANY_SIGN_IN_ATTEMPTS", message)
                    .with_retry_after(retry_after)
            }
            Error::TokenRequired => ApiError::from(AuthError::TokenRequired),
            Error::RefreshTokenInvalid => {
                ApiError::unauthenticated("REFRESH_TOKEN_INVALID", message)
            }
            Error::RefreshTokenReused => ApiError::unauthenticated("REFRESH_TOKEN_REUSED", message),
            Error::SessionEnded => ApiError::unauthenticated("SESSION_ENDED", message),
            Error::UserNotFound(ref user_id) => {
                ApiError::not_found("USER_NOT_FOUND", &message).with_metadata("user_id", user_id)
            }
            Error::RoleRequired(role) => ApiError::permission_denied("ROLE_REQUIRED", message)
                .with_metadata("role", role.as_str()),
            Error::CannotRevokeOwnAdmin => {
                ApiError::failed_precondition("CANNOT_REVOKE_OWN_ADMIN", message)
            }
            Error::RateLimiterUnavailable(source) => {
                tracing::warn!(error = %source, "refusing a sign-in: the rate limiter is unavailable");
                ApiError::unavailable("RATE_LIMITER_UNAVAILABLE", "sign-in is briefly unavailable")
                    .with_retry_after(Duration::from_secs(1))
            }
            Error::Database(source) => ApiError::internal(source),
            Error::Hashing(source) => ApiError::internal(source),
            Error::Tokens(source) => ApiError::internal(source),
            Error::Keys(source) => ApiError::internal(source),
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
    fn field_violations_reach_the_client() {
        let status = tonic::Status::from(Error::InvalidInput(vec![
            FieldViolation {
                field: "email".into(),
                description: "is required".into(),
            },
            FieldViolation {
                field: "password".into(),
                description: "is too short".into(),
            },
        ]));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|violation| violation.field.as_str())
            .collect();
        assert_eq!(fields, ["email", "password"]);
        assert_eq!(details.error_info().unwrap().domain, ERROR_DOMAIN);
    }

    #[test]
    fn rate_limits_carry_retry_info() {
        let status = tonic::Status::from(Error::TooManyAttempts {
            retry_after: Duration::from_secs(42),
        });
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            status.get_details_retry_info().unwrap().retry_delay,
            Some(Duration::from_secs(42))
        );
    }

    #[test]
    fn unknown_email_and_wrong_password_look_the_same() {
        let status = tonic::Status::from(Error::InvalidCredentials);
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert_eq!(
            status.get_details_error_info().unwrap().reason,
            "INVALID_CREDENTIALS"
        );
    }
}
