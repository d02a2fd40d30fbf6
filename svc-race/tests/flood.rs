//! Flash crowds that try to break the invariants: thousands of runners, with duplicate attempts
//! and retries, racing for a few hundred places across two service instances (run exactly as
//! production runs them, against PostgreSQL, Redis and the broker), with Redis losing every key
//! mid-run, with an instance killed mid-run, and in embedded mode (SQLite + memory).
//!
//! After each flood, from the database: confirmed == capacity, the waitlist full and within its
//! capacity, one registration per runner, distinct places and bibs within the category's range,
//! every answer that said CONFIRMED or WAITLISTED backed by its row, nobody jumped the waitlist
//! and the waitlist kept arrival order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use runmesh_platform::config::Settings;
use runmesh_platform::service::{self, Service};
use runmesh_platform::testkit::{TestIssuer, kafka_brokers, redis_url, unique_name};
use runmesh_proto::runmesh::race::v1 as proto;
use runmesh_proto::runmesh::race::v1::race_service_client::RaceServiceClient;
use runmesh_svc_race::RaceService;
use runmesh_svc_race::store::registration;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use support::*;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

const CAPACITY: u32 = 200;
const WAITLIST: u32 = 100;
const RUNNERS: usize = 2_000;
const CONCURRENCY: usize = 200;
/// How long one runner keeps retrying transient failures.
const RUNNER_PATIENCE: Duration = Duration::from_secs(40);
/// How long a test waits for a flood to reach a point (a first wave of answers) before it calls
/// the flood stalled: well past a runner's patience, well within nextest's hang timeout.
const PROGRESS_DEADLINE: Duration = Duration::from_secs(120);

/// What one runner was finally told, and when it asked and heard.
#[derive(Debug, Clone)]
struct Answer {
    user_id: String,
    started: Instant,
    finished: Instant,
    result: Result<proto::Registration, (Code, String)>,
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// Transport failures, a node going away, a registration still being written, a gate being
/// rebuilt: a client retries these with the same key (on the next node).
fn is_transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::Aborted
            | Code::Cancelled
            | Code::Unknown
            | Code::DeadlineExceeded
    )
}

/// How far a flood got: first attempts answered, and transient failures clients retried.
#[derive(Default)]
struct Progress {
    answered: AtomicUsize,
    retried: AtomicUsize,
}

