//! The Connect protocol (<https://connectrpc.com/docs/protocol>), so connect-web, connect-kotlin
//! and connect-swift clients reach the public services with their default protocol. Each call is
//! translated to a gRPC call on the owning service with the descriptor set's dynamic messages, like
//! REST; internal methods answer `unimplemented` (HTTP 404) as if they did not exist.
//!
//! - Unary: `POST /pkg.Service/Method` with an `application/json` or `application/proto` body
//!   (the bare message). Success is HTTP 200 with the bare response message, the upstream's
//!   response headers as headers and its trailers as `trailer-…` headers. A failure is the
//!   status code's HTTP status (Connect's table, the same as REST's) with the Connect error JSON
//!   `{"code", "message", "details": [{"type", "value", "debug"}]}`, every rich error detail of
//!   the upstream kept (`value` is the detail's protobuf, `debug` its JSON).
//! - Server streaming: `application/connect+json` or `application/connect+proto`; the request is
//!   one envelope (flags byte, 4-byte big-endian length, message), the answer HTTP 200 with one
//!   envelope per message and a last one flagged `0x02` holding `{"error"?, "metadata"?}` (the
//!   trailers). Client-streaming and bidirectional RPCs are served over gRPC only.
//! - `Connect-Timeout-Ms` sets the deadline (capped by the route's timeout, which applies without
//!   it); it bounds a whole stream, while without it only the wait for the stream's start is
//!   bounded (as for REST and gRPC-web). `Connect-Protocol-Version`, when sent, must be `1`.
//! - Requests go upstream with the same metadata as REST calls (`authorization`, request id,
//!   trace context, `x-forwarded-for`). Bodies are limited to the edge's `max_body_bytes`.
//!   Compressed requests are refused (`unimplemented`, as the protocol says for an unsupported
//!   encoding); unary answers are compressed by the edge's HTTP compression when accepted.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autometrics::autometrics;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor,
    SerializeOptions,
};
use serde_json::{Map, Value as Json, json};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use crate::EdgeState;
use crate::forward::{self, ClientAddress};
use crate::rest::within;
use crate::status::{http_status, retry_after_seconds};

pub const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("connect-protocol-version");
pub const TIMEOUT_MS: HeaderName = HeaderName::from_static("connect-timeout-ms");
const STREAM_ENCODING: HeaderName = HeaderName::from_static("connect-content-encoding");
const STREAM_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("connect-accept-encoding");

/// Envelope flags: the message is compressed; the envelope ends the stream.
const FLAG_COMPRESSED: u8 = 0b01;
const FLAG_END_STREAM: u8 = 0b10;
/// The flags byte and the 4-byte length.
const ENVELOPE_HEADER: usize = 5;

/// How messages are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Json,
    Proto,
}

/// What a `Content-Type` says about a Connect call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Protocol {
    codec: Codec,
    stream: bool,
}

impl Protocol {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match (self.stream, self.codec) {
            (false, Codec::Json) => "application/json",
            (false, Codec::Proto) => "application/proto",
            (true, Codec::Json) => "application/connect+json",
            (true, Codec::Proto) => "application/connect+proto",
        })
    }
}

/// `application/json` (charset UTF-8 allowed), `application/proto`, and their `connect+` forms
/// for streams.
fn protocol(headers: &HeaderMap) -> Option<Protocol> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mut parts = value.split(';');
    let essence = parts.next()?.trim().to_ascii_lowercase();
    let (stream, codec) = match essence.as_str() {
        "application/json" => (false, Codec::Json),
        "application/proto" => (false, Codec::Proto),
        "application/connect+json" => (true, Codec::Json),
        "application/connect+proto" => (true, Codec::Proto),
        _ => return None,
    };
    for parameter in parts {
        let (name, value) = parameter.split_once('=')?;
        let utf8 = matches!(
            value.trim().trim_matches('"').to_ascii_lowercase().as_str(),
            "utf-8" | "utf8"
        );
        if codec != Codec::Json || !name.trim().eq_ignore_ascii_case("charset") || !utf8 {
            return None;
        }
    }
    Some(Protocol { codec, stream })
}

