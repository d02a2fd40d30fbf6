//! gRPC status → HTTP: the status code by the standard table (google.rpc.Code's documented HTTP
//! mapping) and a `google.rpc.Status` JSON body with every detail decoded (`ErrorInfo`,
//! `BadRequest`, `RetryInfo`…), plus `Retry-After` when the details carry a `RetryInfo`.

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions, Value};
use runmesh_platform::error::ApiError;
use tonic::Code;
use tonic_types::StatusExt;

/// `ErrorInfo.domain` of the errors the edge itself produces.
pub const EDGE_DOMAIN: &str = "edge.runmesh.dev";

/// The HTTP status for a gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        // 499 Client Closed Request, as nginx and google.rpc.Code say.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// Renders statuses as JSON with the descriptors of `pool` (which holds `google.rpc`).
#[derive(Debug, Clone)]
pub struct StatusRenderer {
    pool: DescriptorPool,
}

impl StatusRenderer {
    pub fn new(pool: DescriptorPool) -> Self {
        Self { pool }
    }

    /// `status` as an HTTP response with the standard status code.
    pub fn response(&self, status: &tonic::Status) -> Response {
        self.response_with(http_status(status.code()), status)
    }

    /// `status` as an HTTP response with an explicit HTTP status (413, 405…).
    pub fn response_with(&self, http: StatusCode, status: &tonic::Status) -> Response {
        let mut response = (
            http,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.json(status),
        )
            .into_response();
        if let Some(seconds) = retry_after_seconds(status) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }

    /// An error the edge itself produced.
    pub fn api_error(&self, http: StatusCode, error: ApiError) -> Response {
        self.response_with(http, &error.with_domain(EDGE_DOMAIN).into())
    }

    /// The `google.rpc.Status` JSON of `status` (details whose type is unknown are left out).
    pub fn json(&self, status: &tonic::Status) -> Bytes {
        let fallback = || {
            let body = serde_json::json!({
                "code": status.code() as i32,
                "message": status.message(),
            });
            Bytes::from(body.to_string())
        };
        let Some(descriptor) = self.pool.get_message_by_name("google.rpc.Status") else {
            return fallback();
        };
        let mut message = if status.details().is_empty() {
            DynamicMessage::new(descriptor.clone())
        } else {
            match DynamicMessage::decode(descriptor.clone(), status.details()) {
                Ok(message) => message,
                Err(_) => DynamicMessage::new(descriptor.clone()),
            }
        };
        // The status line is authoritative; the details' copy may be missing.
        message.set_field_by_name("code", Value::I32(status.code() as i32));
        message.set_field_by_name("message", Value::String(status.message().to_owned()));
        self.keep_known_details(&mut message);
        let mut out = Vec::new();
        let mut serializer = serde_json::Serializer::new(&mut out);
        match message.serialize_with_options(&mut serializer, &SerializeOptions::new()) {
            Ok(()) => Bytes::from(out),
            Err(_) => fallback(),
        }
    }

    fn keep_known_details(&self, message: &mut DynamicMessage) {
        let Some(Value::List(details)) =
            message.get_field_by_name("details").map(|v| v.into_owned())
        else {
            return;
        };
        let known: Vec<Value> = details
            .into_iter()
            .filter(|detail| {
                detail.as_message().is_some_and(|any| {
                    any.get_field_by_name("type_url")
                        .and_then(|url| url.as_str().map(str::to_owned))
                        .and_then(|url| url.rsplit('/').next().map(str::to_owned))
                        .is_some_and(|name| self.pool.get_message_by_name(&name).is_some())
                })
            })
            .collect();
        message.set_field_by_name("details", Value::List(known));
    }
}

/// `Retry-After` in whole seconds (rounded up, at least 1) from a `RetryInfo` detail.
pub(crate) fn retry_after_seconds(status: &tonic::Status) -> Option<u64> {
    let delay = status.get_details_retry_info()?.retry_delay?;
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    Some(seconds.max(1))
}

/// A status whose details are a `google.rpc.Status` encoded from `error` (for tests and for the
/// edge's own errors sent over gRPC-web).
pub fn to_status(error: ApiError) -> tonic::Status {
    error.with_domain(EDGE_DOMAIN).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use prost::Message;

    use super::*;
    use crate::catalog::Catalog;

    fn renderer() -> StatusRenderer {
        StatusRenderer::new(
            Catalog::new(runmesh_proto::FILE_DESCRIPTOR_SET)
                .unwrap()
                .pool()
                .clone(),
        )
    }

    #[test]
    fn every_code_has_the_standard_http_status() {
        let table = [
            (Code::Ok, 200),
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        for (code, http) in table {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn details_become_typed_json() {
        let status: tonic::Status = ApiError::invalid_argument("email", "is not an email address")
            .with_domain("user.runmesh.dev")
            .into();
        let json: serde_json::Value = serde_json::from_slice(&renderer().json(&status)).unwrap();
        assert_eq!(json["code"], 3);
        assert_eq!(json["message"], "invalid email: is not an email address");
        let details = json["details"].as_array().unwrap();
        let info = details
            .iter()
            .find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
            .unwrap();
        assert_eq!(info["reason"], "INVALID_ARGUMENT");
        assert_eq!(info["domain"], "user.runmesh.dev");
        let bad_request = details
            .iter()
            .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
            .unwrap();
        assert_eq!(bad_request["fieldViolations"][0]["field"], "email");
    }

    #[test]
    fn retry_info_sets_retry_after() {
        let status: tonic::Status = ApiError::resource_exhausted("TOO_MANY_ATTEMPTS", "slow down")
            .with_retry_after(Duration::from_millis(1500))
            .into();
        let response = renderer().response(&status);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let json: serde_json::Value = serde_json::from_slice(&renderer().json(&status)).unwrap();
        let retry = json["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
            .unwrap();
        assert_eq!(retry["retryDelay"], "1.500s");
    }

    #[test]
    fn a_plain_status_has_code_and_message() {
        let json: serde_json::Value =
            serde_json::from_slice(&renderer().json(&tonic::Status::unavailable("down"))).unwrap();
        assert_eq!(json, serde_json::json!({"code": 14, "message": "down"}));
    }

    #[test]
    fn unknown_detail_types_are_left_out() {
        let details = tonic_types::pb::Status {
            code: 5,
            message: "gone".into(),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/acme.Secret".into(),
                value: vec![1, 2, 3],
            }],
        };
        let status = tonic::Status::with_details(
            Code::NotFound,
            "gone",
            Bytes::from(details.encode_to_vec()),
        );
        let json: serde_json::Value = serde_json::from_slice(&renderer().json(&status)).unwrap();
        assert_eq!(json["code"], 5);
        assert!(json.get("details").is_none(), "{json}");
    }
}
