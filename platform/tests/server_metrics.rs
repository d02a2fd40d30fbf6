//! autometrics series carry the service's own name and are served on `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use autometrics::autometrics;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use runmesh_platform::config::Settings;
use runmesh_platform::telemetry;
use tokio_util::sync::CancellationToken;

const SERVICE_NAME: &str = "runmesh-metrics-test";

#[autometrics]
fn record_a_run(distance_m: u32) -> Result<u32, String> {
    if distance_m == 0 {
        Err("empty run".to_owned())
    } else {
        Ok(distance_m)
    }
}

async fn get(addr: SocketAddr, path: &str) -> (http::StatusCode, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn metrics_are_labelled_with_the_service_name() {
    let settings = Settings::default();
    telemetry::init(&settings, SERVICE_NAME).unwrap();
    // Tests (and `runmesh up`) may initialise twice with the same name.
    telemetry::init(&settings, SERVICE_NAME).unwrap();
    assert!(telemetry::init(&settings, "another-name").is_err());

    record_a_run(5000).unwrap();
    let shutdown = CancellationToken::new();
    let metrics = telemetry::serve_metrics("127.0.0.1:0".parse().unwrap(), shutdown.clone())
        .await
        .unwrap();

    let (status, body) = get(metrics.local_addr(), "/metrics").await;

    assert_eq!(status, http::StatusCode::OK);
    let series: Vec<&str> = body
        .lines()
        .filter(|line| line.starts_with("function_calls_total{"))
        .filter(|line| line.contains("function=\"record_a_run\""))
        .collect();
    assert!(
        !series.is_empty(),
        "no function_calls_total series in:\n{body}"
    );
    assert!(
        series
            .iter()
            .all(|line| line.contains(&format!("service_name=\"{SERVICE_NAME}\""))),
        "{series:?}"
    );

    shutdown.cancel();
    metrics.stopped().await.unwrap();
}
