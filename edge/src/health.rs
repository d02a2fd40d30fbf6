//! `grpc.health.v1.Health` at the edge, so gRPC clients and load balancers can ask the one
//! public door: the server (`""`) is SERVING while every public service answers SERVING upstream
//! and the edge is not draining; a public service reports its upstream's answer; anything else
//! (an internal service, an unknown name) is NOT_FOUND, as if it did not exist.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::EdgeState;

/// How long one upstream health check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// How often `Watch` asks again.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

pub fn service(state: Arc<EdgeState>) -> HealthServer<EdgeHealth> {
    HealthServer::new(EdgeHealth { state })
}

pub struct EdgeHealth {
    state: Arc<EdgeState>,
}

/// The status of `service` as the edge reports it, `None` when it is not served here.
async fn status_of(state: &EdgeState, service: &str) -> Option<ServingStatus> {
    if state.draining.is_cancelled() {
        return Some(ServingStatus::NotServing);
    }
    let services: Vec<String> = if service.is_empty() {
        state
            .catalog
            .public_services()
            .map(|public| public.full_name().to_owned())
            .collect()
    } else if state
        .catalog
        .public_services()
        .any(|public| public.full_name() == service)
    {
        vec![service.to_owned()]
    } else {
        return None;
    };
    let answers = futures::future::join_all(
        services
            .iter()
            .map(|name| state.upstreams.health(name, CHECK_TIMEOUT)),
    )
    .await;
    let all_serving = answers
        .iter()
        .all(|answer| matches!(answer, Ok(ServingStatus::Serving)));
    Some(if all_serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    })
}

fn not_found(service: &str) -> Status {
    Status::not_found(format!("unknown service {service:?}"))
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for EdgeHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        let status = status_of(&self.state, &service)
            .await
            .ok_or_else(|| not_found(&service))?;
        Ok(Response::new(HealthCheckResponse {
            status: status.into(),
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        let state = self.state.clone();
        let stream = async_stream_of_changes(state, service);
        Ok(Response::new(Box::pin(stream)))
    }
}

/// The current status, then every change (asked every [`WATCH_INTERVAL`]); SERVICE_UNKNOWN for a
/// service not served here, as the protocol asks of `Watch`.
fn async_stream_of_changes(
    state: Arc<EdgeState>,
    service: String,
) -> impl Stream<Item = Result<HealthCheckResponse, Status>> + Send {
    futures::stream::unfold(
        (state, service, None::<ServingStatus>),
        |(state, service, last)| async move {
            loop {
                let now = status_of(&state, &service)
                    .await
                    .unwrap_or(ServingStatus::ServiceUnknown);
                if Some(now) != last {
                    let answer = HealthCheckResponse { status: now.into() };
                    return Some((Ok(answer), (state, service, Some(now))));
                }
                tokio::time::sleep(WATCH_INTERVAL).await;
            }
        },
    )
}
