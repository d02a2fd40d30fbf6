//! Logs and metrics: `tracing` to stderr (JSON for Loki unless on a terminal), autometrics
//! labelled with the service's own name, and the Prometheus `/metrics` endpoint.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::{LazyLock, OnceLock};

use autometrics::prometheus_exporter::{self, ExporterInitializationError};
use autometrics::settings::{AutometricsSettings, SettingsInitializationError};
use axum::Router;
use axum::routing::get;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, Settings};

/// The service name autometrics was initialised with, so a repeated `init` can be checked.
static METRICS_SERVICE_NAME: OnceLock<String> = OnceLock::new();

/// Labels of the embedded event log's gauges: the source service.
type SourceLabels = Vec<(&'static str, String)>;

/// Events the embedded log of each source retains (`runmesh_event_log_events`).
static EVENT_LOG_EVENTS: LazyLock<Family<SourceLabels, Gauge>> = LazyLock::new(Family::default);
/// Bytes of encoded events the embedded log of each source retains (`runmesh_event_log_bytes`).
static EVENT_LOG_BYTES: LazyLock<Family<SourceLabels, Gauge>> = LazyLock::new(Family::default);

/// Reports the size of `source`'s embedded event log.
pub(crate) fn record_event_log_size(source: &str, events: i64, bytes: i64) {
    let labels = vec![("source", source.to_owned())];
    EVENT_LOG_EVENTS.get_or_create(&labels).set(events);
    EVENT_LOG_BYTES.get_or_create(&labels).set(bytes);
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