/// `/pkg.Service/Method`: the path of an RPC rather than of a REST route.
fn rpc_path(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(service, method)| {
            service.contains('.') && !method.is_empty() && !method.contains('/')
        })
}

/// Whether a request is a Connect call: a POST with a streaming Connect content type, or a unary
/// one (`application/json` or `application/proto`) that carries `Connect-Protocol-Version` or is
/// addressed to an RPC path. Other JSON requests are REST.
pub fn is_connect<B>(request: &http::Request<B>) -> bool {
    if request.method() != Method::POST {
        return false;
    }
    let Some(protocol) = protocol(request.headers()) else {
        return false;
    };
    protocol.stream
        || request.headers().contains_key(PROTOCOL_VERSION)
        || rpc_path(request.uri().path())
}

/// Answers a Connect call (one that [`is_connect`]).
pub async fn handle(state: Arc<EdgeState>, request: http::Request<Body>) -> Response {
    match connect_call(state, request).await {
        Ok(response) | Err(response) => response,
    }
}

/// One Connect call; `Err` holds an error answered before any upstream message. Metrics count
/// 5xx answers as errors.
#[autometrics(error_if = is_server_error)]
async fn connect_call(
    state: Arc<EdgeState>,
    request: http::Request<Body>,
) -> Result<Response, Response> {
    let (parts, body) = request.into_parts();
    let pool = state.catalog.pool();
    let Some(protocol) = protocol(&parts.headers) else {
        return Err(error_response(
            pool,
            &Status::invalid_argument("not a Connect content type"),
            None,
        ));
    };
    let fail = |status: Status| error_response(pool, &status, None);
    let path = parts.uri.path();
    let Some(method) = state.catalog.public_method(path) else {
        // As if it did not exist: what a Connect server answers for an unknown procedure.
        return Err(error_response(
            pool,
            &Status::unimplemented(format!("unknown method {path}")),
            Some(StatusCode::NOT_FOUND),
        ));
    };
    check_protocol_version(&parts.headers).map_err(fail)?;
    check_kind(&method, protocol).map_err(fail)?;
    check_encoding(&parts.headers, protocol).map_err(|status| {
        let mut response = fail(status);
        let name = if protocol.stream {
            STREAM_ACCEPT_ENCODING
        } else {
            header::ACCEPT_ENCODING
        };
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static("identity"));
        response
    })?;
    let asked = client_timeout(&parts.headers).map_err(fail)?;
    let service = method.parent_service().full_name();
    let route_timeout = state.config.timeout_for(service, method.name());
    let deadline = asked.map_or(route_timeout, |asked| asked.min(route_timeout));

    let bytes = read_body(body, state.config.max_body_bytes)
        .await
        .map_err(fail)?;
    let payload = if protocol.stream {
        single_envelope(bytes).map_err(fail)?
    } else {
        bytes
    };
    let message = decode(&method.input(), protocol.codec, &payload).map_err(fail)?;

    let client = parts
        .extensions
        .get::<ClientAddress>()
        .cloned()
        .unwrap_or_else(|| ClientAddress::resolve(None, &parts.headers, 0));
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = forward::rest_metadata(&parts.headers, &client);
    request.set_timeout(deadline);
    let started = Instant::now();

    if protocol.stream {
        let stream_deadline = asked.map(|_| deadline);
        return Ok(stream(
            state.clone(),
            method,
            protocol,
            request,
            deadline,
            stream_deadline,
            started,
        )
        .await);
    }
    unary(&state, &method, protocol, request, deadline, started).await
}

fn is_server_error(result: &Result<Response, Response>) -> bool {
    matches!(result, Err(response) if response.status().is_server_error())
}

