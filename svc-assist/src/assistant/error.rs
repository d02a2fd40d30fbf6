//! The assistant's errors and their one mapping to gRPC statuses (domain `assist.runmesh.dev`).

use std::time::Duration;

use runmesh_platform::error::ApiError;

use crate::error::ERROR_DOMAIN;

#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    /// A field is wrong: `(field, description)`.
    #[error("invalid request: {0}: {1}")]
    InvalidInput(&'static str, String),
    /// No such conversation of the caller's (another runner's included).
    #[error("conversation {0} not found")]
    ConversationNotFound(String),
    #[error("too many questions; retry in {0:?}")]
    TooManyQuestions(Duration),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl From<AssistantError> for ApiError {
    fn from(err: AssistantError) -> Self {
        let message = err.to_string();
        let api_error = match err {
            AssistantError::InvalidInput(field, description) => {
                ApiError::invalid_argument(field, description)
            }
            AssistantError::ConversationNotFound(ref id) => {
                ApiError::not_found("CONVERSATION_NOT_FOUND", &message)
                    .with_metadata("conversation_id", id)
            }
            AssistantError::TooManyQuestions(delay) => {
                ApiError::resource_exhausted("TOO_MANY_QUESTIONS", message).with_retry_after(delay)
            }
            AssistantError::Database(source) => ApiError::internal(source),
        };
        api_error.with_domain(ERROR_DOMAIN)
    }
}

impl From<AssistantError> for tonic::Status {
    fn from(err: AssistantError) -> Self {
        ApiError::from(err).into()
    }
}
