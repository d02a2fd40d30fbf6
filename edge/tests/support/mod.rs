//! Shared by the edge's tests: an HTTP client (HTTP/1.1 and h2c), the edge on a free port, and
//! svc-user run by the platform runtime as `runmesh up` runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod echo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use runmesh_edge::{Edge, EdgeConfig, UpstreamConfig};
use runmesh_platform::config::Settings;
use runmesh_platform::service::{Listening, Service};
use runmesh_svc_user::{UserConfig, UserService};
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

/// A password no list knows.
pub const PASSWORD: &str = "Tempo run at dawn, 42!";

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "{} is not JSON ({error}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The `ErrorInfo` of a `google.rpc.Status` body.
    pub fn error_info(&self) -> Json {
        detail(&self.json(), "google.rpc.ErrorInfo")
    }
}

/// The detail of `kind` in a `google.rpc.Status` JSON object.
pub fn detail(status: &Json, kind: &str) -> Json {
    status["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["@type"] == format!("type.googleapis.com/{kind}"))
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} in {status}"))
}

/// Plain HTTP to the edge, over HTTP/1.1 or (prior-knowledge) HTTP/2.
#[derive(Clone)]
pub struct HttpClient {
    base: String,
    http1: Client<HttpConnector, Full<Bytes>>,
    http2: Client<HttpConnector, Full<Bytes>>,
}

