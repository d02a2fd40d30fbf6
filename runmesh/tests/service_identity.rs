//! Internal RPCs need a service identity, against the real binary: `runmesh up` (one process, a
//! random mesh key) and `runmesh serve` (one process per component, sharing
//! `RUNMESH_SERVICE_SECRET`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runmesh_platform::auth::{MeshKey, SERVICE_TOKEN_HEADER, ServiceTokenIssuer};
use runmesh_platform::testkit::{TestDatabase, assert_status, free_port};
use runmesh_proto::runmesh::race::v1::ListMyRegistrationsRequest;
use runmesh_proto::runmesh::race::v1::race_service_client::RaceServiceClient;
use runmesh_proto::runmesh::user::v1::user_internal_service_client::UserInternalServiceClient;
use runmesh_proto::runmesh::user::v1::user_service_client::UserServiceClient;
use runmesh_proto::runmesh::user::v1::{GetJwksRequest, GetUsersRequest, SignUpRequest, User};
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const SECRET: &str = "a-shared-secret-for-the-whole-test-deployment";

/// A runmesh process, killed when dropped.
struct Process {
    child: Child,
    grpc: String,
    http: String,
    _data: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// `runmesh <args>` on free loopback ports with `vars`, without the environment's database,
/// Redis, Kafka or secret.
fn spawn(args: &[&str], vars: &[(&str, &str)]) -> Process {
    let data = tempfile::tempdir().unwrap();
    let grpc = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_runmesh"));
    command
        .args(args)
        .env("RUNMESH_GRPC_ADDR", &grpc)
        .env("RUNMESH_HTTP_ADDR", &http)
        .env("RUNMESH_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("RUNMESH_DATA_DIR", data.path())
        .env("RUNMESH_SHUTDOWN_DELAY", "100ms")
        .env("RUNMESH_LOG", "warn")
        .env_remove("RUNMESH_DATABASE_URL")
        .env_remove("RUNMESH_REDIS_URL")
        .env_remove("RUNMESH_KAFKA_BROKERS")
        .env_remove("RUNMESH_SERVICE_SECRET")
        .env_remove("RUNMESH_PEER_USER")
        .env_remove("RUNMESH_EDGE_UPSTREAM")
        .env_remove("RUNMESH_EDGE_UPSTREAMS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (variable, value) in vars {
        command.env(variable, value);
    }
    Process {
        child: command.spawn().unwrap(),
        grpc,
        http,
        _data: data,
    }
}

fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

async fn wait_serving(process: &mut Process) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = HealthClient::new(channel(&process.grpc))
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(|reply| reply.into_inner().status());
        if status.ok() == Some(ServingStatus::Serving) {
            return;
        }
        if let Some(exit) = process.child.try_wait().unwrap() {
            panic!("runmesh exited before serving: {exit:?}");
        }
        assert!(Instant::now() < deadline, "never SERVING");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Waits until the edge answers `path` with 200 and returns the answer.
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

/// Signs a runner up at `addr`; (the user, an access token).
async fn sign_up(addr: &str, email: &str) -> (User, String) {
    let reply = UserServiceClient::new(channel(addr))
        .sign_up(SignUpRequest {
            email: email.to_owned(),
            password: "Intervals on the track, 8x400".to_owned(),
            display_name: "Runner".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    (reply.user.unwrap(), reply.tokens.unwrap().access_token)
}

fn lookup(user: &User, metadata: &[(&'static str, String)]) -> Request<GetUsersRequest> {
    let mut request = Request::new(GetUsersRequest {
        user_ids: vec![user.id.clone()],
    });
    for (name, value) in metadata {
        request.metadata_mut().insert(*name, value.parse().unwrap());
    }
    request
}

async fn get_users(
    addr: &str,
    request: Request<GetUsersRequest>,
) -> Result<Vec<User>, tonic::Status> {
    UserInternalServiceClient::new(channel(addr))
        .get_users(request)
        .await
        .map(|reply| reply.into_inner().users)
}

#[tokio::test]
async fn up_refuses_internal_rpcs_without_a_service_identity_and_the_edge_still_serves_the_keys() {
    let mut up = spawn(&["up"], &[]);
    wait_serving(&mut up).await;
    let (user, runner_token) = sign_up(&up.grpc, "identity-up@example.org").await;

    let anonymous = get_users(&up.grpc, lookup(&user, &[])).await.unwrap_err();
    assert_status(&anonymous, Code::Unauthenticated, "SERVICE_TOKEN_REQUIRED");
    let runner = get_users(
        &up.grpc,
        lookup(
            &user,
            &[("authorization", format!("Bearer {runner_token}"))],
        ),
    )
    .await
    .unwrap_err();
    assert_status(&runner, Code::Unauthenticated, "SERVICE_TOKEN_REQUIRED");
    let runner_as_service = get_users(
        &up.grpc,
        lookup(&user, &[(SERVICE_TOKEN_HEADER, runner_token.clone())]),
    )
    .await
    .unwrap_err();
    assert_status(
        &runner_as_service,
        Code::Unauthenticated,
        "SERVICE_TOKEN_INVALID",
    );
    // The process's key is its own: a token signed with any other is forged.
    let forged = ServiceTokenIssuer::new("race", MeshKey::random())
        .token("user")
        .unwrap();
    let forged = get_users(&up.grpc, lookup(&user, &[(SERVICE_TOKEN_HEADER, forged)]))
        .await
        .unwrap_err();
    assert_status(&forged, Code::Unauthenticated, "SERVICE_TOKEN_INVALID");
    let keys = UserInternalServiceClient::new(channel(&up.grpc))
        .get_jwks(GetJwksRequest {})
        .await
        .unwrap_err();
    assert_status(&keys, Code::Unauthenticated, "SERVICE_TOKEN_REQUIRED");

    // The edge, a component of the same process, holds the process's key.
    let jwks = wait_http_ok(&up.http, "/.well-known/jwks.json").await;
    assert!(jwks.contains("\"kty\":\"OKP\""), "{jwks}");
}

/// Runs `runmesh serve <service>` with `vars` and returns its exit code and stderr; it must stop
/// on its own within 30 s.
fn serve_expecting_refusal(service: &str, vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let data = tempfile::tempdir().unwrap();
    let stderr_path = data.path().join("stderr.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_runmesh"));
    command
        .args(["serve", service])
        .env("RUNMESH_DATA_DIR", data.path())
        .env("RUNMESH_GRPC_ADDR", "127.0.0.1:0")
        .env("RUNMESH_HTTP_ADDR", "127.0.0.1:0")
        .env("RUNMESH_METRICS_ADDR", "127.0.0.1:0")
        .env_remove("RUNMESH_DATABASE_URL")
        .env_remove("RUNMESH_SERVICE_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    for (variable, value) in vars {
        command.env(variable, value);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("runmesh serve {service} with {vars:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code(),
        std::fs::read_to_string(&stderr_path).unwrap(),
    )
}

#[test]
fn serve_refuses_to_start_without_a_good_service_secret() {
    for service in ["user", "race", "edge"] {
        let (code, stderr) = serve_expecting_refusal(service, &[]);
        assert_eq!(code, Some(2), "serve {service}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
        assert!(
            stderr.contains("RUNMESH_SERVICE_SECRET"),
            "serve {service}: {stderr}"
        );
    }
    let (code, stderr) =
        serve_expecting_refusal("race", &[("RUNMESH_SERVICE_SECRET", "short-secret")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("runmesh: RUNMESH_SERVICE_SECRET: must be at least 32 bytes"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("short-secret"),
        "the secret is never echoed"
    );
}

/// `runmesh serve user`, `runmesh serve race` and `runmesh serve edge` as separate processes on
/// PostgreSQL: race verifies runners' tokens with keys fetched from user's internal `GetJwks`,
/// the edge serves them as `/.well-known/jwks.json`, both with service tokens signed with the
/// shared secret; a process with another secret is refused.
#[tokio::test]
async fn per_service_processes_prove_their_identity_with_the_shared_secret() {
    let user_db = TestDatabase::create().await.unwrap();
    let race_db = TestDatabase::create().await.unwrap();
    let mut user = spawn(
        &["serve", "user"],
        &[
            ("RUNMESH_DATABASE_URL", &user_db.url),
            ("RUNMESH_SERVICE_SECRET", SECRET),
        ],
    );
    wait_serving(&mut user).await;
    let peer_user = format!("http://{}", user.grpc);
    let mut race = spawn(
        &["serve", "race"],
        &[
            ("RUNMESH_DATABASE_URL", &race_db.url),
            ("RUNMESH_SERVICE_SECRET", SECRET),
            ("RUNMESH_PEER_USER", &peer_user),
        ],
    );
    let edge = spawn(
        &["serve", "edge"],
        &[
            ("RUNMESH_SERVICE_SECRET", SECRET),
            ("RUNMESH_EDGE_UPSTREAM", ""),
            (
                "RUNMESH_EDGE_UPSTREAMS",
                &format!(
                    "runmesh.user.v1.UserService={peer_user},runmesh.user.v1.UserInternalService={peer_user}"
                ),
            ),
        ],
    );
    wait_serving(&mut race).await;
    let (runner, runner_token) = sign_up(&user.grpc, "identity-serve@example.org").await;

    // Race fetched user's keys (an internal call with race's service token).
    let mut request = Request::new(ListMyRegistrationsRequest::default());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {runner_token}").parse().unwrap(),
    );
    RaceServiceClient::new(channel(&race.grpc))
        .list_my_registrations(request)
        .await
        .unwrap();

    // The edge's own internal call works with the same secret.
    let jwks = wait_http_ok(&edge.http, "/.well-known/jwks.json").await;
    assert!(jwks.contains("\"kty\":\"OKP\""), "{jwks}");

    // On user's own port: refused without a token, served with one signed with the secret.
    let anonymous = get_users(&user.grpc, lookup(&runner, &[]))
        .await
        .unwrap_err();
    assert_status(&anonymous, Code::Unauthenticated, "SERVICE_TOKEN_REQUIRED");
    let mesh = MeshKey::from_secret(SECRET.as_bytes()).unwrap();
    let token = ServiceTokenIssuer::new("race", mesh.clone())
        .token("user")
        .unwrap();
    let users = get_users(
        &user.grpc,
        lookup(&runner, &[(SERVICE_TOKEN_HEADER, token)]),
    )
    .await
    .unwrap();
    assert_eq!(users, std::slice::from_ref(&runner));
    let for_race = ServiceTokenIssuer::new("edge", mesh).token("race").unwrap();
    let other_audience = get_users(
        &user.grpc,
        lookup(&runner, &[(SERVICE_TOKEN_HEADER, for_race)]),
    )
    .await
    .unwrap_err();
    assert_status(
        &other_audience,
        Code::PermissionDenied,
        "SERVICE_NOT_ALLOWED",
    );

    // A race process with another secret cannot fetch the keys, so it cannot verify runners.
    let stranger_db = TestDatabase::create().await.unwrap();
    let mut stranger = spawn(
        &["serve", "race"],
        &[
            ("RUNMESH_DATABASE_URL", &stranger_db.url),
            (
                "RUNMESH_SERVICE_SECRET",
                "another-secret-of-another-deployment-entirely",
            ),
            ("RUNMESH_PEER_USER", &peer_user),
        ],
    );
    wait_serving(&mut stranger).await;
    let mut request = Request::new(ListMyRegistrationsRequest::default());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {runner_token}").parse().unwrap(),
    );
    let refused = RaceServiceClient::new(channel(&stranger.grpc))
        .list_my_registrations(request)
        .await
        .unwrap_err();
    assert_status(&refused, Code::Unavailable, "AUTH_KEYS_UNAVAILABLE");
}
