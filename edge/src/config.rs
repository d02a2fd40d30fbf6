//! The edge's settings: the platform's [`Settings`] (listen address, Redis, shutdown timings) plus
//! its own `RUNMESH_EDGE_*` and `RUNMESH_CORS_ORIGINS` variables, read from the same environment
//! and optional `RUNMESH_CONFIG` file. A bad value is an [`EdgeConfigError`]: one line naming the
//! variable.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use http::{HeaderValue, Uri};
use runmesh_platform::auth::MeshKey;
use runmesh_platform::config::{CONFIG_FILE_VAR, ENV_PREFIX, Settings, parse_positive_duration};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

pub const UPSTREAM_VAR: &str = "RUNMESH_EDGE_UPSTREAM";
pub const UPSTREAMS_VAR: &str = "RUNMESH_EDGE_UPSTREAMS";
pub const CORS_ORIGINS_VAR: &str = "RUNMESH_CORS_ORIGINS";
pub const MAX_BODY_BYTES_VAR: &str = "RUNMESH_EDGE_MAX_BODY_BYTES";
pub const MAX_UPLOAD_BYTES_VAR: &str = "RUNMESH_EDGE_MAX_UPLOAD_BYTES";
pub const REQUEST_TIMEOUT_VAR: &str = "RUNMESH_EDGE_REQUEST_TIMEOUT";
pub const TIMEOUTS_VAR: &str = "RUNMESH_EDGE_TIMEOUTS";
pub const RATE_LIMIT_VAR: &str = "RUNMESH_EDGE_RATE_LIMIT";
pub const TRUSTED_PROXIES_VAR: &str = "RUNMESH_EDGE_TRUSTED_PROXIES";
pub const TLS_CERT_VAR: &str = "RUNMESH_EDGE_TLS_CERT";
pub const TLS_KEY_VAR: &str = "RUNMESH_EDGE_TLS_KEY";

const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
const DEFAULT_MAX_UPLOAD_BYTES: u64 = 2 * 1024 * 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    requests: 1200,
    window: Duration::from_secs(60),
};

/// Everything [`crate::Edge::bind`] needs.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    /// The HTTP listener (`RUNMESH_HTTP_ADDR`); port 0 picks a free one.
    pub http_addr: SocketAddr,
    /// Where each gRPC service is served.
    pub upstreams: UpstreamConfig,
    /// Origins allowed to call from a browser (`RUNMESH_CORS_ORIGINS`).
    pub cors_origins: CorsOrigins,
    /// Largest request body accepted, in bytes (`RUNMESH_EDGE_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Largest raw upload streamed into a client-streaming RPC whose body is a
    /// `google.api.HttpBody` (`RUNMESH_EDGE_MAX_UPLOAD_BYTES`).
    pub max_upload_bytes: u64,
    /// The deadline of a call that asks for none, and the cap on those that do
    /// (`RUNMESH_EDGE_REQUEST_TIMEOUT`).
    pub request_timeout: Duration,
    /// Deadlines per service (`pkg.Service`) or method (`pkg.Service/Method`) that differ from
    /// `request_timeout` (`RUNMESH_EDGE_TIMEOUTS`).
    pub timeouts: BTreeMap<String, Duration>,
    /// Requests per client address and window; `None` turns rate limiting off
    /// (`RUNMESH_EDGE_RATE_LIMIT`).
    pub rate_limit: Option<RateLimit>,
    /// How many proxies in front of the edge append to `x-forwarded-for`; 0 means clients connect
    /// directly and `x-forwarded-for` from them is not trusted (`RUNMESH_EDGE_TRUSTED_PROXIES`).
    pub trusted_proxies: usize,
    /// Rate-limit counters live in Redis when set (shared by every edge replica), else in memory.
    pub redis_url: Option<String>,
    /// How long `/readyz` fails before the listener closes on shutdown.
    pub shutdown_delay: Duration,
    /// How long in-flight requests get to finish after the listener closed.
    pub shutdown_grace: Duration,
    /// The contracts to serve: an encoded `FileDescriptorSet` with extension options kept.
    pub descriptor_set: Cow<'static, [u8]>,
    /// Serve TLS (ALPN `h2`, `http/1.1`) with this certificate chain and key, reloaded when the
    /// files change (`RUNMESH_EDGE_TLS_CERT`, `RUNMESH_EDGE_TLS_KEY`); `None` serves plain HTTP/1.1
    /// and h2c.
    pub tls: Option<TlsFiles>,
    /// Signs the service tokens of the edge's own calls to internal RPCs (svc-user's `GetJwks`
    /// for `/.well-known/jwks.json`): `RUNMESH_SERVICE_SECRET`, or this process's key when it is
    /// unset (`runmesh up`, where the services run in the same process).
    pub mesh_key: MeshKey,
}

