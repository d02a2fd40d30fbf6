//! Notification burst benchmark (issue 15): `--events` svc-run `PersonalRecordSet` events for
//! `--runners` runners with Slack ids, committed to an outbox in one burst and consumed by
//! svc-assist (embedded event log, SQLite; `--postgres` for a fresh PostgreSQL database from
//! RUNMESH_TEST_POSTGRES_URL) whose delivery worker posts to a Slack-compatible server on
//! loopback. Prints the time from event committed to Slack request (p50/p99) for each runner's
//! first message (a channel not yet rate limited) and for all (each DM channel is held to one
//! message per second, so a runner's later messages wait their turn), the inbox write
//! throughput, and checks every event reached Slack exactly once.
//!
//! cargo run --release -p runmesh-svc-assist --example notify_bench -- --events 10000 --runners 2000

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use clap::Parser;
use runmesh_platform::events::{self, EventBus, LogOptions};
use runmesh_proto::runmesh::run::v1 as run_proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use runmesh_svc_assist::config::Secret;
use runmesh_svc_assist::{AssistConfig, NotifyModule};
use sea_orm::{EntityTrait, PaginatorTrait, TransactionTrait};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    events: usize,
    #[arg(long, default_value_t = 2_000)]
    runners: usize,
    /// A fresh PostgreSQL database (RUNMESH_TEST_POSTGRES_URL) instead of SQLite.
    #[arg(long)]
    postgres: bool,
}

type Log = Arc<parking_lot::Mutex<Vec<(Instant, String)>>>;

async fn slack(
    State(log): State<Log>,
    Path(method): Path<String>,
    body: axum::body::Bytes,
) -> axum::Json<serde_json::Value> {
    let received = Instant::now();
    if method == "conversations.open" {
        let users = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "users")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        return axum::Json(serde_json::json!({"ok": true, "channel": {"id": format!("D{users}")}}));
    }
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = value["text"].as_str().unwrap_or_default();
    let run = text.rsplit("/runs/").next().unwrap_or_default().to_owned();
    log.lock().push((received, run));
    axum::Json(serde_json::json!({"ok": true, "ts": "1.0"}))
}

