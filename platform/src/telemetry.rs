//! Logs and metrics: `tracing` to stderr (JSON for Loki unless on a terminal), autometrics
//! labelled with the service's own name, and the Prometheus `/metrics` endpoint.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::{LazyLock, Mutex, OnceLock};

use autometrics::prometheus_exporter::{self, ExporterInitializationError};
use autometrics::settings::{AutometricsSettings, SettingsInitializationError};
use axum::Router;
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, Settings};

/// The service name autometrics was initialised with, so a repeated `init` can be checked.
static METRICS_SERVICE_NAME: OnceLock<String> = OnceLock::new();

/// The Prometheus client library the registry is made of, for services' own metrics
/// ([`register_metrics`]).
pub use prometheus_client;

/// Labels of the platform's own series: (name, value) pairs.
type Labels = Vec<(&'static str, String)>;

/// Events the embedded log of each source retains (`runmesh_event_log_events`).
static EVENT_LOG_EVENTS: LazyLock<Family<Labels, Gauge>> = LazyLock::new(Family::default);
/// Bytes of encoded events the embedded log of each source retains (`runmesh_event_log_bytes`).
static EVENT_LOG_BYTES: LazyLock<Family<Labels, Gauge>> = LazyLock::new(Family::default);
/// Outbox rows waiting for the relay, per source (`runmesh_outbox_pending`, Kafka mode).
static OUTBOX_PENDING: LazyLock<Family<Labels, Gauge>> = LazyLock::new(Family::default);
/// Events of a topic a consumer group has not read yet (`runmesh_event_consumer_lag`, embedded
/// log).
static CONSUMER_LAG: LazyLock<Family<Labels, Gauge>> = LazyLock::new(Family::default);
/// Events a consumer group handled (`runmesh_event_consumer_handled_total`).
static CONSUMER_HANDLED: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
/// Failed attempts at handling an event (`runmesh_event_consumer_failures_total`).
static CONSUMER_FAILURES: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
/// Events held back by a failing handler right now (`runmesh_event_consumer_retrying`).
static CONSUMER_RETRYING: LazyLock<Family<Labels, Gauge>> = LazyLock::new(Family::default);
/// From an event's `occurred_at` to its handler's commit (`runmesh_event_delivery_delay_seconds`).
static DELIVERY_DELAY: LazyLock<Family<Labels, Histogram>> = LazyLock::new(|| {
    Family::new_with_constructor(|| {
        Histogram::new(
            [
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0,
            ]
            .into_iter(),
        )
    })
});
/// 1 while a gRPC service reports SERVING, 0 while NOT_SERVING (`runmesh_health_serving`).
static HEALTH_SERVING: LazyLock<Family<Labels, Gauge>> = LazyLock::new(Family::default);

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(name, value)| (*name, (*value).to_owned()))
        .collect()
}

/// Reports the size of `source`'s embedded event log.
pub(crate) fn record_event_log_size(source: &str, events: i64, bytes: i64) {
    let labels = labels(&[("source", source)]);
    EVENT_LOG_EVENTS.get_or_create(&labels).set(events);
    EVENT_LOG_BYTES.get_or_create(&labels).set(bytes);
}

/// Reports how many outbox rows of `source` wait for the relay.
pub(crate) fn record_outbox_pending(source: &str, rows: u64) {
    OUTBOX_PENDING
        .get_or_create(&labels(&[("source", source)]))
        .set(i64::try_from(rows).unwrap_or(i64::MAX));
}

/// Reports how many events of `topic` `group` has not read yet.
pub(crate) fn record_consumer_lag(group: &str, topic: &str, events: i64) {
    CONSUMER_LAG
        .get_or_create(&labels(&[("group", group), ("topic", topic)]))
        .set(events);
}

/// Forgets the lag of a group the log no longer tracks (it vanished).
pub(crate) fn forget_consumer_lag(group: &str, topic: &str) {
    CONSUMER_LAG.remove(&labels(&[("group", group), ("topic", topic)]));
}