/// PEM files of the edge's certificate chain and private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl EdgeConfig {
    /// Defaults around `http_addr`, with every service at `upstream`.
    pub fn new(http_addr: SocketAddr, upstream: Uri) -> Self {
        Self {
            http_addr,
            upstreams: UpstreamConfig {
                default: Some(upstream),
                services: BTreeMap::new(),
            },
            cors_origins: CorsOrigins::None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            timeouts: BTreeMap::new(),
            rate_limit: Some(DEFAULT_RATE_LIMIT),
            trusted_proxies: 0,
            redis_url: None,
            shutdown_delay: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(20),
            descriptor_set: Cow::Borrowed(runmesh_proto::FILE_DESCRIPTOR_SET),
            mesh_key: MeshKey::process(),
            tls: None,
        }
    }

    /// From the environment and the file named by `RUNMESH_CONFIG`, on top of the already loaded
    /// platform `settings`. Without `RUNMESH_EDGE_UPSTREAM` every service is expected on this
    /// process's own gRPC address (`runmesh up`).
    pub fn from_env(settings: &Settings) -> Result<Self, EdgeConfigError> {
        let file = std::env::var_os(CONFIG_FILE_VAR).map(PathBuf::from);
        Self::load(settings, file.as_deref())
    }

    /// Like [`from_env`](Self::from_env) with an explicit file.
    pub fn load(settings: &Settings, file: Option<&Path>) -> Result<Self, EdgeConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        let raw: RawEdgeSettings = figment
            .merge(Env::prefixed(ENV_PREFIX).ignore(&["config"]))
            .extract()
            .map_err(|error| {
                let (variable, message) =
                    runmesh_platform::config::env_setting_error(ENV_PREFIX, &error);
                EdgeConfigError::new(variable, message)
            })?;

        let mut config = Self::new(settings.http_addr, local_upstream(settings.grpc_addr));
        if let Some(text) = raw.edge_upstream.as_deref() {
            config.upstreams.default = parse_optional_upstream(text)
                .map_err(|message| EdgeConfigError::new(UPSTREAM_VAR, message))?;
        }
        if let Some(text) = raw.edge_upstreams.as_deref() {
            config.upstreams.services = parse_upstreams(text)
                .map_err(|message| EdgeConfigError::new(UPSTREAMS_VAR, message))?;
        }
        if let Some(text) = raw.cors_origins.as_deref() {
            config.cors_origins = parse_cors_origins(text)
                .map_err(|message| EdgeConfigError::new(CORS_ORIGINS_VAR, message))?;
        }
        if let Some(text) = raw.edge_max_body_bytes.as_deref() {
            config.max_body_bytes = parse_byte_count(text)
                .map_err(|message| EdgeConfigError::new(MAX_BODY_BYTES_VAR, message))?;
        }
        if let Some(text) = raw.edge_max_upload_bytes.as_deref() {
            config.max_upload_bytes = parse_byte_count(text)
                .and_then(|bytes| u64::try_from(bytes).map_err(|error| error.to_string()))
                .map_err(|message| EdgeConfigError::new(MAX_UPLOAD_BYTES_VAR, message))?;
        }
        if let Some(text) = raw.edge_request_timeout.as_deref() {
            config.request_timeout = parse_positive_duration(text)
                .map_err(|message| EdgeConfigError::new(REQUEST_TIMEOUT_VAR, message))?;
        }
        if let Some(text) = raw.edge_timeouts.as_deref() {
            config.timeouts = parse_timeouts(text)
                .map_err(|message| EdgeConfigError::new(TIMEOUTS_VAR, message))?;
        }
        if let Some(text) = raw.edge_rate_limit.as_deref() {
            config.rate_limit = parse_rate_limit(text)
                .map_err(|message| EdgeConfigError::new(RATE_LIMIT_VAR, message))?;
        }
        if let Some(text) = raw.edge_trusted_proxies.as_deref() {
            config.trusted_proxies = text.trim().parse().map_err(|_| {
                EdgeConfigError::new(
                    TRUSTED_PROXIES_VAR,
                    format!("invalid count {text:?} (expected 0, 1, 2…)"),
                )
            })?;
        }
        config.tls = tls_files(raw.edge_tls_cert.as_deref(), raw.edge_tls_key.as_deref())?;
        config.redis_url.clone_from(&settings.redis_url);
        config.shutdown_delay = settings.shutdown_delay;
        config.shutdown_grace = settings.shutdown_grace;
        config.mesh_key = settings.mesh_key();
        Ok(config)
    }

    /// The deadline for `method` (`/pkg.Service/Method`): its own, its service's, or the default.
    pub fn timeout_for(&self, service: &str, method: &str) -> Duration {
        timeout_for(&self.timeouts, self.request_timeout, service, method)
    }
}