fn check_protocol_version(headers: &HeaderMap) -> Result<(), Status> {
    match headers.get(PROTOCOL_VERSION) {
        None => Ok(()),
        Some(value) if value == "1" => Ok(()),
        Some(value) => Err(Status::invalid_argument(format!(
            "connect-protocol-version must be \"1\": got {value:?}"
        ))),
    }
}

/// Unary content types for unary RPCs, streaming ones for server streams; client and
/// bidirectional streams are gRPC only.
fn check_kind(method: &MethodDescriptor, protocol: Protocol) -> Result<(), Status> {
    if method.is_client_streaming() {
        return Err(Status::unimplemented(format!(
            "{} is a client-streaming or bidirectional RPC: call it over gRPC",
            method.full_name()
        )));
    }
    match (method.is_server_streaming(), protocol.stream) {
        (true, false) => Err(Status::invalid_argument(format!(
            "{} is a server-streaming RPC: use application/connect+json or application/connect+proto",
            method.full_name()
        ))),
        (false, true) => Err(Status::invalid_argument(format!(
            "{} is a unary RPC: use application/json or application/proto",
            method.full_name()
        ))),
        _ => Ok(()),
    }
}

/// Only uncompressed requests: the protocol answers `unimplemented` for an unsupported encoding.
fn check_encoding(headers: &HeaderMap, protocol: Protocol) -> Result<(), Status> {
    let name = if protocol.stream {
        STREAM_ENCODING
    } else {
        header::CONTENT_ENCODING
    };
    match headers.get(&name).map(HeaderValue::as_bytes) {
        None | Some(b"identity") => Ok(()),
        Some(other) => Err(Status::unimplemented(format!(
            "unsupported {name} {:?}: send requests uncompressed (identity)",
            String::from_utf8_lossy(other)
        ))),
    }
}

/// `Connect-Timeout-Ms`: 1 to 10 digits of milliseconds.
fn client_timeout(headers: &HeaderMap) -> Result<Option<Duration>, Status> {
    let Some(value) = headers.get(TIMEOUT_MS) else {
        return Ok(None);
    };
    let invalid = || Status::invalid_argument(format!("invalid connect-timeout-ms {value:?}"));
    let text = value.to_str().map_err(|_| invalid())?;
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let millis: u64 = text.parse().map_err(|_| invalid())?;
    Ok(Some(Duration::from_millis(millis)))
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, Status> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(
            Status::resource_exhausted(format!("the request body exceeds {limit} bytes")),
        ),
        Err(error) => Err(Status::invalid_argument(format!(
            "the request body could not be read: {error}"
        ))),
    }
}

/// The one message of a server-streaming request.
fn single_envelope(bytes: Bytes) -> Result<Bytes, Status> {
    let invalid = |what: &str| Status::invalid_argument(format!("request envelope: {what}"));
    if bytes.len() < ENVELOPE_HEADER {
        return Err(invalid("shorter than its 5-byte prefix"));
    }
    let flags = bytes[0];
    if flags & FLAG_COMPRESSED != 0 {
        return Err(invalid("compressed without a connect-content-encoding"));
    }
    if flags & FLAG_END_STREAM != 0 {
        return Err(invalid("a request carries no end-of-stream envelope"));
    }
    let length = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    if bytes.len() - ENVELOPE_HEADER != length {
        return Err(invalid(
            "a server-streaming request is exactly one message of the announced length",
        ));
    }
    Ok(bytes.slice(ENVELOPE_HEADER..))
}

