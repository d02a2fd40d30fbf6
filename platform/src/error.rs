//! The error model every service answers with: a small closed set of [`ErrorCode`]s, each mapped
//! to one gRPC code and one HTTP status, and an [`ApiError`] that carries the rich details of
//! `google.rpc.Status` (`ErrorInfo`, `BadRequest`, `RetryInfo`) to the client.
//!
//! Each service keeps one `thiserror` enum for its domain failures and converts it in exactly one
//! place, so the mapping to codes and reasons is reviewed together:
//!
//! ```
//! use runmesh_platform::error::ApiError;
//!
//! #[derive(Debug, thiserror::Error)]
//! pub enum Error {
//!     #[error("race {0} not found")]
//!     RaceNotFound(String),
//!     #[error("race is sold out")]
//!     SoldOut,
//!     #[error("database")]
//!     Database(#[from] sea_orm::DbErr),
//! }
//!
//! impl From<Error> for tonic::Status {
//!     fn from(err: Error) -> Self {
//!         let api_error = match err {
//!             Error::RaceNotFound(_) => ApiError::not_found("RACE_NOT_FOUND", err.to_string()),
//!             Error::SoldOut => ApiError::resource_exhausted("SOLD_OUT", err.to_string()),
//!             Error::Database(source) => ApiError::internal(source),
//!         };
//!         api_error.with_domain("race.runmesh.dev").into()
//!     }
//! }
//! ```
//!
//! [`ApiError::internal`] is the only place where a failure is masked: it logs the real error once,
//! with an id, and the client sees only that id.

use std::borrow::Cow;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of errors whose service did not name its own.
pub const DEFAULT_DOMAIN: &str = "runmesh.dev";

/// The closed set of failure classes a client can see. Everything else is [`ErrorCode::Internal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request itself is wrong, whatever the system's state (bad field values).
    InvalidArgument,
    /// No valid credentials came with a call that needs them.
    Unauthenticated,
    /// The caller is known but may not do this.
    PermissionDenied,
    NotFound,
    AlreadyExists,
    /// The system is not in the state the operation needs (e.g. registration closed).
    FailedPrecondition,
    /// A concurrency conflict: retry the whole read-modify-write.
    Aborted,
    /// Out of quota, rate limited or sold out.
    ResourceExhausted,
    /// Transient: retrying later may succeed.
    Unavailable,
    DeadlineExceeded,
    /// A bug or a broken dependency; details are logged, never sent.
    Internal,
}

impl ErrorCode {
    pub const fn grpc_code(self) -> tonic::Code {
        match self {
            Self::InvalidArgument => tonic::Code::InvalidArgument,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::PermissionDenied => tonic::Code::PermissionDenied,
            Self::NotFound => tonic::Code::NotFound,
            Self::AlreadyExists => tonic::Code::AlreadyExists,
            Self::FailedPrecondition => tonic::Code::FailedPrecondition,
            Self::Aborted => tonic::Code::Aborted,
            Self::ResourceExhausted => tonic::Code::ResourceExhausted,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            Self::Internal => tonic::Code::Internal,
        }
    }

    /// The HTTP status of the `google.rpc.Code` mapping (as in `google/rpc/code.proto`).
    pub const fn http_status(self) -> http::StatusCode {
        match self {
            Self::InvalidArgument | Self::FailedPrecondition => http::StatusCode::BAD_REQUEST,
            Self::Unauthenticated => http::StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => http::StatusCode::FORBIDDEN,
            Self::NotFound => http::StatusCode::NOT_FOUND,
            Self::AlreadyExists | Self::Aborted => http::StatusCode::CONFLICT,
            Self::ResourceExhausted => http::StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            Self::DeadlineExceeded => http::StatusCode::GATEWAY_TIMEOUT,
            Self::Internal => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error as the client sees it: a code, a machine-readable `reason` (UPPER_SNAKE, stable, part
/// of the API), a human message and optional details. Convert it into a [`tonic::Status`] at the
/// handler boundary.
#[derive(Debug, Clone)]
pub struct ApiError(Box<Details>);

/// Boxed so that `Result<T, ApiError>` stays small on the happy path.
#[derive(Debug, Clone)]
struct Details {
    code: ErrorCode,
    reason: &'static str,
    message: String,
    domain: Cow<'static, str>,
    metadata: HashMap<String, String>,
    field_violations: Vec<FieldViolation>,
    retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(code: ErrorCode, reason: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(
            is_upper_snake(reason),
            "error reason {reason:?} is not UPPER_SNAKE"
        );
        Self(Box::new(Details {
            code,
            reason,
            message: message.into(),
            domain: Cow::Borrowed(DEFAULT_DOMAIN),
            metadata: HashMap::new(),
            field_violations: Vec::new(),
            retry_after: None,
        }))
    }

    /// One field is wrong; add more with [`ApiError::with_violation`].
    pub fn invalid_argument(field: impl Into<String>, description: impl Into<String>) -> Self {
        let field = field.into();
        let description = description.into();
        Self::new(
            ErrorCode::InvalidArgument,
            "INVALID_ARGUMENT",
            format!("invalid {field}: {description}"),
        )
        .with_violation(field, description)
    }

    pub fn unauthenticated(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, reason, message)
    }

    pub fn permission_denied(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PermissionDenied, reason, message)
    }

    pub fn not_found(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, reason, message)
    }

    pub fn already_exists(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AlreadyExists, reason, message)
    }

