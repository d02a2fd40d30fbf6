//! svc-assist's settings. Slack and the public URL use the names operators know
//! (`RUNMESH_SLACK_BOT_TOKEN`, `RUNMESH_SLACK_API_URL`, `RUNMESH_PUBLIC_BASE_URL`); the
//! notification tunables are `RUNMESH_NOTIFY_*` (durations in humantime form, e.g. `500ms`, `1m`).
//! The bot token is a secret: never logged, `Debug` shows only whether it is set.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::Env;
use runmesh_platform::config;
use serde::{Deserialize, Deserializer};

use crate::domain::RetrySchedule;

/// Prefix of every variable.
pub const ENV_PREFIX: &str = "RUNMESH_";

/// The variables (after the prefix) that are svc-assist's besides `NOTIFY_*`.
const SHARED: [&str; 3] = ["slack_bot_token", "slack_api_url", "public_base_url"];

/// A secret string; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

fn de_secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    let value = Option::<String>::deserialize(deserializer)?;
    Ok(value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(Secret))
}

/// Settings of the assist service (notifications).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct AssistConfig {
    /// The Slack bot token (`RUNMESH_SLACK_BOT_TOKEN`, scopes `im:write` and `chat:write`);
    /// unset turns Slack delivery off.
    #[serde(deserialize_with = "de_secret")]
    pub slack_bot_token: Option<Secret>,
    /// The Slack Web API base (`RUNMESH_SLACK_API_URL`, default `https://slack.com/api`).
    pub slack_api_url: String,
    /// Where the app is, for links back to it (`RUNMESH_PUBLIC_BASE_URL`); unset → no links.
    pub public_base_url: Option<String>,
    /// A directory of template overrides, `<ko|en>/<kind>.txt` (`RUNMESH_NOTIFY_TEMPLATES`).
    pub notify_templates: Option<PathBuf>,
    /// Slack messages per second for the whole workspace, per process
    /// (`RUNMESH_NOTIFY_WORKSPACE_RATE`, default 20).
    #[serde(deserialize_with = "config::positive_count")]
    pub notify_workspace_rate: u64,
    /// Least time between two messages to one DM channel (`RUNMESH_NOTIFY_CHANNEL_INTERVAL`,
    /// default and minimum 1s: Slack's limit).
    #[serde(deserialize_with = "config::positive_duration")]
    pub notify_channel_interval: Duration,
    /// Delay after the first failed try (`RUNMESH_NOTIFY_RETRY_MIN_DELAY`, default 10s).
    #[serde(deserialize_with = "config::positive_duration")]
    pub notify_retry_min_delay: Duration,
    /// Longest delay between tries (`RUNMESH_NOTIFY_RETRY_MAX_DELAY`, default 10m).
    #[serde(deserialize_with = "config::positive_duration")]
    pub notify_retry_max_delay: Duration,
    /// Most tries per message (`RUNMESH_NOTIFY_RETRY_ATTEMPTS`, default 8).
    #[serde(deserialize_with = "config::positive_count")]
    pub notify_retry_attempts: u64,
    /// No try later than this after the notification (`RUNMESH_NOTIFY_RETRY_WINDOW`, 30m).
    #[serde(deserialize_with = "config::positive_duration")]
    pub notify_retry_window: Duration,
    /// How often the delivery worker looks for due messages when not woken
    /// (`RUNMESH_NOTIFY_POLL_INTERVAL`, default 250ms).
    #[serde(deserialize_with = "config::positive_duration")]
    pub notify_poll_interval: Duration,
    /// How long one Slack call may take (`RUNMESH_NOTIFY_SLACK_TIMEOUT`, default 10s).
    #[serde(deserialize_with = "config::positive_duration")]
    pub notify_slack_timeout: Duration,
    /// A claimed message whose worker vanished for this long is settled: one that may have
    /// left becomes AMBIGUOUS (`RUNMESH_NOTIFY_LEASE`, default 60s; above the Slack timeout).
    #[serde(deserialize_with = "config::positive_duration")]
    pub notify_lease: Duration,
    /// Messages sent at once per process (`RUNMESH_NOTIFY_CONCURRENCY`, default 32).
    #[serde(deserialize_with = "config::positive_count")]
    pub notify_concurrency: u64,
    /// How often watched inboxes are read, per process (`RUNMESH_NOTIFY_WATCH_INTERVAL`,
    /// default 500ms).
    #[serde(deserialize_with = "config::positive_duration")]
    pub notify_watch_interval: Duration,
    /// How often digests go out (`RUNMESH_NOTIFY_DIGEST_INTERVAL`, default 1h).
    #[serde(deserialize_with = "config::positive_duration")]
    pub notify_digest_interval: Duration,
}