async fn database(postgres: bool, dir: &tempfile::TempDir, name: &str) -> String {
    if postgres {
        let server = std::env::var("RUNMESH_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let admin = sea_orm::Database::connect(format!("{server}/postgres"))
            .await
            .unwrap();
        let db = format!("rmbench_{name}_{}", uuid::Uuid::new_v4().simple());
        use sea_orm::ConnectionTrait as _;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{db}\""))
            .await
            .unwrap();
        format!("{server}/{db}")
    } else {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join(format!("{name}.db")).display()
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let log: Log = Arc::default();
    let app = Router::new()
        .route("/api/{method}", post(slack))
        .with_state(Arc::clone(&log));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slack_url = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });

    let dir = tempfile::tempdir().unwrap();
    let assist_url = database(args.postgres, &dir, "assist").await;
    let publisher_url = database(args.postgres, &dir, "publisher").await;
    let db = runmesh_platform::db::connect(&assist_url).await.unwrap();
    runmesh_svc_assist::migrate(&db).await.unwrap();
    let publisher = runmesh_platform::db::connect(&publisher_url).await.unwrap();
    runmesh_svc_race::migrate(&publisher).await.unwrap();

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let bus = EventBus::embedded(LogOptions {
        poll_interval: Duration::from_millis(20),
        ..LogOptions::default()
    });
    let _relay = bus.spawn_relay("publisher", publisher.clone(), shutdown.clone());
    let config = AssistConfig {
        slack_bot_token: Some(Secret::new("xoxb-bench")),
        slack_api_url: slack_url,
        public_base_url: Some("https://runmesh.example".to_owned()),
        notify_workspace_rate: 100_000,
        notify_poll_interval: Duration::from_millis(20),
        notify_concurrency: 64,
        ..AssistConfig::default()
    };
    let module = NotifyModule::assemble(db.clone(), config, &tasks, &shutdown).unwrap();
    module.spawn_background(&tasks, &shutdown);
    let topics = runmesh_svc_assist::events::topics();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let _consumer = bus.spawn_consumer(
        runmesh_svc_assist::events::GROUP,
        &topics,
        db.clone(),
        module.events_handler(),
        shutdown.clone(),
    );

    // The runners, with Slack ids.
    let txn = publisher.begin().await.unwrap();
    let users: Vec<_> = (0..args.runners)
        .map(|i| {
            let user = user_proto::User {
                id: format!("runner-{i}"),
                slack_member_id: format!("U{i:06}"),
                time_zone: "Asia/Seoul".into(),
                notification_preferences: Some(user_proto::NotificationPreferences {
                    race_opening: true,
                    registration_result: true,
                    achievement: true,
                    crew_activity: true,
                }),
                ..Default::default()
            };
            events::new_envelope(
                "svc-user",
                &user.id.clone(),
                &user_proto::UserRegistered { user: Some(user) },
            )
        })
        .collect();
    events::enqueue_many(&txn, &events::topic("user"), &users)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    bus.wake_relays();
    let deadline = Instant::now() + Duration::from_secs(300);
    while runmesh_svc_assist::store::profile::Entity::find()
        .count(&db)
        .await
        .unwrap()
        < args.runners as u64
    {
        assert!(Instant::now() < deadline, "profiles not projected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The burst: runner i gets events i, i + runners, …
    let mut committed: HashMap<String, (Instant, usize)> = HashMap::new();
    let start = Instant::now();
    for chunk_start in (0..args.events).step_by(500) {
        let chunk: Vec<usize> = (chunk_start..(chunk_start + 500).min(args.events)).collect();
        let envelopes: Vec<_> = chunk
            .iter()
            .map(|&n| {
                let owner = format!("runner-{}", n % args.runners);
                events::new_envelope(
                    "svc-run",
                    &owner.clone(),
                    &run_proto::PersonalRecordSet {
                        owner_id: owner,
                        distance: run_proto::EffortDistance::EffortDistance5k.into(),
                        elapsed_time: Some(prost_types::Duration {
                            seconds: 1_500,
                            nanos: 0,
                        }),
                        run_id: format!("bench-{n}"),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let txn = publisher.begin().await.unwrap();
        events::enqueue_many(&txn, &events::topic("run"), &envelopes)
            .await
            .unwrap();
        txn.commit().await.unwrap();
        let at = Instant::now();
        for &n in &chunk {
            committed.insert(format!("bench-{n}"), (at, n / args.runners));
        }
        bus.wake_relays();
    }
    let burst_written = start.elapsed();

    // Inbox writes: every event's notification row.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let rows = runmesh_svc_assist::store::notification::Entity::find()
            .count(&db)
            .await
            .unwrap();
        if rows >= args.events as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "inbox rows: {rows}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let inbox_done = start.elapsed();
    loop {
        if log.lock().len() >= args.events {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Slack posts: {}",
            log.lock().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let slack_done = start.elapsed();
    // A little longer, to see any duplicate arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let posts = log.lock().clone();
    let mut per_run: HashMap<&str, usize> = HashMap::new();
    for (_, run) in &posts {
        *per_run.entry(run.as_str()).or_default() += 1;
    }
    let duplicates = per_run.values().filter(|&&c| c > 1).count();
    let missing = committed
        .keys()
        .filter(|k| !per_run.contains_key(k.as_str()))
        .count();
    let mut first = Vec::new();
    let mut all = Vec::new();
    for (received, run) in &posts {
        if let Some((at, nth)) = committed.get(run) {
            let latency = received.saturating_duration_since(*at);
            all.push(latency);
            if *nth == 0 {
                first.push(latency);
            }
        }
    }
    first.sort();
    all.sort();
    println!(
        "notify_bench: {} events for {} runners ({})",
        args.events,
        args.runners,
        if args.postgres {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!("  burst committed in {:.2} s", burst_written.as_secs_f64());
    println!(
        "  inbox: {} notifications written in {:.2} s = {:.0} /s",
        args.events,
        inbox_done.as_secs_f64(),
        args.events as f64 / inbox_done.as_secs_f64()
    );
    println!(
        "  Slack: {} posts, last at {:.2} s",
        posts.len(),
        slack_done.as_secs_f64()
    );
    println!(
        "  committed → Slack request, each runner's first message (channel not rate limited): p50 {:.0} ms, p99 {:.0} ms (n = {})",
        percentile(&first, 0.5).as_secs_f64() * 1000.0,
        percentile(&first, 0.99).as_secs_f64() * 1000.0,
        first.len()
    );
    println!(
        "  committed → Slack request, all (1 msg/s per DM channel): p50 {:.0} ms, p99 {:.0} ms",
        percentile(&all, 0.5).as_secs_f64() * 1000.0,
        percentile(&all, 0.99).as_secs_f64() * 1000.0
    );
    println!("  duplicates: {duplicates}, missing: {missing}");
    shutdown.cancel();
    assert_eq!(duplicates, 0, "a message was posted twice");
    assert_eq!(missing, 0, "a message never reached Slack");
}
