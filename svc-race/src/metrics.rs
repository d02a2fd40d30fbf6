//! svc-race's own metrics (`runmesh_race_…`), beside autometrics' function metrics: what the
//! gate answers during an opening and how its rebuilds go. docs/operations.md lists them.

use std::sync::{LazyLock, Once};
use std::time::Duration;

use runmesh_platform::telemetry::prometheus_client::metrics::counter::Counter;
use runmesh_platform::telemetry::prometheus_client::metrics::family::Family;
use runmesh_platform::telemetry::prometheus_client::metrics::gauge::Gauge;
use runmesh_platform::telemetry::prometheus_client::metrics::histogram::Histogram;
use runmesh_proto::runmesh::race::v1 as proto;

use crate::error::Error;
use crate::gate::{Admission, GateError};

type Labels = Vec<(&'static str, &'static str)>;

/// `Register` calls by answer (`confirmed`, `waitlisted`, `sold_out`, …).
static REGISTER_ANSWERS: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
/// The gate's answers to admissions (`admitted`, `sold_out`, `member`, `rate_limited`, …).
static GATE_ANSWERS: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
/// Gate rebuilds under way in this process.
static GATE_REBUILDS_RUNNING: LazyLock<Gauge> = LazyLock::new(Gauge::default);
/// How long gate rebuilds took, by outcome.
static GATE_REBUILD_SECONDS: LazyLock<Family<Labels, Histogram>> = LazyLock::new(|| {
    Family::new_with_constructor(|| {
        Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0].into_iter())
    })
});

/// Adds svc-race's metrics to what `/metrics` exports (once per process).
pub fn register() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        runmesh_platform::telemetry::register_metrics(|registry| {
            registry.register(
                "runmesh_race_register_answers",
                "Register calls, by the answer the runner got",
                REGISTER_ANSWERS.clone(),
            );
            registry.register(
                "runmesh_race_gate_answers",
                "Admissions asked of the registration gate, by its answer",
                GATE_ANSWERS.clone(),
            );
            registry.register(
                "runmesh_race_gate_rebuilds_running",
                "Registration gate rebuilds under way in this process",
                GATE_REBUILDS_RUNNING.clone(),
            );
            registry.register(
                "runmesh_race_gate_rebuild_duration_seconds",
                "How long registration gate rebuilds took, by outcome",
                GATE_REBUILD_SECONDS.clone(),
            );
        });
    });
}

/// Counts the answer of one `Register` call.
pub(crate) fn register_answered(result: &Result<proto::Registration, Error>) {
    let answer = match result {
        Ok(registration) => match proto::RegistrationStatus::try_from(registration.status) {
            Ok(proto::RegistrationStatus::Confirmed) => "confirmed",
            Ok(proto::RegistrationStatus::Waitlisted) => "waitlisted",
            _ => "other",
        },
        Err(error) => match error {
            Error::SoldOut => "sold_out",
            Error::AlreadyRegistered => "already_registered",
            Error::TooManyAttempts { .. } => "too_many_attempts",
            Error::RegistrationNotOpen { .. } => "not_open",
            Error::RegistrationClosed { .. } => "closed",
            Error::RegistrationInProgress => "in_progress",
            Error::Busy | Error::Gate(GateError::Rebuilding) => "busy",
            Error::Cache(_) | Error::Gate(GateError::Cache(_)) => "cache_unavailable",
            Error::RaceNotFound(_) | Error::CategoryNotFound(_) | Error::RaceNotPublished => {
                "not_found"
            }
            Error::InvalidInput(_) | Error::RoleRequired(_) => "refused",
            _ => "error",
        },
    };
    REGISTER_ANSWERS
        .get_or_create(&vec![("answer", answer)])
        .inc();
}

/// Counts one answer of the gate.
pub(crate) fn gate_answered(admission: &Admission) {
    let answer = match admission {
        Admission::NotReady => "not_ready",
        Admission::UnknownCategory => "unknown_category",
        Admission::Member(_) => "member",
        Admission::SoldOut => "sold_out",
        Admission::Admitted(_) => "admitted",
        Admission::RateLimited(_) => "rate_limited",
    };
    GATE_ANSWERS.get_or_create(&vec![("answer", answer)]).inc();
}

/// Marks a gate rebuild as running until dropped; [`RebuildTimer::finish`] records its outcome.
pub(crate) struct RebuildTimer {
    started: std::time::Instant,
}

impl RebuildTimer {
    pub(crate) fn start() -> Self {
        GATE_REBUILDS_RUNNING.inc();
        Self {
            started: std::time::Instant::now(),
        }
    }

    pub(crate) fn finish(self, ok: bool) -> Duration {
        let elapsed = self.started.elapsed();
        let outcome = if ok { "ok" } else { "failed" };
        GATE_REBUILD_SECONDS
            .get_or_create(&vec![("outcome", outcome)])
            .observe(elapsed.as_secs_f64());
        elapsed
    }
}

impl Drop for RebuildTimer {
    fn drop(&mut self) {
        GATE_REBUILDS_RUNNING.dec();
    }
}
