//! Raw bodies over REST (`google.api.HttpBody`), as grpc-gateway and Envoy's gRPC-JSON
//! transcoder carry them:
//!
//! - **Uploads**: when a rule's `body` names an `HttpBody` field, the request body is the raw
//!   bytes, not JSON. Into a client-streaming RPC it streams: the first message carries the path
//!   and query fields and `content_type` (from `Content-Type`), then each message one chunk of
//!   `data` as it arrives ([`UPLOAD_CHUNK`] bytes), never the whole body in memory; the route's
//!   cap is `RUNMESH_EDGE_MAX_UPLOAD_BYTES`. Into a unary RPC the body goes whole, within the
//!   JSON body limit.
//! - **Downloads**: when `response_body` names an `HttpBody` field, or the response is one, the
//!   answer is the raw `data` (a server stream's chunks concatenated, sent as they arrive) with
//!   the first message's `content_type`, `Content-Disposition` from a sibling `file_name` and
//!   `Content-Length` from a sibling `size_bytes`. An error before the first message is the usual
//!   JSON error; an error after it aborts the response (nothing is appended to the bytes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use prost_reflect::DynamicMessage;
use runmesh_platform::error::{ApiError, ErrorCode};
use tokio::sync::oneshot;
use tonic::metadata::MetadataMap;

use crate::EdgeState;
use crate::catalog::{BodyRule, RawResponse, Route};
use crate::rest::within;
use crate::transcode::{self, RawPart};

/// The `data` of each upload message after the first (the last may be shorter).
pub const UPLOAD_CHUNK: usize = 512 * 1024;

const OCTET_STREAM: &str = "application/octet-stream";

/// RFC 5987 `attr-char`: what `filename*` may carry unencoded.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Marks a raw answer so the compression layer leaves it, and its `Content-Length`, alone.
#[derive(Debug, Clone, Copy)]
pub struct RawBody;

/// Why an upload stopped before its end.
enum UploadFailure {
    TooLarge,
    Read(String),
}

/// Streams `body` into the client-streaming RPC of `route`; the RPC's answer, or the error
/// response. `first` holds the path and query fields.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn upload(
    state: &EdgeState,
    route: &Route,
    rule: &BodyRule,
    mut first: DynamicMessage,
    headers: &HeaderMap,
    body: Body,
    metadata: MetadataMap,
    deadline: Duration,
) -> Result<DynamicMessage, Response> {
    let limit = state.config.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(state, limit));
    }
    let content_type = content_type(headers);
    transcode::set_raw_body(&mut first, rule, content_type, Bytes::new())
        .map_err(|error| internal(state, error))?;

    let input = route.rpc.input();
    let chunk_rule = rule.clone();
    let (failed, mut failure) = oneshot::channel();
    let chunks = chunks(body, limit, failed).map(move |item| {
        let data = item?;
        let mut message = DynamicMessage::new(input.clone());
        transcode::set_raw_body(&mut message, &chunk_rule, "", data)
            .map_err(crate::status::to_status)?;
        Ok(message)
    });
    let messages = futures::stream::once(async move { Ok(first) }).chain(chunks);

    let mut request = tonic::Request::new(messages);
    *request.metadata_mut() = metadata;
    request.set_timeout(deadline);
    let started = Instant::now();
    let call = within(
        deadline,
        started,
        state.upstreams.client_streaming(&route.rpc, request),
    );
    tokio::pin!(call);
    let result = tokio::select! {
        biased;
        Ok(why) = &mut failure => return Err(failure_response(state, why, limit)),
        result = &mut call => result,
    };
    match (result, failure.try_recv()) {
        (Ok(response), _) => Ok(response.into_inner()),
        // The upstream saw the reset stream: the answer is why the edge cut it.
        (Err(_), Ok(why)) => Err(failure_response(state, why, limit)),
        (Err(status), Err(_)) => Err(state.renderer.response(&status)),
    }
}

/// The body's bytes in chunks of [`UPLOAD_CHUNK`], read only as fast as the upstream takes them.
/// Past `limit` bytes, or when the body cannot be read, reports why on `failed` and yields an
/// error (which resets the upstream stream) instead of ending.
fn chunks(
    body: Body,
    limit: u64,
    failed: oneshot::Sender<UploadFailure>,
) -> impl Stream<Item = Result<Bytes, tonic::Status>> + Send + 'static {
    struct Chunker {
        body: axum::body::BodyDataStream,
        buffer: BytesMut,
        total: u64,
        failed: Option<oneshot::Sender<UploadFailure>>,
        ended: bool,
    }
    let state = Chunker {
        body: body.into_data_stream(),
        buffer: BytesMut::new(),
        total: 0,
        failed: Some(failed),
        ended: false,
    };
    futures::stream::unfold(state, move |mut chunker| async move {
        loop {
            if chunker.buffer.len() >= UPLOAD_CHUNK {
                let chunk = chunker.buffer.split_to(UPLOAD_CHUNK).freeze();
                return Some((Ok(chunk), chunker));
            }
            if chunker.ended {
                if chunker.buffer.is_empty() {
                    return None;
                }
                let chunk = chunker.buffer.split().freeze();
                return Some((Ok(chunk), chunker));
            }
            let failure = match chunker.body.next().await {
                Some(Ok(data)) => {
                    chunker.total = chunker.total.saturating_add(data.len() as u64);
                    if chunker.total <= limit {
                        chunker.buffer.extend_from_slice(&data);
                        continue;
                    }
                    UploadFailure::TooLarge
                }
                Some(Err(error)) => UploadFailure::Read(error.to_string()),
                None => {
                    chunker.ended = true;
                    continue;
                }
            };
            let sender = chunker.failed.take()?;
            let status = match &failure {
                UploadFailure::TooLarge => tonic::Status::cancelled("the upload exceeds its cap"),
                UploadFailure::Read(error) => {
                    tonic::Status::cancelled(format!("the upload could not be read: {error}"))
                }
            };
            // The receiver is gone only when the call already ended.
            let _ = sender.send(failure);
            chunker.ended = true;
            chunker.buffer.clear();
            return Some((Err(status), chunker));
        }
    })
}

