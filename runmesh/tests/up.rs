//! The binary as an operator runs it: `runmesh up` on embedded defaults, a clean SIGTERM, and
//! one-line configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use runmesh_platform::testkit::free_port;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

struct Up {
    child: Child,
    grpc: String,
    http: String,
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
    spawn_up(None)
}

/// `runmesh up`, with `log` as its `RUNMESH_LOG` and its stderr piped when given.
fn spawn_up(log: Option<&str>) -> Up {
    let data = tempfile::tempdir().unwrap();
    let grpc = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_runmesh"));
    command
        .arg("up")
        .env("RUNMESH_GRPC_ADDR", &grpc)
        .env("RUNMESH_HTTP_ADDR", &http)
        .env("RUNMESH_METRICS_ADDR", &metrics)
        .env("RUNMESH_DATA_DIR", data.path())
        .env("RUNMESH_SHUTDOWN_DELAY", "500ms")
        .env_remove("RUNMESH_DATABASE_URL")
        .env_remove("RUNMESH_REDIS_URL")
        .env_remove("RUNMESH_KAFKA_BROKERS")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(log) = log {
        command
            .env("RUNMESH_LOG", log)
            .env("RUNMESH_LOG_FORMAT", "json")
            .stderr(Stdio::piped());
    }
    let child = command.spawn().unwrap();
    Up {
        child,
        grpc,
        http,
        metrics,
        _data: data,
    }
}

/// `runmesh up` logging every gRPC call as it starts, and how many calls to `rpc` (a method's
/// path) its server has started so far: calls truly in flight at the server.
fn start_up_counting_calls(rpc: &'static str) -> (Up, Arc<AtomicUsize>) {
    // The call span (for its `rpc` field) and tower-http's "started processing request".
    let mut up = spawn_up(Some(
        "warn,runmesh_platform::server::call=info,tower_http::trace::on_request=debug",
    ));
    let stderr = up.child.stderr.take().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&started);
    // Reads to the end, so the process never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("started processing request") && line.contains(rpc) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (up, started)
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

    wait_http_ok(&up.metrics, "/metrics").await;

    // The edge serves REST/JSON in the same process, derived from the contracts.
    wait_http_ok(&up.http, "/readyz").await;
    let openapi = http_get(&up.http, "/openapi.json").await;
    assert!(openapi.contains("/v1/auth/sign-up"), "{openapi}");
    let anonymous = http_get(&up.http, "/v1/me").await;
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");

    sigterm(&up.child);
    let status = wait_for_exit(&mut up.child).await;
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

async fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "runmesh up did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sigterm(child: &Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// The answer to `GET path`, or "no answer: …" while nothing listens at `addr` yet (`runmesh up`
/// reports SERVING on its gRPC port before its HTTP and metrics ports are bound).
async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(error) => return format!("no answer: {error}"),
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// Waits until `path` at `addr` answers 200 and returns the answer.
async fn wait_http_ok(addr: &str, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = http_get(addr, path).await;
        if response.starts_with("HTTP/1.1 200") {
            return response;
        }
        assert!(Instant::now() < deadline, "{path}: {response}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sign-ups hash passwords with argon2, so they are real work in flight when SIGTERM lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_reports_not_serving_finishes_in_flight_calls_and_exits_0() {
    use runmesh_proto::runmesh::user::v1::SignUpRequest;
    use runmesh_proto::runmesh::user::v1::user_service_client::UserServiceClient;
    use tonic_health::pb::HealthCheckRequest;

    const SIGN_UPS: usize = 12;
    let (mut up, started) = start_up_counting_calls("/runmesh.user.v1.UserService/SignUp");
    wait_serving(&up.grpc).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", up.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );

    let calls: Vec<_> = (0..SIGN_UPS)
        .map(|i| {
            let mut client = UserServiceClient::new(channel.clone());
            tokio::spawn(async move {
                client
                    .sign_up(SignUpRequest {
                        email: format!("load-{i}-{}@example.com", std::process::id()),
                        password: "a long and uncommon passphrase".to_string(),
                        display_name: format!("Runner {i}"),
                    })
                    .await
            })
        })
        .collect();
    // SIGTERM once the server has started every sign-up: those are the calls it must finish.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let count = started.load(Ordering::SeqCst);
        if count >= SIGN_UPS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {count} of {SIGN_UPS} sign-ups reached the server within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sigterm(&up.child);

    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("health changes after SIGTERM")
        .unwrap()
        .unwrap();
    assert_eq!(next.status(), ServingStatus::NotServing);

    for call in futures::future::join_all(calls).await {
        let reply = call.unwrap();
        assert!(reply.is_ok(), "in-flight call completed: {reply:?}");
    }
    let status = wait_for_exit(&mut up.child).await;
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

#[tokio::test]
async fn metrics_carry_the_process_service_name_after_a_call() {
    use runmesh_proto::runmesh::user::v1::SignUpRequest;
    use runmesh_proto::runmesh::user::v1::user_service_client::UserServiceClient;

    let up = start_up();
    wait_serving(&up.grpc).await;
    let mut client = UserServiceClient::connect(format!("http://{}", up.grpc))
        .await
        .unwrap();
    let refused = client
        .sign_up(SignUpRequest {
            email: "not an email".to_string(),
            password: "x".to_string(),
            display_name: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    let metrics = wait_http_ok(&up.metrics, "/metrics").await;
    let series = metrics
        .lines()
        .find(|line| line.starts_with("function_calls_total") && line.contains("sign_up"))
        .unwrap_or_else(|| panic!("a sign_up series in {metrics}"));
    assert!(series.contains("service_name=\"runmesh\""), "{series}");
}

/// Runs `runmesh up` with `vars` (over a temporary data dir, ports the system picks and no
/// Redis, Kafka or database of the environment) and waits at most 30 s for it to stop: these
/// runs are meant to be refused at once, and one that starts serving instead must not hang the
/// test.
fn run_up_expecting_refusal(vars: &[(&str, &str)]) -> Output {
    let data = tempfile::tempdir().unwrap();
    let stdout_path = data.path().join("stdout.log");
    let stderr_path = data.path().join("stderr.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_runmesh"));
    command
        .arg("up")
        .env("RUNMESH_DATA_DIR", data.path().join("data"))
        .env("RUNMESH_GRPC_ADDR", "127.0.0.1:0")
        .env("RUNMESH_HTTP_ADDR", "127.0.0.1:0")
        .env("RUNMESH_METRICS_ADDR", "127.0.0.1:0")
        .env_remove("RUNMESH_DATABASE_URL")
        .env_remove("RUNMESH_REDIS_URL")
        .env_remove("RUNMESH_KAFKA_BROKERS")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    for (variable, value) in vars {
        command.env(variable, value);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = std::fs::read(&stdout_path).unwrap();
    let stderr = std::fs::read(&stderr_path).unwrap();
    let status = status.unwrap_or_else(|| {
        panic!(
            "runmesh up with {vars:?} was still running after 30 s (killed); stderr: {}",
            String::from_utf8_lossy(&stderr)
        )
    });
    Output {
        status,
        stdout,
        stderr,
    }
}

#[test]
fn a_bad_setting_stops_the_process_with_one_line_naming_the_variable() {
    for (variable, value) in [
        ("RUNMESH_GRPC_ADDR", "nonsense"),
        ("RUNMESH_REDIS_URL", "http://example.invalid"),
        ("RUNMESH_SHUTDOWN_GRACE", "soon"),
    ] {
        let output = run_up_expecting_refusal(&[(variable, value)]);
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
        assert!(stderr.contains(variable), "{stderr:?} names {variable}");
    }
}

#[test]
fn up_refuses_a_database_url_it_would_share_between_services() {
    let output = run_up_expecting_refusal(&[(
        "RUNMESH_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/x",
    )]);
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