/// The request message. JSON is proto3's canonical mapping; unknown fields are ignored, as
/// Connect servers do, so a newer client can talk to an older edge.
fn decode(input: &MessageDescriptor, codec: Codec, bytes: &[u8]) -> Result<DynamicMessage, Status> {
    let invalid = |error: &dyn std::fmt::Display| {
        Status::invalid_argument(format!(
            "the request is not a valid {}: {error}",
            input.full_name()
        ))
    };
    match codec {
        Codec::Proto => DynamicMessage::decode(input.clone(), bytes).map_err(|e| invalid(&e)),
        Codec::Json if bytes.iter().all(u8::is_ascii_whitespace) => {
            Ok(DynamicMessage::new(input.clone()))
        }
        Codec::Json => {
            let mut deserializer = serde_json::Deserializer::from_slice(bytes);
            let message = DynamicMessage::deserialize_with_options(
                input.clone(),
                &mut deserializer,
                &DeserializeOptions::new().deny_unknown_fields(false),
            )
            .map_err(|e| invalid(&e))?;
            deserializer.end().map_err(|e| invalid(&e))?;
            Ok(message)
        }
    }
}

fn encode(message: &DynamicMessage, codec: Codec) -> Result<Vec<u8>, Status> {
    match codec {
        Codec::Proto => Ok(message.encode_to_vec()),
        Codec::Json => {
            let mut out = Vec::new();
            message
                .serialize_with_options(
                    &mut serde_json::Serializer::new(&mut out),
                    &SerializeOptions::new(),
                )
                .map_err(|error| Status::internal(format!("encoding the response: {error}")))?;
            Ok(out)
        }
    }
}

/// A unary call. It goes upstream as a one-message stream, which is the same on the wire, so
/// the response headers and trailers stay apart (tonic's unary client merges them).
async fn unary(
    state: &EdgeState,
    method: &MethodDescriptor,
    protocol: Protocol,
    request: tonic::Request<DynamicMessage>,
    deadline: Duration,
    started: Instant,
) -> Result<Response, Response> {
    let pool = state.catalog.pool();
    let call = async {
        let response = state.upstreams.server_streaming(method, request).await?;
        let (headers, mut stream, _) = response.into_parts();
        let outcome = async {
            let message = stream
                .message()
                .await?
                .ok_or_else(|| Status::internal("the upstream answered no message"))?;
            let trailers = stream.trailers().await?.unwrap_or_default();
            Ok::<_, Status>((message, trailers))
        }
        .await;
        Ok::<_, Status>((headers, outcome))
    };
    let (headers, outcome) = within(deadline, started, call)
        .await
        .map_err(|status| error_response(pool, &status, None))?;
    let (message, trailers) = match outcome {
        Ok(done) => done,
        Err(status) => {
            let mut response = error_response(pool, &status, None);
            copy_metadata(&headers, response.headers_mut(), "");
            return Err(response);
        }
    };
    let body =
        encode(&message, protocol.codec).map_err(|status| error_response(pool, &status, None))?;
    let mut response = Response::new(Body::from(body));
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, protocol.content_type());
    copy_metadata(&headers, out, "");
    copy_metadata(&trailers, out, "trailer-");
    Ok(response)
}

/// A server-streaming call: HTTP 200 and envelopes; errors, even before the first message, go in
/// the end-of-stream envelope.
async fn stream(
    state: Arc<EdgeState>,
    method: MethodDescriptor,
    protocol: Protocol,
    request: tonic::Request<DynamicMessage>,
    deadline: Duration,
    stream_deadline: Option<Duration>,
    started: Instant,
) -> Response {
    let pool = state.catalog.pool().clone();
    let call = state.upstreams.server_streaming(&method, request);
    let mut response = match within(deadline, started, call).await {
        Ok(response) => {
            let (headers, upstream, _) = response.into_parts();
            let ends_at =
                stream_deadline.map(|limit| tokio::time::Instant::from_std(started) + limit);
            let frames = Frames {
                upstream: Some(upstream),
                codec: protocol.codec,
                pool,
                ends_at,
                limit: stream_deadline,
            };
            let mut response = Response::new(Body::from_stream(frames.into_stream()));
            copy_metadata(&headers, response.headers_mut(), "");
            response
        }
        Err(status) => {
            let end = end_stream(&pool, Some(&status), status.metadata());
            Response::new(Body::from(end))
        }
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, protocol.content_type());
    response
}