    pub fn failed_precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::FailedPrecondition, reason, message)
    }

    pub fn aborted(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Aborted, reason, message)
    }

    pub fn resource_exhausted(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceExhausted, reason, message)
    }

    pub fn unavailable(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, reason, message)
    }

    pub fn deadline_exceeded(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DeadlineExceeded, reason, message)
    }

    /// Logs `err` (with its source chain) once under a fresh error id and returns an error that
    /// tells the client only that id. This is the one place where internals are masked.
    pub fn internal(err: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        let err = err.into();
        let error_id = uuid::Uuid::now_v7().simple().to_string();
        tracing::error!(
            error_id = %error_id,
            error = %ErrorChain(err.as_ref()),
            "internal error"
        );
        Self::new(
            ErrorCode::Internal,
            "INTERNAL",
            format!("internal error (id {error_id})"),
        )
        .with_metadata("error_id", error_id)
    }

    /// The `ErrorInfo.domain`: the service that produced the error, e.g. `race.runmesh.dev`.
    pub fn with_domain(mut self, domain: impl Into<Cow<'static, str>>) -> Self {
        self.0.domain = domain.into();
        self
    }

    /// Adds an `ErrorInfo.metadata` entry (keys lowerCamelCase or snake_case, values short).
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.metadata.insert(key.into(), value.into());
        self
    }

    /// Adds a `BadRequest` field violation (`field` as a path, e.g. `runs[2].distance_m`).
    pub fn with_violation(
        mut self,
        field: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.0
            .field_violations
            .push(FieldViolation::new(field, description));
        self
    }

    /// Tells the client when retrying makes sense (`RetryInfo`).
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.0.retry_after = Some(delay);
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    pub fn reason(&self) -> &'static str {
        self.0.reason
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }

    pub fn domain(&self) -> &str {
        &self.0.domain
    }

    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.0.metadata
    }

    pub fn field_violations(&self) -> &[FieldViolation] {
        &self.0.field_violations
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    pub fn http_status(&self) -> http::StatusCode {
        self.0.code.http_status()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.0.reason, self.0.domain, self.0.message
        )
    }
}

impl StdError for ApiError {}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        let err = *err.0;
        let mut details = ErrorDetails::new();
        details.set_error_info(err.reason, err.domain, err.metadata);
        if !err.field_violations.is_empty() {
            details.set_bad_request(err.field_violations);
        }
        if let Some(delay) = err.retry_after {
            details.set_retry_info(Some(delay));
        }
        tonic::Status::with_error_details(err.code.grpc_code(), err.message, details)
    }
}

