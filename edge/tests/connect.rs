//! The Connect protocol at the edge, against the generic upstream (tests/protos/library.proto)
//! and the real svc-user: unary calls in JSON and binary, server streams in envelopes, errors
//! with their rich details, deadlines, internal methods refused, bad requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, StatusCode};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use runmesh_proto::runmesh::user::v1 as user;
use serde_json::{Value as Json, json};
use support::echo::{self, BIG, EchoServer};
use support::{HttpClient, PASSWORD, Reply, RunningEdge, bearer, edge_config, start_edge};

const LIBRARY: &str = "/edge.test.v1.LibraryService";

struct Setup {
    _echo: EchoServer,
    edge: RunningEdge,
}

async fn setup(adjust: impl FnOnce(&mut runmesh_edge::EdgeConfig)) -> Setup {
    let echo = echo::start().await;
    let mut config = edge_config(echo.addr);
    config.descriptor_set = Cow::Owned(echo::descriptor_set());
    adjust(&mut config);
    let edge = start_edge(config).await;
    Setup { _echo: echo, edge }
}

fn pool() -> DescriptorPool {
    let mut pool = DescriptorPool::global();
    pool.decode_file_descriptor_set(echo::descriptor_set().as_slice())
        .unwrap();
    pool
}

/// A library message from JSON, encoded.
fn proto(name: &str, json: Json) -> Vec<u8> {
    let descriptor = pool()
        .get_message_by_name(&format!("edge.test.v1.{name}"))
        .unwrap();
    DynamicMessage::deserialize(descriptor, json)
        .unwrap()
        .encode_to_vec()
}

fn decode_echo(bytes: &[u8]) -> DynamicMessage {
    let descriptor = pool().get_message_by_name("edge.test.v1.Echo").unwrap();
    DynamicMessage::decode(descriptor, bytes).unwrap()
}

/// A unary Connect call: POST of the bare message.
async fn unary(
    http: &HttpClient,
    http2: bool,
    path: &str,
    content_type: &str,
    body: impl Into<Bytes>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut all = vec![
        ("content-type", content_type),
        ("connect-protocol-version", "1"),
    ];
    all.extend_from_slice(headers);
    http.send_over(http2, Method::POST, path, &all, Some(body.into()))
        .await
}

fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![flags];
    frame.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The envelopes of a streaming answer: (flags, payload) each.
fn envelopes(body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        assert!(rest.len() >= 5, "a truncated envelope: {rest:?}");
        let length = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        out.push((rest[0], rest[5..5 + length].to_vec()));
        rest = &rest[5 + length..];
    }
    out
}

/// The end-of-stream JSON: the last envelope, flagged 0x02; the others are messages.
fn split_stream(reply: &Reply) -> (Vec<Vec<u8>>, Json) {
    let mut frames = envelopes(&reply.body);
    let (flags, end) = frames.pop().expect("no end-of-stream envelope");
    assert_eq!(flags, 0x02, "the last envelope ends the stream");
    assert!(frames.iter().all(|(flags, _)| *flags == 0));
    (
        frames.into_iter().map(|(_, message)| message).collect(),
        serde_json::from_slice(&end).unwrap(),
    )
}

fn connect_detail(error: &Json, kind: &str) -> Json {
    error["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|detail| detail["type"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} in {error}"))
}

