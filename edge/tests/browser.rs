//! A real browser: headless Chromium (Debian's) driven by Playwright loads a page that calls
//! UserService through the edge with a client generated from our protos (buf + protoc-gen-es +
//! connect-web), over gRPC-web and over the Connect protocol in JSON and binary. From an allowed
//! origin the calls work and the browser can read error statuses and details; from another
//! origin CORS blocks them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use runmesh_edge::CorsOrigins;
use serde_json::{Value as Json, json};
use support::{PASSWORD, browser_dir, node, prepare_browser_dir, user_and_edge};
use tokio::net::TcpListener;

/// Serves the test page and its bundled client on a free port: one origin.
async fn serve_page() -> SocketAddr {
    let dir = browser_dir();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let script = std::fs::read(dir.join("dist/client.js")).unwrap();
    let app = axum::Router::new()
        .route(
            "/",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
                    html,
                )
            }),
        )
        .route(
            "/client.js",
            get(move || async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/javascript"),
                    )],
                    script,
                )
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The account a run.mjs call signs up: gRPC-web's keep their first names.
fn mail(protocol: &str, who: &str) -> String {
    if protocol == "grpc-web" {
        format!("browser-{who}@example.com")
    } else {
        format!("browser-{protocol}-{who}@example.com")
    }
}

/// The page calls UserService over `protocol` from an allowed origin (the calls work, and the
/// browser reads error codes and details) and from another origin (CORS blocks the calls).
async fn calls_from_allowed_origins_only(protocol: &str) {
    prepare_browser_dir().await;
    let allowed_page = serve_page().await;
    let denied_page = serve_page().await;
    let allowed_origin = format!("http://{allowed_page}");
    let (_user, edge) = user_and_edge(|config| {
        config.cors_origins = CorsOrigins::List(vec![allowed_origin.parse().unwrap()]);
    })
    .await;

    let (ok, stdout, stderr) = node(
        "run.mjs",
        &[
            &format!("http://{allowed_page}/"),
            &format!("http://{denied_page}/"),
            &format!("http://{}", edge.addr),
            PASSWORD,
            protocol,
        ],
        Duration::from_secs(90),
    )
    .await;
    assert!(ok, "run.mjs failed:\n{stderr}\n{stdout}");
    let outcome: Json = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();

    let allowed = &outcome["allowed"];
    assert_eq!(allowed["ok"], true, "{outcome}");
    assert_eq!(allowed["email"], mail(protocol, "allowed"));
    assert_eq!(allowed["roles"], json!(["RUNNER"]), "{outcome}");
    // The browser read the error status (gRPC-web: grpc-status and grpc-message are exposed by
    // CORS; Connect: the JSON error body).
    assert_eq!(allowed["anonymousCode"], "Unauthenticated", "{outcome}");
    assert!(!allowed["anonymousReason"].as_str().unwrap().is_empty());
    assert_eq!(allowed["duplicateCode"], "AlreadyExists", "{outcome}");
    let details = allowed["duplicateDetails"].to_string();
    assert!(details.contains("google.rpc.ErrorInfo"), "{outcome}");

    let denied = &outcome["denied"];
    assert_eq!(denied["ok"], false, "{outcome}");
    let console = denied["consoleErrors"].to_string();
    assert!(console.contains("CORS"), "{outcome}");

    // The preflight failed, so the call never reached svc-user: the account does not exist.
    let signed_up = edge
        .http
        .post(
            "/v1/auth/sign-up",
            &[],
            &json!({"email": mail(protocol, "denied"), "password": PASSWORD, "displayName": "D"}),
        )
        .await;
    assert_eq!(signed_up.status, StatusCode::OK, "{signed_up:?}");
}

#[tokio::test]
async fn a_browser_calls_the_user_service_over_grpc_web_from_allowed_origins_only() {
    calls_from_allowed_origins_only("grpc-web").await;
}

#[tokio::test]
async fn a_browser_calls_the_user_service_over_connect_json_from_allowed_origins_only() {
    calls_from_allowed_origins_only("connect-json").await;
}

#[tokio::test]
async fn a_browser_calls_the_user_service_over_connect_binary_from_allowed_origins_only() {
    calls_from_allowed_origins_only("connect-proto").await;
}
