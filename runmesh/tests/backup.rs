//! `runmesh backup` copies a serving `runmesh up` online, while runners sign up, and `runmesh
//! restore` puts the copy back: the restored data directory holds exactly what the backup holds
//! (checksums, integrity check, the same accounts), every runner signed up before the backup
//! started can sign in to a `runmesh up` started on it, and restore refuses the data directory
//! of a running instance (and one holding data, without --force). The real binary throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runmesh_platform::testkit::{free_port, scrape_metrics};
use runmesh_proto::runmesh::user::v1::user_service_client::UserServiceClient;
use runmesh_proto::runmesh::user::v1::{SignInRequest, SignUpRequest};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const PASSWORD: &str = "correct horse battery staple 42";
/// Runners signing up at once, before, during and after the backup.
const WRITERS: usize = 3;
/// Accounts committed before the backup starts.
const BEFORE: usize = 6;

/// `runmesh <args>` on `data`, embedded defaults only.
fn runmesh(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runmesh"));
    command
        .env("RUNMESH_DATA_DIR", data)
        .env("RUNMESH_SHUTDOWN_DELAY", "100ms")
        .env("RUNMESH_LOG", "warn")
        .env_remove("RUNMESH_CONFIG")
        .env_remove("RUNMESH_DATABASE_URL")
        .env_remove("RUNMESH_REDIS_URL")
        .env_remove("RUNMESH_KAFKA_BROKERS");
    command
}

/// `runmesh up` on `data` on fresh loopback ports; its gRPC address.
fn start(data: &Path) -> (Child, String) {
    start_with_metrics(data, &format!("127.0.0.1:{}", free_port()))
}

fn start_with_metrics(data: &Path, metrics: &str) -> (Child, String) {
    let grpc = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(log_path(data)).unwrap();
    let child = runmesh(data)
        .arg("up")
        .env("RUNMESH_GRPC_ADDR", &grpc)
        .env("RUNMESH_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("RUNMESH_METRICS_ADDR", metrics)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    (child, grpc)
}

/// Where `runmesh up` on `data` logs (beside the data directory, not in it).
fn log_path(data: &Path) -> std::path::PathBuf {
    data.with_extension("log")
}

/// Prints the logs of the `runmesh up` processes when the test fails.
struct LogsOnFailure(Vec<std::path::PathBuf>);

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for path in &self.0 {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                eprintln!("--- {} ---\n{text}", path.display());
            }
        }
    }
}