/// `outer: cause: root cause`, for logs.
struct ErrorChain<'a>(&'a (dyn StdError + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

fn is_upper_snake(reason: &str) -> bool {
    !reason.is_empty()
        && !reason.starts_with('_')
        && !reason.ends_with('_')
        && reason
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// For autometrics' `error_if` on a gRPC impl block: only the service's own failures count
/// against its objective; answers such as NOT_FOUND, SOLD_OUT or INVALID_ARGUMENT are the service
/// working.
pub fn server_fault<T>(result: &Result<T, tonic::Status>) -> bool {
    matches!(
        result,
        Err(status) if matches!(
            status.code(),
            tonic::Code::Internal
                | tonic::Code::Unknown
                | tonic::Code::Unavailable
                | tonic::Code::DataLoss
                | tonic::Code::DeadlineExceeded
        )
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const ALL_CODES: [ErrorCode; 11] = [
        ErrorCode::InvalidArgument,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition,
        ErrorCode::Aborted,
        ErrorCode::ResourceExhausted,
        ErrorCode::Unavailable,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Internal,
    ];

    #[test]
    fn codes_follow_the_google_rpc_http_mapping() {
        use http::StatusCode as H;
        use tonic::Code as G;
        let expected = [
            (G::InvalidArgument, H::BAD_REQUEST),
            (G::Unauthenticated, H::UNAUTHORIZED),
            (G::PermissionDenied, H::FORBIDDEN),
            (G::NotFound, H::NOT_FOUND),
            (G::AlreadyExists, H::CONFLICT),
            (G::FailedPrecondition, H::BAD_REQUEST),
            (G::Aborted, H::CONFLICT),
            (G::ResourceExhausted, H::TOO_MANY_REQUESTS),
            (G::Unavailable, H::SERVICE_UNAVAILABLE),
            (G::DeadlineExceeded, H::GATEWAY_TIMEOUT),
            (G::Internal, H::INTERNAL_SERVER_ERROR),
        ];
        for (code, (grpc, http)) in ALL_CODES.into_iter().zip(expected) {
            assert_eq!(code.grpc_code(), grpc, "{code:?}");
            assert_eq!(code.http_status(), http, "{code:?}");
        }
    }

    #[test]
    fn error_info_reaches_the_status_details() {
        let status: tonic::Status = ApiError::resource_exhausted("SOLD_OUT", "race is sold out")
            .with_domain("race.runmesh.dev")
            .with_metadata("race_id", "r-42")
            .into();

        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.message(), "race is sold out");
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "SOLD_OUT");
        assert_eq!(info.domain, "race.runmesh.dev");
        assert_eq!(
            info.metadata.get("race_id").map(String::as_str),
            Some("r-42")
        );
        assert!(details.bad_request().is_none());
        assert!(details.retry_info().is_none());
    }

    #[test]
    fn field_violations_become_bad_request_details() {
        let status: tonic::Status = ApiError::invalid_argument("distance_m", "must be positive")
            .with_violation("started_at", "is in the future")
            .into();

        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "invalid distance_m: must be positive");
        let details = status.get_error_details();
        assert_eq!(details.error_info().unwrap().reason, "INVALID_ARGUMENT");
        assert_eq!(details.error_info().unwrap().domain, DEFAULT_DOMAIN);
        let violations: Vec<_> = details
            .bad_request()
            .expect("bad request")
            .field_violations
            .iter()
            .map(|v| (v.field.as_str(), v.description.as_str()))
            .collect();
        assert_eq!(
            violations,
            [
                ("distance_m", "must be positive"),
                ("started_at", "is in the future")
            ]
        );
    }

    #[test]
    fn retry_delay_becomes_retry_info() {
        let status: tonic::Status = ApiError::unavailable("BROKER_DOWN", "try again shortly")
            .with_retry_after(Duration::from_millis(1500))
            .into();

        assert_eq!(status.code(), tonic::Code::Unavailable);
        let retry = status.get_details_retry_info().expect("retry info");
        assert_eq!(retry.retry_delay, Some(Duration::from_millis(1500)));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused by db.internal:5432")]
    struct SecretLeak;

    #[derive(Debug, thiserror::Error)]
    #[error("loading the race")]
    struct Wrapper(#[source] SecretLeak);

    /// Collects what a `fmt` subscriber writes.
    #[derive(Clone, Default)]
    struct CapturedLogs(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

    impl std::io::Write for CapturedLogs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn internal_errors_are_logged_once_and_masked_behind_an_id() {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let api_error = tracing::subscriber::with_default(subscriber, || {
            ApiError::internal(Wrapper(SecretLeak))
        });
        let error_id = api_error.metadata().get("error_id").cloned().unwrap();

        let logged = String::from_utf8(logs.0.lock().clone()).unwrap();
        assert_eq!(logged.lines().count(), 1, "{logged}");
        assert!(logged.contains(&error_id), "{logged}");
        assert!(
            logged.contains("loading the race: connection refused by db.internal:5432"),
            "{logged}"
        );

        let status: tonic::Status = api_error.into();

        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(
            status.message(),
            format!("internal error (id {error_id})").as_str()
        );
        assert!(!status.message().contains("db.internal"));
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "INTERNAL");
        assert_eq!(
            info.metadata.get("error_id").map(String::as_str),
            Some(error_id.as_str())
        );
    }

    #[test]
    fn internal_accepts_plain_messages_and_each_gets_its_own_id() {
        let first = ApiError::internal("cache returned garbage");
        let second = ApiError::internal("cache returned garbage");
        assert_ne!(first.metadata()["error_id"], second.metadata()["error_id"]);
    }

    #[test]
    fn error_chain_lists_every_cause() {
        let err = Wrapper(SecretLeak);
        assert_eq!(
            ErrorChain(&err).to_string(),
            "loading the race: connection refused by db.internal:5432"
        );
    }

    #[test]
    fn reasons_must_be_upper_snake() {
        assert!(is_upper_snake("SOLD_OUT"));
        assert!(is_upper_snake("TOKEN_EXPIRED"));
        assert!(is_upper_snake("HTTP2_ONLY"));
        assert!(!is_upper_snake("sold_out"));
        assert!(!is_upper_snake("SOLD OUT"));
        assert!(!is_upper_snake("_SOLD"));
        assert!(!is_upper_snake(""));
    }
}