impl Default for AssistConfig {
    fn default() -> Self {
        Self {
            slack_bot_token: None,
            slack_api_url: "https://slack.com/api".to_owned(),
            public_base_url: None,
            notify_templates: None,
            notify_workspace_rate: 20,
            notify_channel_interval: Duration::from_secs(1),
            notify_retry_min_delay: Duration::from_secs(10),
            notify_retry_max_delay: Duration::from_secs(600),
            notify_retry_attempts: 8,
            notify_retry_window: Duration::from_secs(1800),
            notify_poll_interval: Duration::from_millis(250),
            notify_slack_timeout: Duration::from_secs(10),
            notify_lease: Duration::from_secs(60),
            notify_concurrency: 32,
            notify_watch_interval: Duration::from_millis(500),
            notify_digest_interval: Duration::from_secs(3600),
        }
    }
}

/// A bad value; `Display` is one line naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct AssistConfigError {
    pub variable: String,
    pub message: String,
}

impl AssistConfig {
    /// Reads the variables from the process environment.
    pub fn from_env() -> Result<Self, AssistConfigError> {
        Self::from_figment(
            Figment::new().merge(Env::prefixed(ENV_PREFIX).filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                key.starts_with("notify_") || SHARED.contains(&key.as_str())
            })),
        )
    }

    /// Reads the settings from `figment` (keys without the prefix, e.g. `slack_api_url`).
    pub fn from_figment(figment: Figment) -> Result<Self, AssistConfigError> {
        let config: Self = figment.extract().map_err(|err| {
            let (variable, message) = runmesh_platform::config::env_setting_error(ENV_PREFIX, &err);
            AssistConfigError { variable, message }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), AssistConfigError> {
        let refuse = |name: &str, message: &str| {
            Err(AssistConfigError {
                variable: format!("{ENV_PREFIX}{name}"),
                message: message.to_owned(),
            })
        };
        match url::Url::parse(&self.slack_api_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return refuse(
                    "SLACK_API_URL",
                    "must be an http(s) URL, e.g. https://slack.com/api",
                );
            }
        }
        if let Some(base) = &self.public_base_url {
            match url::Url::parse(base) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                _ => return refuse("PUBLIC_BASE_URL", "must be an http(s) URL"),
            }
        }
        if let Some(dir) = &self.notify_templates
            && !dir.is_dir()
        {
            return refuse("NOTIFY_TEMPLATES", "must be an existing directory");
        }
        if self.notify_channel_interval < Duration::from_secs(1) {
            return refuse(
                "NOTIFY_CHANNEL_INTERVAL",
                "must be at least 1s (Slack allows one message per second per channel)",
            );
        }
        if self.notify_retry_max_delay < self.notify_retry_min_delay {
            return refuse(
                "NOTIFY_RETRY_MAX_DELAY",
                "must not be below NOTIFY_RETRY_MIN_DELAY",
            );
        }
        if self.notify_lease <= self.notify_slack_timeout {
            return refuse("NOTIFY_LEASE", "must be longer than NOTIFY_SLACK_TIMEOUT");
        }
        Ok(())
    }

    /// The retry schedule of failed Slack sends.
    pub fn retry_schedule(&self) -> RetrySchedule {
        RetrySchedule {
            min_delay: self.notify_retry_min_delay,
            max_delay: self.notify_retry_max_delay,
            attempts: u32::try_from(self.notify_retry_attempts).unwrap_or(u32::MAX),
            window: self.notify_retry_window,
        }
    }

    /// The public base URL without a trailing slash.
    pub fn base_url(&self) -> Option<&str> {
        self.public_base_url
            .as_deref()
            .map(|url| url.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use figment::providers::Serialized;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<AssistConfig, AssistConfigError> {
        let mut figment = Figment::new();
        for (key, value) in pairs {
            figment = figment.merge(Serialized::default(key, value));
        }
        AssistConfig::from_figment(figment)
    }

    #[test]
    fn defaults_without_variables() {
        let config = load(&[]).unwrap();
        assert_eq!(config, AssistConfig::default());
        assert!(config.slack_bot_token.is_none());
    }

    #[test]
    fn bad_values_name_their_variable_and_the_token_is_never_shown() {
        let config = load(&[
            ("slack_bot_token", "xoxb-secret"),
            ("notify_retry_min_delay", "50ms"),
        ])
        .unwrap();
        assert_eq!(
            config.slack_bot_token.as_ref().unwrap().expose(),
            "xoxb-secret"
        );
        assert!(!format!("{config:?}").contains("xoxb-secret"));
        assert_eq!(config.notify_retry_min_delay, Duration::from_millis(50));
        for (key, value, variable) in [
            ("slack_api_url", "slack", "RUNMESH_SLACK_API_URL"),
            ("public_base_url", "ftp://x", "RUNMESH_PUBLIC_BASE_URL"),
            (
                "notify_workspace_rate",
                "0",
                "RUNMESH_NOTIFY_WORKSPACE_RATE",
            ),
            (
                "notify_channel_interval",
                "200ms",
                "RUNMESH_NOTIFY_CHANNEL_INTERVAL",
            ),
            ("notify_retry_window", "soon", "RUNMESH_NOTIFY_RETRY_WINDOW"),
            (
                "notify_templates",
                "/no/such/dir",
                "RUNMESH_NOTIFY_TEMPLATES",
            ),
        ] {
            assert_eq!(
                load(&[(key, value)]).unwrap_err().variable,
                variable,
                "{key}"
            );
        }
    }
}
