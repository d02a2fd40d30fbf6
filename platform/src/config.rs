//! Process settings from `RUNMESH_*` environment variables, optionally layered over a TOML file
//! named by `RUNMESH_CONFIG` (the environment wins). Every value is parsed and checked at load:
//! a bad one yields a [`ConfigError`] whose `Display` is one line naming the variable.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::Source;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::auth::MeshKey;

/// Prefix of every runmesh environment variable.
pub const ENV_PREFIX: &str = "RUNMESH_";
/// Variable naming the optional TOML file.
pub const CONFIG_FILE_VAR: &str = "RUNMESH_CONFIG";

/// Typed, validated settings shared by every runmesh process.
///
/// Field names are also the TOML keys; the environment variable is `RUNMESH_` + the upper-cased
/// name (except `log_filter`, which is `RUNMESH_LOG` / `log`).
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// gRPC listener (`RUNMESH_GRPC_ADDR`).
    #[serde(deserialize_with = "de_grpc_addr")]
    pub grpc_addr: SocketAddr,
    /// The edge's HTTP listener (`RUNMESH_HTTP_ADDR`).
    #[serde(deserialize_with = "de_http_addr")]
    pub http_addr: SocketAddr,
    /// Prometheus `/metrics` listener (`RUNMESH_METRICS_ADDR`).
    #[serde(deserialize_with = "de_metrics_addr")]
    pub metrics_addr: SocketAddr,
    /// Where embedded mode keeps its SQLite files (`RUNMESH_DATA_DIR`).
    #[serde(deserialize_with = "de_data_dir")]
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite:…`; `None` means embedded SQLite under `data_dir`.
    /// May hold a password: never log it, use [`redact_url`] or `Settings`' `Debug`.
    #[serde(deserialize_with = "de_database_url")]
    pub database_url: Option<String>,
    /// `redis://…` or `rediss://…`; `None` means the in-memory cache.
    #[serde(deserialize_with = "de_redis_url")]
    pub redis_url: Option<String>,
    /// svc-user's gRPC address for services running without it (`RUNMESH_PEER_USER`, e.g.
    /// `http://user:50051`): where they fetch the token-signing keys (JWKS).
    #[serde(deserialize_with = "de_peer_url")]
    pub peer_user: Option<String>,
    /// The mesh secret every runmesh component of a deployment shares
    /// (`RUNMESH_SERVICE_SECRET`, at least 32 bytes): it signs and checks the service tokens of
    /// internal RPCs. `runmesh serve` refuses to start without it; `runmesh up` uses a random
    /// key per process when it is unset. Never logged.
    #[serde(deserialize_with = "de_service_secret")]
    pub service_secret: Option<MeshKey>,
    /// Comma-separated `host:port` list, normalised (`a:9092,b:9092`); `None` means the
    /// in-process event bus.
    #[serde(deserialize_with = "de_kafka_brokers")]
    pub kafka_brokers: Option<String>,
    /// Log output format (`RUNMESH_LOG_FORMAT`).
    #[serde(deserialize_with = "de_log_format")]
    pub log_format: LogFormat,
    /// `tracing` filter directives, e.g. `info,runmesh_platform=debug` (`RUNMESH_LOG`).
    #[serde(rename = "log", deserialize_with = "de_log_filter")]
    pub log_filter: String,
    /// How long in-flight calls may take to finish after shutdown starts (`RUNMESH_SHUTDOWN_GRACE`).
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_grace: Duration,
    /// How long health reports NOT_SERVING before the listener closes, so load balancers
    /// notice first (`RUNMESH_SHUTDOWN_DELAY`).
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_delay: Duration,
    /// Expected `iss` of access tokens (`RUNMESH_JWT_ISSUER`).
    #[serde(deserialize_with = "de_non_empty")]
    pub jwt_issuer: String,
    /// Expected `aud` of access tokens (`RUNMESH_JWT_AUDIENCE`).
    #[serde(deserialize_with = "de_non_empty")]
    pub jwt_audience: String,
    /// Largest gRPC message accepted or sent, in bytes (`RUNMESH_GRPC_MAX_MESSAGE_BYTES`).
    #[serde(deserialize_with = "de_byte_count")]
    pub grpc_max_message_bytes: usize,
    /// Connections are closed gracefully after this long so clients re-resolve and rebalance
    /// (`RUNMESH_GRPC_MAX_CONNECTION_AGE`).
    #[serde(deserialize_with = "de_positive_duration")]
    pub grpc_max_connection_age: Duration,
    /// Interval of HTTP/2 keepalive pings (`RUNMESH_GRPC_KEEPALIVE_INTERVAL`).
    #[serde(deserialize_with = "de_positive_duration")]
    pub grpc_keepalive_interval: Duration,
    /// A connection whose ping is not answered within this is closed
    /// (`RUNMESH_GRPC_KEEPALIVE_TIMEOUT`).
    #[serde(deserialize_with = "de_positive_duration")]
    pub grpc_keepalive_timeout: Duration,
    /// Deadline of calls that carry none, and the cap on those that do
    /// (`RUNMESH_GRPC_REQUEST_TIMEOUT`).
    #[serde(deserialize_with = "de_positive_duration")]
    pub grpc_request_timeout: Duration,
    /// Embedded mode: a consumer group not seen for this long is forgotten, and events no group
    /// reads are removed after this long (`RUNMESH_EVENT_LOG_RETENTION`).
    #[serde(deserialize_with = "de_positive_duration")]
    pub event_log_retention: Duration,
    /// Embedded mode: past this many bytes of retained events in one service, a warning is
    /// logged (`RUNMESH_EVENT_LOG_WARN_BYTES`).
    #[serde(deserialize_with = "de_byte_count")]
    pub event_log_warn_bytes: usize,
    /// Runs the delivery audit: a consumer group over every service's events in this process
    /// that records each event it handles, and how often, in its own database `audit`
    /// (`RUNMESH_EVENT_AUDIT`).
    pub event_audit: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            redis_url: None,
            peer_user: None,
            service_secret: None,
            kafka_brokers: None,
            log_format: LogFormat::Auto,
            log_filter: "info".to_owned(),
            shutdown_grace: Duration::from_secs(20),
            shutdown_delay: Duration::from_secs(2),
            jwt_issuer: "runmesh".to_owned(),
            jwt_audience: "runmesh".to_owned(),
            grpc_max_message_bytes: 4 * 1024 * 1024,
            grpc_max_connection_age: Duration::from_secs(30 * 60),
            grpc_keepalive_interval: Duration::from_secs(60),
            grpc_keepalive_timeout: Duration::from_secs(20),
            grpc_request_timeout: Duration::from_secs(30),
            event_log_retention: Duration::from_secs(7 * 24 * 60 * 60),
            event_log_warn_bytes: 1024 * 1024 * 1024,
            event_audit: false,
        }
    }
}