async fn wait_serving(child: &mut Child, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
        if let Ok(channel) = endpoint.connect().await {
            let reply = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            if reply.is_ok_and(|reply| reply.into_inner().status() == ServingStatus::Serving) {
                return;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "runmesh up exited while starting"
        );
        assert!(
            Instant::now() < deadline,
            "runmesh up never reported SERVING"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn users(addr: &str) -> UserServiceClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .timeout(Duration::from_secs(30))
        .connect_lazy();
    UserServiceClient::new(channel)
}

/// Runs `command` to completion off the async runtime.
async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn said(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn open(path: &Path) -> DatabaseConnection {
    Database::connect(format!("sqlite://{}?mode=ro", path.display()))
        .await
        .unwrap()
}

async fn strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// Signs up runners one after the other until `stop`, each email recorded as attempted before the
/// call and as committed once it answered.
async fn writer(
    index: usize,
    addr: String,
    stop: Arc<AtomicBool>,
    attempted: Arc<Mutex<BTreeSet<String>>>,
    committed: Arc<Mutex<BTreeSet<String>>>,
) {
    let mut client = users(&addr);
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let email = format!("backup-{index}-{n}@example.com");
        n += 1;
        attempted.lock().unwrap().insert(email.clone());
        client
            .sign_up(SignUpRequest {
                email: email.clone(),
                password: PASSWORD.to_owned(),
                display_name: format!("runner {index}-{n}"),
            })
            .await
            .unwrap();
        committed.lock().unwrap().insert(email);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_while_serving_restores_to_the_same_state() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let backup = tmp.path().join("backup");
    let restored = tmp.path().join("restored");
    let _logs = LogsOnFailure(vec![log_path(&data), log_path(&restored)]);

    let metrics = format!("127.0.0.1:{}", free_port());
    let (mut up, grpc) = start_with_metrics(&data, &metrics);
    wait_serving(&mut up, &grpc).await;

    let stop = Arc::new(AtomicBool::new(false));
    let attempted = Arc::new(Mutex::new(BTreeSet::new()));
    let committed = Arc::new(Mutex::new(BTreeSet::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|index| {
            tokio::spawn(writer(
                index,
                grpc.clone(),
                stop.clone(),
                attempted.clone(),
                committed.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed.lock().unwrap().len() < BEFORE {
        assert!(
            Instant::now() < deadline,
            "runners could not sign up in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The backup, while the runners go on signing up.
    let before = committed.lock().unwrap().clone();
    let mut command = runmesh(&data);
    command.arg("backup").arg(&backup);
    let output = run(command).await;
    assert!(output.status.success(), "backup failed: {}", said(&output));
    let attempted_by_then = attempted.lock().unwrap().clone();
    // Writes went on during the backup (at least the ones under way when it started).
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed.lock().unwrap().len() < before.len() + WRITERS {
        assert!(Instant::now() < deadline, "runners stopped signing up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Restore refuses the data directory of the running instance, even with --force.
    for force in [false, true] {
        let mut command = runmesh(&data);
        command.arg("restore").arg(&backup);
        if force {
            command.arg("--force");
        }
        let output = run(command).await;
        assert!(
            !output.status.success(),
            "restore over a running instance: {}",
            said(&output)
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("serves from it"),
            "{}",
            said(&output)
        );
    }

    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    // The domain and platform metrics are exported beside autometrics' (docs/operations.md).
    let exported = scrape_metrics(metrics).await;
    for series in [
        "runmesh_user_sign_ups_total{outcome=\"created\"}",
        "runmesh_health_serving{grpc_service=\"runmesh.user.v1.UserService\"} 1",
        "# TYPE runmesh_race_register_answers counter",
        "# TYPE runmesh_event_delivery_delay_seconds histogram",
    ] {
        assert!(exported.contains(series), "no {series} in:\n{exported}");
    }
    up.kill().unwrap();
    up.wait().unwrap();

    // The manifest lists every service's database, checked and summed.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap())
            .unwrap();
    let files = manifest["files"].as_array().unwrap();
    let databases: BTreeSet<&str> = files
        .iter()
        .filter(|file| file["kind"] == "sqlite")
        .map(|file| file["path"].as_str().unwrap())
        .collect();
    for service in ["user.db", "run.db", "race.db"] {
        assert!(databases.contains(service), "{databases:?}");
    }
    for file in files {
        let path = backup.join(file["path"].as_str().unwrap());
        assert_eq!(file["sha256"].as_str().unwrap(), sha256(&path), "{path:?}");
        if file["kind"] == "sqlite" {
            assert_eq!(file["integrity"], "ok");
            assert!(file["migration"].is_string(), "{file}");
        }
    }

    // Restore into a fresh directory: the same files, intact.
    let mut command = runmesh(&restored);
    command.arg("restore").arg(&backup);
    let output = run(command).await;
    assert!(output.status.success(), "restore failed: {}", said(&output));
    for file in files {
        let relative = file["path"].as_str().unwrap();
        assert_eq!(
            sha256(&restored.join(relative)),
            file["sha256"].as_str().unwrap(),
            "{relative} differs from the backup"
        );
    }
    let restored_db = open(&restored.join("user.db")).await;
    assert_eq!(
        strings(&restored_db, "PRAGMA integrity_check").await,
        ["ok"]
    );
    let emails: BTreeSet<String> = strings(&restored_db, "SELECT email FROM users")
        .await
        .into_iter()
        .collect();
    restored_db.close().await.unwrap();
    let backed_up_db = open(&backup.join("user.db")).await;
    let backed_up: BTreeSet<String> = strings(&backed_up_db, "SELECT email FROM users")
        .await
        .into_iter()
        .collect();
    backed_up_db.close().await.unwrap();
    assert_eq!(emails, backed_up);
    // Everyone committed before the backup started is in it; nobody who had not even been
    // attempted when it ended.
    assert!(
        before.is_subset(&emails),
        "missing: {:?}",
        before.difference(&emails).collect::<Vec<_>>()
    );
    assert!(
        emails.is_subset(&attempted_by_then),
        "from after the backup: {:?}",
        emails.difference(&attempted_by_then).collect::<Vec<_>>()
    );

    // Restore refuses a directory holding data unless --force.
    let mut command = runmesh(&restored);
    command.arg("restore").arg(&backup);
    let output = run(command).await;
    assert!(!output.status.success(), "{}", said(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--force"),
        "{}",
        said(&output)
    );

    // runmesh up on the restored directory: the runners sign in, and new ones sign up.
    let (mut up, grpc) = start(&restored);
    wait_serving(&mut up, &grpc).await;
    let mut client = users(&grpc);
    for email in &before {
        client
            .sign_in(SignInRequest {
                email: email.clone(),
                password: PASSWORD.to_owned(),
            })
            .await
            .unwrap_or_else(|status| panic!("{email} cannot sign in: {status:?}"));
    }
    client
        .sign_up(SignUpRequest {
            email: "after-restore@example.com".to_owned(),
            password: PASSWORD.to_owned(),
            display_name: "after restore".to_owned(),
        })
        .await
        .unwrap();
    up.kill().unwrap();
    up.wait().unwrap();
}
