//! `/docs`, the interactive API reference: served by the edge itself (content types, cache
//! headers), and in headless Chromium it loads with no console error and no request to another
//! host, lists every operation of `/openapi.json`, and "Try it out" works against svc-user and
//! svc-race (run as `runmesh up` runs them), with a bearer token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{StatusCode, Uri};
use runmesh_edge::UpstreamConfig;
use runmesh_platform::config::Settings;
use runmesh_platform::service::{Listening, Service};
use runmesh_svc_race::{RaceConfig, RaceService};
use runmesh_svc_user::UserService;
use serde_json::Value as Json;
use support::{
    RunningEdge, edge_config, node, prepare_browser_dir, sign_up, start_edge, wait_ready,
};
use tokio_util::sync::CancellationToken;

/// svc-user and svc-race in one runtime on SQLite (as `runmesh up`), and the edge in front.
struct Stack {
    edge: RunningEdge,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn stack() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().to_path_buf(),
        shutdown_delay: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(5),
        log_filter: std::env::var("RUNMESH_LOG").unwrap_or_else(|_| "warn".to_owned()),
        ..Settings::default()
    };
    let services: Vec<Arc<dyn Service>> = vec![
        Arc::new(UserService::new(support::user_config())),
        Arc::new(RaceService::new(RaceConfig::default())),
    ];
    let shutdown = CancellationToken::new();
    let (ready, listening) = tokio::sync::oneshot::channel::<Listening>();
    tokio::spawn(runmesh_platform::service::run(
        settings,
        services,
        "runmesh-edge-docs-test",
        None,
        shutdown.clone(),
        Some(ready),
    ));
    let grpc = listening.await.expect("the services did not start").grpc;
    let upstream: Uri = format!("http://{grpc}").parse().unwrap();
    let mut config = edge_config(grpc);
    config.upstreams = UpstreamConfig {
        default: None,
        services: [
            "runmesh.user.v1.UserService",
            "runmesh.user.v1.UserInternalService",
            "runmesh.race.v1.RaceService",
        ]
        .into_iter()
        .map(|service| (service.to_owned(), upstream.clone()))
        .collect(),
    };
    let edge = start_edge(config).await;
    wait_ready(&edge.http).await;
    Stack {
        edge,
        shutdown,
        _dir: dir,
    }
}

#[tokio::test]
async fn the_page_and_its_assets_come_from_the_edge() {
    // Nothing answers upstream: the page needs only the edge.
    let edge = start_edge(edge_config(SocketAddr::from(([127, 0, 0, 1], 1)))).await;
    let page = edge.http.get("/docs", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = String::from_utf8_lossy(&page.body);
    for asset in [
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/init.js",
    ] {
        assert!(html.contains(asset), "{html}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    for (path, content_type) in [
        (
            "/docs/swagger-ui-bundle.js",
            "text/javascript; charset=utf-8",
        ),
        ("/docs/init.js", "text/javascript; charset=utf-8"),
        ("/docs/swagger-ui.css", "text/css; charset=utf-8"),
        ("/docs/favicon-32x32.png", "image/png"),
        ("/docs/LICENSE", "text/plain; charset=utf-8"),
    ] {
        let asset = edge.http.get(path, &[]).await;
        assert_eq!(asset.status, StatusCode::OK, "{path}");
        assert_eq!(asset.header("content-type"), Some(content_type), "{path}");
        assert_eq!(asset.header("cache-control"), Some("public, max-age=86400"));
        assert_eq!(asset.header("x-content-type-options"), Some("nosniff"));
        assert!(!asset.body.is_empty());
    }
    // The bundle is compressed for browsers that accept it.
    let compressed = edge
        .http
        .get("/docs/swagger-ui-bundle.js", &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(compressed.header("content-encoding"), Some("gzip"));
    assert!(compressed.body.len() < 1_000_000);

    let missing = edge.http.get("/docs/../../etc/passwd", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let missing = edge.http.get("/docs/swagger-ui-bundle.js.map", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_browser_lists_every_operation_and_tries_them_offline() {
    prepare_browser_dir().await;
    let stack = stack().await;
    let http = &stack.edge.http;
    let (token, _, _) = sign_up(http, "docs@example.com").await;

    // Every (method, path) of the document, which the page must list.
    let document = http.get("/openapi.json", &[]).await.json();
    let mut expected = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            expected.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    assert!(expected.contains(&("GET".to_owned(), "/v1/races".to_owned())));
    assert!(expected.contains(&("GET".to_owned(), "/v1/me".to_owned())));

    let (ok, stdout, stderr) = node(
        "docs.mjs",
        &[
            &format!("http://{}", stack.edge.addr),
            &token,
            "GET /v1/me",
            "GET /v1/races",
        ],
        Duration::from_secs(120),
    )
    .await;
    assert!(ok, "docs.mjs failed:\n{stderr}\n{stdout}");
    let outcome: Json = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(outcome["ok"], true, "{outcome}");
    assert_eq!(outcome["status"], 200, "{outcome}");
    assert_eq!(outcome["consoleErrors"], Json::Array(vec![]), "{outcome}");
    assert_eq!(outcome["pageErrors"], Json::Array(vec![]), "{outcome}");
    assert_eq!(outcome["external"], Json::Array(vec![]), "{outcome}");

    let listed: BTreeSet<(String, String)> = outcome["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|operation| {
            (
                operation["method"].as_str().unwrap().to_owned(),
                operation["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(listed, expected, "{outcome}");

    // "Try it out" with the bearer token from "Authorize", and a public route.
    let me = &outcome["calls"]["GET /v1/me"];
    assert_eq!(me["status"], "200", "{outcome}");
    assert!(
        me["body"].as_str().unwrap().contains("docs@example.com"),
        "{outcome}"
    );
    let races = &outcome["calls"]["GET /v1/races"];
    assert_eq!(races["status"], "200", "{outcome}");
}
