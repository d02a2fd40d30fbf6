//! `google.api.HttpBody` over REST, both ways, against the echo upstream: a raw upload streams
//! into a client-streaming RPC (query fields and content type in the first message, the bytes
//! in chunks after it, never the whole body in memory, under its own cap); a raw body goes whole
//! into a unary call; downloads answer the raw bytes with their type, file name and length, a
//! JSON error before the first byte and an aborted response after it; OpenAPI describes them as
//! binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::hash::{DefaultHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{Method, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use runmesh_edge::EdgeConfig;
use serde_json::Value as Json;
use support::echo::{self, COVER, EchoServer, hash_hex, scan_byte};
use support::{Reply, RunningEdge, edge_config, start_edge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: u64 = 1024 * 1024;

async fn library_edge(adjust: impl FnOnce(&mut EdgeConfig)) -> (EchoServer, RunningEdge) {
    let upstream = echo::start().await;
    let mut config = edge_config(upstream.addr);
    config.descriptor_set = std::borrow::Cow::Owned(echo::descriptor_set());
    config.rate_limit = None;
    adjust(&mut config);
    let edge = start_edge(config).await;
    (upstream, edge)
}

type UploadBody = BoxBody<Bytes, std::io::Error>;

/// Sends `body` as it is produced (HTTP/1.1 chunked unless a content-length is given, or h2c).
async fn send_stream(
    addr: SocketAddr,
    http2: bool,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Stream<Item = Bytes> + Send + Sync + 'static,
) -> http::Response<Incoming> {
    try_send_stream(addr, http2, method, path, headers, body)
        .await
        .unwrap()
}

/// [`send_stream`], with the client's error when the request could not be sent whole.
async fn try_send_stream(
    addr: SocketAddr,
    http2: bool,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Stream<Item = Bytes> + Send + Sync + 'static,
) -> Result<http::Response<Incoming>, hyper_util::client::legacy::Error> {
    let client: Client<HttpConnector, UploadBody> = Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build_http();
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let frames = body.map(|data| Ok::<_, std::io::Error>(Frame::data(data)));
    let request = request.body(BoxBody::new(StreamBody::new(frames))).unwrap();
    client.request(request).await
}

async fn reply(response: http::Response<Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// A 1 MiB pseudo-random base the upload pieces are cut from (no copying per piece).
fn base() -> Bytes {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut out = Vec::with_capacity(MIB as usize);
    while out.len() < MIB as usize {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    Bytes::from(out)
}

/// `total` bytes in pieces of 4 KiB to 1 MiB cut at shifting offsets of `base`, so their order
/// matters to the hash.
fn pieces(base: Bytes, total: u64) -> impl Iterator<Item = Bytes> + Clone + Send + Sync {
    let mut sent = 0_u64;
    let mut index = 0_u64;
    std::iter::from_fn(move || {
        if sent >= total {
            return None;
        }
        let start = (index * 4099) % (MIB / 2 - 4096);
        let length = (4096 + (index * 7919 * 131) % (MIB / 2)).min(total - sent);
        index += 1;
        sent += length;
        Some(base.slice(start as usize..(start + length) as usize))
    })
}

fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn int64(json: &Json) -> i64 {
    json.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_200_mb_raw_upload_streams_into_the_client_stream_without_being_buffered() {
    const TOTAL: u64 = 200 * MIB;
    let (upstream, edge) = library_edge(|config| {
        config.request_timeout = Duration::from_secs(300);
    })
    .await;
    let base = base();
    let mut hasher = DefaultHasher::new();
    for piece in pieces(base.clone(), TOTAL) {
        hasher.write(&piece);
    }
    let expected_hash = hash_hex(&hasher);

    let before = peak_rss();
    let length = TOTAL.to_string();
    let response = send_stream(
        edge.addr,
        false,
        Method::POST,
        "/v1/shelves/attic/scans?title=Morning%20scan&genre=GENRE_SCIENCE",
        &[
            ("content-type", "application/vnd.ant.fit"),
            ("content-length", &length),
        ],
        futures::stream::iter(pieces(base, TOTAL)),
    )
    .await;
    let reply = reply(response).await;
    let grown = peak_rss().saturating_sub(before);

    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let summary = reply.json();
    assert_eq!(int64(&summary["bytes"]), TOTAL as i64);
    assert_eq!(summary["hash"], expected_hash, "the bytes arrived in order");
    let first: Json = serde_json::from_str(summary["firstJson"].as_str().unwrap()).unwrap();
    assert_eq!(
        first,
        serde_json::json!({
            "shelf": "attic",
            "title": "Morning scan",
            "genre": "GENRE_SCIENCE",
            "scan": {"content_type": "application/vnd.ant.fit"},
        }),
        "the first message carries the path, query and content type"
    );
    assert_eq!(summary["laterFieldsSet"], false, "{summary}");
    let largest = int64(&summary["largestChunk"]);
    assert!(
        (256 * 1024..=MIB as i64).contains(&largest),
        "chunks of 256 KiB to 1 MiB, not {largest} bytes"
    );
    let messages = int64(&summary["messages"]);
    assert!(
        messages > (TOTAL / MIB) as i64,
        "{messages} messages for {TOTAL} bytes"
    );
    assert_eq!(
        upstream.uploads.lock().unwrap().as_slice(),
        [format!("completed {TOTAL}")]
    );
    // 200 MiB went through; buffering it anywhere would raise the peak by at least that much.
    assert!(
        grown < 64 * MIB,
        "peak memory grew by {} MiB while 200 MiB streamed through",
        grown / MIB
    );
}

/// An endless body that counts what was taken from it.
fn endless(taken: Arc<AtomicU64>) -> impl Stream<Item = Bytes> + Send + Sync + 'static {
    let piece = Bytes::from(vec![42_u8; 64 * 1024]);
    futures::stream::repeat(piece).map(move |piece| {
        taken.fetch_add(piece.len() as u64, Ordering::Relaxed);
        piece
    })
}

fn assert_upload_too_large(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let status = reply.json();
    assert_eq!(status["code"], 3, "INVALID_ARGUMENT: {status}");
    assert_eq!(reply.error_info()["reason"], "UPLOAD_TOO_LARGE");
    assert_eq!(
        support::detail(&status, "google.rpc.BadRequest")["fieldViolations"][0]["field"],
        "body"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_over_the_routes_cap_is_refused_before_it_is_read() {
    let (upstream, edge) = library_edge(|config| {
        config.max_upload_bytes = 4 * MIB;
        // The JSON limit is smaller: uploads have their own.
        config.max_body_bytes = 64 * 1024;
    })
    .await;

    // Within the upload cap but far over the JSON body limit: accepted.
    let response = send_stream(
        edge.addr,
        false,
        Method::POST,
        "/v1/shelves/attic/scans",
        &[("content-type", "image/tiff")],
        futures::stream::iter(pieces(base(), 3 * MIB)),
    )
    .await;
    let accepted = reply(response).await;
    assert_eq!(accepted.status, StatusCode::OK, "{accepted:?}");
    assert_eq!(int64(&accepted.json()["bytes"]), (3 * MIB) as i64);

    // A declared length over the cap: refused at once, nothing read or sent upstream. Over
    // HTTP/1.1 a client that asks `Expect: 100-continue` (curl does for large bodies) never
    // sends the body at all.
    let mut socket = tokio::net::TcpStream::connect(edge.addr).await.unwrap();
    socket
        .write_all(
            b"POST /v1/shelves/attic/scans HTTP/1.1\r\nhost: edge\r\n\
              content-type: image/tiff\r\ncontent-length: 1073741824\r\n\
              expect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer))
            .await
            .expect("an answer without the body")
            .unwrap();
        assert!(read > 0, "closed without an answer");
        head.extend_from_slice(&buffer[..read]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(
        head.starts_with("HTTP/1.1 413"),
        "no 100 Continue, a refusal: {head}"
    );
    // Over HTTP/2 the refusal comes while the client would still be sending.
    let taken = Arc::new(AtomicU64::new(0));
    let declared = (1024 * MIB).to_string();
    let response = send_stream(
        edge.addr,
        true,
        Method::POST,
        "/v1/shelves/attic/scans",
        &[
            ("content-type", "image/tiff"),
            ("content-length", &declared),
        ],
        endless(taken.clone()).take(16 * 1024),
    )
    .await;
    let refused = reply(response).await;
    assert_upload_too_large(&refused);
    assert!(taken.load(Ordering::Relaxed) < 64 * MIB);

    // No declared length: cut once the cap is passed, well before the client is done, and the
    // upstream sees its stream fail, never a clean end.
    for http2 in [false, true] {
        let taken = Arc::new(AtomicU64::new(0));
        let sent = try_send_stream(
            edge.addr,
            http2,
            Method::POST,
            "/v1/shelves/attic/scans?title=too%20big",
            &[("content-type", "image/tiff")],
            endless(taken.clone()),
        )
        .await;
        let response = match sent {
            Ok(response) => response,
            // HTTP/1.1 has no way to stop a sender: the edge answers 413 and closes, and a
            // client still writing may see the closed connection (broken pipe) before it reads
            // the answer. Refused either way; the amount read and the upstream's view are
            // checked below.
            Err(error) if !http2 && !error.is_connect() => {
                let taken = taken.load(Ordering::Relaxed);
                assert!(taken < 64 * MIB, "the edge read {} MiB", taken / MIB);
                continue;
            }
            Err(error) => panic!("the refused upload failed to send: {error:?}"),
        };
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(Duration::from_secs(10), body.collect())
            .await
            .expect("the refusal ends")
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        let refused = Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        };
        assert_upload_too_large(&refused);
        let taken = taken.load(Ordering::Relaxed);
        assert!(
            taken < 64 * MIB,
            "the edge read {} MiB of an upload capped at 4 MiB",
            taken / MIB
        );
    }
    let mut outcomes = Vec::new();
    for _ in 0..50 {
        outcomes = upstream.uploads.lock().unwrap().clone();
        if outcomes.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert_eq!(outcomes[0], format!("completed {}", 3 * MIB));
    for outcome in &outcomes[1..] {
        assert!(
            outcome.starts_with("failed"),
            "a cut upload must fail upstream: {outcomes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_raw_body_goes_whole_into_a_unary_call_within_the_body_limit() {
    let (_upstream, edge) = library_edge(|config| config.max_body_bytes = 256 * 1024).await;
    let cover: Vec<u8> = (0..200_000_u64).map(scan_byte).collect();
    let mut hasher = DefaultHasher::new();
    hasher.write(&cover);
    let reply = edge
        .http
        .send(
            Method::PUT,
            "/v1/shelves/attic/books/atlas/cover",
            &[("content-type", "image/png")],
            Some(Bytes::from(cover)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let summary = reply.json();
    assert_eq!(int64(&summary["messages"]), 1);
    assert_eq!(int64(&summary["bytes"]), 200_000);
    assert_eq!(summary["hash"], hash_hex(&hasher));
    let first: Json = serde_json::from_str(summary["firstJson"].as_str().unwrap()).unwrap();
    assert_eq!(
        first,
        serde_json::json!({"name": "shelves/attic/books/atlas", "cover": {"content_type": "image/png"}})
    );

    let too_big = edge
        .http
        .send(
            Method::PUT,
            "/v1/shelves/attic/books/atlas/cover",
            &[("content-type", "image/png")],
            Some(Bytes::from(vec![1_u8; 300 * 1024])),
        )
        .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_big.error_info()["reason"], "BODY_TOO_LARGE");

    // Query parameters cannot reach into the raw body.
    let refused = edge
        .http
        .send(
            Method::PUT,
            "/v1/shelves/attic/books/atlas/cover?cover.contentType=text/plain",
            &[("content-type", "image/png")],
            Some(Bytes::from_static(b"png")),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upstream_refusing_mid_upload_is_answered_at_once_in_json() {
    let (upstream, edge) = library_edge(|_| {}).await;
    for http2 in [false, true] {
        let taken = Arc::new(AtomicU64::new(0));
        let response = send_stream(
            edge.addr,
            http2,
            Method::POST,
            "/v1/shelves/attic/scans?rejectAfterBytes=1048576",
            &[("content-type", "image/tiff")],
            endless(taken.clone()),
        )
        .await;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(Duration::from_secs(10), body.collect())
            .await
            .expect("the refusal ends")
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        let refused = Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        };
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{refused:?}");
        let status = refused.json();
        assert_eq!(status["code"], 3);
        assert_eq!(status["message"], "the scan is too long");
        let taken = taken.load(Ordering::Relaxed);
        assert!(taken < 64 * MIB, "{} MiB read", taken / MIB);
    }
    let outcomes = upstream.uploads.lock().unwrap().clone();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o.starts_with("rejected")),
        "{outcomes:?}"
    );
}

fn scan(size: u64) -> Vec<u8> {
    (0..size).map(scan_byte).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_raw_download_carries_the_bytes_type_file_name_and_length() {
    let (_upstream, edge) = library_edge(|_| {}).await;
    let reply = edge
        .http
        .get(
            "/v1/scans/s1?size=3000000&chunk=100000&fileName=L%C3%A4ufe%20M%C3%A4rz.fit\
             &contentType=application/vnd.ant.fit",
            // Raw bytes are not re-encoded, so the length stays true.
            &[("accept-encoding", "gzip, br")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/vnd.ant.fit")
    );
    assert_eq!(
        reply.header("content-disposition"),
        Some(
            "attachment; filename=\"L_ufe M_rz.fit\"; filename*=UTF-8''L%C3%A4ufe%20M%C3%A4rz.fit"
        )
    );
    assert_eq!(reply.header("content-length"), Some("3000000"));
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert!(reply.body == scan(3_000_000), "the exact bytes, in order");

    // No size: no length (chunked); no file name: no disposition; no type: octet-stream.
    let reply = edge
        .http
        .get("/v1/scans/s2?size=70000&chunk=1000&omitSize=true", &[])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(reply.header("content-disposition"), None);
    assert_eq!(reply.header("content-length"), None);
    assert!(reply.body == scan(70_000));

    // An ASCII name needs no filename*; HTTP/2 carries the same.
    let reply = edge
        .http
        .send_over(
            true,
            Method::GET,
            "/v1/scans/s3?size=5&fileName=run.gpx&contentType=application/gpx%2Bxml",
            &[],
            None,
        )
        .await;
    assert_eq!(reply.header("content-type"), Some("application/gpx+xml"));
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"run.gpx\"")
    );
    assert_eq!(reply.header("content-length"), Some("5"));
    assert!(reply.body == scan(5));

    // A unary answer that is an HttpBody itself.
    let reply = edge
        .http
        .get("/v1/shelves/attic/books/atlas/cover", &[])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("image/png"));
    assert_eq!(reply.body.as_ref(), COVER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn download_errors_are_json_before_the_first_byte_and_abort_after_it() {
    let (_upstream, edge) = library_edge(|_| {}).await;
    for (query, http, code) in [
        ("failCode=5", StatusCode::NOT_FOUND, 5),
        ("failCode=5&failInStream=true", StatusCode::NOT_FOUND, 5),
        ("failCode=7&failInStream=true", StatusCode::FORBIDDEN, 7),
        ("failCode=14", StatusCode::SERVICE_UNAVAILABLE, 14),
    ] {
        let reply = edge
            .http
            .get(&format!("/v1/scans/gone?size=10&{query}"), &[])
            .await;
        assert_eq!(reply.status, http, "{query}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let status = reply.json();
        assert_eq!(status["code"], code, "{query}: {status}");
        assert_eq!(status["message"], "the scan is not available");
    }

    // Failing after two chunks: the response started, so it is cut, with or without a length;
    // what arrived is a prefix of the bytes and nothing else (no JSON after them).
    for (http2, omit_size) in [(false, false), (false, true), (true, false), (true, true)] {
        let path = format!(
            "/v1/scans/jam?size=1000000&chunk=100000&failAfter=2&delayMs=50&omitSize={omit_size}"
        );
        let response = send_stream(
            edge.addr,
            http2,
            Method::GET,
            &path,
            &[],
            futures::stream::empty(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let mut received = Vec::new();
        let mut failed = false;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        received.extend_from_slice(&data);
                    }
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(
            failed,
            "http2 {http2}, omit_size {omit_size}: the body ended cleanly after {} bytes",
            received.len()
        );
        // The first chunk was sent as it came, before the failure.
        assert!(
            (100_000..=200_000).contains(&received.len()),
            "{}",
            received.len()
        );
        assert!(received == scan(received.len() as u64), "only scan bytes");
    }
}

#[tokio::test]
async fn client_streams_without_an_http_body_stay_grpc_only_and_openapi_describes_raw_bodies() {
    let (_upstream, edge) = library_edge(|_| {}).await;
    let reply = edge
        .http
        .send(
            Method::POST,
            "/v1/pages:bulk",
            &[("content-type", "application/octet-stream")],
            Some(Bytes::from_static(b"pages")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");
    assert_eq!(reply.error_info()["reason"], "ROUTE_NOT_FOUND");

    let openapi = edge.http.get("/openapi.json", &[]).await;
    let document = openapi.json();
    let paths = document["paths"].as_object().unwrap();
    assert!(!paths.contains_key("/v1/pages:bulk"), "{:?}", paths.keys());

    let upload = &paths["/v1/shelves/{shelf}/scans"]["post"];
    assert_eq!(
        upload["requestBody"]["content"]["*/*"]["schema"],
        serde_json::json!({"type": "string", "format": "binary"})
    );
    let parameters: Vec<&str> = upload["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|parameter| parameter["name"].as_str().unwrap())
        .collect();
    assert_eq!(parameters, ["shelf", "title", "genre", "rejectAfterBytes"]);

    let download = &paths["/v1/scans/{name}"]["get"]["responses"]["200"];
    assert_eq!(
        download["content"]["application/octet-stream"]["schema"],
        serde_json::json!({"type": "string", "format": "binary"})
    );
    assert!(
        download["headers"]["Content-Disposition"].is_object(),
        "{download}"
    );
    assert!(download["content"].get("application/x-ndjson").is_none());
    let cover = &paths["/v1/{name}/cover"];
    assert!(cover["put"]["requestBody"]["content"]["*/*"].is_object());
    assert!(cover["get"]["responses"]["200"]["content"]["application/octet-stream"].is_object());

    support::prepare_browser_dir().await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &openapi.body).unwrap();
    let (valid, stdout, stderr) = support::node(
        "validate-openapi.mjs",
        &[file.path().to_str().unwrap()],
        Duration::from_secs(60),
    )
    .await;
    assert!(
        valid,
        "the OpenAPI document is invalid:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("\"valid\":true"), "{stdout}");
}