impl Settings {
    /// Loads the settings from the process environment and the file named by `RUNMESH_CONFIG`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let file = std::env::var_os(CONFIG_FILE_VAR).map(PathBuf::from);
        Self::load(file.as_deref())
    }

    /// Loads the settings from `file` (when given) overlaid by the `RUNMESH_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if let Err(error) = std::fs::metadata(path) {
                return Err(ConfigError::new(
                    CONFIG_FILE_VAR,
                    format!("cannot read {}: {error}", path.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment
            .merge(Env::prefixed(ENV_PREFIX).ignore(&["config"]))
            .extract()
            .map_err(ConfigError::from_figment)
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let duration = |d: &Duration| humantime::format_duration(*d).to_string();
        f.debug_struct("Settings")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field("metrics_addr", &self.metrics_addr)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("peer_user", &self.peer_user)
            .field(
                "service_secret",
                &self.service_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("kafka_brokers", &self.kafka_brokers)
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("shutdown_grace", &duration(&self.shutdown_grace))
            .field("shutdown_delay", &duration(&self.shutdown_delay))
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("grpc_max_message_bytes", &self.grpc_max_message_bytes)
            .field(
                "grpc_max_connection_age",
                &duration(&self.grpc_max_connection_age),
            )
            .field(
                "grpc_keepalive_interval",
                &duration(&self.grpc_keepalive_interval),
            )
            .field(
                "grpc_keepalive_timeout",
                &duration(&self.grpc_keepalive_timeout),
            )
            .field(
                "grpc_request_timeout",
                &duration(&self.grpc_request_timeout),
            )
            .field("event_log_retention", &duration(&self.event_log_retention))
            .field("event_log_warn_bytes", &self.event_log_warn_bytes)
            .field("event_audit", &self.event_audit)
            .finish()
    }
}

/// How logs are written to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (Loki-ready).
    Json,
    /// Human-readable, coloured.
    Pretty,
    /// JSON unless stderr is a terminal.
    Auto,
}

/// A setting that failed to load. `Display` is one line: `RUNMESH_X: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    variable: String,
    message: String,
}