#[tokio::test]
async fn unary_calls_in_json_and_binary_over_http1_and_http2() {
    let setup = setup(|_| {}).await;
    let http = &setup.edge.http;
    for http2 in [false, true] {
        let reply = unary(
            http,
            http2,
            &format!("{LIBRARY}/PublishBook"),
            "application/json",
            json!({"name": "shelves/1/books/2", "copies": "12", "embargo": "3.5s", "future": 1})
                .to_string(),
            &[("authorization", "Bearer t0k3n"), ("cookie", "secret=1")],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let json = reply.json();
        assert_eq!(json["method"], "PublishBook");
        // Canonical proto3 JSON: int64 as a string, so 2^53 + 1 survives.
        assert_eq!(json["big"], BIG.to_string());
        let seen: Json = serde_json::from_str(json["requestJson"].as_str().unwrap()).unwrap();
        // An unknown field ("future") is ignored, as Connect servers do.
        assert_eq!(
            seen,
            json!({"name": "shelves/1/books/2", "copies": "12", "embargo": "3.500s"})
        );
        assert_eq!(json["metadata"]["authorization"], "Bearer t0k3n");
        assert!(json["metadata"].get("cookie").is_none(), "{json}");
        assert!(json["metadata"]["x-forwarded-for"].is_string());

        let reply = unary(
            http,
            http2,
            &format!("{LIBRARY}/PublishBook"),
            "application/proto",
            proto(
                "PublishBookRequest",
                json!({"name": "shelves/1/books/3", "copies": "7"}),
            ),
            &[],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/proto"));
        let echo = decode_echo(&reply.body);
        assert_eq!(
            echo.get_field_by_name("method").unwrap().as_str(),
            Some("PublishBook")
        );
        assert_eq!(echo.get_field_by_name("big").unwrap().as_i64(), Some(BIG));
    }

    // Without Connect-Protocol-Version too (it is optional), and with a charset.
    let reply = setup
        .edge
        .http
        .send(
            Method::POST,
            &format!("{LIBRARY}/Ping"),
            &[("content-type", "application/json; charset=utf-8")],
            Some(Bytes::from_static(b"{}")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json()["method"], "Ping");
}

#[tokio::test]
async fn server_streams_arrive_in_envelopes_ending_with_their_status() {
    let setup = setup(|_| {}).await;
    let http = &setup.edge.http;
    let path = format!("{LIBRARY}/ListBooks");

    let body = envelope(0, json!({"shelf": "s1", "count": 3}).to_string().as_bytes());
    let reply = http
        .send_over(
            true,
            Method::POST,
            &path,
            &[("content-type", "application/connect+json")],
            Some(body.into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/connect+json")
    );
    let (messages, end) = split_stream(&reply);
    let indexes: Vec<Json> = messages
        .iter()
        .map(|message| serde_json::from_slice::<Json>(message).unwrap()["index"].clone())
        .collect();
    // Canonical JSON leaves the zero index out.
    assert_eq!(indexes, [Json::Null, json!(1), json!(2)]);
    assert!(end.get("error").is_none(), "{end}");

    let body = envelope(
        0,
        &proto(
            "ListBooksRequest",
            json!({"shelf": "s1", "count": 2, "failAtEnd": true}),
        ),
    );
    let reply = http
        .send(
            Method::POST,
            &path,
            &[
                ("content-type", "application/connect+proto"),
                ("accept-encoding", "gzip"),
            ],
            Some(body.into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    // Envelopes are never compressed as a whole body (they would not stream).
    assert!(reply.header("content-encoding").is_none());
    let (messages, end) = split_stream(&reply);
    assert_eq!(messages.len(), 2);
    assert_eq!(
        decode_echo(&messages[1])
            .get_field_by_name("index")
            .unwrap()
            .as_i32(),
        Some(1)
    );
    assert_eq!(end["error"]["code"], "aborted", "{end}");
    assert_eq!(end["error"]["message"], "the shelf moved");
}

#[tokio::test]
async fn errors_carry_their_code_http_status_and_rich_details() {
    let setup = setup(|_| {}).await;
    let http = &setup.edge.http;
    let path = format!("{LIBRARY}/Fail");

    let reply = unary(
        http,
        false,
        &path,
        "application/json",
        json!({"code": 3, "reason": "BAD_TITLE"}).to_string(),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let error = reply.json();
    assert_eq!(error["code"], "invalid_argument");
    assert_eq!(error["message"], "failed with InvalidArgument");
    let info = connect_detail(&error, "google.rpc.ErrorInfo");
    assert_eq!(info["debug"]["reason"], "BAD_TITLE");
    assert_eq!(info["debug"]["domain"], "library.test");
    // `value` is the detail's protobuf, base64 without padding.
    let value = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(info["value"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        tonic_types::pb::ErrorInfo::decode(value.as_slice())
            .unwrap()
            .reason,
        "BAD_TITLE"
    );
    let bad_request = connect_detail(&error, "google.rpc.BadRequest");
    assert_eq!(bad_request["debug"]["fieldViolations"][0]["field"], "name");

    // The same from a binary call: errors are always JSON.
    let reply = unary(
        http,
        true,
        &path,
        "application/proto",
        proto(
            "FailRequest",
            json!({"code": 8, "reason": "SLOW_DOWN", "retryAfterMs": 1500}),
        ),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{reply:?}");
    assert_eq!(reply.json()["code"], "resource_exhausted");
    assert_eq!(reply.header("retry-after"), Some("2"));
    connect_detail(&reply.json(), "google.rpc.RetryInfo");

    // Connect's table: each code's HTTP status.
    for (code, name, status) in [
        (5, "not_found", 404),
        (7, "permission_denied", 403),
        (9, "failed_precondition", 400),
        (10, "aborted", 409),
        (14, "unavailable", 503),
        (16, "unauthenticated", 401),
    ] {
        let reply = unary(
            http,
            false,
            &path,
            "application/json",
            json!({"code": code, "reason": "R"}).to_string(),
            &[],
        )
        .await;
        assert_eq!(reply.status.as_u16(), status, "{name}: {reply:?}");
        assert_eq!(reply.json()["code"], name);
    }
}

#[tokio::test]
async fn deadlines_come_from_connect_timeout_ms_capped_by_the_route() {
    let setup = setup(|config| {
        config.timeouts.insert(
            "edge.test.v1.LibraryService/Slow".to_owned(),
            Duration::from_millis(300),
        );
    })
    .await;
    let http = &setup.edge.http;
    let path = format!("{LIBRARY}/Slow");

    let asked = unary(
        http,
        false,
        &path,
        "application/json",
        r#"{"delayMs": 3000}"#,
        &[("connect-timeout-ms", "100")],
    )
    .await;
    assert_eq!(asked.status, StatusCode::GATEWAY_TIMEOUT, "{asked:?}");
    assert_eq!(asked.json()["code"], "deadline_exceeded");

    let by_route = unary(
        http,
        false,
        &path,
        "application/json",
        r#"{"delayMs": 3000}"#,
        &[],
    )
    .await;
    assert_eq!(by_route.status, StatusCode::GATEWAY_TIMEOUT, "{by_route:?}");

    // The deadline goes upstream as grpc-timeout, capped by the route's 300 ms.
    let fast = unary(
        http,
        false,
        &path,
        "application/json",
        r#"{"delayMs": 0}"#,
        &[("connect-timeout-ms", "60000")],
    )
    .await;
    assert_eq!(fast.status, StatusCode::OK, "{fast:?}");
    let timeout = fast.json()["metadata"]["grpc-timeout"]
        .as_str()
        .unwrap()
        .to_owned();
    let micros: u64 = match timeout.strip_suffix('u') {
        Some(micros) => micros.parse().unwrap(),
        None => timeout.strip_suffix('m').unwrap().parse::<u64>().unwrap() * 1000,
    };
    assert!(micros <= 300_000, "{timeout}");

    let malformed = unary(
        http,
        false,
        &path,
        "application/json",
        "{}",
        &[("connect-timeout-ms", "soon")],
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{malformed:?}");
    assert_eq!(malformed.json()["code"], "invalid_argument");
}

#[tokio::test]
async fn connect_timeout_ms_bounds_a_whole_stream() {
    let setup = setup(|_| {}).await;
    // Ten echoes 200 ms apart would take two seconds; the client gave the call 500 ms.
    let body = envelope(
        0,
        json!({"shelf": "s1", "count": 10, "delayMs": 200})
            .to_string()
            .as_bytes(),
    );
    let reply = setup
        .edge
        .http
        .send(
            Method::POST,
            &format!("{LIBRARY}/ListBooks"),
            &[
                ("content-type", "application/connect+json"),
                ("connect-timeout-ms", "500"),
            ],
            Some(body.into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let (messages, end) = split_stream(&reply);
    assert!(messages.len() < 10, "{} messages", messages.len());
    assert_eq!(end["error"]["code"], "deadline_exceeded", "{end}");
}

#[tokio::test]
async fn internal_and_unknown_methods_do_not_exist() {
    let setup = setup(|_| {}).await;
    let http = &setup.edge.http;
    for path in [
        "/edge.test.v1.LibraryAdminService/Burn",
        "/edge.test.v1.LibraryService/Nothing",
        "/edge.test.v1.NoService/Ping",
    ] {
        for http2 in [false, true] {
            let reply = unary(http, http2, path, "application/json", "{}", &[]).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {reply:?}");
            assert_eq!(reply.json()["code"], "unimplemented", "{path}");
        }
        let reply = http
            .send(
                Method::POST,
                path,
                &[("content-type", "application/connect+proto")],
                Some(envelope(0, &[]).into()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {reply:?}");
        assert_eq!(reply.json()["code"], "unimplemented");
    }
}

#[tokio::test]
async fn bad_requests_are_invalid_argument() {
    let setup = setup(|config| config.max_body_bytes = 256).await;
    let http = &setup.edge.http;
    let publish = format!("{LIBRARY}/PublishBook");
    let invalid = |reply: &Reply| {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
        assert_eq!(reply.json()["code"], "invalid_argument", "{reply:?}");
    };

    let not_json = unary(http, false, &publish, "application/json", "{nope", &[]).await;
    invalid(&not_json);
    let wrong_type = unary(
        http,
        false,
        &publish,
        "application/json",
        r#"{"copies": "many"}"#,
        &[],
    )
    .await;
    invalid(&wrong_type);
    let not_proto = unary(
        http,
        false,
        &publish,
        "application/proto",
        Bytes::from_static(&[0x0a, 0xff, 0x01]),
        &[],
    )
    .await;
    invalid(&not_proto);
    let version = http
        .send(
            Method::POST,
            &publish,
            &[
                ("content-type", "application/json"),
                ("connect-protocol-version", "2"),
            ],
            Some(Bytes::from_static(b"{}")),
        )
        .await;
    invalid(&version);
    // A unary method called as a stream, and a stream as unary.
    let as_stream = http
        .send(
            Method::POST,
            &publish,
            &[("content-type", "application/connect+json")],
            Some(envelope(0, b"{}").into()),
        )
        .await;
    invalid(&as_stream);
    let as_unary = unary(
        http,
        false,
        &format!("{LIBRARY}/ListBooks"),
        "application/json",
        "{}",
        &[],
    )
    .await;
    invalid(&as_unary);
    // A stream request is exactly one envelope.
    let mut two = envelope(0, b"{}");
    two.extend(envelope(0, b"{}"));
    let two_messages = http
        .send(
            Method::POST,
            &format!("{LIBRARY}/ListBooks"),
            &[("content-type", "application/connect+json")],
            Some(two.into()),
        )
        .await;
    invalid(&two_messages);

    // Compressed requests: unimplemented, naming what is accepted.
    let gzip = unary(
        http,
        false,
        &publish,
        "application/json",
        "{}",
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(gzip.status, StatusCode::NOT_IMPLEMENTED, "{gzip:?}");
    assert_eq!(gzip.json()["code"], "unimplemented");
    assert_eq!(gzip.header("accept-encoding"), Some("identity"));

    let too_large = unary(
        http,
        false,
        &publish,
        "application/json",
        json!({"name": "x".repeat(300)}).to_string(),
        &[],
    )
    .await;
    assert_eq!(
        too_large.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{too_large:?}"
    );
    assert_eq!(too_large.json()["code"], "resource_exhausted");
}

#[tokio::test]
async fn clients_over_their_rate_get_a_connect_error() {
    let setup = setup(|config| {
        config.rate_limit = Some(runmesh_edge::RateLimit {
            requests: 2,
            window: Duration::from_secs(60),
        });
    })
    .await;
    let http = &setup.edge.http;
    let path = format!("{LIBRARY}/Ping");
    for _ in 0..2 {
        let reply = unary(http, false, &path, "application/json", "{}", &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
    let refused = unary(http, false, &path, "application/json", "{}", &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");
    let error = refused.json();
    assert_eq!(error["code"], "resource_exhausted", "{error}");
    assert_eq!(
        connect_detail(&error, "google.rpc.ErrorInfo")["debug"]["reason"],
        "RATE_LIMITED"
    );
    let seconds: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
}

#[tokio::test]
async fn svc_user_over_connect_json_and_binary() {
    let (_user, edge) = support::user_and_edge(|_| {}).await;
    let http = &edge.http;

    let reply = unary(
        http,
        false,
        "/runmesh.user.v1.UserService/SignUp",
        "application/json",
        json!({"email": "connect@example.com", "password": PASSWORD, "displayName": "C"})
            .to_string(),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let token = reply.json()["tokens"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let me = unary(
        http,
        true,
        "/runmesh.user.v1.UserService/GetMe",
        "application/proto",
        user::GetMeRequest::default().encode_to_vec(),
        &[("authorization", &bearer(&token))],
    )
    .await;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    let me = user::GetMeResponse::decode(me.body).unwrap();
    assert_eq!(me.user.unwrap().email, "connect@example.com");

    // svc-user's own errors, with their details.
    let anonymous = unary(
        http,
        false,
        "/runmesh.user.v1.UserService/GetMe",
        "application/json",
        "{}",
        &[],
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{anonymous:?}");
    assert_eq!(anonymous.json()["code"], "unauthenticated");
    let bad_email = unary(
        http,
        false,
        "/runmesh.user.v1.UserService/SignUp",
        "application/json",
        json!({"email": "nope", "password": PASSWORD, "displayName": "C"}).to_string(),
        &[],
    )
    .await;
    assert_eq!(bad_email.status, StatusCode::BAD_REQUEST, "{bad_email:?}");
    let error = bad_email.json();
    assert_eq!(error["code"], "invalid_argument");
    let violations = &connect_detail(&error, "google.rpc.BadRequest")["debug"]["fieldViolations"];
    assert_eq!(violations[0]["field"], "email", "{error}");

    // The internal twin is not there, whoever asks.
    let internal = unary(
        http,
        false,
        "/runmesh.user.v1.UserInternalService/GetJwks",
        "application/json",
        "{}",
        &[("authorization", &bearer(&token))],
    )
    .await;
    assert_eq!(internal.status, StatusCode::NOT_FOUND, "{internal:?}");
    assert_eq!(internal.json()["code"], "unimplemented");
}