/// The envelopes of a server stream, ending with the end-of-stream envelope.
struct Frames {
    upstream: Option<tonic::Streaming<DynamicMessage>>,
    codec: Codec,
    pool: DescriptorPool,
    ends_at: Option<tokio::time::Instant>,
    limit: Option<Duration>,
}

impl Frames {
    fn into_stream(self) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send {
        futures::stream::unfold(self, |mut frames| async move {
            let mut upstream = frames.upstream.take()?;
            let next = match frames.ends_at {
                Some(ends_at) => tokio::select! {
                    next = upstream.message() => next,
                    () = tokio::time::sleep_until(ends_at) => Err(Status::deadline_exceeded(
                        format!("deadline of {:?} exceeded", frames.limit.unwrap_or_default()),
                    )),
                },
                None => upstream.message().await,
            };
            let frame = match next {
                Ok(Some(message)) => match encode(&message, frames.codec) {
                    Ok(bytes) => {
                        frames.upstream = Some(upstream);
                        envelope(0, &bytes)
                    }
                    Err(status) => end_stream(&frames.pool, Some(&status), &MetadataMap::new()),
                },
                Ok(None) => {
                    let trailers = match frames.ends_at {
                        Some(ends_at) => tokio::select! {
                            trailers = upstream.trailers() => trailers,
                            () = tokio::time::sleep_until(ends_at) => Ok(None),
                        },
                        None => upstream.trailers().await,
                    };
                    match trailers {
                        Ok(trailers) => {
                            end_stream(&frames.pool, None, &trailers.unwrap_or_default())
                        }
                        Err(status) => end_stream(&frames.pool, Some(&status), status.metadata()),
                    }
                }
                Err(status) => end_stream(&frames.pool, Some(&status), status.metadata()),
            };
            Some((Ok(frame), frames))
        })
    }
}

fn envelope(flags: u8, payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(ENVELOPE_HEADER + payload.len());
    frame.put_u8(flags);
    frame.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    frame.put_slice(payload);
    frame.freeze()
}

/// The end-of-stream envelope: `{"error"?: …, "metadata"?: {name: [values]}}`.
fn end_stream(pool: &DescriptorPool, status: Option<&Status>, trailers: &MetadataMap) -> Bytes {
    let mut end = Map::new();
    if let Some(status) = status {
        end.insert("error".into(), error_json(pool, status));
    }
    let mut metadata: Map<String, Json> = Map::new();
    let headers = trailers.clone().into_headers();
    for (name, value) in &headers {
        if is_protocol_header(name) {
            continue;
        }
        let Ok(value) = value.to_str() else {
            continue;
        };
        if let Json::Array(values) = metadata
            .entry(name.as_str())
            .or_insert_with(|| Json::Array(Vec::new()))
        {
            values.push(Json::String(value.to_owned()));
        }
    }
    if !metadata.is_empty() {
        end.insert("metadata".into(), Json::Object(metadata));
    }
    envelope(FLAG_END_STREAM, Json::Object(end).to_string().as_bytes())
}

/// Headers of gRPC or of the HTTP hop, which are not the call's metadata.
fn is_protocol_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("grpc-")
        || matches!(
            name,
            "content-type"
                | "content-length"
                | "content-encoding"
                | "accept-encoding"
                | "date"
                | "te"
                | "trailer"
                | "transfer-encoding"
                | "connection"
                | "keep-alive"
        )
}

/// Copies the metadata of `from` into `to` under `prefix` (`trailer-` for a unary call's
/// trailers), leaving gRPC's own headers out.
fn copy_metadata(from: &MetadataMap, to: &mut HeaderMap, prefix: &str) {
    let headers = from.clone().into_headers();
    for (name, value) in &headers {
        if is_protocol_header(name) {
            continue;
        }
        let name = if prefix.is_empty() {
            name.clone()
        } else {
            match HeaderName::try_from(format!("{prefix}{name}")) {
                Ok(name) => name,
                Err(_) => continue,
            }
        };
        to.append(name, value.clone());
    }
}