/// `method`'s own deadline in `timeouts`, its service's, or `default`.
pub(crate) fn timeout_for(
    timeouts: &BTreeMap<String, Duration>,
    default: Duration,
    service: &str,
    method: &str,
) -> Duration {
    timeouts
        .get(&format!("{service}/{method}"))
        .or_else(|| timeouts.get(service))
        .copied()
        .unwrap_or(default)
}

/// Where the gRPC services are.
#[derive(Clone, Debug, Default)]
pub struct UpstreamConfig {
    /// Every service not listed in `services` (`RUNMESH_EDGE_UPSTREAM`).
    pub default: Option<Uri>,
    /// Per service, by full name (`RUNMESH_EDGE_UPSTREAMS`).
    pub services: BTreeMap<String, Uri>,
}

impl UpstreamConfig {
    pub fn for_service(&self, service: &str) -> Option<&Uri> {
        self.services.get(service).or(self.default.as_ref())
    }
}

/// Which browser origins may call the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No cross-origin calls (same-origin pages and non-browser clients still work).
    None,
    /// Any origin (`*`): tokens travel in `authorization`, never in cookies, so this is safe for
    /// a public API.
    Any,
    /// Exactly these origins (`scheme://host[:port]`).
    List(Vec<HeaderValue>),
}

/// At most `requests` per client address in each `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u64,
    pub window: Duration,
}

/// A setting that failed to load. `Display` is one line: `RUNMESH_X: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct EdgeConfigError {
    variable: String,
    message: String,
}

impl EdgeConfigError {
    pub(crate) fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            message: message.into(),
        }
    }

    /// The variable that holds the bad value.
    pub fn variable(&self) -> &str {
        &self.variable
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Both TLS files or neither; each must be readable now (it is reloaded when it changes later).
fn tls_files(cert: Option<&str>, key: Option<&str>) -> Result<Option<TlsFiles>, EdgeConfigError> {
    let readable = |variable: &str, text: &str| {
        let path = PathBuf::from(text.trim());
        std::fs::metadata(&path)
            .map(|_| path.clone())
            .map_err(|error| {
                EdgeConfigError::new(variable, format!("cannot read {}: {error}", path.display()))
            })
    };
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: readable(TLS_CERT_VAR, cert)?,
            key: readable(TLS_KEY_VAR, key)?,
        })),
        (Some(_), None) => Err(EdgeConfigError::new(
            TLS_KEY_VAR,
            format!("missing: {TLS_CERT_VAR} is set, TLS needs the key too"),
        )),
        (None, Some(_)) => Err(EdgeConfigError::new(
            TLS_CERT_VAR,
            format!("missing: {TLS_KEY_VAR} is set, TLS needs the certificate too"),
        )),
    }
}

/// This process's own gRPC listener as an upstream: an unspecified listen address (`0.0.0.0`)
/// is reached on loopback.
fn local_upstream(grpc_addr: SocketAddr) -> Uri {
    let ip = match grpc_addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, grpc_addr.port());
    // A socket address always makes a valid authority.
    Uri::try_from(format!("http://{addr}"))
        .unwrap_or_else(|_| Uri::from_static("http://127.0.0.1:50051"))
}

fn parse_upstream(text: &str) -> Result<Uri, String> {
    const EXPECTED: &str = "expected http://host:port, e.g. http://user:50051";
    let uri: Uri = text
        .parse()
        .map_err(|_| format!("invalid upstream {text:?} ({EXPECTED})"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http"), Some(authority)) if authority.port_u16().is_some() => {}
        (Some("https"), _) => {
            return Err(format!(
                "upstream {text:?}: TLS to upstreams is not supported (in-cluster traffic is plaintext; {EXPECTED})"
            ));
        }
        _ => return Err(format!("invalid upstream {text:?} ({EXPECTED})")),
    }
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(format!(
            "upstream {text:?} must not have a path ({EXPECTED})"
        ));
    }
    Ok(uri)
}

