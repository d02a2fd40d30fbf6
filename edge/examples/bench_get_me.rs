//! `GetMe` through the edge (native gRPC on its one port, and REST/JSON over HTTP/1.1) against the
//! same call made directly over gRPC, on one machine: throughput and latency percentiles for each,
//! and their ratios.
//!
//! ```text
//! cargo run --release -p runmesh-edge --example bench_get_me -- [--concurrency 32] [--seconds 10]
//! ```
//!
//! svc-user runs in the platform runtime on SQLite (as `runmesh up`), the edge in front of it;
//! clients, edge and service share the machine's cores, so the figures compare the two paths
//! rather than measure either in isolation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use runmesh_proto::runmesh::user::v1::GetMeRequest;
use runmesh_proto::runmesh::user::v1::user_service_client::UserServiceClient;
use tokio::sync::Barrier;
use tonic::transport::Channel;

struct Figures {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index]
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Runs `call` from `concurrency` tasks for `length` after a warm-up, recording each latency.
async fn measure<F, Fut>(concurrency: usize, length: Duration, call: F) -> Figures
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let warm_up = Instant::now() + Duration::from_secs(2);
    while Instant::now() < warm_up {
        call().await;
    }
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let call = call.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let end = Instant::now() + length;
            let mut latencies = Vec::new();
            while Instant::now() < end {
                let started = Instant::now();
                call().await;
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Figures {
        requests: latencies.len(),
        elapsed,
        latencies,
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |value| value.parse().expect(name))
}

#[tokio::main]
async fn main() {
    let concurrency = usize::try_from(arg("--concurrency", 32)).unwrap();
    let length = Duration::from_secs(arg("--seconds", 10));

    let (user, edge) = support::user_and_edge(|config| config.rate_limit = None).await;
    let (access, _, _) = support::sign_up(&edge.http, "bench@example.com").await;
    let authorization = support::bearer(&access);

    // The same gRPC caller, pointed at svc-user directly or at the edge's one port.
    let grpc_to = |addr: std::net::SocketAddr| {
        let authorization = authorization.clone();
        async move {
            let channel = Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            move || {
                let mut client = UserServiceClient::new(channel.clone());
                let authorization = authorization.clone();
                async move {
                    let mut request = tonic::Request::new(GetMeRequest {});
                    request
                        .metadata_mut()
                        .insert("authorization", authorization.parse().unwrap());
                    client.get_me(request).await.unwrap();
                }
            }
        }
    };
    let grpc = grpc_to(user.grpc).await;
    let grpc_through_edge = grpc_to(edge.addr).await;

    let http: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("http://{}/v1/me", edge.addr).parse().unwrap();
    let rest = move || {
        let request = http::Request::get(uri.clone())
            .header("authorization", &authorization)
            .body(Empty::new())
            .unwrap();
        let http = http.clone();
        async move {
            let response = http.request(request).await.unwrap();
            assert_eq!(response.status(), http::StatusCode::OK);
            response.into_body().collect().await.unwrap();
        }
    };

    println!("GetMe, {concurrency} concurrent callers, {length:?} per path, after a 2 s warm-up");
    let direct = measure(concurrency, length, grpc).await;
    let grpc_edge = measure(concurrency, length, grpc_through_edge).await;
    let through_edge = measure(concurrency, length, rest).await;

    println!(
        "{:<28} {:>10} {:>9} {:>9} {:>9}",
        "path", "req/s", "p50 ms", "p99 ms", "requests"
    );
    for (name, figures) in [
        ("gRPC direct", &direct),
        ("gRPC through the edge", &grpc_edge),
        ("REST through the edge", &through_edge),
    ] {
        println!(
            "{:<28} {:>10.0} {:>9.2} {:>9.2} {:>9}",
            name,
            figures.throughput(),
            ms(figures.percentile(0.50)),
            ms(figures.percentile(0.99)),
            figures.requests
        );
    }
    for (name, figures) in [("gRPC", &grpc_edge), ("REST", &through_edge)] {
        println!(
            "ratio {name} through the edge / direct: throughput {:.2}, p99 {:.2}",
            figures.throughput() / direct.throughput(),
            ms(figures.percentile(0.99)) / ms(direct.percentile(0.99))
        );
    }
}
