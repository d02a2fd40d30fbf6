//! The transcoder against a generic upstream (tests/protos/library.proto): path templates,
//! query parameters, bodies, custom verbs, additional bindings, canonical JSON, every gRPC code's
//! HTTP mapping, deadlines, streaming, forwarding, CORS, limits and gRPC-web framing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use runmesh_edge::{CorsOrigins, EdgeConfig, RateLimit};
use serde_json::{Value as Json, json};
use support::echo::{self, BIG, EchoServer};
use support::{HttpClient, RunningEdge, detail, edge_config, grpc_web, start_edge};

struct Setup {
    _echo: EchoServer,
    edge: RunningEdge,
}

impl Setup {
    fn http(&self) -> &HttpClient {
        &self.edge.http
    }
}

fn library_config(upstream: SocketAddr) -> EdgeConfig {
    let mut config = edge_config(upstream);
    config.descriptor_set = Cow::Owned(echo::descriptor_set());
    config
}

async fn setup(adjust: impl FnOnce(&mut EdgeConfig)) -> Setup {
    let echo = echo::start().await;
    let mut config = library_config(echo.addr);
    adjust(&mut config);
    let edge = start_edge(config).await;
    Setup { _echo: echo, edge }
}

/// The request the upstream decoded, as proto-named JSON.
fn seen_request(reply: &Json) -> Json {
    serde_json::from_str(reply["requestJson"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn nested_path_templates_and_query_parameters_fill_the_request() {
    let setup = setup(|_| {}).await;
    for http2 in [false, true] {
        let reply = setup
            .http()
            .send_over(
                http2,
                Method::GET,
                "/v1/shelves/s%201/books/b2?includeReviews=true&readMask=title,pageCount\
                 &filter.tags=a&filter.tags=b&filter.genre=GENRE_FICTION&filter.minPages=100\
                 &filter.since_id=12345678901234567",
                &[],
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let json = reply.json();
        assert_eq!(json["method"], "GetBook");
        assert_eq!(
            seen_request(&json),
            json!({
                "name": "shelves/s 1/books/b2",
                "include_reviews": true,
                "read_mask": "title,pageCount",
                "filter": {
                    "tags": ["a", "b"],
                    "genre": "GENRE_FICTION",
                    "min_pages": 100,
                    "since_id": "12345678901234567",
                },
            })
        );
        // Canonical JSON out: lowerCamelCase, int64 as a string, RFC 3339 timestamps, defaults
        // included.
        assert_eq!(json["big"], BIG.to_string());
        assert_eq!(json["at"], "2024-05-01T10:00:00Z");
        assert_eq!(json["index"], 0);
    }
}

#[tokio::test]
async fn additional_bindings_and_double_wildcards_route_to_the_same_rpc() {
    let setup = setup(|_| {}).await;
    let reply = setup.http().get("/v1/archive/old/shelf/book", &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(seen_request(&reply.json())["name"], "old/shelf/book");
}

#[tokio::test]
async fn a_body_field_and_a_nested_path_variable_build_one_message() {
    let setup = setup(|_| {}).await;
    let reply = setup
        .http()
        .send(
            Method::PATCH,
            "/v1/shelves/s1/books/b2?updateMask=title,pageCount",
            &[],
            Some(Bytes::from(
                json!({
                    "name": "ignored: the path wins",
                    "title": "Tempo",
                    "page_count": "12",
                    "publishedAt": "2024-05-01T10:00:00Z",
                    "tags": ["x"],
                    "genre": "GENRE_SCIENCE",
                })
                .to_string(),
            )),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        seen_request(&reply.json()),
        json!({
            "book": {
                "name": "shelves/s1/books/b2",
                "title": "Tempo",
                "page_count": "12",
                "published_at": "2024-05-01T10:00:00Z",
                "tags": ["x"],
                "genre": "GENRE_SCIENCE",
            },
            "update_mask": "title,pageCount",
        })
    );
}

#[tokio::test]
async fn custom_verbs_take_the_whole_body() {
    let setup = setup(|_| {}).await;
    let reply = setup
        .http()
        .post(
            "/v1/shelves/s1/books/b2:publish",
            &[],
            &json!({"embargo": "3.5s", "copies": "18446744073709551615"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        seen_request(&reply.json()),
        json!({
            "name": "shelves/s1/books/b2",
            "embargo": "3.500s",
            "copies": "18446744073709551615",
        })
    );
}

#[tokio::test]
async fn response_body_answers_one_field() {
    let setup = setup(|_| {}).await;
    let reply = setup.http().get("/v1/answer", &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json(), json!(42));
}

#[tokio::test]
async fn bad_requests_are_400_with_a_status_body() {
    let setup = setup(|_| {}).await;
    let cases: Vec<(Method, &str, Option<&str>, &str)> = vec![
        (
            Method::PATCH,
            "/v1/shelves/s1/books/b2",
            Some(r#"{"nope": 1}"#),
            "request",
        ),
        (
            Method::PATCH,
            "/v1/shelves/s1/books/b2",
            Some("{not json"),
            "body",
        ),
        (Method::GET, "/v1/shelves/s1/books/b2?nope=1", None, "nope"),
        (
            Method::GET,
            "/v1/shelves/s1/books/b2?includeReviews=yes",
            None,
            "includeReviews",
        ),
        (
            Method::GET,
            "/v1/shelves/s1/books/b2?name=other",
            None,
            "name",
        ),
        (
            Method::GET,
            "/v1/shelves/s1/books/b2?filter=x",
            None,
            "filter",
        ),
        (
            Method::POST,
            "/v1/shelves/s1/books/b2:publish?copies=1",
            Some("{}"),
            "query",
        ),
        (
            Method::POST,
            "/v1/shelves/s1/books/b2:publish",
            Some("[1]"),
            "body",
        ),
        (
            Method::POST,
            "/v1/shelves/s1/books/b2:publish",
            Some(r#"{"copies": "many"}"#),
            "request",
        ),
    ];
    for (method, path, body, field) in cases {
        let reply = setup
            .http()
            .send(
                method.clone(),
                path,
                &[],
                body.map(|b| Bytes::from(b.to_owned())),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{method} {path} {body:?}: {reply:?}"
        );
        let json = reply.json();
        assert_eq!(json["code"], 3, "{json}");
        let info = reply.error_info();
        assert_eq!(info["reason"], "INVALID_ARGUMENT");
        assert_eq!(info["domain"], "edge.runmesh.dev");
        let violation = &detail(&json, "google.rpc.BadRequest")["fieldViolations"][0];
        assert_eq!(violation["field"], field, "{method} {path}: {json}");
    }
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let setup = setup(|_| {}).await;
    let missing = setup.http().get("/v1/nothing/here", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["code"], 5);
    assert_eq!(missing.error_info()["reason"], "ROUTE_NOT_FOUND");

    let wrong = setup
        .http()
        .send(Method::DELETE, "/v1/shelves/s1/books/b2", &[], None)
        .await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.header("allow"), Some("GET, PATCH"));
    assert_eq!(wrong.error_info()["reason"], "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn every_grpc_code_maps_to_its_http_status_with_details() {
    let setup = setup(|_| {}).await;
    let table = [
        (1, 499),
        (2, 500),
        (3, 400),
        (4, 504),
        (5, 404),
        (6, 409),
        (7, 403),
        (8, 429),
        (9, 400),
        (10, 409),
        (11, 400),
        (12, 501),
        (13, 500),
        (14, 503),
        (15, 500),
        (16, 401),
    ];
    for (code, http) in table {
        let reply = setup
            .http()
            .post(
                "/v1/fail",
                &[],
                &json!({"code": code, "reason": "SOMETHING_WRONG"}),
            )
            .await;
        assert_eq!(reply.status.as_u16(), http, "code {code}: {reply:?}");
        let json = reply.json();
        assert_eq!(json["code"], code);
        assert!(
            json["message"].as_str().unwrap().starts_with("failed with"),
            "{json}"
        );
        let info = reply.error_info();
        assert_eq!(info["reason"], "SOMETHING_WRONG");
        assert_eq!(info["domain"], "library.test");
        if code == 3 {
            let violations = &detail(&json, "google.rpc.BadRequest")["fieldViolations"];
            assert_eq!(
                violations[0],
                json!({"field": "name", "description": "is required"})
            );
        }
        assert!(reply.header("retry-after").is_none());
    }

    let limited = setup
        .http()
        .post(
            "/v1/fail",
            &[],
            &json!({"code": 8, "reason": "SLOW_DOWN", "retryAfterMs": 2500}),
        )
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.header("retry-after"), Some("3"));
    assert_eq!(
        detail(&limited.json(), "google.rpc.RetryInfo")["retryDelay"],
        "2.500s"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_503() {
    // Nothing listens on port 1 (a privileged port no test binds).
    let mut config = library_config(SocketAddr::from(([127, 0, 0, 1], 1)));
    config.rate_limit = None;
    let edge = start_edge(config).await;
    let reply = edge.http.get("/v1/answer", &[]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.json()["code"], 14);
    let ready = edge.http.get("/readyz", &[]).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["status"], "NOT_SERVING");
    assert_eq!(edge.http.get("/healthz", &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn deadlines_come_from_the_client_or_the_route_and_expire_as_504() {
    let setup = setup(|config| {
        config.timeouts.insert(
            "edge.test.v1.LibraryService/Slow".to_owned(),
            Duration::from_millis(300),
        );
    })
    .await;

    let asked = setup
        .http()
        .get("/v1/slow?delayMs=3000", &[("grpc-timeout", "100m")])
        .await;
    assert_eq!(asked.status, StatusCode::GATEWAY_TIMEOUT, "{asked:?}");
    assert_eq!(asked.json()["code"], 4);

    let by_route = setup.http().get("/v1/slow?delayMs=3000", &[]).await;
    assert_eq!(by_route.status, StatusCode::GATEWAY_TIMEOUT, "{by_route:?}");

    // The deadline travels upstream as grpc-timeout, capped by the route's 300 ms.
    let fast = setup
        .http()
        .get("/v1/slow?delayMs=0", &[("grpc-timeout", "10S")])
        .await;
    assert_eq!(fast.status, StatusCode::OK, "{fast:?}");
    let timeout = fast.json()["metadata"]["grpc-timeout"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        timeout.ends_with('u') || timeout.ends_with('m'),
        "{timeout}"
    );
    let micros: u64 = timeout.trim_end_matches(['u', 'm']).parse().unwrap();
    let micros = if timeout.ends_with('m') {
        micros * 1000
    } else {
        micros
    };
    assert!(micros <= 300_000, "{timeout}");
}

#[tokio::test]
async fn server_streams_arrive_as_ndjson_or_server_sent_events() {
    let setup = setup(|_| {}).await;
    let reply = setup.http().get("/v1/shelves/s1/books?count=3", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Json> = String::from_utf8(reply.body.to_vec())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["result"]["index"], index);
        assert_eq!(seen_request(&line["result"])["shelf"], "s1");
    }

    let failing = setup
        .http()
        .get("/v1/shelves/s1/books?count=2&failAtEnd=true", &[])
        .await;
    let lines: Vec<Json> = String::from_utf8(failing.body.to_vec())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["error"]["code"], 10);
    assert_eq!(lines[2]["error"]["message"], "the shelf moved");

    let events = setup
        .http()
        .get(
            "/v1/shelves/s1/books?count=2&failAtEnd=true",
            &[("accept", "text/event-stream")],
        )
        .await;
    assert_eq!(events.header("content-type"), Some("text/event-stream"));
    let text = String::from_utf8(events.body.to_vec()).unwrap();
    let data: Vec<Json> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert_eq!(data.len(), 3, "{text}");
    assert_eq!(data[1]["index"], 1);
    assert!(text.contains("event: error"), "{text}");
    assert_eq!(data[2]["code"], 10);
}

#[tokio::test]
async fn credentials_ids_trace_context_and_the_client_go_upstream() {
    let setup = setup(|_| {}).await;
    let reply = setup
        .http()
        .get("/v1/answer/../shelves/s1/books/b1", &[])
        .await;
    // Paths are matched as sent; dot segments are not resolved into another route.
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let reply = setup
        .http()
        .get(
            "/v1/shelves/s1/books/b1",
            &[
                ("authorization", "Bearer abc"),
                (
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
                ("x-forwarded-for", "6.6.6.6"),
                ("cookie", "session=secret"),
            ],
        )
        .await;
    let metadata = &reply.json()["metadata"];
    assert_eq!(metadata["authorization"], "Bearer abc");
    assert_eq!(
        metadata["traceparent"],
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    );
    // Not trusted (no proxies configured): the peer is appended and is the client.
    assert_eq!(metadata["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
    assert!(metadata.get("cookie").is_none());
    let id = reply.header("x-request-id").unwrap();
    assert_eq!(metadata["x-request-id"], id);
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    let kept = setup
        .http()
        .get("/v1/answer", &[("x-request-id", "client-chosen-1")])
        .await;
    assert_eq!(kept.header("x-request-id"), Some("client-chosen-1"));
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let setup = setup(|config| {
        config.cors_origins = CorsOrigins::List(vec!["https://app.example".parse().unwrap()]);
    })
    .await;
    let preflight = |origin: &'static str| {
        let http = setup.http().clone();
        async move {
            http.send(
                Method::OPTIONS,
                "/edge.test.v1.LibraryService/Ping",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "content-type,x-grpc-web,x-user-agent,grpc-timeout,authorization",
                    ),
                ],
                None,
            )
            .await
        }
    };
    let allowed = preflight("https://app.example").await;
    assert_eq!(allowed.status, StatusCode::OK, "{allowed:?}");
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let allow_headers = allowed.header("access-control-allow-headers").unwrap();
    for name in [
        "content-type",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        "authorization",
    ] {
        assert!(allow_headers.contains(name), "{allow_headers}");
    }
    let exposed = allowed.header("access-control-expose-headers").unwrap();
    for name in [
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "x-request-id",
    ] {
        assert!(exposed.contains(name), "{exposed}");
    }

    let denied = preflight("https://evil.example").await;
    assert!(
        denied.header("access-control-allow-origin").is_none(),
        "{denied:?}"
    );

    let actual = setup
        .http()
        .get("/v1/answer", &[("origin", "https://app.example")])
        .await;
    assert_eq!(
        actual.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(
        actual
            .header("access-control-expose-headers")
            .unwrap()
            .contains("grpc-status")
    );
}

#[tokio::test]
async fn clients_over_their_rate_are_refused_with_retry_after() {
    let setup = setup(|config| {
        config.rate_limit = Some(RateLimit {
            requests: 3,
            window: Duration::from_secs(60),
        });
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            setup.http().get("/v1/answer", &[]).await.status,
            StatusCode::OK
        );
    }
    let refused = setup.http().get("/v1/answer", &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");
    let seconds: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
    assert_eq!(refused.error_info()["reason"], "RATE_LIMITED");

    let web = grpc_web(
        setup.http(),
        false,
        false,
        "/edge.test.v1.LibraryService/Ping",
        &[],
        &[],
    )
    .await;
    assert_eq!(web.grpc_status(), Some(8), "{web:?}");

    // Probes are never limited.
    assert_eq!(
        setup.http().get("/healthz", &[]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let setup = setup(|config| config.max_body_bytes = 64).await;
    let title = "x".repeat(100);
    let reply = setup
        .http()
        .send(
            Method::PATCH,
            "/v1/shelves/s1/books/b2",
            &[],
            Some(Bytes::from(json!({"title": title}).to_string())),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{reply:?}");
    assert_eq!(reply.error_info()["reason"], "BODY_TOO_LARGE");
}

#[tokio::test]
async fn json_is_compressed_when_asked_and_streams_are_not() {
    let setup = setup(|_| {}).await;
    let document = setup
        .http()
        .get("/openapi.json", &[("accept-encoding", "br, gzip")])
        .await;
    assert_eq!(document.header("content-encoding"), Some("br"));
    let gzip = setup
        .http()
        .get("/openapi.json", &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    let stream = setup
        .http()
        .get(
            "/v1/shelves/s1/books?count=50",
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert!(stream.header("content-encoding").is_none());
}

fn pool() -> DescriptorPool {
    let mut pool = DescriptorPool::global();
    pool.decode_file_descriptor_set(echo::descriptor_set().as_slice())
        .unwrap();
    pool
}

#[tokio::test]
async fn grpc_web_binary_and_text_over_http1_and_http2() {
    let setup = setup(|_| {}).await;
    let pool = pool();
    let echo_type = pool.get_message_by_name("edge.test.v1.Echo").unwrap();
    for http2 in [false, true] {
        for text in [false, true] {
            let web = grpc_web(
                setup.http(),
                http2,
                text,
                "/edge.test.v1.LibraryService/Ping",
                &[],
                &[("authorization", "Bearer web")],
            )
            .await;
            assert_eq!(web.reply.status, StatusCode::OK, "{web:?}");
            let expected = if text {
                "application/grpc-web-text"
            } else {
                "application/grpc-web+proto"
            };
            assert!(
                web.reply
                    .header("content-type")
                    .unwrap()
                    .starts_with(expected),
                "{web:?}"
            );
            assert_eq!(web.grpc_status(), Some(0), "{web:?}");
            assert_eq!(web.messages.len(), 1);
            let echo =
                DynamicMessage::decode(echo_type.clone(), web.messages[0].as_slice()).unwrap();
            let metadata = echo.get_field_by_name("metadata").unwrap();
            let metadata = metadata.as_map().unwrap();
            let get = |name: &str| {
                metadata
                    .get(&prost_reflect::MapKey::String(name.to_owned()))
                    .and_then(|v| v.as_str().map(str::to_owned))
            };
            assert_eq!(get("authorization").as_deref(), Some("Bearer web"));
            assert_eq!(get("content-type").as_deref(), Some("application/grpc"));
            assert_eq!(get("x-forwarded-for").as_deref(), Some("127.0.0.1"));
            assert!(get("grpc-timeout").is_some());
        }
    }
}

#[tokio::test]
async fn grpc_web_streams_and_errors_keep_their_status_and_details() {
    let setup = setup(|_| {}).await;
    let pool = pool();
    let list = pool
        .get_message_by_name("edge.test.v1.ListBooksRequest")
        .unwrap();
    let mut request = DynamicMessage::new(list);
    request.set_field_by_name("count", prost_reflect::Value::I32(3));
    request.set_field_by_name("fail_at_end", prost_reflect::Value::Bool(true));
    let web = grpc_web(
        setup.http(),
        false,
        false,
        "/edge.test.v1.LibraryService/ListBooks",
        &request.encode_to_vec(),
        &[],
    )
    .await;
    assert_eq!(web.messages.len(), 3);
    assert_eq!(web.grpc_status(), Some(10), "{web:?}");

    let fail = pool
        .get_message_by_name("edge.test.v1.FailRequest")
        .unwrap();
    let mut request = DynamicMessage::new(fail);
    request.set_field_by_name("code", prost_reflect::Value::I32(7));
    request.set_field_by_name("reason", prost_reflect::Value::String("NOPE".into()));
    let web = grpc_web(
        setup.http(),
        true,
        true,
        "/edge.test.v1.LibraryService/Fail",
        &request.encode_to_vec(),
        &[],
    )
    .await;
    assert_eq!(web.grpc_status(), Some(7), "{web:?}");
    use base64::Engine as _;
    let details = web.trailers.get("grpc-status-details-bin").unwrap();
    let details = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(details.trim_end_matches('='))
        .unwrap();
    let status = tonic_types::pb::Status::decode(details.as_slice()).unwrap();
    assert_eq!(status.code, 7);
}

#[tokio::test]
async fn internal_services_are_not_reachable() {
    let setup = setup(|_| {}).await;
    let web = grpc_web(
        setup.http(),
        false,
        false,
        "/edge.test.v1.LibraryAdminService/Burn",
        &[],
        &[],
    )
    .await;
    assert_eq!(web.grpc_status(), Some(12), "{web:?}");
    let web = grpc_web(
        setup.http(),
        false,
        false,
        "/grpc.health.v1.Health/Check",
        &[],
        &[],
    )
    .await;
    assert_eq!(web.grpc_status(), Some(12), "{web:?}");
    let document: Json = setup.http().get("/openapi.json", &[]).await.json();
    assert!(!document.to_string().contains("LibraryAdminService"));
}

#[tokio::test]
async fn the_openapi_document_lists_every_binding() {
    let setup = setup(|_| {}).await;
    let document = setup.http().get("/openapi.json", &[]).await.json();
    let paths = document["paths"].as_object().unwrap();
    let mut listed: Vec<String> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "GET /v1/answer",
            "GET /v1/archive/{name}",
            "GET /v1/scans/{name}",
            "GET /v1/shelves/{shelf}/books",
            "GET /v1/slow",
            "GET /v1/{name}",
            "GET /v1/{name}/cover",
            "PATCH /v1/{book.name}",
            "POST /v1/fail",
            // A raw upload into a client stream; `POST /v1/pages:bulk` (a client stream whose
            // body is not an HttpBody) is not transcoded.
            "POST /v1/shelves/{shelf}/scans",
            "POST /v1/{name}:publish",
            "PUT /v1/{name}/cover",
        ]
    );
    let get_book = &document["paths"]["/v1/{name}"]["get"];
    let query: Vec<&str> = get_book["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        query,
        [
            "includeReviews",
            "readMask",
            "filter.tags",
            "filter.genre",
            "filter.minPages",
            "filter.sinceId"
        ]
    );
    assert_eq!(get_book["summary"], "Reads a book.");
    let stream =
        &document["paths"]["/v1/shelves/{shelf}/books"]["get"]["responses"]["200"]["content"];
    assert!(stream["application/x-ndjson"].is_object());
    assert_eq!(
        document["components"]["schemas"]["edge.test.v1.Echo"]["properties"]["big"],
        json!({"type": "string", "format": "int64", "description": "Always 2^53 + 1, which a JSON number cannot hold."})
    );
}

#[tokio::test]
async fn shutdown_fails_readiness_first_then_stops() {
    // Long enough that the request below surely arrives before the listener closes.
    let mut setup = setup(|config| config.shutdown_delay = Duration::from_secs(5)).await;
    setup.edge.shutdown.cancel();
    let draining = setup.http().get("/readyz", &[]).await;
    assert_eq!(draining.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(draining.json()["status"], "DRAINING");
    let task = setup.edge.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the edge did not stop")
        .unwrap();
}
