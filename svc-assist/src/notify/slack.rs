//! The Slack Web API over reqwest (rustls): `conversations.open` and `chat.postMessage` with the
//! bot token as a Bearer header. What an answer means is `domain::slack::classify`'s; this only
//! tells a request that never left (safe to retry) from one whose answer was lost (ambiguous).

use std::time::Duration;

use serde_json::Value;

use crate::config::Secret;
use crate::domain::slack::{Key, Outcome, classify, error_label};

/// A call that got no classifiable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The connection failed before the request was sent: nothing reached Slack.
    NotSent(String),
    /// The request may have reached Slack but its answer was lost (timeout, reset).
    Lost(String),
}

/// A Slack Web API client for one workspace.
#[derive(Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl std::fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl SlackClient {
    /// A client of the API at `base` (e.g. `https://slack.com/api`) with `token`, each call
    /// bounded by `timeout`.
    pub fn new(base: &str, token: Secret, timeout: Duration) -> Result<Self, reqwest::Error> {
        // reqwest is built without a default crypto provider; ring is the workspace's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(64)
            .user_agent("runmesh-assist")
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Opens (or finds) the DM with `member_id`: `Outcome::Ok(channel id)`.
    pub async fn open_conversation(&self, member_id: &str) -> Result<Outcome, CallError> {
        let request = self
            .http
            .post(format!("{}/conversations.open", self.base))
            .bearer_auth(self.token.expose())
            .form(&[("users", member_id), ("return_im", "true")]);
        self.call(request, Key::ChannelId).await
    }

    /// Posts `body` (a `chat.postMessage` JSON body): `Outcome::Ok(ts)`.
    pub async fn post_message(&self, body: &Value) -> Result<Outcome, CallError> {
        let request = self
            .http
            .post(format!("{}/chat.postMessage", self.base))
            .bearer_auth(self.token.expose())
            .json(body);
        self.call(request, Key::Ts).await
    }

    async fn call(&self, request: reqwest::RequestBuilder, key: Key) -> Result<Outcome, CallError> {
        let response = request.send().await.map_err(|error| {
            if error.is_connect() || error.is_builder() {
                crate::metrics::slack_error("connection_failed");
                CallError::NotSent(describe(&error))
            } else {
                crate::metrics::slack_error("answer_lost");
                CallError::Lost(describe(&error))
            }
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.map_err(|error| {
            crate::metrics::slack_error("answer_lost");
            CallError::Lost(describe(&error))
        })?;
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        if let Some(error) = error_label(status, body.as_ref()) {
            crate::metrics::slack_error(error);
        }
        Ok(classify(status, retry_after.as_deref(), body.as_ref(), key))
    }
}

/// The error without the URL (which holds no secret, but is noise) and never the token.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "answer cut off"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    if let Some(cause) = source.take() {
        text.push_str(": ");
        text.push_str(&cause.to_string());
    }
    text
}