impl ConfigError {
    fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            message: message.into(),
        }
    }

    /// The variable (or `key in file`) that holds the bad value.
    pub fn variable(&self) -> &str {
        &self.variable
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn from_figment(error: figment::Error) -> Self {
        let key = error.path.join(".");
        let from_env = error
            .metadata
            .as_ref()
            .is_some_and(|metadata| metadata.name.contains("environment"));
        let file = error
            .metadata
            .as_ref()
            .and_then(|metadata| match &metadata.source {
                Some(Source::File(path)) => Some(path.display().to_string()),
                _ => None,
            });
        let variable = match (from_env, file) {
            (true, _) => format!("{ENV_PREFIX}{}", error.path.join("_").to_ascii_uppercase()),
            (false, Some(file)) if key.is_empty() => format!("{CONFIG_FILE_VAR} ({file})"),
            (false, Some(file)) => format!("{key} in {file}"),
            (false, None) => key,
        };
        // Parse errors of the file span several lines (a source excerpt); the first says it all.
        let message = error.kind.to_string();
        let message = message.lines().next().unwrap_or_default().to_owned();
        Self::new(variable, message)
    }
}

/// What a service reports when `figment` refused a setting read from `<prefix>…` variables: the
/// variable's name and the first line of the reason (parse errors span several lines).
pub fn env_setting_error(prefix: &str, error: &figment::Error) -> (String, String) {
    let variable = format!("{prefix}{}", error.path.join("_").to_ascii_uppercase());
    let message = error.kind.to_string();
    (
        variable,
        message.lines().next().unwrap_or_default().to_owned(),
    )
}

/// `url` with any password replaced by `***`, safe for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            if parsed.set_password(Some("***")).is_ok() {
                parsed.to_string()
            } else {
                redacted_scheme_only(url)
            }
        }
        Ok(_) => url.to_owned(),
        Err(_) => redacted_scheme_only(url),
    }
}

fn redacted_scheme_only(url: &str) -> String {
    match url.split_once(':') {
        Some((scheme, _)) => format!("{scheme}:<redacted>"),
        None => "<redacted>".to_owned(),
    }
}

/// A scalar setting as text, whatever type the provider inferred (`RUNMESH_X=20` is an integer
/// to figment, `"20s"` a string).
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
        Ok(value.to_owned())
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<String, E> {
        Ok(value)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<String, E> {
        Ok(value.to_string())
    }
}

/// Text that may also be written as a TOML array (broker lists).
struct TextList(String);

impl<'de> Deserialize<'de> for TextList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = String;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a comma-separated string or a list of strings")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
                Ok(value.to_owned())
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
                let mut items = Vec::new();
                while let Some(Text(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(items.join(","))
            }
        }
        deserializer.deserialize_any(ListVisitor).map(TextList)
    }
}

fn parsed<'de, D, T>(deserializer: D, parse: fn(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let Text(text) = Text::deserialize(deserializer)?;
    parse(text.trim()).map_err(de::Error::custom)
}

/// Optional settings treat an empty value (`RUNMESH_REDIS_URL=`) as unset.
fn parsed_optional<'de, D, T>(
    deserializer: D,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
{
    let Text(text) = Text::deserialize(deserializer)?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    parse(text).map(Some).map_err(de::Error::custom)
}

fn socket_addr(text: &str, example: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("invalid socket address {text:?} (expected host:port, e.g. {example})")
    })
}

fn de_grpc_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    parsed(deserializer, |text| socket_addr(text, "127.0.0.1:50051"))
}

fn de_http_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    parsed(deserializer, |text| socket_addr(text, "127.0.0.1:8080"))
}

fn de_metrics_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    parsed(deserializer, |text| socket_addr(text, "127.0.0.1:9464"))
}

fn de_data_dir<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
    parsed(deserializer, |text| {
        if text.is_empty() {
            Err("must not be empty (expected a directory, e.g. ./data)".to_owned())
        } else {
            Ok(PathBuf::from(text))
        }
    })
}

fn de_database_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    parsed_optional(deserializer, |url| {
        const EXPECTED: &str = "expected postgres://user@host/db or sqlite://path";
        if url.starts_with("sqlite:") {
            return Ok(url.to_owned());
        }
        match url_scheme(url) {
            Some("postgres" | "postgresql") => Ok(url.to_owned()),
            Some(other) => Err(format!(
                "unsupported database URL scheme {other:?} ({EXPECTED})"
            )),
            None => Err(format!("not a URL ({EXPECTED})")),
        }
    })
}

fn de_redis_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    parsed_optional(deserializer, |url| {
        const EXPECTED: &str = "expected redis://host:6379 or rediss://host:6380";
        match url_scheme(url) {
            Some("redis" | "rediss") => Ok(url.to_owned()),
            Some(other) => Err(format!(
                "unsupported Redis URL scheme {other:?} ({EXPECTED})"
            )),
            None => Err(format!("not a URL ({EXPECTED})")),
        }
    })
}

