//! Embedded mode loses no event and doubles none across crashes: the real `runmesh up`, with the
//! delivery audit on as its test consumer, is killed with SIGKILL at random moments while
//! runners sign up and edit their profiles, and restarted on the same data directory. In the
//! end the audit has every event svc-user committed, each handled once, each runner's in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use rand::Rng;
use runmesh_platform::events::audit;
use runmesh_platform::testkit::free_port;
use runmesh_proto::runmesh::user::v1::user_service_client::UserServiceClient;
use runmesh_proto::runmesh::user::v1::{
    GetMeRequest, SignInRequest, SignUpRequest, UpdateProfileRequest, UserProfileUpdated,
    UserRegistered,
};
use sea_orm::{EntityTrait, PaginatorTrait, QueryOrder};
use tokio::sync::watch;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const RUNNERS: usize = 6;
/// Each runner edits at least this often, and goes on until the last kill is behind it.
const MIN_EDITS: usize = 10;
const KILLS: usize = 5;
/// Events audited since the previous kill before the next one may come.
const EVENTS_BETWEEN_KILLS: u64 = 30;
const PASSWORD: &str = "correct horse battery staple 42";

/// `runmesh up` on `data`, with the delivery audit, on fresh loopback ports.
fn start(data: &Path) -> (Child, String) {
    let grpc = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_runmesh"))
        .arg("up")
        .env("RUNMESH_GRPC_ADDR", &grpc)
        .env("RUNMESH_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("RUNMESH_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("RUNMESH_DATA_DIR", data)
        .env("RUNMESH_EVENT_AUDIT", "true")
        .env("RUNMESH_SHUTDOWN_DELAY", "100ms")
        .env_remove("RUNMESH_DATABASE_URL")
        .env_remove("RUNMESH_REDIS_URL")
        .env_remove("RUNMESH_KAFKA_BROKERS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, grpc)
}

async fn serving(addr: &str) -> bool {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(format!("http://{addr}")) else {
        return false;
    };
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    reply.is_ok_and(|reply| reply.into_inner().status() == ServingStatus::Serving)
}

async fn wait_serving(child: &mut Child, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !serving(addr).await {
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

fn display_name(runner: usize, edit: usize) -> String {
    format!("runner {runner} edit {edit}")
}

/// The server's address while it is up; `None` while it is down.
type Address = watch::Receiver<Option<String>>;

async fn client(address: &mut Address) -> UserServiceClient<Channel> {
    loop {
        let current = address.borrow_and_update().clone();
        if let Some(addr) = current {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .timeout(Duration::from_secs(10))
                .connect_lazy();
            return UserServiceClient::new(channel);
        }
        address.changed().await.unwrap();
    }
}

fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Waits out an outage: until the address changes (the server is back on new ports).
async fn after_outage(address: &mut Address) {
    tokio::time::sleep(Duration::from_millis(50)).await;
    if address.has_changed().unwrap_or(false) {
        return;
    }
    tokio::time::timeout(Duration::from_millis(500), address.changed())
        .await
        .ok();
}

/// One runner: signs up, then renames themself, one call at a time, at least `MIN_EDITS` times
/// and until `kills_done`, finding out after each crash whether the interrupted call took
/// effect. Returns the user id and the number of edits that took effect.
async fn runner(
    index: usize,
    mut address: Address,
    kills_done: Arc<AtomicBool>,
) -> (String, usize) {
    let email = format!("crash-runner-{index}-{}@example.com", uuid_suffix());
    let (user_id, mut token) = loop {
        let mut users = client(&mut address).await;
        let signed_up = users
            .sign_up(SignUpRequest {
                email: email.clone(),
                password: PASSWORD.to_owned(),
                display_name: display_name(index, 0),
            })
            .await;
        match signed_up {
            Ok(reply) => {
                let reply = reply.into_inner();
                break (reply.user.unwrap().id, reply.tokens.unwrap().access_token);
            }
            // An earlier attempt committed before the crash.
            Err(status) if status.code() == Code::AlreadyExists => {
                match users
                    .sign_in(SignInRequest {
                        email: email.clone(),
                        password: PASSWORD.to_owned(),
                    })
                    .await
                {
                    Ok(reply) => {
                        let reply = reply.into_inner();
                        break (reply.user.unwrap().id, reply.tokens.unwrap().access_token);
                    }
                    Err(_) => after_outage(&mut address).await,
                }
            }
            Err(_) => after_outage(&mut address).await,
        }
    };
    let mut edit = 1;
    while edit <= MIN_EDITS || !kills_done.load(Ordering::SeqCst) {
        let mut users = client(&mut address).await;
        let wanted = display_name(index, edit);
        let updated = users
            .update_profile(bearer(
                UpdateProfileRequest {
                    display_name: Some(wanted.clone()),
                    ..Default::default()
                },
                &token,
            ))
            .await;
        if updated.is_ok() {
            edit += 1;
            continue;
        }
        after_outage(&mut address).await;
        // Did the interrupted call commit? Ask until the server answers.
        loop {
            let mut users = client(&mut address).await;
            match users.get_me(bearer(GetMeRequest {}, &token)).await {
                Ok(reply) => {
                    if reply.into_inner().user.unwrap().display_name == wanted {
                        edit += 1;
                    }
                    break;
                }
                Err(status) if status.code() == Code::Unauthenticated => {
                    // Access tokens outlive restarts; refresh it anyway if one expired.
                    if let Ok(reply) = users
                        .sign_in(SignInRequest {
                            email: email.clone(),
                            password: PASSWORD.to_owned(),
                        })
                        .await
                    {
                        token = reply.into_inner().tokens.unwrap().access_token;
                    }
                }
                Err(_) => after_outage(&mut address).await,
            }
        }
    }
    (user_id, edit - 1)
}

fn uuid_suffix() -> String {
    let mut rng = rand::rng();
    format!("{:016x}", rng.random::<u64>())
}

async fn audited(data: &Path) -> Vec<audit::Model> {
    let url = format!("sqlite://{}?mode=ro", data.join("audit.db").display());
    let db = runmesh_platform::db::connect(&url).await.unwrap();
    let rows = audit::Entity::find()
        .order_by_asc(audit::Column::Arrival)
        .all(&db)
        .await
        .unwrap();
    db.close().await.ok();
    rows
}

async fn audited_count(data: &Path) -> u64 {
    let url = format!("sqlite://{}?mode=ro", data.join("audit.db").display());
    let Ok(db) = runmesh_platform::db::connect(&url).await else {
        return 0;
    };
    let count = audit::Entity::find().count(&db).await.unwrap_or(0);
    db.close().await.ok();
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_in_a_stream_of_events_loses_none_and_doubles_none() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = start(data.path());
    wait_serving(&mut child, &addr).await;
    let (address_tx, address_rx) = watch::channel(Some(addr));
    let address_tx = Arc::new(address_tx);

    let kills_done = Arc::new(AtomicBool::new(false));
    let runners: Vec<_> = (0..RUNNERS)
        .map(|index| tokio::spawn(runner(index, address_rx.clone(), kills_done.clone())))
        .collect();

    let mut audited_at_kills = Vec::new();
    for _ in 0..KILLS {
        // Each kill falls inside the stream: after events have flowed since the last one (a
        // condition, not a guess at how long a restart takes), at a random moment after that.
        let floor = audited_at_kills.last().copied().unwrap_or(0) + EVENTS_BETWEEN_KILLS;
        let deadline = Instant::now() + Duration::from_secs(120);
        while audited_count(data.path()).await < floor {
            assert!(
                Instant::now() < deadline,
                "no events flowed after restart: the audit holds {}, want {floor}",
                audited_count(data.path()).await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pause = rand::rng().random_range(0..400);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        address_tx.send_replace(None);
        audited_at_kills.push(audited_count(data.path()).await);
        let (mut restarted, addr) = start(data.path());
        wait_serving(&mut restarted, &addr).await;
        child = restarted;
        address_tx.send_replace(Some(addr));
    }
    kills_done.store(true, Ordering::SeqCst);

    let mut finished = Vec::new();
    for runner in runners {
        finished.push(
            tokio::time::timeout(Duration::from_secs(240), runner)
                .await
                .expect("a runner finished its edits")
                .unwrap(),
        );
    }

    // Every kill fell inside the stream: the audit was still growing between kills.
    assert!(
        audited_at_kills.windows(2).all(|pair| pair[0] < pair[1]),
        "events audited at each kill: {audited_at_kills:?}"
    );
    let expected: u64 = finished.iter().map(|(_, edits)| *edits as u64 + 1).sum();
    let deadline = Instant::now() + Duration::from_secs(60);
    while audited_count(data.path()).await < expected {
        assert!(
            Instant::now() < deadline,
            "the audit holds {} of {expected} events",
            audited_count(data.path()).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Anything doubled would still be arriving: give it a moment before the final read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let rows = audited(data.path()).await;
    eprintln!(
        "{} events from {RUNNERS} runners through {KILLS} SIGKILLs; audited at each kill: {audited_at_kills:?}",
        rows.len()
    );
    assert_eq!(rows.len() as u64, expected, "events missing or extra");
    let mut by_runner: HashMap<&str, Vec<String>> = HashMap::new();
    for row in &rows {
        assert_eq!(
            row.times_handled, 1,
            "{} was handled {} times",
            row.event_id, row.times_handled
        );
        let seen = match row.event_type.as_str() {
            "runmesh.user.v1.UserRegistered" => {
                let event = UserRegistered::decode(row.payload.as_slice()).unwrap();
                format!("registered as {}", event.user.unwrap().display_name)
            }
            "runmesh.user.v1.UserProfileUpdated" => {
                let event = UserProfileUpdated::decode(row.payload.as_slice()).unwrap();
                event.user.unwrap().display_name
            }
            other => panic!("unexpected event {other}"),
        };
        by_runner
            .entry(row.aggregate_id.as_str())
            .or_default()
            .push(seen);
    }
    for (index, (user_id, edits)) in finished.iter().enumerate() {
        let mut expected = vec![format!("registered as {}", display_name(index, 0))];
        expected.extend((1..=*edits).map(|edit| display_name(index, edit)));
        assert_eq!(
            by_runner.get(user_id.as_str()),
            Some(&expected),
            "runner {index}'s events missing, doubled or out of order"
        );
    }
}
