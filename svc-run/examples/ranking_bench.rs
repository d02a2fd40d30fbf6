//! Leaderboard benchmark (issue 13): seeds N runners onto one period's boards through the bulk
//! path (the `board_totals` rows and `runner_profiles` the record path writes, inserted in
//! batches), then measures, against PostgreSQL and Redis:
//! - the full rebuild of the period's boards from the database (build aside, atomic swap);
//! - Redis memory per board member (`MEMORY USAGE` of the distance board / members);
//! - top-100 + own rank + 10 around, p50/p99 at `--callers` concurrent callers (one cache script
//!   and one display-name query per call, the path `GetLeaderboard` takes after decoding);
//! - a recorded run visible on its boards: `create_manual` (the CreateRun path) returning to the
//!   runner being on the board, p50/p99.
//!
//! `cargo run --release -p runmesh-svc-run --example ranking_bench -- --runners 1000000 --callers 32`
//! (needs RUNMESH_TEST_POSTGRES_URL and RUNMESH_TEST_REDIS_URL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Duration as ChronoDuration, Utc};
use clap::Parser;
use fred::prelude::ClientLike as _;
use hdrhistogram::Histogram;
use runmesh_platform::cache;
use runmesh_platform::testkit::{self, TestDatabase};
use runmesh_svc_run::boards::{BoardId, Metric, Scope};
use runmesh_svc_run::domain::periods::{self, PeriodKind};
use runmesh_svc_run::domain::{ManualRunInput, Sport, validate_manual_run};
use runmesh_svc_run::runs::ManualEntry;
use runmesh_svc_run::store::profile;
use runmesh_svc_run::store::progress::board_total;
use runmesh_svc_run::{RunConfig, RunModule};
use sea_orm::{EntityTrait, Set};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    runners: usize,
    #[arg(long, default_value_t = 32)]
    callers: usize,
    /// Calls per caller.
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// Recorded runs whose visibility is timed.
    #[arg(long, default_value_t = 200)]
    recorded: usize,
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1_000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let database = TestDatabase::create().await?;
    let db = runmesh_platform::db::connect(&database.url).await?;
    runmesh_svc_run::migrate(&db).await?;
    let namespace = testkit::unique_name("ranking_bench");
    let cache = cache::connect(Some(&testkit::redis_url()), &namespace).await?;
    let config = RunConfig::default();
    let module = RunModule::assemble(db.clone(), None, cache.clone(), config.clone());
    let boards = Arc::clone(&module.boards);
    let today = boards.today();
    let (period, bounds) = periods::period_of(PeriodKind::Month, today);
    let start = runmesh_svc_run::runs::local_midnight(boards.time_zone(), bounds.unwrap().0);

    // Seed: one board_totals row and one profile per runner, as the record path leaves them.
    let seeded = Instant::now();
    // Written before the rebuild starts (the rebuild re-applies rows changed while it runs).
    let now = runmesh_svc_run::wire::now() - ChronoDuration::minutes(10);
    for chunk in (0..args.runners).collect::<Vec<_>>().chunks(2_000) {
        let totals = chunk.iter().map(|i| {
            let km = (i * 7_919 % 300_000) as f64 + 1_000.0;
            board_total::ActiveModel {
                period: Set(period.clone()),
                owner_id: Set(format!("bench-{i:07}")),
                distance_m: Set(km),
                moving_s: Set(km * 0.3),
                runs: Set(1 + (i % 20) as i32),
                elevation_m: Set((i % 500) as f64),
                reached_at: Set(start + ChronoDuration::seconds((i * 13 % 86_400) as i64)),
                updated_at: Set(now),
            }
        });
        board_total::Entity::insert_many(totals)
            .exec_without_returning(&db)
            .await?;
        let profiles = chunk.iter().map(|i| profile::ActiveModel {
            user_id: Set(format!("bench-{i:07}")),
            display_name: Set(format!("Runner {i}")),
            time_zone: Set("Asia/Seoul".to_owned()),
            distance_unit: Set("km".to_owned()),
            default_visibility: Set("public".to_owned()),
            birth_year: Set(Some(1950 + (i % 55) as i32)),
            privacy_zone_meters: Set(None),
            gender: Set(["female", "male"][i % 2].to_owned()),
            updated_at: Set(now),
        });
        profile::Entity::insert_many(profiles)
            .exec_without_returning(&db)
            .await?;
    }
    println!(
        "seeded {} runners in {:.1} s",
        args.runners,
        seeded.elapsed().as_secs_f64()
    );

    let rebuilt = Instant::now();
    assert!(boards.rebuild_period(PeriodKind::Month, today).await?);
    println!(
        "rebuild of period {period}'s boards (4 metrics x everyone, 9 age groups, 2 genders) from PostgreSQL: {:.1} s",
        rebuilt.elapsed().as_secs_f64()
    );

    let redis = fred::prelude::Builder::from_config(fred::prelude::Config::from_url(
        &testkit::redis_url(),
    )?)
    .build()?;
    redis.init().await?;
    let key = format!("{namespace}:lb:{period}:d:all");
    let bytes: i64 = redis
        .custom(
            fred::cmd!("MEMORY"),
            vec![
                "USAGE".to_owned(),
                key.clone(),
                "SAMPLES".to_owned(),
                "0".to_owned(),
            ],
        )
        .await?;
    println!(
        "Redis memory of the everyone distance board: {bytes} bytes, {:.1} bytes per member",
        bytes as f64 / args.runners as f64
    );

    let board = BoardId {
        period: PeriodKind::Month,
        day: today,
        metric: Metric::Distance,
        scope: Scope::Everyone,
    };
    let started = Instant::now();
    let mut callers = Vec::new();
    for caller in 0..args.callers {
        let boards = Arc::clone(&boards);
        let board = board.clone();
        let runners = args.runners;
        let requests = args.requests;
        callers.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new(3).unwrap();
            for request in 0..requests {
                let viewer = format!(
                    "bench-{:07}",
                    (caller * 7_777 + request * 104_729) % runners
                );
                let at = Instant::now();
                let page = boards.page(&board, &viewer, 0, 100, 10).await.unwrap();
                histogram.record(at.elapsed().as_micros() as u64).unwrap();
                assert_eq!(page.entries.len(), 100.min(runners));
                assert!(page.me.is_some());
            }
            histogram
        }));
    }
    let mut all = Histogram::<u64>::new(3)?;
    for caller in callers {
        all.add(caller.await?)?;
    }
    let calls = args.callers * args.requests;
    println!(
        "top-100 + own rank + 10 around, {} callers, {calls} calls: p50 {:.2} ms, p99 {:.2} ms, {:.0} calls/s",
        args.callers,
        ms(&all, 0.5),
        ms(&all, 0.99),
        calls as f64 / started.elapsed().as_secs_f64()
    );

    // A recorded run on its boards.
    let mut visible = Histogram::<u64>::new(3)?;
    for i in 0..args.recorded {
        let owner = format!("fresh-{i:05}");
        let input = ManualRunInput {
            sport: Sport::Running,
            start: Utc::now() - ChronoDuration::minutes(90),
            duration_s: 3_000.0,
            distance_m: 10_000.0,
            elevation_gain_m: None,
            average_heart_rate_bpm: None,
        };
        let run = validate_manual_run(&input, Utc::now()).unwrap();
        let entry = ManualEntry {
            run,
            sport: "run",
            title: String::new(),
            notes: String::new(),
            visibility: Some("public"),
            time_zone: None,
            moving_s: None,
            source: "manual",
            content_hash: None,
            archive_entry: None,
        };
        module.runs.create_manual(&owner, entry).await?;
        let returned = Instant::now();
        loop {
            let page = boards.page(&board, &owner, 0, 0, 0).await?;
            if page.me.is_some() {
                break;
            }
            assert!(
                returned.elapsed() < Duration::from_secs(10),
                "never visible"
            );
        }
        visible.record(returned.elapsed().as_micros() as u64)?;
    }
    println!(
        "recorded run visible on its board after create returned ({} runs): p50 {:.2} ms, p99 {:.2} ms",
        args.recorded,
        ms(&visible, 0.5),
        ms(&visible, 0.99)
    );

    // The period's boards are listed under its `keys` key (namespaced names): leave Redis as
    // found.
    let list: Option<String> = redis
        .custom(
            fred::cmd!("GET"),
            vec![format!("{namespace}:lb:{period}:keys")],
        )
        .await?;
    let mut keys: Vec<String> = list
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    keys.push(format!("{namespace}:lb:{period}:keys"));
    keys.push(format!("{namespace}:lb:{period}:ready"));
    for chunk in keys.chunks(100) {
        let _: i64 = redis.custom(fred::cmd!("UNLINK"), chunk.to_vec()).await?;
    }
    Ok(())
}
