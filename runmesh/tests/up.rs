//! The binary as an operator runs it: `runmesh up` on embedded defaults, a clean SIGTERM, and
//! one-line configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runmesh_platform::testkit::free_port;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

struct Up {
    child: Child,
    grpc: String,
    metrics: String,
    _data: tempfile::TempDir,
}

impl Drop for Up {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn start_up() -> Up {
    let data = tempfile::tempdir().unwrap();
    let grpc = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_runmesh"))
        .arg("up")
        .env("RUNMESH_GRPC_ADDR", &grpc)
        .env("RUNMESH_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("RUNMESH_METRICS_ADDR", &metrics)
        .env("RUNMESH_DATA_DIR", data.path())
        .env("RUNMESH_SHUTDOWN_DELAY", "500ms")
        .env_remove("RUNMESH_DATABASE_URL")
        .env_remove("RUNMESH_REDIS_URL")
        .env_remove("RUNMESH_KAFKA_BROKERS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Up {
        child,
        grpc,
        metrics,
        _data: data,
    }
}

async fn server_status(addr: &str) -> Option<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .ok()?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()?;
    Some(reply.into_inner().status())
}

async fn wait_serving(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while server_status(addr).await != Some(ServingStatus::Serving) {
        assert!(
            Instant::now() < deadline,
            "runmesh up never reported SERVING"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn up_serves_health_and_metrics_and_drains_on_sigterm() {
    let mut up = start_up();
    wait_serving(&up.grpc).await;

    let healthcheck = Command::new(env!("CARGO_BIN_EXE_runmesh"))
        .args(["healthcheck", "--addr", &up.grpc])
        .output()
        .unwrap();
    assert!(healthcheck.status.success(), "{healthcheck:?}");

    let metrics = tokio::net::TcpStream::connect(&up.metrics).await;
    assert!(metrics.is_ok(), "metrics endpoint listens");

    let pid = up.child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = up.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "runmesh up did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

#[test]
fn a_bad_setting_stops_the_process_with_one_line_naming_the_variable() {
    for (variable, value) in [
        ("RUNMESH_GRPC_ADDR", "nonsense"),
        ("RUNMESH_REDIS_URL", "http://example.invalid"),
        ("RUNMESH_SHUTDOWN_GRACE", "soon"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_runmesh"))
            .arg("up")
            .env(variable, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
        assert!(stderr.contains(variable), "{stderr:?} names {variable}");
    }
}

#[test]
fn up_refuses_a_database_url_it_would_share_between_services() {
    let output = Command::new(env!("CARGO_BIN_EXE_runmesh"))
        .arg("up")
        .env(
            "RUNMESH_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/x",
        )
        .env("RUNMESH_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("RUNMESH_DATABASE_URL"), "{stderr}");
}

#[test]
fn help_explains_every_command() {
    let output = Command::new(env!("CARGO_BIN_EXE_runmesh"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for command in ["up", "serve", "migrate", "healthcheck"] {
        assert!(help.contains(command), "--help mentions {command}: {help}");
    }
}
