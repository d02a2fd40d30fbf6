//! A Slack-compatible Web API on a loopback port: `conversations.open` and `chat.postMessage`
//! with JSON or form bodies and Bearer auth, answers scripted per method (ok, `ok:false` codes,
//! 429 with `Retry-After`, 5xx, slow answers), and a log of every request with its arrival and
//! answer times.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "xoxb-test-token";

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    Ok,
    /// `{"ok": false, "error": code}` with HTTP 200.
    Error(&'static str),
    /// HTTP 429 with `Retry-After` seconds and `{"ok":false,"error":"ratelimited"}`.
    RateLimited(u64),
    /// That HTTP status with an HTML body.
    Status(u16),
    /// Wait this long, then answer ok.
    Slow(Duration),
}

#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub received: Instant,
    pub answered: Instant,
    /// The channel (postMessage) or users (open).
    pub target: String,
    pub text: String,
    pub blocks: Value,
    pub status: u16,
    pub ok: bool,
    pub form: bool,
}

#[derive(Default)]
struct Inner {
    scripts: std::collections::HashMap<String, VecDeque<Answer>>,
    /// Every postMessage before this instant answers 503.
    outage_until: Option<Instant>,
    log: Vec<Logged>,
    ts: u64,
}

#[derive(Clone)]
pub struct SlackServer {
    pub addr: SocketAddr,
    inner: Arc<parking_lot::Mutex<Inner>>,
    shutdown: CancellationToken,
}

impl Drop for SlackServer {
    fn drop(&mut self) {
        if Arc::strong_count(&self.inner) <= 2 {
            self.shutdown.cancel();
        }
    }
}

impl SlackServer {
    pub async fn start() -> Self {
        let inner = Arc::new(parking_lot::Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/api/{method}", post(handle))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .ok();
        });
        Self {
            addr,
            inner,
            shutdown,
        }
    }

    /// `RUNMESH_SLACK_API_URL` for this server.
    pub fn url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// Answers the next calls of `method` (`chat.postMessage`, `conversations.open`) so.
    pub fn script(&self, method: &str, answers: impl IntoIterator<Item = Answer>) {
        self.inner
            .lock()
            .scripts
            .entry(method.to_owned())
            .or_default()
            .extend(answers);
    }

    /// Every `chat.postMessage` answers 503 for `duration` from now.
    pub fn outage(&self, duration: Duration) {
        self.inner.lock().outage_until = Some(Instant::now() + duration);
    }

    pub fn log(&self) -> Vec<Logged> {
        self.inner.lock().log.clone()
    }

    pub fn posts(&self) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|l| l.method == "chat.postMessage")
            .collect()
    }

    /// Posts Slack accepted.
    pub fn delivered(&self) -> Vec<Logged> {
        self.posts().into_iter().filter(|l| l.ok).collect()
    }
}

fn parse_body(headers: &HeaderMap, body: &Bytes) -> (Value, bool) {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        let mut map = serde_json::Map::new();
        for (key, value) in pairs {
            map.insert(key, Value::String(value));
        }
        (Value::Object(map), true)
    } else {
        (serde_json::from_slice(body).unwrap_or(Value::Null), false)
    }
}

async fn handle(
    State(inner): State<Arc<parking_lot::Mutex<Inner>>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Instant::now();
    let (body, form) = parse_body(&headers, &body);
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&*format!("Bearer {TOKEN}"));
    let answer = {
        let mut inner = inner.lock();
        let outage = method == "chat.postMessage"
            && inner.outage_until.is_some_and(|until| received < until);
        if !authorized {
            Answer::Error("invalid_auth")
        } else if outage {
            Answer::Status(503)
        } else {
            inner
                .scripts
                .get_mut(&method)
                .and_then(VecDeque::pop_front)
                .unwrap_or(Answer::Ok)
        }
    };
    let target = match method.as_str() {
        "conversations.open" => body["users"].as_str().unwrap_or_default().to_owned(),
        _ => body["channel"].as_str().unwrap_or_default().to_owned(),
    };
    // Logged on arrival (a slow answer's request is seen at once), completed when answered.
    let index = {
        let mut inner = inner.lock();
        inner.log.push(Logged {
            method: method.clone(),
            received,
            answered: received,
            target: target.clone(),
            text: body["text"].as_str().unwrap_or_default().to_owned(),
            blocks: body["blocks"].clone(),
            status: 0,
            ok: false,
            form,
        });
        inner.log.len() - 1
    };
    if let Answer::Slow(delay) = answer {
        tokio::time::sleep(delay).await;
    }
    let (status, payload, retry_after) = {
        let mut inner = inner.lock();
        inner.ts += 1;
        let ts = format!("1700000000.{:06}", inner.ts);
        match answer {
            Answer::Ok | Answer::Slow(_) => {
                let payload = match method.as_str() {
                    "conversations.open" => {
                        json!({"ok": true, "channel": {"id": format!("D{}", target)}})
                    }
                    _ => json!({"ok": true, "channel": target, "ts": ts}),
                };
                (200, payload, None)
            }
            Answer::Error(code) => (200, json!({"ok": false, "error": code}), None),
            Answer::RateLimited(seconds) => (
                429,
                json!({"ok": false, "error": "ratelimited"}),
                Some(seconds),
            ),
            Answer::Status(code) => (code, Value::Null, None),
        }
    };
    {
        let mut inner = inner.lock();
        let entry = &mut inner.log[index];
        entry.answered = Instant::now();
        entry.status = status;
        entry.ok = status == 200 && payload["ok"] == true;
    }
    let status = StatusCode::from_u16(status).unwrap();
    let mut response = if payload.is_null() {
        (status, "<html>upstream unavailable</html>").into_response()
    } else {
        (status, axum::Json(payload)).into_response()
    };
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.to_string().parse().unwrap());
    }
    response
}
