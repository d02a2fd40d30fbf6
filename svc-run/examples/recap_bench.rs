//! Recap benchmark (issue 17): a year recap for a runner with 1,000 runs in that year.
//!
//! - **data**: `Recaps::recap` for the year (runs, efforts, badges, challenges, races, the board
//!   rank from the database, crews) — p50/p99 over `--iterations` calls (target ≤ 50 ms);
//! - **card**: building the portrait card's SVG and rasterising it to PNG (what GetRecapCard
//!   runs on the blocking pool) — p50/p99 over `--renders` renders (target ≤ 150 ms), and the
//!   SVG alone.
//!
//! `cargo run --release -p runmesh-svc-run --example recap_bench -- [--runs 1000] [--iterations 200] [--renders 50] [--postgres]`
//!
//! On SQLite (a temporary file); with `--postgres` also on a fresh PostgreSQL database on
//! `RUNMESH_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432`) with Redis at
//! `RUNMESH_TEST_REDIS_URL`. The runs are entered through `Runs::create_manual` (boards and badges
//! kept as in production), in the runner's time zone (Asia/Seoul).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use clap::Parser;
use hdrhistogram::Histogram;
use runmesh_platform::cache;
use runmesh_platform::testkit::{self, TestDatabase, TestSqlite};
use runmesh_svc_run::card::{self, CardSize};
use runmesh_svc_run::domain::periods::PeriodKind;
use runmesh_svc_run::domain::recap::Language;
use runmesh_svc_run::domain::{ManualRun, Sport};
use runmesh_svc_run::recap::RecapQuery;
use runmesh_svc_run::runs::ManualEntry;
use runmesh_svc_run::{RunConfig, RunModule};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000)]
    runs: u32,
    #[arg(long, default_value_t = 200)]
    iterations: u32,
    #[arg(long, default_value_t = 50)]
    renders: u32,
    #[arg(long)]
    postgres: bool,
}

const OWNER: &str = "bench-runner";

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1_000.0
}

async fn bench(label: &str, url: &str, redis: Option<String>, args: &Args) -> anyhow::Result<()> {
    let db = runmesh_platform::db::connect(url).await?;
    runmesh_svc_run::migrate(&db).await?;
    let cache = cache::connect(redis.as_deref(), &testkit::unique_name("recap_bench")).await?;
    let config = RunConfig {
        default_time_zone: "Asia/Seoul".to_owned(),
        ..RunConfig::default()
    };
    let module = RunModule::assemble(db, None, cache, config);
    let first = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let started = Instant::now();
    let spacing = Duration::minutes(364 * 24 * 60 / i64::from(args.runs.max(1)));
    for index in 0..args.runs {
        let km = 3.0 + f64::from(index % 19);
        let entry = ManualEntry {
            run: ManualRun {
                sport: Sport::Running,
                start: first + spacing * i32::try_from(index)? + Duration::hours(6),
                duration_s: km * 330.0,
                distance_m: km * 1_000.0,
                elevation_gain_m: Some(km * 5.0),
                average_heart_rate_bpm: None,
            },
            sport: "run",
            title: format!("Run {index}"),
            notes: String::new(),
            visibility: Some("public"),
            time_zone: None,
            moving_s: None,
            source: "manual",
            content_hash: None,
            archive_entry: None,
        };
        module.runs.create_manual(OWNER, entry).await?;
    }
    println!(
        "[{label}] seeded {} runs in {:.1} s",
        args.runs,
        started.elapsed().as_secs_f64()
    );

    let query = RecapQuery {
        kind: PeriodKind::Year,
        day: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
        crew_id: None,
        language: Language::Korean,
    };
    let now = Utc::now();
    let recap = module.recaps.recap(OWNER, &query, now).await?;
    assert_eq!(recap.totals.runs, args.runs);
    let mut data = Histogram::<u64>::new(3)?;
    for _ in 0..args.iterations {
        let at = Instant::now();
        let recap = module.recaps.recap(OWNER, &query, now).await?;
        data.record(u64::try_from(at.elapsed().as_micros())?)?;
        std::hint::black_box(recap);
    }
    println!(
        "[{label}] year recap data ({} runs): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} calls (target <= 50 ms)",
        args.runs,
        ms(&data, 0.5),
        ms(&data, 0.99),
        data.max() as f64 / 1_000.0,
        args.iterations
    );

    let mut svg_only = Histogram::<u64>::new(3)?;
    let mut render = Histogram::<u64>::new(3)?;
    let mut bytes = 0;
    for _ in 0..args.renders {
        let at = Instant::now();
        let svg = card::svg(&recap, CardSize::Portrait);
        svg_only.record(u64::try_from(at.elapsed().as_micros())?)?;
        let png = card::png(&svg)?;
        render.record(u64::try_from(at.elapsed().as_micros())?)?;
        bytes = png.len();
    }
    println!(
        "[{label}] portrait card (SVG + PNG, {} KiB): p50 {:.1} ms, p99 {:.1} ms over {} renders (target <= 150 ms); SVG alone p50 {:.2} ms",
        bytes / 1024,
        ms(&render, 0.5),
        ms(&render, 0.99),
        args.renders,
        ms(&svg_only, 0.5)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The first render loads the embedded fonts: not part of a request's time.
    let warm = std::time::Instant::now();
    let _ = card::font_faces();
    println!(
        "font database loaded in {:.1} ms",
        warm.elapsed().as_secs_f64() * 1e3
    );
    let sqlite = TestSqlite::create()?;
    bench("sqlite", &sqlite.url, None, &args).await?;
    if args.postgres {
        let database = TestDatabase::create().await?;
        bench("postgres", &database.url, Some(testkit::redis_url()), &args).await?;
    }
    Ok(())
}
