use std::time::Duration;

use crate::error::ApiError;

/// Why a call was not authenticated. Converts into an [`ApiError`] whose reason tells the client
/// what to do: `TOKEN_EXPIRED` (refresh and retry), `TOKEN_NOT_YET_VALID` (clock skew),
/// `TOKEN_REQUIRED` (sign in), `TOKEN_INVALID` (sign in again), `AUTH_KEYS_UNAVAILABLE` (retry);
/// for internal RPCs `SERVICE_TOKEN_REQUIRED`, `SERVICE_TOKEN_EXPIRED`, `SERVICE_TOKEN_INVALID`
/// (all `UNAUTHENTICATED`) and `SERVICE_NOT_ALLOWED` (`PERMISSION_DENIED`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this call needs a bearer token")]
    TokenRequired,
    #[error("the authorization header is not a single `Bearer <token>`")]
    InvalidAuthorizationHeader,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token header has no key id")]
    MissingKeyId,
    #[error("the token header marks extensions this verifier does not understand as critical")]
    UnsupportedCriticalHeader,
    #[error("the token is signed with an algorithm this service does not accept")]
    AlgorithmNotAllowed,
    #[error("the token is signed with an unknown key")]
    UnknownKey,
    #[error("the token signature is invalid")]
    InvalidSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone this service does not trust")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(String),
    #[error("the token claims are malformed: {0}")]
    MalformedClaims(String),
    /// The key source could not be reached and no key is cached: the caller's token may be
    /// fine, so this is not an authentication failure.
    #[error("signing keys are unavailable")]
    KeysUnavailable,
    /// An internal RPC called without a service token (anonymously, or with a runner's token).
    #[error("internal RPCs are for runmesh services only: this call needs a service token")]
    ServiceTokenRequired,
    #[error("the service token has expired")]
    ServiceTokenExpired,
    #[error("the service token is invalid: {0}")]
    ServiceTokenInvalid(String),
    /// A valid service token, for another service's internal RPCs.
    #[error("service {caller:?} holds no token for {audience:?}'s internal RPCs")]
    ServiceNotAllowed { caller: String, audience: String },
}

impl AuthError {
    /// The `ErrorInfo.reason` the client sees.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TokenRequired => "TOKEN_REQUIRED",
            Self::Expired => "TOKEN_EXPIRED",
            Self::NotYetValid => "TOKEN_NOT_YET_VALID",
            Self::KeysUnavailable => "AUTH_KEYS_UNAVAILABLE",
            Self::ServiceTokenRequired => "SERVICE_TOKEN_REQUIRED",
            Self::ServiceTokenExpired => "SERVICE_TOKEN_EXPIRED",
            Self::ServiceTokenInvalid(_) => "SERVICE_TOKEN_INVALID",
            Self::ServiceNotAllowed { .. } => "SERVICE_NOT_ALLOWED",
            Self::InvalidAuthorizationHeader
            | Self::Malformed
            | Self::MissingKeyId
            | Self::UnsupportedCriticalHeader
            | Self::AlgorithmNotAllowed
            | Self::UnknownKey
            | Self::InvalidSignature
            | Self::WrongIssuer
            | Self::WrongAudience
            | Self::MissingClaim(_)
            | Self::MalformedClaims(_) => "TOKEN_INVALID",
        }
    }

    pub(crate) fn from_jwt(err: &jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match err.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::InvalidSignature => Self::InvalidSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => Self::AlgorithmNotAllowed,
            ErrorKind::MissingRequiredClaim(claim) => Self::MissingClaim(claim.clone()),
            ErrorKind::InvalidClaimFormat(claim) => {
                Self::MalformedClaims(format!("`{claim}` has the wrong type"))
            }
            _ => Self::Malformed,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        let reason = err.reason();
        match err {
            AuthError::KeysUnavailable => ApiError::unavailable(reason, err.to_string())
                .with_retry_after(Duration::from_secs(1)),
            AuthError::ServiceNotAllowed { .. } => {
                ApiError::permission_denied(reason, err.to_string())
            }
            _ => ApiError::unauthenticated(reason, err.to_string()),
        }
    }
}

impl From<AuthError> for tonic::Status {
    fn from(err: AuthError) -> Self {
        ApiError::from(err).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn expiry_is_told_apart_from_other_failures() {
        let expired = ApiError::from(AuthError::Expired);
        assert_eq!(expired.code(), ErrorCode::Unauthenticated);
        assert_eq!(expired.reason(), "TOKEN_EXPIRED");

        let forged = ApiError::from(AuthError::InvalidSignature);
        assert_eq!(forged.code(), ErrorCode::Unauthenticated);
        assert_eq!(forged.reason(), "TOKEN_INVALID");
    }

    #[test]
    fn unreachable_keys_are_unavailable_not_unauthenticated() {
        let err = ApiError::from(AuthError::KeysUnavailable);
        assert_eq!(err.code(), ErrorCode::Unavailable);
        assert_eq!(err.reason(), "AUTH_KEYS_UNAVAILABLE");
        assert!(err.retry_after().is_some());
    }
}