/// Counts `events` handled by `group`, each `delays` after it occurred (the handlers'
/// transaction committed).
pub(crate) fn record_handled(group: &str, delays: impl IntoIterator<Item = f64>) {
    let labels = labels(&[("group", group)]);
    let histogram = DELIVERY_DELAY.get_or_create(&labels);
    let mut count = 0;
    for delay in delays {
        histogram.observe(delay.max(0.0));
        count += 1;
    }
    CONSUMER_HANDLED.get_or_create(&labels).inc_by(count);
}

/// Counts a failed attempt at handling an event of `group`.
pub(crate) fn record_handler_failure(group: &str) {
    CONSUMER_FAILURES
        .get_or_create(&labels(&[("group", group)]))
        .inc();
}

/// Marks one consumer task of `group` as held back by a failing event (or no longer).
pub(crate) fn record_retrying(group: &str, retrying: bool) {
    let gauge = CONSUMER_RETRYING.get_or_create(&labels(&[("group", group)]));
    if retrying {
        gauge.inc();
    } else {
        gauge.dec();
    }
}

/// Reports a gRPC service's health status.
pub(crate) fn record_health(service: &str, serving: bool) {
    HEALTH_SERVING
        .get_or_create(&labels(&[("grpc_service", service)]))
        .set(i64::from(serving));
}

/// Metrics registered by services before telemetry starts ([`register_metrics`]).
type Registration = Box<dyn FnOnce(&mut Registry) + Send>;
static REGISTRATIONS: Mutex<Vec<Registration>> = Mutex::new(Vec::new());

/// Adds a service's own metrics (`runmesh_<service>_…`) to the registry `/metrics` exports. Call
/// it before [`init`] (from the service's constructor): the registry is handed to autometrics
/// when telemetry starts, and metrics registered later are counted but not exported.
pub fn register_metrics(register: impl FnOnce(&mut Registry) + Send + 'static) {
    if let Ok(mut pending) = REGISTRATIONS.lock() {
        pending.push(Box::new(register));
    }
}

/// The series `register` adds, alone, in the Prometheus text format (a service's own metrics
/// for its tests and debugging; the values are the process's).
pub fn render_metrics(register: impl FnOnce(&mut Registry)) -> String {
    let mut registry = Registry::default();
    register(&mut registry);
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        text.clear();
    }
    text
}

/// The registry autometrics exports, holding the platform's own gauges too.
fn metrics_registry() -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "runmesh_event_log_events",
        "Events the embedded event log retains, per source service",
        EVENT_LOG_EVENTS.clone(),
    );
    registry.register(
        "runmesh_event_log_bytes",
        "Bytes of encoded events the embedded event log retains, per source service",
        EVENT_LOG_BYTES.clone(),
    );
    registry.register(
        "runmesh_outbox_pending",
        "Outbox rows waiting to be published to Kafka, per source service",
        OUTBOX_PENDING.clone(),
    );
    registry.register(
        "runmesh_event_consumer_lag",
        "Events of a topic a consumer group has not read yet (embedded event log)",
        CONSUMER_LAG.clone(),
    );
    registry.register(
        "runmesh_event_consumer_handled",
        "Events a consumer group handled (applied, or skipped as redelivered)",
        CONSUMER_HANDLED.clone(),
    );
    registry.register(
        "runmesh_event_consumer_failures",
        "Failed attempts at handling an event (retried until they succeed)",
        CONSUMER_FAILURES.clone(),
    );
    registry.register(
        "runmesh_event_consumer_retrying",
        "Consumers of a group held back right now by an event whose handler keeps failing",
        CONSUMER_RETRYING.clone(),
    );
    registry.register(
        "runmesh_event_delivery_delay_seconds",
        "From an event's occurred_at to the commit of its handler, per consumer group",
        DELIVERY_DELAY.clone(),
    );
    registry.register(
        "runmesh_health_serving",
        "1 while the gRPC service reports SERVING, 0 while NOT_SERVING",
        HEALTH_SERVING.clone(),
    );
    let pending = match REGISTRATIONS.lock() {
        Ok(mut pending) => std::mem::take(&mut *pending),
        Err(_) => Vec::new(),
    };
    for register in pending {
        register(&mut registry);
    }
    registry
}

/// Telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUNMESH_LOG` did not parse (normally caught by config validation).
    #[error("RUNMESH_LOG: invalid log filter: {0}")]
    LogFilter(#[from] tracing_subscriber::filter::ParseError),
    /// autometrics was already set up under another name (or used before `init`), so its
    /// series would not carry this service's name.
    #[error(
        "autometrics is already initialised{}; call telemetry::init before any instrumented function runs",
        .existing.as_deref().map(|name| format!(" for service {name:?}")).unwrap_or_default()
    )]
    MetricsAlreadyInitialized {
        /// The name it was initialised with by an earlier `init`, if any.
        existing: Option<String>,
    },
    /// The metrics listener could not be bound or failed while serving.
    #[error("metrics endpoint on {addr}: {source}")]
    MetricsServer {
        /// The address it was to listen on.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The metrics server task panicked or was cancelled.
    #[error("metrics endpoint task failed: {0}")]
    MetricsTask(#[from] tokio::task::JoinError),
}

/// Sets up logging and metrics for the process. Call once, early in `main`, before any
/// `#[autometrics]` function runs. Calling it again with the same `service_name` is harmless
/// (tests do); a different name is an error because metrics labels are process-global.
pub fn init(settings: &Settings, service_name: &str) -> Result<(), TelemetryError> {
    init_logs(settings)?;
    init_metrics(service_name)
}

fn init_logs(settings: &Settings) -> Result<(), TelemetryError> {
    let filter = EnvFilter::builder().parse(&settings.log_filter)?;
    let json = match settings.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only when a global subscriber is already set (a second `init` in the
    // same test process); the first one stays in charge.
    let _already_set = if json {
        builder
            .json()
            .flatten_event(true)
            // Every enclosing span with its fields, so `request_id` survives nested spans.
            .with_current_span(false)
            .with_span_list(true)
            .finish()
            .try_init()
    } else {
        builder.pretty().finish().try_init()
    };
    Ok(())
}

fn init_metrics(service_name: &str) -> Result<(), TelemetryError> {
    match AutometricsSettings::builder()
        .service_name(service_name)
        .prometheus_client_registry(metrics_registry())
        .try_init()
    {
        // The settings are in place; the exporter had been created by an earlier scrape.
        Ok(_)
        | Err(SettingsInitializationError::PrometheusExporter(
            ExporterInitializationError::AlreadyInitialized,
        )) => {
            // First caller wins; the settings above only succeed once per process.
            let _ = METRICS_SERVICE_NAME.set(service_name.to_owned());
            Ok(())
        }
        Err(SettingsInitializationError::AlreadyInitialized) => match METRICS_SERVICE_NAME.get() {
            Some(existing) if existing == service_name => Ok(()),
            existing => Err(TelemetryError::MetricsAlreadyInitialized {
                existing: existing.cloned(),
            }),
        },
    }
}

/// The Prometheus endpoint, serving until its shutdown token fires.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    task: JoinHandle<Result<(), TelemetryError>>,
}

impl MetricsServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server has stopped (after the shutdown token fired).
    pub async fn stopped(self) -> Result<(), TelemetryError> {
        self.task.await?
    }
}

/// Binds `addr` and serves `GET /metrics` (autometrics' Prometheus exporter) in a background
/// task until `shutdown` is cancelled.
pub async fn serve_metrics(
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> Result<MetricsServer, TelemetryError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| TelemetryError::MetricsServer { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| TelemetryError::MetricsServer { addr, source })?;
    let app = Router::new().route(
        "/metrics",
        get(|| async { prometheus_exporter::encode_http_response() }),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(|source| TelemetryError::MetricsServer {
                addr: local_addr,
                source,
            })
    });
    tracing::info!(addr = %local_addr, "serving Prometheus metrics on /metrics");
    Ok(MetricsServer { local_addr, task })
}
