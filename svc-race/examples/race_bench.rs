//! Flash-crowd benchmark of `Register`: starts svc-race in process against local PostgreSQL and
//! Redis, opens a race, and drives N concurrent gRPC clients (distinct runners with valid
//! tokens) at it until M attempts were made. Each client keeps trying with a fresh idempotency
//! key, as an impatient runner (or a bot) does: before the race sells out that registers it,
//! after that it is a duplicate or a sold-out attempt. Prints attempts/s, registrations/s, the
//! latency percentiles, checks the invariants in PostgreSQL, and measures the ceiling: the raw
//! rate of the gate script alone (EVALSHA through the same Redis client).
//!
//! `cargo run --release -p runmesh-svc-race --example race_bench -- --clients 1000 --attempts 50000`
//!
//! A fresh database is created on `--postgres` (default `postgres://postgres@127.0.0.1:5432`)
//! and dropped afterwards; Redis keys live under a namespace of their own and are deleted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::TryStreamExt;
use hdrhistogram::Histogram;
use runmesh_platform::auth::{AuthLayer, TokenVerifier, VerifierConfig};
use runmesh_platform::config::Settings;
use runmesh_platform::events::EventBus;
use runmesh_platform::server::GrpcServer;
use runmesh_platform::testkit::TestIssuer;
use runmesh_proto::runmesh::race::v1 as proto;
use runmesh_proto::runmesh::race::v1::race_service_client::RaceServiceClient;
use runmesh_svc_race::domain::IdempotencyKey;
use runmesh_svc_race::gate::{Admission, AttemptLimit, Counted};
use runmesh_svc_race::store::registration;
use runmesh_svc_race::{RaceConfig, RaceModule};
use sea_orm::{ColumnTrait, ConnectionTrait, Database, EntityTrait, QueryFilter};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_types::StatusExt;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "Flash-crowd benchmark of svc-race's Register")]
struct Args {
    /// Concurrent clients, each a distinct runner with its own token.
    #[arg(long, default_value_t = 1_000)]
    clients: usize,
    /// Register attempts in total.
    #[arg(long, default_value_t = 50_000)]
    attempts: i64,
    /// Confirmed places of the race's one category.
    #[arg(long, default_value_t = 500)]
    capacity: u32,
    /// Waitlist places.
    #[arg(long, default_value_t = 250)]
    waitlist: u32,
    /// Offered load in attempts/s, spread evenly over the clients (open loop; latency counts from
    /// each attempt's scheduled time). 0: every client sends as fast as answers come back
    /// (closed loop), which measures capacity.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// HTTP/2 connections the clients share; 0 gives each client its own.
    #[arg(long, default_value_t = 0)]
    connections: usize,
    /// PostgreSQL server (a database is created on it for the run).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Calls of the gate script alone, for the ceiling.
    #[arg(long, default_value_t = 200_000)]
    ceiling_calls: i64,
    /// Concurrent callers of the gate script for the ceiling.
    #[arg(long, default_value_t = 256)]
    ceiling_concurrency: usize,
}

/// What one client saw.
struct ClientReport {
    latencies: Histogram<u64>,
    written_latencies: Histogram<u64>,
    outcomes: BTreeMap<String, u64>,
    /// The registration this runner was told it holds, and when (since the start).
    registered: Option<(String, Duration)>,
}

/// How long after the flood's race is published its registration opens.
const OPENS_IN: chrono::Duration = chrono::Duration::seconds(4);

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let database_name = format!("rmbench_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(format!("{}/postgres", args.postgres))
        .await
        .context("connecting to PostgreSQL")?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{database_name}\""))
        .await?;
    let outcome = run(&args, &database_name).await;
    admin
        .execute_unprepared(&format!(
            "DROP DATABASE IF EXISTS \"{database_name}\" WITH (FORCE)"
        ))
        .await?;
    outcome
}