/// Connect's name of a status code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Cancelled => "canceled",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
        // OK is never an error; a status that claims it failed with an unknown cause.
        Code::Ok | Code::Unknown => "unknown",
    }
}

/// The Connect error JSON of `status`: its code and message, and every `google.rpc.Status`
/// detail as `{"type": full message name, "value": unpadded base64 protobuf, "debug": JSON}`
/// (`debug` when the detail's type is in the contracts).
pub fn error_json(pool: &DescriptorPool, status: &Status) -> Json {
    let mut error = Map::new();
    let code = if status.code() == Code::Ok {
        Code::Unknown
    } else {
        status.code()
    };
    error.insert("code".into(), json!(code_name(code)));
    if !status.message().is_empty() {
        error.insert("message".into(), json!(status.message()));
    }
    let details = if status.details().is_empty() {
        Vec::new()
    } else {
        tonic_types::pb::Status::decode(status.details())
            .map(|rich| rich.details)
            .unwrap_or_default()
    };
    let details: Vec<Json> = details
        .into_iter()
        .map(|any| {
            let name = any
                .type_url
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let mut detail = Map::new();
            detail.insert("type".into(), json!(name));
            detail.insert(
                "value".into(),
                json!(base64::engine::general_purpose::STANDARD_NO_PAD.encode(&any.value)),
            );
            let debug = pool
                .get_message_by_name(&name)
                .and_then(|descriptor| {
                    DynamicMessage::decode(descriptor, any.value.as_slice()).ok()
                })
                .and_then(|message| serde_json::to_value(&message).ok());
            if let Some(debug) = debug {
                detail.insert("debug".into(), debug);
            }
            Json::Object(detail)
        })
        .collect();
    if !details.is_empty() {
        error.insert("details".into(), Json::Array(details));
    }
    Json::Object(error)
}