fn de_peer_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    parsed_optional(deserializer, |url| {
        const EXPECTED: &str = "expected http://host:port or https://host:port";
        match url_scheme(url) {
            Some("http" | "https") => Ok(url.to_owned()),
            Some(other) => Err(format!(
                "unsupported peer URL scheme {other:?} ({EXPECTED})"
            )),
            None => Err(format!("not a URL ({EXPECTED})")),
        }
    })
}

fn de_service_secret<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<MeshKey>, D::Error> {
    // Never echo the value: it is a secret.
    parsed_optional(deserializer, |secret| {
        MeshKey::from_secret(secret.as_bytes()).map_err(|error| error.to_string())
    })
}

impl Settings {
    /// The mesh key: `RUNMESH_SERVICE_SECRET`, or this process's random key when it is unset
    /// (every component in one process, as in `runmesh up`).
    pub fn mesh_key(&self) -> MeshKey {
        self.service_secret.clone().unwrap_or_else(MeshKey::process)
    }
}

/// The scheme of `scheme://…`, without echoing the rest (it may hold a password).
fn url_scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once("://")?;
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn de_kafka_brokers<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let TextList(text) = TextList::deserialize(deserializer)?;
    let list = text.trim();
    if list.is_empty() {
        return Ok(None);
    }
    let brokers: Vec<&str> = list.split(',').map(str::trim).collect();
    for broker in &brokers {
        let valid = broker.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port > 0)
        });
        if !valid {
            return Err(de::Error::custom(format!(
                "invalid broker {broker:?} (expected a comma-separated host:port list, e.g. kafka-0:9092,kafka-1:9092)"
            )));
        }
    }
    Ok(Some(brokers.join(",")))
}

fn de_log_format<'de, D: Deserializer<'de>>(deserializer: D) -> Result<LogFormat, D::Error> {
    parsed(deserializer, |text| {
        match text.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            "auto" => Ok(LogFormat::Auto),
            _ => Err(format!(
                "unknown log format {text:?} (expected json, pretty or auto)"
            )),
        }
    })
}

fn de_log_filter<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    parsed(deserializer, |text| {
        tracing_subscriber::EnvFilter::builder()
            .parse(text)
            .map(|_| text.to_owned())
            .map_err(|error| {
                format!("invalid log filter {text:?}: {error} (expected e.g. info or info,runmesh_platform=debug)")
            })
    })
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text)
        .map_err(|_| format!("invalid duration {text:?} (expected e.g. 20s, 500ms or 1m)"))
}

fn de_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    parsed(deserializer, parse_duration)
}

/// `20s`, `500ms`, `1m` or bare seconds, longer than zero; the error is the message for the
/// one-line configuration error.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        Err(format!("duration {text:?} must be greater than zero"))
    } else {
        Ok(duration)
    }
}

fn de_positive_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    parsed(deserializer, parse_positive_duration)
}

/// For services' own settings: a duration given as `500ms`, `15m`, `30d` or a plain number of
/// seconds, longer than zero (`#[serde(deserialize_with = "positive_duration")]`).
pub fn positive_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    let duration = match Raw::deserialize(deserializer)? {
        Raw::Seconds(seconds) => Duration::from_secs(seconds),
        Raw::Text(text) => humantime::parse_duration(text.trim()).map_err(|err| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration like 500ms, 15m or 30d: {err}"
            ))
        })?,
    };
    if duration.is_zero() {
        return Err(serde::de::Error::custom("must be longer than zero"));
    }
    Ok(duration)
}

/// For services' own settings: a whole number of at least 1.
pub fn positive_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let count = u64::deserialize(deserializer)?;
    if count == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(count)
}

fn de_byte_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    parsed(deserializer, |text| match text.parse::<usize>() {
        Ok(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(format!(
            "invalid byte count {text:?} (expected a positive integer, e.g. 4194304)"
        )),
    })
}

fn de_non_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    parsed(deserializer, |text| {
        if text.is_empty() {
            Err("must not be empty".to_owned())
        } else {
            Ok(text.to_owned())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/user"),
            "postgres://app:***@db:5432/user"
        );
        assert_eq!(
            redact_url("redis://:s3cret@cache:6379"),
            "redis://:***@cache:6379"
        );
        assert_eq!(
            redact_url("sqlite://./data/user.db?mode=rwc"),
            "sqlite://./data/user.db?mode=rwc"
        );
    }

    #[test]
    fn url_scheme_never_includes_the_rest() {
        assert_eq!(url_scheme("mysql://root:pw@db/x"), Some("mysql"));
        assert_eq!(url_scheme("just text"), None);
    }
}