impl Progress {
    /// Waits until `count` runners heard back on their first attempt; panics if the flood has
    /// not got that far within [`PROGRESS_DEADLINE`].
    async fn wait_for_answers(&self, count: usize) {
        let deadline = Instant::now() + PROGRESS_DEADLINE;
        loop {
            let answered = self.answered.load(Ordering::Relaxed);
            if answered >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the flood stalled: only {answered} of the {count} awaited first attempts were \
                 answered within {:?} ({} transient failures retried)",
                PROGRESS_DEADLINE,
                self.retried.load(Ordering::Relaxed),
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// One runner's attempt as a well-behaved client makes it: retried with the same idempotency key
/// across nodes until it gets a definite answer.
async fn attempt(
    nodes: &[RaceServiceClient<Channel>],
    first_node: usize,
    issuer: &TestIssuer,
    race: &proto::Race,
    user_id: &str,
    key: &str,
    progress: &Progress,
) -> Answer {
    let started = Instant::now();
    let mut node = first_node;
    loop {
        let result = register(&nodes[node % nodes.len()], issuer, race, 0, user_id, key).await;
        match result {
            Err(status) if is_transient(&status) && started.elapsed() < RUNNER_PATIENCE => {
                progress.retried.fetch_add(1, Ordering::Relaxed);
                node += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            result => {
                return Answer {
                    user_id: user_id.to_owned(),
                    started,
                    finished: Instant::now(),
                    result: result.map_err(|status| (status.code(), reason(&status))),
                };
            }
        }
    }
}

/// Checks one runner's answers, in order, against the rules: errors before a registration are
/// SOLD_OUT; once registered, the same key returns the same registration and another key is
/// ALREADY_REGISTERED. Returns the answer that registered the runner, else the last one.
/// Unless `places_free_up` (cancellations, crashed writers), nothing succeeds after SOLD_OUT.
fn judge(user_id: &str, answers: Vec<(&str, Answer)>, places_free_up: bool) -> Answer {
    let mut held: Option<(&str, Answer)> = None;
    let mut sold_out = false;
    let mut last = None;
    for (key, answer) in answers {
        match (&held, &answer.result) {
            (None, Ok(_)) => {
                assert!(
                    places_free_up || !sold_out,
                    "{user_id}: registered after SOLD_OUT"
                );
                held = Some((key, answer.clone()));
            }
            (None, Err((Code::FailedPrecondition, reason))) if reason == "SOLD_OUT" => {
                sold_out = true;
            }
            (Some((held_key, original)), Ok(again)) => {
                let original = original.result.as_ref().unwrap();
                assert_eq!(
                    *held_key, key,
                    "{user_id}: another key returned a registration"
                );
                assert_eq!(again.registration_id, original.registration_id, "{user_id}");
                assert_eq!(again.created_at, original.created_at, "{user_id}");
            }
            (Some((held_key, _)), Err((Code::AlreadyExists, reason)))
                if reason == "ALREADY_REGISTERED" =>
            {
                assert_ne!(*held_key, key, "{user_id}: a retry was refused");
            }
            (held, result) => panic!("{user_id}: answered {result:?} while holding {held:?}"),
        }
        last = Some(answer);
    }
    held.map(|(_, answer)| answer)
        .or(last)
        .unwrap_or_else(|| unreachable!("three attempts"))
}

/// Every runner: a first attempt, a duplicate with another key, and a retry of the first with
/// its key. Returns each runner's registering answer (or its last refusal).
async fn flood(
    nodes: Vec<RaceServiceClient<Channel>>,
    issuer: Arc<TestIssuer>,
    race: proto::Race,
    runners: usize,
    prefix: String,
    progress: Arc<Progress>,
    places_free_up: bool,
) -> Vec<Answer> {
    let nodes = Arc::new(nodes);
    futures::stream::iter(0..runners)
        .map(|n| {
            let (nodes, issuer, race, progress) = (
                Arc::clone(&nodes),
                Arc::clone(&issuer),
                race.clone(),
                Arc::clone(&progress),
            );
            let user_id = format!("{prefix}-{n}");
            async move {
                let mut answers = Vec::new();
                for (node, key) in [(n, "first"), (n + 1, "second"), (n + 1, "first")] {
                    let answer =
                        attempt(&nodes, node, &issuer, &race, &user_id, key, &progress).await;
                    if answers.is_empty() {
                        progress.answered.fetch_add(1, Ordering::Relaxed);
                    }
                    answers.push((key, answer));
                }
                judge(&user_id, answers, places_free_up)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

/// What the database holds, checked against the invariants and the runners' answers.
async fn check_invariants(db: &DatabaseConnection, race: &proto::Race, answers: &[Answer]) {
    let race_id: uuid::Uuid = race.race_id.parse().unwrap();
    let rows = registration::Entity::find()
        .filter(registration::Column::RaceId.eq(race_id))
        .all(db)
        .await
        .unwrap();
    let by_status = |status: &'static str| rows.iter().filter(move |row| row.status == status);
    let confirmed: Vec<_> = by_status("confirmed").collect();
    let waitlisted: Vec<_> = by_status("waitlisted").collect();
    assert_eq!(
        confirmed.len(),
        CAPACITY as usize,
        "exactly capacity confirmed"
    );
    assert!(
        waitlisted.len() <= WAITLIST as usize,
        "waitlist within its capacity"
    );
    assert_eq!(by_status("cancelled").count(), 0);

    let users: HashSet<_> = rows.iter().map(|row| row.user_id.as_str()).collect();
    assert_eq!(users.len(), rows.len(), "one registration per runner");
    let places: HashSet<_> = confirmed.iter().map(|row| row.place.unwrap()).collect();
    assert_eq!(places.len(), confirmed.len(), "distinct places");
    assert!(
        places
            .iter()
            .all(|place| (1..=CAPACITY as i32).contains(place))
    );
    let first_bib = race.categories[0].first_bib as i32;
    let bibs: HashSet<_> = confirmed
        .iter()
        .map(|row| row.bib_number.unwrap())
        .collect();
    assert_eq!(bibs.len(), confirmed.len(), "distinct bibs");
    assert!(
        bibs.iter()
            .all(|bib| (first_bib..first_bib + CAPACITY as i32).contains(bib))
    );
    let waitlist_places: HashSet<_> = waitlisted
        .iter()
        .map(|row| row.waitlist_place.unwrap())
        .collect();
    assert_eq!(
        waitlist_places.len(),
        waitlisted.len(),
        "distinct waitlist places"
    );

    // Every answer is backed by the database, and nobody else holds a registration.
    let rows_by_id: HashMap<String, &registration::Model> =
        rows.iter().map(|row| (row.id.to_string(), row)).collect();
    let told: Vec<(&Answer, &proto::Registration)> = answers
        .iter()
        .filter_map(|answer| answer.result.as_ref().ok().map(|r| (answer, r)))
        .collect();
    assert_eq!(
        told.len(),
        rows.len(),
        "every registration was answered, none twice"
    );
    for (answer, registration) in &told {
        let row = rows_by_id
            .get(&registration.registration_id)
            .unwrap_or_else(|| {
                panic!(
                    "{} was told {registration:?} but has no row",
                    answer.user_id
                )
            });
        assert_eq!(row.user_id, answer.user_id);
    }
    for answer in answers {
        if let Err((code, reason)) = &answer.result {
            assert_eq!(
                (*code, reason.as_str()),
                (Code::FailedPrecondition, "SOLD_OUT"),
                "{}",
                answer.user_id
            );
        }
    }

    // Nobody jumped the line: no runner who asked after a waitlisted runner heard back ended up
    // confirmed while that runner still waits; and the waitlist keeps arrival order.
    let final_row = |answer: &Answer| {
        let registration = answer.result.as_ref().ok()?;
        rows_by_id.get(&registration.registration_id).copied()
    };
    let still_waiting: Vec<(&Answer, &registration::Model)> = answers
        .iter()
        .filter_map(|answer| final_row(answer).map(|row| (answer, row)))
        .filter(|(_, row)| row.status == "waitlisted")
        .collect();
    let first_answered_waiting = still_waiting
        .iter()
        .map(|(answer, _)| answer.finished)
        .min();
    for answer in answers {
        if let (Some(row), Some(earliest)) = (final_row(answer), first_answered_waiting)
            && row.status == "confirmed"
        {
            assert!(
                answer.started <= earliest,
                "{} asked after a waitlisted runner heard back, yet holds a confirmed place",
                answer.user_id
            );
        }
    }
    for (earlier, earlier_row) in &still_waiting {
        for (later, later_row) in &still_waiting {
            if earlier.finished < later.started {
                assert!(
                    earlier_row.waitlist_seq < later_row.waitlist_seq,
                    "{} waits behind {} who asked later",
                    earlier.user_id,
                    later.user_id
                );
            }
        }
    }
    // Promotions took the head of the line.
    let promoted_max = confirmed.iter().filter_map(|row| row.waitlist_seq).max();
    let waiting_min = waitlisted.iter().filter_map(|row| row.waitlist_seq).min();
    if let (Some(promoted), Some(waiting)) = (promoted_max, waiting_min) {
        assert!(
            promoted < waiting,
            "a promotion passed a runner ahead in line"
        );
    }
}

async fn wait_until_settled(db: &DatabaseConnection, race: &proto::Race) {
    let race_id: uuid::Uuid = race.race_id.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let confirmed = registration::Entity::find()
            .filter(registration::Column::RaceId.eq(race_id))
            .filter(registration::Column::Status.eq("confirmed"))
            .all(db)
            .await
            .unwrap()
            .len();
        if confirmed == CAPACITY as usize {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {confirmed} confirmed after settling"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A node in a runtime of its own, so that killing it stops everything it runs mid-flight, as
/// a crashed process would.
struct IsolatedNode {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl IsolatedNode {
    async fn start(settings: Settings, issuer: &TestIssuer) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (ready, listening) = tokio::sync::oneshot::channel();
        let service: Arc<dyn Service> = Arc::new(RaceService::new(test_config()));
        runtime.spawn(service::run(
            settings,
            vec![service],
            "runmesh-svc-race-test",
            Some(issuer.key_source()),
            CancellationToken::new(),
            Some(ready),
        ));
        let addr = listening.await.unwrap().grpc;
        Self {
            addr,
            runtime: Some(runtime),
        }
    }

    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for IsolatedNode {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn race_on(node: SocketAddr, issuer: &TestIssuer) -> proto::Race {
    publish_race(
        &client(node),
        issuer,
        "organizer-1",
        open_race(
            "Flash Marathon",
            vec![category("Full", 42_195, CAPACITY, WAITLIST)],
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_never_oversell() {
    let database = runmesh_platform::testkit::TestDatabase::create()
        .await
        .unwrap();
    let issuer = Arc::new(TestIssuer::new());
    let settings = node_settings(&database.url, Some(redis_url()), Some(kafka_brokers()));
    let first = Node::start(settings.clone(), test_config(), &issuer).await;
    let second = Node::start(settings, test_config(), &issuer).await;
    let race = race_on(first.addr, &issuer).await;
    let prefix = unique_name("runner");

    let answers = flood(
        vec![client(first.addr), client(second.addr)],
        Arc::clone(&issuer),
        race.clone(),
        RUNNERS,
        prefix.clone(),
        Arc::default(),
        false,
    )
    .await;
    let db = runmesh_platform::db::connect(&database.url).await.unwrap();
    check_invariants(&db, &race, &answers).await;

    // Every event left the outbox for the broker.
    let deadline = Instant::now() + Duration::from_secs(30);
    while runmesh_platform::events::pending(&db).await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the outbox never drained");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    first.stop().await;
    second.stop().await;
}

/// `redis_url` pointed at database `db`, whatever path (database) or query it had.
fn redis_database(redis_url: &str, db: u8) -> String {
    let mut url = url::Url::parse(redis_url)
        .unwrap_or_else(|err| panic!("RUNMESH_TEST_REDIS_URL {redis_url:?} is not a URL: {err}"));
    url.set_path(&format!("/{db}"));
    url.to_string()
}

/// Deletes every key of svc-race's namespace in `redis_url`'s database: Redis lost everything.
async fn lose_redis_data(redis_url: &str) -> usize {
    use fred::prelude::{Builder, ClientLike, Config, KeysInterface};
    let client = Builder::from_config(Config::from_url(redis_url).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    let keys: Vec<fred::types::Key> = client
        .scan_buffered("runmesh:race:*", Some(1000), None)
        .try_collect()
        .await
        .unwrap();
    for chunk in keys.chunks(500) {
        let _: i64 = client.del(chunk.to_vec()).await.unwrap();
    }
    client.quit().await.ok();
    keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_losing_everything_mid_run_breaks_nothing() {
    // A Redis database of its own: this test deletes every svc-race key in it.
    let redis = redis_database(&redis_url(), 9);
    let database = runmesh_platform::testkit::TestDatabase::create()
        .await
        .unwrap();
    let issuer = Arc::new(TestIssuer::new());
    let settings = node_settings(&database.url, Some(redis.clone()), Some(kafka_brokers()));
    let first = Node::start(settings.clone(), test_config(), &issuer).await;
    let second = Node::start(settings, test_config(), &issuer).await;
    let race = race_on(first.addr, &issuer).await;

    let progress = Arc::new(Progress::default());
    let running = tokio::spawn(flood(
        vec![client(first.addr), client(second.addr)],
        Arc::clone(&issuer),
        race.clone(),
        RUNNERS,
        unique_name("runner"),
        Arc::clone(&progress),
        false,
    ));
    // Twice while places are still being handed out and written.
    for answered in [80, 200] {
        progress.wait_for_answers(answered).await;
        assert!(
            lose_redis_data(&redis).await > 0,
            "the gate had keys to lose"
        );
    }
    let answers = running.await.unwrap();
    let db = runmesh_platform::db::connect(&database.url).await.unwrap();
    check_invariants(&db, &race, &answers).await;
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_run_loses_nothing() {
    let database = runmesh_platform::testkit::TestDatabase::create()
        .await
        .unwrap();
    let issuer = Arc::new(TestIssuer::new());
    let settings = node_settings(&database.url, Some(redis_url()), Some(kafka_brokers()));
    let mut doomed = IsolatedNode::start(settings.clone(), &issuer).await;
    let survivor = Node::start(settings, test_config(), &issuer).await;
    let race = race_on(survivor.addr, &issuer).await;

    let progress = Arc::new(Progress::default());
    let running = tokio::spawn(flood(
        vec![client(doomed.addr), client(survivor.addr)],
        Arc::clone(&issuer),
        race.clone(),
        RUNNERS,
        unique_name("runner"),
        Arc::clone(&progress),
        true,
    ));
    // While places are still being handed out and written.
    progress.wait_for_answers(120).await;
    doomed.kill();
    let answers = running.await.unwrap();
    assert!(
        progress.retried.load(Ordering::Relaxed) > 0,
        "the kill cut calls in flight"
    );
    let db = runmesh_platform::db::connect(&database.url).await.unwrap();
    // Reservations the dead node admitted but never wrote are released after the reservation
    // timeout, and their places go to the head of the waitlist.
    wait_until_settled(&db, &race).await;
    check_invariants(&db, &race, &answers).await;
    survivor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_keeps_the_invariants_across_a_restart() {
    let harness = Harness::start(Backend::Embedded).await;
    let race = harness
        .published_race(
            "organizer-1",
            open_race(
                "Embedded Flash",
                vec![category("Full", 42_195, CAPACITY, WAITLIST)],
            ),
        )
        .await;
    let progress = Arc::new(Progress::default());
    let running = tokio::spawn(flood(
        vec![harness.client()],
        Arc::clone(&harness.issuer),
        race.clone(),
        RUNNERS / 2,
        "runner".to_owned(),
        Arc::clone(&progress),
        false,
    ));
    // A restart loses the in-memory gate; SQLite keeps every registration.
    progress.wait_for_answers(100).await;
    harness.forget_gate(&race).await;
    let answers = running.await.unwrap();
    check_invariants(&harness.db, &race, &answers).await;
}

on_both_backends!(the_flood_that_cannot_succeed_never_reaches_the_database);

async fn the_flood_that_cannot_succeed_never_reaches_the_database(backend: Backend) {
    let harness = Harness::start(backend).await;
    let race = harness
        .published_race(
            "organizer-1",
            open_race("Sold Out", vec![category("10K", 10_000, 20, 10)]),
        )
        .await;
    for n in 0..30 {
        harness
            .register(&race, 0, &format!("runner-{n}"), "first")
            .await
            .unwrap();
    }
    let before = harness.registration_statements.load(Ordering::Relaxed);
    let client = harness.client();
    let outcomes: Vec<(Code, String)> = futures::stream::iter(0..1_500)
        .map(|n| {
            // Newcomers find it sold out; registered runners with a new key are duplicates.
            let user = if n % 2 == 0 {
                format!("late-{n}")
            } else {
                format!("runner-{}", n % 30)
            };
            let (client, issuer, race) =
                (client.clone(), Arc::clone(&harness.issuer), race.clone());
            async move {
                let status = register(&client, &issuer, &race, 0, &user, &format!("again-{n}"))
                    .await
                    .unwrap_err();
                (status.code(), reason(&status))
            }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let sold_out = outcomes
        .iter()
        .filter(|(code, reason)| *code == Code::FailedPrecondition && reason == "SOLD_OUT")
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|(code, reason)| *code == Code::AlreadyExists && reason == "ALREADY_REGISTERED")
        .count();
    assert_eq!((sold_out, duplicates), (750, 750));
    assert_eq!(
        harness.registration_statements.load(Ordering::Relaxed),
        before,
        "1,500 attempts that cannot succeed read or wrote registrations"
    );
}