/// A unary error answer: the code's HTTP status (or `http`), the error JSON, the status's
/// metadata as `trailer-…` headers, `Retry-After` from a `RetryInfo`.
pub fn error_response(
    pool: &DescriptorPool,
    status: &Status,
    http: Option<StatusCode>,
) -> Response {
    let http = http.unwrap_or_else(|| http_status(status.code()));
    let mut response = (
        http,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        error_json(pool, status).to_string(),
    )
        .into_response();
    copy_metadata(status.metadata(), response.headers_mut(), "trailer-");
    if let Some(seconds) = retry_after_seconds(status) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use runmesh_platform::error::ApiError;

    use super::*;
    use crate::catalog::Catalog;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn post(path: &str, pairs: &[(&str, &str)]) -> http::Request<()> {
        let mut request = http::Request::post(path).body(()).unwrap();
        *request.headers_mut() = headers(pairs);
        request
    }

    #[test]
    fn content_types_name_the_codec_and_the_kind() {
        let parse = |value: &str| protocol(&headers(&[("content-type", value)]));
        assert_eq!(
            parse("application/json; charset=utf-8"),
            Some(Protocol {
                codec: Codec::Json,
                stream: false
            })
        );
        assert_eq!(
            parse("Application/Proto"),
            Some(Protocol {
                codec: Codec::Proto,
                stream: false
            })
        );
        assert_eq!(
            parse("application/connect+json"),
            Some(Protocol {
                codec: Codec::Json,
                stream: true
            })
        );
        assert_eq!(parse("application/json; charset=latin1"), None);
        assert_eq!(parse("application/proto; charset=utf-8"), None);
        assert_eq!(parse("application/grpc-web+proto"), None);
    }

    #[test]
    fn connect_calls_are_told_from_rest() {
        let json = ("content-type", "application/json");
        assert!(is_connect(&post(
            "/runmesh.user.v1.UserService/GetMe",
            &[json]
        )));
        assert!(is_connect(&post(
            "/v1/anything",
            &[json, ("connect-protocol-version", "1")]
        )));
        assert!(is_connect(&post(
            "/v1/shelves/1/books",
            &[("content-type", "application/connect+proto")]
        )));
        assert!(!is_connect(&post("/v1/auth/sign-up", &[json])));
        assert!(!is_connect(&post("/v1/races/r-1:publish", &[json])));
        let get = http::Request::get("/runmesh.user.v1.UserService/GetMe")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        assert!(!is_connect(&get));
    }

    #[test]
    fn timeouts_are_up_to_ten_digits_of_milliseconds() {
        let parse = |value: &str| client_timeout(&headers(&[("connect-timeout-ms", value)]));
        assert_eq!(parse("1500").unwrap(), Some(Duration::from_millis(1500)));
        assert_eq!(client_timeout(&HeaderMap::new()).unwrap(), None);
        for bad in ["", "12345678901", "1.5", "-1", "10s"] {
            assert_eq!(
                parse(bad).unwrap_err().code(),
                Code::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_stream_request_is_exactly_one_envelope() {
        let frame = envelope(0, b"abc");
        assert_eq!(
            single_envelope(frame.clone()).unwrap(),
            Bytes::from_static(b"abc")
        );
        let mut two = BytesMut::from(&frame[..]);
        two.extend_from_slice(&frame);
        assert!(single_envelope(two.freeze()).is_err());
        assert!(single_envelope(frame.slice(..6)).is_err());
        assert!(single_envelope(envelope(FLAG_COMPRESSED, b"abc")).is_err());
        assert!(single_envelope(Bytes::from_static(b"\0\0")).is_err());
    }

    #[test]
    fn errors_keep_their_details_in_connect_form() {
        let catalog = Catalog::new(runmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        let status: Status = ApiError::invalid_argument("email", "is not an email address")
            .with_domain("user.runmesh.dev")
            .into();
        let json = error_json(catalog.pool(), &status);
        assert_eq!(json["code"], "invalid_argument");
        assert_eq!(json["message"], "invalid email: is not an email address");
        let details = json["details"].as_array().unwrap();
        let info = details
            .iter()
            .find(|detail| detail["type"] == "google.rpc.ErrorInfo")
            .unwrap();
        assert_eq!(info["debug"]["reason"], "INVALID_ARGUMENT");
        assert_eq!(info["debug"]["domain"], "user.runmesh.dev");
        let value = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(info["value"].as_str().unwrap())
            .unwrap();
        let decoded = tonic_types::pb::ErrorInfo::decode(value.as_slice()).unwrap();
        assert_eq!(decoded.reason, "INVALID_ARGUMENT");
        assert!(
            details
                .iter()
                .any(|detail| detail["type"] == "google.rpc.BadRequest")
        );
    }

    #[test]
    fn every_code_has_its_connect_name() {
        assert_eq!(code_name(Code::Cancelled), "canceled");
        assert_eq!(code_name(Code::Unauthenticated), "unauthenticated");
        assert_eq!(code_name(Code::Ok), "unknown");
        let json = error_json(&DescriptorPool::new(), &Status::unavailable(""));
        assert_eq!(json, json!({"code": "unavailable"}));
    }

    #[test]
    fn end_of_stream_carries_the_error_and_the_trailers() {
        let mut trailers = MetadataMap::new();
        trailers.insert("x-served-by", "user-1".parse().unwrap());
        trailers.insert("grpc-status", "0".parse().unwrap());
        let frame = end_stream(
            &DescriptorPool::new(),
            Some(&Status::aborted("moved")),
            &trailers,
        );
        assert_eq!(frame[0], FLAG_END_STREAM);
        let json: Json = serde_json::from_slice(&frame[ENVELOPE_HEADER..]).unwrap();
        assert_eq!(
            json,
            json!({
                "error": {"code": "aborted", "message": "moved"},
                "metadata": {"x-served-by": ["user-1"]},
            })
        );
    }
}