fn parse_optional_upstream(text: &str) -> Result<Option<Uri>, String> {
    let text = text.trim();
    if text.is_empty() {
        Ok(None)
    } else {
        parse_upstream(text).map(Some)
    }
}

/// `pkg.Service=http://host:port,…`
fn parse_upstreams(text: &str) -> Result<BTreeMap<String, Uri>, String> {
    let mut upstreams = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (service, uri) = entry.split_once('=').ok_or_else(|| {
            format!(
                "invalid entry {entry:?} (expected service=uri, e.g. runmesh.user.v1.UserService=http://user:50051)"
            )
        })?;
        let service = service.trim();
        if !is_full_service_name(service) {
            return Err(format!(
                "invalid service name {service:?} (expected a full name such as runmesh.user.v1.UserService)"
            ));
        }
        let uri = parse_upstream(uri.trim())?;
        if upstreams.insert(service.to_owned(), uri).is_some() {
            return Err(format!("service {service:?} is listed twice"));
        }
    }
    Ok(upstreams)
}

fn is_full_service_name(name: &str) -> bool {
    name.contains('.')
        && name.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn parse_cors_origins(text: &str) -> Result<CorsOrigins, String> {
    let origins: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .collect();
    if origins.is_empty() {
        return Ok(CorsOrigins::None);
    }
    if origins == ["*"] {
        return Ok(CorsOrigins::Any);
    }
    let mut list = Vec::with_capacity(origins.len());
    for origin in origins {
        let url = url::Url::parse(origin).map_err(|_| invalid_origin(origin))?;
        let serialized = url.origin().ascii_serialization();
        // An origin is exactly scheme://host[:port]: no path, no trailing slash.
        if !matches!(url.scheme(), "http" | "https") || serialized != origin {
            return Err(invalid_origin(origin));
        }
        list.push(HeaderValue::from_str(origin).map_err(|_| invalid_origin(origin))?);
    }
    Ok(CorsOrigins::List(list))
}

fn invalid_origin(origin: &str) -> String {
    format!(
        "invalid origin {origin:?} (expected a comma-separated list of scheme://host[:port], e.g. https://app.example.com,http://localhost:5173, or *)"
    )
}

fn parse_byte_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(format!(
            "invalid byte count {text:?} (expected a positive integer, e.g. 4194304)"
        )),
    }
}

/// `pkg.Service=10s,pkg.Service/Method=2m`
fn parse_timeouts(text: &str) -> Result<BTreeMap<String, Duration>, String> {
    let mut timeouts = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (target, duration) = entry.split_once('=').ok_or_else(|| {
            format!(
                "invalid entry {entry:?} (expected service[/Method]=duration, e.g. runmesh.user.v1.UserService/SignIn=5s)"
            )
        })?;
        let target = target.trim();
        let valid = match target.split_once('/') {
            Some((service, method)) => {
                is_full_service_name(service)
                    && !method.is_empty()
                    && method
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
            }
            None => is_full_service_name(target),
        };
        if !valid {
            return Err(format!(
                "invalid target {target:?} (expected pkg.Service or pkg.Service/Method)"
            ));
        }
        timeouts.insert(target.to_owned(), parse_positive_duration(duration)?);
    }
    Ok(timeouts)
}

/// `1200/1m`, `20/1s`, or `off`.
fn parse_rate_limit(text: &str) -> Result<Option<RateLimit>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let invalid = || {
        format!(
            "invalid rate limit {text:?} (expected requests/window, e.g. 1200/1m or 20/1s, or off)"
        )
    };
    let (requests, window) = text.split_once('/').ok_or_else(invalid)?;
    let requests: u64 = requests.trim().parse().map_err(|_| invalid())?;
    if requests == 0 {
        return Err(invalid());
    }
    let window = parse_positive_duration(window).map_err(|_| invalid())?;
    Ok(Some(RateLimit { requests, window }))
}