async fn run(args: &Args, database_name: &str) -> anyhow::Result<()> {
    let database_url = format!("{}/{database_name}", args.postgres);
    let namespace = format!("runmesh:race-bench-{}", uuid::Uuid::new_v4().simple());
    let db = runmesh_platform::db::connect(&database_url).await?;
    runmesh_svc_race::migrate(&db).await?;
    let cache = runmesh_platform::cache::connect(Some(&args.redis), &namespace).await?;
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let bus = EventBus::in_process();
    tasks.spawn(bus.spawn_relay("race", db.clone(), shutdown.clone()));
    // The service's settings from `RUNMESH_RACE_*`, as `runmesh serve race` reads them.
    let config = RaceConfig {
        // The benchmark measures the gate, not the per-runner rate limit (which still runs).
        register_attempts: u64::MAX / 2,
        ..RaceConfig::from_env()?
    };
    let module = RaceModule::assemble(db.clone(), cache, Some(bus), config, &tasks, &shutdown);
    module.spawn_background(&tasks, &shutdown);

    let issuer = TestIssuer::new();
    let verifier = Arc::new(TokenVerifier::new(
        VerifierConfig::new(issuer.issuer.clone(), issuer.audience.clone()),
        issuer.key_source(),
    )?);
    let settings = Settings {
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown_delay: Duration::ZERO,
        ..Settings::default()
    };
    let server = GrpcServer::builder(&settings)
        .layer(AuthLayer::new(verifier))
        .add_service(module.server(), vec![])
        .bind()
        .await?;
    let addr = server.local_addr();
    let serving = tokio::spawn(server.serve(shutdown.clone()));

    // As at a real opening, the race is published ahead and the crowd arrives when registration
    // opens (the service warms its database pool and builds the gate meanwhile).
    let race = open_race(addr, &issuer, args.capacity, args.waitlist, OPENS_IN).await?;
    let load = match args.rate {
        0 => "closed loop".to_owned(),
        rate => format!("offered {rate} attempts/s"),
    };
    println!(
        "svc-race bench: {} clients ({load}), {} attempts, capacity {} + waitlist {}, PostgreSQL + Redis on 127.0.0.1, {} cores",
        args.clients,
        args.attempts,
        args.capacity,
        args.waitlist,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let (reports, attempts_per_second) = flood(addr, &issuer, &race, args).await?;
    check_invariants(&db, &race, &reports, args).await?;
    let ceiling = ceiling(&module, addr, &issuer, args).await?;
    println!(
        "ratio:             {:.2} of the gate script's raw rate",
        attempts_per_second / ceiling
    );

    shutdown.cancel();
    serving.await??;
    tasks.close();
    tasks.wait().await;
    db.close().await?;
    delete_namespace(&args.redis, &namespace).await?;
    Ok(())
}

async fn open_race(
    addr: SocketAddr,
    issuer: &TestIssuer,
    capacity: u32,
    waitlist: u32,
    opens_in: chrono::Duration,
) -> anyhow::Result<proto::Race> {
    let now = chrono::Utc::now();
    let at = |offset: chrono::Duration| {
        let at = now + offset;
        Some(prost_types::Timestamp {
            seconds: at.timestamp(),
            nanos: 0,
        })
    };
    let race = proto::Race {
        name: "Bench Marathon".to_owned(),
        region: "Seoul".to_owned(),
        starts_at: at(chrono::Duration::days(30)),
        registration_opens_at: at(opens_in),
        registration_closes_at: at(chrono::Duration::hours(1)),
        categories: vec![proto::Category {
            name: "Full".to_owned(),
            distance_meters: 42_195,
            capacity,
            waitlist_capacity: waitlist,
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut client = client(addr);
    let organizer: MetadataValue<_> = issuer.bearer("organizer", &["organizer"]).parse()?;
    let mut request = tonic::Request::new(proto::CreateRaceRequest { race: Some(race) });
    request
        .metadata_mut()
        .insert("authorization", organizer.clone());
    let created = client
        .create_race(request)
        .await?
        .into_inner()
        .race
        .unwrap();
    let mut request = tonic::Request::new(proto::PublishRaceRequest {
        race_id: created.race_id,
    });
    request.metadata_mut().insert("authorization", organizer);
    Ok(client
        .publish_race(request)
        .await?
        .into_inner()
        .race
        .unwrap())
}

fn client(addr: SocketAddr) -> RaceServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    RaceServiceClient::new(channel)
}

fn outcome_name(status: &tonic::Status) -> String {
    let reason = status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default();
    format!("{:?} {reason}", status.code())
}

async fn flood(
    addr: SocketAddr,
    issuer: &TestIssuer,
    race: &proto::Race,
    args: &Args,
) -> anyhow::Result<(Vec<ClientReport>, f64)> {
    let remaining = Arc::new(AtomicI64::new(args.attempts));
    let shared: Vec<RaceServiceClient<Channel>> =
        (0..args.connections).map(|_| client(addr)).collect();
    let start = Arc::new(tokio::sync::Barrier::new(args.clients + 1));
    let mut workers = tokio::task::JoinSet::new();
    for n in 0..args.clients {
        let mut client = if shared.is_empty() {
            client(addr)
        } else {
            shared[n % shared.len()].clone()
        };
        let token: MetadataValue<_> = issuer.bearer(&format!("runner-{n}"), &["runner"]).parse()?;
        let (remaining, start) = (Arc::clone(&remaining), Arc::clone(&start));
        // Open loop: this client's attempts are due every `clients / rate` seconds, the clients
        // staggered across one period.
        let period = (args.rate > 0)
            .then(|| Duration::from_secs_f64(args.clients as f64 / args.rate as f64));
        let offset = period.map(|period| period.mul_f64(n as f64 / args.clients as f64));
        let (race_id, category_id) = (race.race_id.clone(), race.categories[0].category_id.clone());
        workers.spawn(async move {
            let mut report = ClientReport {
                latencies: histogram(),
                written_latencies: histogram(),
                outcomes: BTreeMap::new(),
                registered: None,
            };
            // Open the connection before the gun goes off.
            let mut warm_up = tonic::Request::new(proto::GetRaceRequest {
                race_id: race_id.clone(),
            });
            warm_up
                .metadata_mut()
                .insert("authorization", token.clone());
            client.get_race(warm_up).await.ok();
            start.wait().await;
            let started = Instant::now();
            let mut due = tokio::time::Instant::now() + offset.unwrap_or_default();
            let mut attempt = 0u64;
            while remaining.fetch_sub(1, Ordering::Relaxed) > 0 {
                attempt += 1;
                if period.is_some() {
                    tokio::time::sleep_until(due).await;
                }
                let mut request = tonic::Request::new(proto::RegisterRequest {
                    race_id: race_id.clone(),
                    category_id: category_id.clone(),
                    idempotency_key: format!("attempt-{attempt}"),
                });
                request
                    .metadata_mut()
                    .insert("authorization", token.clone());
                // Latency from when the attempt was due, so a client held up by a slow answer
                // does not hide the delay (coordinated omission).
                let call = match period {
                    Some(_) => due.into_std(),
                    None => Instant::now(),
                };
                if let Some(period) = period {
                    due += period;
                }
                let result = client.register(request).await;
                let micros = call.elapsed().as_micros().max(1) as u64;
                report.latencies.saturating_record(micros);
                let outcome = match result {
                    Ok(response) => {
                        report.written_latencies.saturating_record(micros);
                        let registration = response.into_inner().registration.unwrap();
                        report.registered =
                            Some((registration.registration_id.clone(), started.elapsed()));
                        format!("{:?}", registration.status())
                    }
                    Err(status) => outcome_name(&status),
                };
                *report.outcomes.entry(outcome).or_default() += 1;
            }
            report
        });
    }
    let opens_at = race
        .registration_opens_at
        .as_ref()
        .and_then(|at| chrono::DateTime::from_timestamp(at.seconds, 0))
        .context("the race has no opening time")?;
    if let Ok(until_open) = (opens_at - chrono::Utc::now()).to_std() {
        tokio::time::sleep(until_open).await;
    }
    start.wait().await;
    let began = Instant::now();
    let (process_cpu_before, redis_cpu_before) = (process_cpu()?, redis_cpu(&args.redis).await?);
    let mut reports = Vec::with_capacity(args.clients);
    while let Some(report) = workers.join_next().await {
        reports.push(report?);
    }
    let elapsed = began.elapsed();
    let process_cpu_used = process_cpu()?.saturating_sub(process_cpu_before);
    let redis_cpu_used = redis_cpu(&args.redis)
        .await?
        .saturating_sub(redis_cpu_before);

    let mut latencies = histogram();
    let mut written = histogram();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for report in &reports {
        latencies.add(&report.latencies)?;
        written.add(&report.written_latencies)?;
        for (outcome, count) in &report.outcomes {
            *outcomes.entry(outcome.clone()).or_default() += count;
        }
    }
    let registered = reports.iter().filter(|r| r.registered.is_some()).count();
    let filled_in = reports
        .iter()
        .filter_map(|r| r.registered.as_ref().map(|(_, at)| *at))
        .max()
        .unwrap_or_default();
    let attempts = latencies.len();
    let rate = attempts as f64 / elapsed.as_secs_f64();
    let ms = |value: u64| value as f64 / 1000.0;
    println!();
    println!(
        "attempts:          {attempts} in {:.2} s = {rate:.0} attempts/s",
        elapsed.as_secs_f64(),
    );
    println!(
        "registered:        {registered} (confirmed + waitlisted), all within {:.2} s of the start = {:.0} registrations/s",
        filled_in.as_secs_f64(),
        registered as f64 / filled_in.as_secs_f64().max(f64::EPSILON)
    );
    println!(
        "latency, all:      p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        ms(latencies.value_at_quantile(0.50)),
        ms(latencies.value_at_quantile(0.95)),
        ms(latencies.value_at_quantile(0.99)),
        ms(latencies.max())
    );
    println!(
        "latency, written:  p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        ms(written.value_at_quantile(0.50)),
        ms(written.value_at_quantile(0.95)),
        ms(written.value_at_quantile(0.99)),
        ms(written.max())
    );
    let per_attempt = |cpu: Duration| cpu.as_secs_f64() * 1e6 / attempts.max(1) as f64;
    println!(
        "CPU per attempt:   {:.0} µs in this process (service and clients), {:.0} µs in Redis ({:.2} and {:.2} cores busy)",
        per_attempt(process_cpu_used),
        per_attempt(redis_cpu_used),
        process_cpu_used.as_secs_f64() / elapsed.as_secs_f64(),
        redis_cpu_used.as_secs_f64() / elapsed.as_secs_f64(),
    );
    println!("answers:");
    for (outcome, count) in &outcomes {
        println!("  {outcome:<40} {count}");
    }
    Ok((reports, rate))
}

async fn check_invariants(
    db: &sea_orm::DatabaseConnection,
    race: &proto::Race,
    reports: &[ClientReport],
    args: &Args,
) -> anyhow::Result<()> {
    let race_id: uuid::Uuid = race.race_id.parse()?;
    let rows = registration::Entity::find()
        .filter(registration::Column::RaceId.eq(race_id))
        .all(db)
        .await?;
    let confirmed: Vec<_> = rows.iter().filter(|r| r.status == "confirmed").collect();
    let waitlisted = rows.iter().filter(|r| r.status == "waitlisted").count();
    let mut violations = Vec::new();
    let demand = args
        .clients
        .min(usize::try_from(args.attempts).unwrap_or(usize::MAX));
    let expected_confirmed = demand.min(args.capacity as usize);
    if confirmed.len() != expected_confirmed {
        violations.push(format!(
            "{} confirmed, expected {expected_confirmed}",
            confirmed.len()
        ));
    }
    if waitlisted > args.waitlist as usize {
        violations.push(format!("{waitlisted} waitlisted > {}", args.waitlist));
    }
    let users: HashSet<_> = rows.iter().map(|r| r.user_id.as_str()).collect();
    if users.len() != rows.len() {
        violations.push("a runner holds two registrations".to_owned());
    }
    let bibs: HashSet<_> = confirmed.iter().map(|r| r.bib_number).collect();
    if bibs.len() != confirmed.len() || bibs.contains(&None) {
        violations.push("bibs are not distinct".to_owned());
    }
    let told: HashSet<&str> = reports
        .iter()
        .filter_map(|r| r.registered.as_ref().map(|(id, _)| id.as_str()))
        .collect();
    let stored: HashSet<String> = rows.iter().map(|r| r.id.to_string()).collect();
    if told.len() != stored.len() || told.iter().any(|id| !stored.contains(*id)) {
        violations.push(format!(
            "{} registrations answered, {} stored",
            told.len(),
            stored.len()
        ));
    }
    println!(
        "invariants:        {} confirmed (capacity {}), {waitlisted} waitlisted, {} distinct bibs, every answered registration in PostgreSQL: {}",
        confirmed.len(),
        args.capacity,
        bibs.len(),
        if violations.is_empty() {
            "OK"
        } else {
            "VIOLATED"
        }
    );
    if !violations.is_empty() {
        bail!("invariants violated: {}", violations.join("; "));
    }
    Ok(())
}

/// The gate script alone on a sold-out race: each call checks membership, capacity and the
/// waitlist, as every attempt of the flood does once the places are gone.
async fn ceiling(
    module: &RaceModule,
    addr: SocketAddr,
    issuer: &TestIssuer,
    args: &Args,
) -> anyhow::Result<f64> {
    let race = open_race(addr, issuer, 1, 0, chrono::Duration::seconds(-1)).await?;
    let snapshot = module
        .catalog
        .published_snapshot(race.race_id.parse()?)
        .await?;
    let category = snapshot.categories[0].id;
    module.gate.ensure_ready(&snapshot).await?;
    let key = IdempotencyKey::parse("ceiling")?;
    module
        .gate
        .admit(&snapshot, category, "first-and-only", &key, Counted::No)
        .await?;
    let remaining = Arc::new(AtomicI64::new(args.ceiling_calls));
    let counted = Counted::Yes(AttemptLimit {
        attempts: u64::MAX / 2,
        window: Duration::from_secs(60),
    });
    let began = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..args.ceiling_concurrency {
        let (gate, snapshot, remaining) = (
            Arc::clone(&module.gate),
            Arc::clone(&snapshot),
            Arc::clone(&remaining),
        );
        callers.spawn(async move {
            let key = IdempotencyKey::parse("ceiling")?;
            let mut n = 0u64;
            while remaining.fetch_sub(1, Ordering::Relaxed) > 0 {
                n += 1;
                let user = format!("ceiling-{caller}-{n}");
                // Counted, as every attempt of the flood is.
                match gate
                    .admit(&snapshot, category, &user, &key, counted)
                    .await?
                {
                    Admission::SoldOut | Admission::Member(_) => {}
                    other => anyhow::bail!("the race should be sold out: {other:?}"),
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = callers.join_next().await {
        done??;
    }
    let rate = args.ceiling_calls as f64 / began.elapsed().as_secs_f64();
    println!(
        "ceiling:           gate script alone (EVALSHA, {} in flight): {rate:.0} calls/s",
        args.ceiling_concurrency
    );
    Ok(rate)
}

/// CPU time this process used so far (user and system), from `/proc/self/stat`.
fn process_cpu() -> anyhow::Result<Duration> {
    // Linux reports these in USER_HZ ticks, 100 per second on every architecture it exports.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after_name = stat.rsplit_once(')').context("odd /proc/self/stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(Duration::from_secs_f64(ticks / TICKS_PER_SECOND))
}

/// CPU time the Redis server used so far (`INFO cpu`).
async fn redis_cpu(redis_url: &str) -> anyhow::Result<Duration> {
    use fred::prelude::{Builder, ClientLike, Config};
    let client = Builder::from_config(Config::from_url(redis_url)?).build()?;
    client.init().await?;
    let info: String = client.info(Some(fred::types::InfoKind::Cpu)).await?;
    client.quit().await?;
    let seconds: f64 = info
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| *name == "used_cpu_sys" || *name == "used_cpu_user")
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum();
    Ok(Duration::from_secs_f64(seconds))
}

async fn delete_namespace(redis_url: &str, namespace: &str) -> anyhow::Result<()> {
    use fred::prelude::{Builder, ClientLike, Config, KeysInterface};
    let client = Builder::from_config(Config::from_url(redis_url)?).build()?;
    client.init().await?;
    let keys: Vec<fred::types::Key> = client
        .scan_buffered(format!("{namespace}:*"), Some(1000), None)
        .try_collect()
        .await?;
    for chunk in keys.chunks(500) {
        let _: i64 = client.del(chunk.to_vec()).await?;
    }
    client.quit().await?;
    Ok(())
}
