//! Every way an svc-assist call can fail, and the one place they become gRPC statuses.

use runmesh_platform::auth::Role;
use runmesh_platform::error::{ApiError, ErrorCode};

use crate::domain::FieldViolation;

/// `ErrorInfo.domain` of svc-assist's errors.
pub const ERROR_DOMAIN: &str = "assist.runmesh.dev";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {}", describe(.0))]
    InvalidInput(Vec<FieldViolation>),
    #[error("this needs the {0} role")]
    RoleRequired(Role),
    #[error("notification {0} not found")]
    NotificationNotFound(String),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("template: {0}")]
    Template(#[from] crate::domain::templates::TemplateError),
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
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
            Error::RoleRequired(role) => ApiError::permission_denied("ROLE_REQUIRED", message)
                .with_metadata("role", role.as_str()),
            Error::NotificationNotFound(ref id) => {
                ApiError::not_found("NOTIFICATION_NOT_FOUND", &message)
                    .with_metadata("notification_id", id)
            }
            Error::Database(source) => ApiError::internal(source),
            Error::Template(source) => ApiError::internal(source),
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
    fn bad_input_names_the_field() {
        let status = tonic::Status::from(Error::invalid("quiet_hours.start", "is not HH:MM"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let bad_request = status.get_details_bad_request().unwrap();
        assert_eq!(bad_request.field_violations[0].field, "quiet_hours.start");
        assert_eq!(
            status.get_details_error_info().unwrap().domain,
            ERROR_DOMAIN
        );
    }

    #[test]
    fn database_failures_are_masked() {
        let status = tonic::Status::from(Error::Database(sea_orm::DbErr::Custom(
            "connection to db.internal refused".into(),
        )));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("db.internal"));
        let status = tonic::Status::from(Error::NotificationNotFound("n1".into()));
        assert_eq!(status.code(), tonic::Code::NotFound);
    }
}
