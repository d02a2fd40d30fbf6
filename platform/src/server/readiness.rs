//! Health status: the readiness loop that turns probe results into `grpc.health.v1` statuses,
//! and the health service that ends `Watch` streams when draining starts (an open watch would
//! otherwise hold its connection, and the drain, until the grace runs out).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use futures::{Stream, StreamExt};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService};

use crate::health::Probe;

/// The whole server's entry in `grpc.health.v1`.
const SERVER: &str = "";

/// One registered service and what it depends on.
pub(super) struct ServiceProbes {
    pub(super) name: &'static str,
    pub(super) probes: Vec<Arc<dyn Probe>>,
}

struct ProbeFailure {
    probe: String,
    error: String,
}

impl ServiceProbes {
    /// All probes at once; the first failure, if any.
    async fn check(&self, timeout: Duration) -> Result<(), ProbeFailure> {
        let results = join_all(self.probes.iter().map(|probe| async move {
            let failure = |error: String| ProbeFailure {
                probe: probe.name().to_owned(),
                error,
            };
            match tokio::time::timeout(timeout, probe.check(timeout)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(failure(error)),
                Err(_) => Err(failure(format!("no answer within {timeout:?}"))),
            }
        }))
        .await;
        results.into_iter().collect()
    }
}

/// Polls every service's probes and publishes the result; `""` is SERVING only while every
/// service is.
pub(super) struct Readiness {
    pub(super) services: Vec<ServiceProbes>,
    pub(super) interval: Duration,
    pub(super) probe_timeout: Duration,
}

impl Readiness {
    /// Runs until `stop` fires. Transitions are logged once, not on every tick.
    pub(super) async fn run(self, reporter: HealthReporter, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut serving: Vec<Option<bool>> = vec![None; self.services.len()];
        let mut server_serving = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let checks = join_all(
                self.services
                    .iter()
                    .map(|service| service.check(self.probe_timeout)),
            );
            let results = tokio::select! {
                () = stop.cancelled() => return,
                results = checks => results,
            };
            for ((service, result), last) in self.services.iter().zip(results).zip(&mut serving) {
                let now = result.is_ok();
                if *last == Some(now) {
                    continue;
                }
                match result {
                    Ok(()) => tracing::info!(service = service.name, "service is SERVING"),
                    Err(failure) => tracing::warn!(
                        service = service.name,
                        probe = failure.probe,
                        error = failure.error,
                        "service is NOT_SERVING: a dependency check failed"
                    ),
                }
                reporter.set_service_status(service.name, status(now)).await;
                crate::telemetry::record_health(service.name, now);
                *last = Some(now);
            }
            let all = serving.iter().all(|state| *state == Some(true));
            if server_serving != Some(all) {
                reporter.set_service_status(SERVER, status(all)).await;
                tracing::info!(serving = all, "server health changed");
                server_serving = Some(all);
            }
        }
    }
}

fn status(serving: bool) -> ServingStatus {
    if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Marks `""` and every service NOT_SERVING.
pub(super) async fn set_all_not_serving(reporter: &HealthReporter, services: &[&str]) {
    reporter
        .set_service_status(SERVER, ServingStatus::NotServing)
        .await;
    for service in services {
        reporter
            .set_service_status(service, ServingStatus::NotServing)
            .await;
        crate::telemetry::record_health(service, false);
    }
}

/// tonic-health's service, except that `Watch` streams end when draining starts.
pub(super) struct DrainingHealth {
    inner: HealthService,
    draining: CancellationToken,
}

impl DrainingHealth {
    pub(super) fn new(reporter: HealthReporter, draining: CancellationToken) -> Self {
        Self {
            inner: HealthService::from_health_reporter(reporter),
            draining,
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for DrainingHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let draining = self.draining.clone().cancelled_owned();
        let response = self.inner.watch(request).await?;
        Ok(response.map(|stream| Box::pin(stream.take_until(draining)) as WatchStream))
    }
}