fn failure_response(state: &EdgeState, why: UploadFailure, limit: u64) -> Response {
    match why {
        UploadFailure::TooLarge => too_large(state, limit),
        UploadFailure::Read(error) => state.renderer.api_error(
            StatusCode::BAD_REQUEST,
            ApiError::invalid_argument("body", format!("could not be read: {error}")),
        ),
    }
}

fn too_large(state: &EdgeState, limit: u64) -> Response {
    state.renderer.api_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::new(
            ErrorCode::InvalidArgument,
            "UPLOAD_TOO_LARGE",
            format!("the upload exceeds {limit} bytes"),
        )
        .with_violation("body", format!("exceeds the upload limit of {limit} bytes"))
        .with_metadata("limit_bytes", limit.to_string()),
    )
}

fn internal(state: &EdgeState, error: ApiError) -> Response {
    state
        .renderer
        .api_error(StatusCode::INTERNAL_SERVER_ERROR, error)
}

/// The request's `Content-Type`, or empty.
pub(crate) fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// A unary answer's raw part as the response.
pub(crate) fn unary_response(message: &DynamicMessage, raw: &RawResponse) -> Response {
    let part = transcode::raw_part(message, raw);
    let mut response = Body::from(part.data.clone()).into_response();
    set_headers(response.headers_mut(), &part, None);
    response.extensions_mut().insert(RawBody);
    response
}

/// A server stream's raw parts as the response body, sent as they arrive. Waits (within the
/// deadline) for the first message, whose headers make the response's.
pub(crate) async fn download(
    state: Arc<EdgeState>,
    raw: RawResponse,
    mut stream: tonic::Streaming<DynamicMessage>,
    deadline: Duration,
    started: Instant,
) -> Result<Response, Response> {
    let first = within(deadline, started, stream.message())
        .await
        .map_err(|status| state.renderer.response(&status))?;
    let Some(first) = first else {
        let mut response = Body::empty().into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
        response.extensions_mut().insert(RawBody);
        return Ok(response);
    };
    let part = transcode::raw_part(&first, &raw);
    let head = part.data.clone();
    let rest = stream.filter_map(move |item| {
        let data = match item {
            Ok(message) => Some(Ok(transcode::raw_part(&message, &raw).data)),
            Err(status) => {
                tracing::warn!(
                    code = ?status.code(),
                    message = status.message(),
                    "a raw download failed after it started; aborting the response"
                );
                Some(Err(status))
            }
        };
        futures::future::ready(data.filter(|item| item.as_ref().map_or(true, |d| !d.is_empty())))
    });
    let body = futures::stream::once(futures::future::ready(Ok::<_, tonic::Status>(head)))
        .filter(|item| futures::future::ready(item.as_ref().map_or(true, |d| !d.is_empty())))
        .chain(rest);
    let mut response = Body::from_stream(body).into_response();
    set_headers(response.headers_mut(), &part, part.size_bytes);
    response.extensions_mut().insert(RawBody);
    Ok(response)
}

fn set_headers(headers: &mut HeaderMap, part: &RawPart, length: Option<u64>) {
    let content_type = HeaderValue::from_str(&part.content_type)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| HeaderValue::from_static(OCTET_STREAM));
    headers.insert(header::CONTENT_TYPE, content_type);
    // The type is the upstream's word: browsers must not guess another.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(value) = part.file_name.as_deref().and_then(content_disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
}

/// `attachment; filename="…"` (RFC 6266), with `filename*=UTF-8''…` (RFC 5987) when the name is
/// not plain ASCII; the plain `filename` then carries `_` for every other character.
pub fn content_disposition(file_name: &str) -> Option<HeaderValue> {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut value = format!("attachment; filename=\"{fallback}\"");
    if fallback != file_name {
        value.push_str("; filename*=UTF-8''");
        value.extend(utf8_percent_encode(file_name, ATTR_CHAR));
    }
    HeaderValue::from_str(&value).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn content_disposition_quotes_ascii_and_encodes_the_rest() {
        assert_eq!(
            content_disposition("run.fit").unwrap(),
            "attachment; filename=\"run.fit\""
        );
        assert_eq!(
            content_disposition("Läufe 10 km.gpx").unwrap(),
            "attachment; filename=\"L_ufe 10 km.gpx\"; filename*=UTF-8''L%C3%A4ufe%2010%20km.gpx"
        );
        assert_eq!(
            content_disposition("a\"b\\c\r\n.tcx").unwrap(),
            "attachment; filename=\"a_b_c__.tcx\"; filename*=UTF-8''a%22b%5Cc%0D%0A.tcx"
        );
    }
}