/// The edge's own keys; the platform's are read by [`Settings`].
#[derive(Default, Deserialize)]
#[serde(default)]
struct RawEdgeSettings {
    edge_upstream: Option<Text>,
    edge_upstreams: Option<Text>,
    cors_origins: Option<Text>,
    edge_max_body_bytes: Option<Text>,
    edge_max_upload_bytes: Option<Text>,
    edge_request_timeout: Option<Text>,
    edge_timeouts: Option<Text>,
    edge_rate_limit: Option<Text>,
    edge_trusted_proxies: Option<Text>,
    edge_tls_cert: Option<Text>,
    edge_tls_key: Option<Text>,
}

/// A scalar as text whatever type the provider inferred, or a list joined with commas (TOML).
struct Text(String);

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
        Ok(value.to_owned())
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

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
        let mut items = Vec::new();
        while let Some(Text(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items.join(","))
    }
}

#[cfg(test)]
mod tests {
    // figment's Jail closures return its large error type.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

    use super::*;

    fn load(
        jail: &mut figment::Jail,
        vars: &[(&str, &str)],
    ) -> Result<EdgeConfig, EdgeConfigError> {
        for (name, value) in vars {
            jail.set_env(name, value);
        }
        let settings = Settings::load(None).unwrap();
        EdgeConfig::load(&settings, None)
    }

    #[test]
    fn defaults_send_every_service_to_this_process() {
        figment::Jail::expect_with(|jail| {
            let config = load(jail, &[("RUNMESH_GRPC_ADDR", "0.0.0.0:6000")]).unwrap();
            assert_eq!(
                config.upstreams.for_service("runmesh.user.v1.UserService"),
                Some(&Uri::from_static("http://127.0.0.1:6000"))
            );
            assert_eq!(config.cors_origins, CorsOrigins::None);
            assert_eq!(config.rate_limit, Some(DEFAULT_RATE_LIMIT));
            assert_eq!(config.request_timeout, DEFAULT_REQUEST_TIMEOUT);
            assert_eq!(config.max_upload_bytes, 2 * 1024 * 1024 * 1024);
            assert_eq!(config.trusted_proxies, 0);
            Ok(())
        });
    }

    #[test]
    fn reads_every_variable() {
        figment::Jail::expect_with(|jail| {
            let config = load(
                jail,
                &[
                    ("RUNMESH_EDGE_UPSTREAM", "http://core:50051"),
                    (
                        "RUNMESH_EDGE_UPSTREAMS",
                        "runmesh.user.v1.UserService=http://user:50051, runmesh.user.v1.UserInternalService=http://user:50051",
                    ),
                    ("RUNMESH_CORS_ORIGINS", "https://app.example.com, http://localhost:5173"),
                    ("RUNMESH_EDGE_MAX_BODY_BYTES", "1024"),
                    ("RUNMESH_EDGE_MAX_UPLOAD_BYTES", "1048576"),
                    ("RUNMESH_EDGE_REQUEST_TIMEOUT", "10s"),
                    (
                        "RUNMESH_EDGE_TIMEOUTS",
                        "runmesh.user.v1.UserService=5s,runmesh.user.v1.UserService/SignIn=2s",
                    ),
                    ("RUNMESH_EDGE_RATE_LIMIT", "20/1s"),
                    ("RUNMESH_EDGE_TRUSTED_PROXIES", "1"),
                ],
            )
            .unwrap();
            assert_eq!(
                config.upstreams.for_service("runmesh.user.v1.UserService"),
                Some(&Uri::from_static("http://user:50051"))
            );
            assert_eq!(
                config.upstreams.for_service("runmesh.run.v1.RunService"),
                Some(&Uri::from_static("http://core:50051"))
            );
            assert_eq!(
                config.cors_origins,
                CorsOrigins::List(vec![
                    HeaderValue::from_static("https://app.example.com"),
                    HeaderValue::from_static("http://localhost:5173"),
                ])
            );
            assert_eq!(config.max_body_bytes, 1024);
            assert_eq!(config.max_upload_bytes, 1_048_576);
            assert_eq!(config.request_timeout, Duration::from_secs(10));
            assert_eq!(
                config.timeout_for("runmesh.user.v1.UserService", "SignIn"),
                Duration::from_secs(2)
            );
            assert_eq!(
                config.timeout_for("runmesh.user.v1.UserService", "GetMe"),
                Duration::from_secs(5)
            );
            assert_eq!(
                config.timeout_for("runmesh.run.v1.RunService", "GetRun"),
                Duration::from_secs(10)
            );
            assert_eq!(
                config.rate_limit,
                Some(RateLimit {
                    requests: 20,
                    window: Duration::from_secs(1)
                })
            );
            assert_eq!(config.trusted_proxies, 1);
            Ok(())
        });
    }