impl HttpClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            http1: Client::builder(TokioExecutor::new()).build_http(),
            http2: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
        }
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, headers, None).await
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &Json) -> Reply {
        self.send(Method::POST, path, headers, Some(body.to_string().into()))
            .await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Reply {
        self.send_over(false, method, path, headers, body).await
    }

    pub async fn send_over(
        &self,
        http2: bool,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Reply {
        let uri: Uri = format!("{}{path}", self.base).parse().unwrap();
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let has_content_type = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !has_content_type {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(Full::new(body.unwrap_or_default())).unwrap();
        let client = if http2 { &self.http2 } else { &self.http1 };
        let response = client.request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// A running edge, stopped when dropped.
pub struct RunningEdge {
    pub addr: SocketAddr,
    pub http: HttpClient,
    pub shutdown: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for RunningEdge {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `config` with a free port, quick shutdown, and the given upstream.
pub fn edge_config(upstream: SocketAddr) -> EdgeConfig {
    let mut config = EdgeConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        format!("http://{upstream}").parse().unwrap(),
    );
    config.shutdown_delay = Duration::from_millis(300);
    config.shutdown_grace = Duration::from_secs(5);
    config
}

pub async fn start_edge(config: EdgeConfig) -> RunningEdge {
    let shutdown = CancellationToken::new();
    let bound = Edge::bind(config, shutdown.clone()).await.unwrap();
    let addr = bound.local_addr();
    let task = tokio::spawn(async move { bound.serve().await.unwrap() });
    RunningEdge {
        addr,
        http: HttpClient::new(addr),
        shutdown,
        task: Some(task),
    }
}

/// svc-user in the platform runtime, on SQLite under a temporary directory (as `runmesh up`).
pub struct RunningUser {
    pub grpc: SocketAddr,
    pub data_dir: PathBuf,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for RunningUser {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Low sign-in limits so a handful of attempts reaches them.
pub fn user_config() -> UserConfig {
    UserConfig {
        sign_in_failures_per_account: 3,
        sign_in_failures_per_client: 20,
        sign_in_failure_window: Duration::from_secs(60),
        password_hash_concurrency: 2,
        ..UserConfig::default()
    }
}

pub async fn start_user() -> RunningUser {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().to_path_buf(),
        shutdown_delay: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(5),
        // Access logs for every request would drown the test output and the benchmark.
        log_filter: std::env::var("RUNMESH_LOG").unwrap_or_else(|_| "warn".to_owned()),
        ..Settings::default()
    };
    let services: Vec<Arc<dyn Service>> = vec![Arc::new(UserService::new(user_config()))];
    let shutdown = CancellationToken::new();
    let (ready, listening) = tokio::sync::oneshot::channel::<Listening>();
    let data_dir = dir.path().to_path_buf();
    tokio::spawn(runmesh_platform::service::run(
        settings,
        services,
        "runmesh-edge-test",
        None,
        shutdown.clone(),
        Some(ready),
    ));
    let listening = listening.await.expect("svc-user did not start");
    RunningUser {
        grpc: listening.grpc,
        data_dir,
        shutdown,
        _dir: dir,
    }
}

/// svc-user and an edge in front of it, exposing svc-user's services only.
pub async fn user_and_edge(adjust: impl FnOnce(&mut EdgeConfig)) -> (RunningUser, RunningEdge) {
    let user = start_user().await;
    let mut config = edge_config(user.grpc);
    let upstream: Uri = format!("http://{}", user.grpc).parse().unwrap();
    config.upstreams = UpstreamConfig {
        default: None,
        services: [
            "runmesh.user.v1.UserService",
            "runmesh.user.v1.UserInternalService",
        ]
        .into_iter()
        .map(|service| (service.to_owned(), upstream.clone()))
        .collect(),
    };
    adjust(&mut config);
    let edge = start_edge(config).await;
    wait_ready(&edge.http).await;
    (user, edge)
}

/// Waits until `/readyz` says SERVING (svc-user probes its database first).
pub async fn wait_ready(http: &HttpClient) {
    for _ in 0..150 {
        if http.get("/readyz", &[]).await.status == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the edge never became ready: {:?}",
        http.get("/readyz", &[]).await
    );
}

/// Signs a new account up through the edge; returns (access token, refresh token, user id).
pub async fn sign_up(http: &HttpClient, email: &str) -> (String, String, String) {
    let reply = http
        .post(
            "/v1/auth/sign-up",
            &[],
            &serde_json::json!({"email": email, "password": PASSWORD, "displayName": "Runner"}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    (
        json["tokens"]["accessToken"].as_str().unwrap().to_owned(),
        json["tokens"]["refreshToken"].as_str().unwrap().to_owned(),
        json["user"]["id"].as_str().unwrap().to_owned(),
    )
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A gRPC-web answer: the HTTP reply, its messages and its trailers (from the trailer frame, or
/// from the headers of a trailers-only answer).
#[derive(Debug)]
pub struct GrpcWebReply {
    pub reply: Reply,
    pub messages: Vec<Vec<u8>>,
    pub trailers: std::collections::BTreeMap<String, String>,
}

impl GrpcWebReply {
    pub fn grpc_status(&self) -> Option<i32> {
        self.trailers
            .get("grpc-status")
            .and_then(|s| s.parse().ok())
    }
}

/// Calls `path` with one message over gRPC-web, binary (`application/grpc-web+proto`) or text
/// (`application/grpc-web-text`), as a browser would.
pub async fn grpc_web(
    http: &HttpClient,
    http2: bool,
    text: bool,
    path: &str,
    message: &[u8],
    headers: &[(&str, &str)],
) -> GrpcWebReply {
    use base64::Engine as _;
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(message);
    let (content_type, body) = if text {
        (
            "application/grpc-web-text",
            Bytes::from(base64::engine::general_purpose::STANDARD.encode(&frame)),
        )
    } else {
        ("application/grpc-web+proto", Bytes::from(frame))
    };
    let mut all_headers = vec![
        ("content-type", content_type),
        ("accept", content_type),
        ("x-grpc-web", "1"),
    ];
    all_headers.extend_from_slice(headers);
    let reply = http
        .send_over(http2, Method::POST, path, &all_headers, Some(body))
        .await;
    let raw = if text {
        // Each chunk is padded on its own: decode four characters at a time.
        let text = reply
            .body
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect::<Vec<_>>();
        text.chunks(4)
            .flat_map(|quad| {
                base64::engine::general_purpose::STANDARD
                    .decode(quad)
                    .unwrap()
            })
            .collect::<Vec<u8>>()
    } else {
        reply.body.to_vec()
    };
    let mut messages = Vec::new();
    let mut trailers = std::collections::BTreeMap::new();
    for (name, value) in &reply.headers {
        if name.as_str().starts_with("grpc-") {
            trailers.insert(
                name.to_string(),
                value.to_str().unwrap_or_default().to_owned(),
            );
        }
    }
    let mut rest = raw.as_slice();
    while rest.len() >= 5 {
        let flag = rest[0];
        let length = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        let payload = &rest[5..5 + length];
        if flag & 0x80 == 0 {
            messages.push(payload.to_vec());
        } else {
            for line in String::from_utf8_lossy(payload).split("\r\n") {
                if let Some((name, value)) = line.split_once(':') {
                    trailers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                }
            }
        }
        rest = &rest[5 + length..];
    }
    GrpcWebReply {
        reply,
        messages,
        trailers,
    }
}

/// `edge/tests/browser`: the npm side of the tests.
pub fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Installs what the npm side needs when missing, and generates the browser client.
pub async fn prepare_browser_dir() {
    let output = tokio::process::Command::new("bash")
        .arg(browser_dir().join("setup.sh"))
        .output()
        .await
        .expect("running tests/browser/setup.sh");
    assert!(
        output.status.success(),
        "tests/browser/setup.sh failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `node script args…` in the browser dir; (success, stdout, stderr).
pub async fn node(script: &str, args: &[&str], limit: Duration) -> (bool, String, String) {
    let run = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(browser_dir())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(limit, run)
        .await
        .unwrap_or_else(|_| panic!("node {script} took longer than {limit:?}"))
        .expect("running node");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