    #[test]
    fn an_empty_default_upstream_means_only_the_listed_services() {
        figment::Jail::expect_with(|jail| {
            let config = load(
                jail,
                &[
                    ("RUNMESH_EDGE_UPSTREAM", ""),
                    (
                        "RUNMESH_EDGE_UPSTREAMS",
                        "runmesh.user.v1.UserService=http://user:50051",
                    ),
                ],
            )
            .unwrap();
            assert!(
                config
                    .upstreams
                    .for_service("runmesh.run.v1.RunService")
                    .is_none()
            );
            Ok(())
        });
    }

    #[test]
    fn cors_accepts_any_origin_and_rate_limits_turn_off() {
        figment::Jail::expect_with(|jail| {
            let config = load(
                jail,
                &[
                    ("RUNMESH_CORS_ORIGINS", "*"),
                    ("RUNMESH_EDGE_RATE_LIMIT", "off"),
                ],
            )
            .unwrap();
            assert_eq!(config.cors_origins, CorsOrigins::Any);
            assert_eq!(config.rate_limit, None);
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_their_variable_in_one_line() {
        let cases = [
            ("RUNMESH_EDGE_UPSTREAM", "user:50051", "invalid upstream"),
            ("RUNMESH_EDGE_UPSTREAM", "https://user:50051", "TLS"),
            (
                "RUNMESH_EDGE_UPSTREAM",
                "http://user:50051/v1",
                "must not have a path",
            ),
            (
                "RUNMESH_EDGE_UPSTREAMS",
                "runmesh.user.v1.UserService",
                "expected service=uri",
            ),
            (
                "RUNMESH_EDGE_UPSTREAMS",
                "UserService=http://user:50051",
                "full name",
            ),
            (
                "RUNMESH_EDGE_UPSTREAMS",
                "a.B=http://x:1,a.B=http://y:1",
                "listed twice",
            ),
            (
                "RUNMESH_CORS_ORIGINS",
                "https://app.example.com/",
                "invalid origin",
            ),
            ("RUNMESH_CORS_ORIGINS", "app.example.com", "invalid origin"),
            ("RUNMESH_EDGE_MAX_BODY_BYTES", "0", "invalid byte count"),
            (
                "RUNMESH_EDGE_MAX_UPLOAD_BYTES",
                "2GiB",
                "invalid byte count",
            ),
            ("RUNMESH_EDGE_REQUEST_TIMEOUT", "soon", "invalid duration"),
            ("RUNMESH_EDGE_REQUEST_TIMEOUT", "0s", "greater than zero"),
            (
                "RUNMESH_EDGE_TIMEOUTS",
                "runmesh.user.v1.UserService/=5s",
                "invalid target",
            ),
            ("RUNMESH_EDGE_RATE_LIMIT", "fast", "invalid rate limit"),
            ("RUNMESH_EDGE_RATE_LIMIT", "0/1s", "invalid rate limit"),
            ("RUNMESH_EDGE_TRUSTED_PROXIES", "-1", "invalid count"),
        ];
        for (variable, value, expected) in cases {
            figment::Jail::expect_with(|jail| {
                let error = load(jail, &[(variable, value)]).unwrap_err();
                let line = error.to_string();
                assert_eq!(error.variable(), variable, "{line}");
                assert!(line.starts_with(&format!("{variable}: ")), "{line}");
                assert!(line.contains(expected), "{variable}={value}: {line}");
                assert_eq!(line.lines().count(), 1, "{line}");
                Ok(())
            });
        }
    }

    #[test]
    fn reads_the_config_file_too() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "runmesh.toml",
                "cors_origins = [\"https://a.example\", \"https://b.example\"]\nedge_rate_limit = \"5/1s\"\n",
            )?;
            let settings = Settings::load(None).unwrap();
            let config = EdgeConfig::load(&settings, Some(Path::new("runmesh.toml"))).unwrap();
            assert_eq!(
                config.cors_origins,
                CorsOrigins::List(vec![
                    HeaderValue::from_static("https://a.example"),
                    HeaderValue::from_static("https://b.example"),
                ])
            );
            assert_eq!(config.rate_limit.map(|limit| limit.requests), Some(5));
            Ok(())
        });
    }
}
