//! svc-run's service benchmarks (issue 12, benchmarks 2 and 3), with svc-run started in process
//! by the platform runtime (`runmesh_platform::service::run`, as `runmesh up` / `runmesh serve
//! run` do) on a loopback port:
//!
//! 1. **Archive import**: a Strava-style bulk export of N activities (default 1,000) built from
//!    the real running files in `tests/fixtures` (FIT, GPX, TCX), each copy time-shifted so it is
//!    a distinct run with its own content hash, zipped as Strava does (`activities.csv` with its
//!    repeated headers and `May 6, 2024, 4:02:34 AM` dates, `activities/<id>.fit.gz`,
//!    `.tcx.gz`, `.gpx`), uploaded with `StartArchiveImport` from a file on disk in 256 KiB
//!    chunks, then followed with `WatchArchiveImport` to DONE. Prints the wall time from the
//!    first upload byte to DONE, the process's peak RSS over the import (`VmHWM`, reset just
//!    before the upload: the archive is built by a child process, so this process only ever
//!    holds the service, the runtime and a chunk of upload), and the parse + analysis time of
//!    the same entries alone (single thread) to show where the import's time goes.
//! 2. **CreateRun / GetRun** at `--callers` concurrent callers for `--seconds` each (closed
//!    loop): calls/s, p50, p99. CreateRun: each caller is a runner of its own creating manual
//!    runs; GetRun: the callers read the imported runs (whole analysis: splits, best efforts,
//!    each effort flagged as a personal record or not), then one runner's manual runs.
//!
//! `cargo run --release -p runmesh-svc-run --example run_bench -- [--archive-activities 1000] [--callers 32] [--seconds 10]`
//!
//! Always on SQLite (embedded, a temporary data dir). Also on PostgreSQL + Redis when
//! `RUNMESH_DATABASE_URL` (an existing, empty database) is set, with `RUNMESH_REDIS_URL`; or with
//! `--postgres`, which creates a fresh database `svc_run_bench_<uuid>` on
//! `RUNMESH_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432`), uses Redis at
//! `RUNMESH_TEST_REDIS_URL`, and drops the database afterwards.
//!
//! Time shifting: every copy `k` of a fixture moves back by `k + 1` days. GPX/TCX: every
//! `YYYY-MM-DDTHH:MM:SS` in the text (`<time>`, `<Id>`, `StartTime="…"`) is rewritten. FIT: the
//! messages are walked (definitions, developer fields, compressed-timestamp headers, chained
//! files) and every `timestamp` (field 253) plus `file_id.time_created`,
//! `session.start_time`, `lap.start_time` and `activity.local_timestamp` is shifted, then the
//! file CRC is recomputed; a day is a multiple of 32 s, so compressed timestamps stay right.
//! Each shifted copy is parsed back once to check its start moved by exactly the shift.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDateTime, Utc};
use clap::Parser;
use futures::StreamExt;
use hdrhistogram::Histogram;
use prost::Message as _;
use runmesh_platform::config::Settings;
use runmesh_platform::service::{self, Service};
use runmesh_platform::testkit::TestIssuer;
use runmesh_proto::google::api::HttpBody;
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_proto::runmesh::run::v1::run_service_client::RunServiceClient;
use runmesh_svc_run::RunService;
use runmesh_svc_run::domain::{self, AnalysisConfig, Limits, RunStreams};
use sea_orm::{ConnectionTrait, Database};
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use zip::write::SimpleFileOptions;

// As the `runmesh` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "svc-run: archive import, CreateRun and GetRun benchmarks")]
struct Args {
    /// Activities in the generated Strava export (0 skips the archive import).
    #[arg(long, default_value_t = 1_000)]
    archive_activities: usize,
    /// Concurrent callers of CreateRun and GetRun.
    #[arg(long, default_value_t = 32)]
    callers: usize,
    /// Seconds each of CreateRun and GetRun is driven for.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Upload chunk size of StartArchiveImport, KiB.
    #[arg(long, default_value_t = 256)]
    chunk_kib: usize,
    /// Also run on PostgreSQL + Redis in a fresh database (see the module docs).
    #[arg(long)]
    postgres: bool,
    /// Skip the SQLite run.
    #[arg(long)]
    no_sqlite: bool,
    /// Internal: build the export at this path and exit (run in a child process).
    #[arg(long, hide = true)]
    build_archive: Option<PathBuf>,
    /// Internal: time parse + analysis of this export's entries and exit.
    #[arg(long, hide = true)]
    profile_archive: Option<PathBuf>,
}

/// The running fixtures the export cycles through, with their Strava extension.
const SOURCES: [(&str, &str); 5] = [
    ("18360138543_ACTIVITY_Osaka_Marathon_2025.fit", "fit.gz"),
    ("6471559601_ACTIVITY.fit", "fit.gz"),
    ("garmin-activity.gpx", "gpx"),
    ("20210119_run_garmin_fenix6.tcx.gz", "tcx.gz"),
    ("3173437224.tcx.gz", "tcx.gz"),
];

const HEADER: &str = "Activity ID,Activity Date,Activity Name,Activity Type,Activity Description,Elapsed Time,Distance,Max Heart Rate,Relative Effort,Commute,Activity Private Note,Activity Gear,Filename,Athlete Weight,Bike Weight,Elapsed Time,Moving Time,Distance,Max Speed";

const ARCHIVE_RUNNER: &str = "bench-archive-runner";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.build_archive {
        return build_archive(path, args.archive_activities);
    }
    if let Some(path) = &args.profile_archive {
        return profile_archive(path);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(&args))
}

// ---------------------------------------------------------------------------------------------
// The export

fn fixture(name: &str) -> anyhow::Result<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).with_context(|| path.display().to_string())
}

fn gunzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// Every `YYYY-MM-DDTHH:MM:SS` in an XML text moved by `shift`.
fn shift_xml(text: &[u8], shift: chrono::Duration) -> Vec<u8> {
    const SHAPE: &[u8; 19] = b"0000-00-00T00:00:00";
    let fits = |window: &[u8]| {
        window.iter().zip(SHAPE).all(|(byte, shape)| match shape {
            b'0' => byte.is_ascii_digit(),
            other => byte == other,
        })
    };
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i].is_ascii_digit()
            && i + SHAPE.len() <= text.len()
            && fits(&text[i..i + SHAPE.len()])
            && let Ok(at) = NaiveDateTime::parse_from_str(
                std::str::from_utf8(&text[i..i + SHAPE.len()]).unwrap_or_default(),
                "%Y-%m-%dT%H:%M:%S",
            )
        {
            out.extend_from_slice(
                (at + shift)
                    .format("%Y-%m-%dT%H:%M:%S")
                    .to_string()
                    .as_bytes(),
            );
            i += SHAPE.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// FIT's CRC-16.
fn fit_crc(bytes: &[u8]) -> u16 {
    const TABLE: [u16; 16] = [
        0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401, 0xA001, 0x6C00, 0x7800,
        0xB401, 0x5000, 0x9C01, 0x8801, 0x4400,
    ];
    let mut crc = 0u16;
    for &byte in bytes {
        let tmp = TABLE[usize::from(crc & 0xF)];
        crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ TABLE[usize::from(byte & 0xF)];
        let tmp = TABLE[usize::from(crc & 0xF)];
        crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ TABLE[usize::from((byte >> 4) & 0xF)];
    }
    crc
}

/// One field of a FIT definition: (field number, size, base type).
type FieldDef = (u8, u8, u8);

struct Definition {
    global: u16,
    big_endian: bool,
    fields: Vec<FieldDef>,
    developer_bytes: usize,
}

/// Whether field `num` of message `global` holds a date_time to shift.
fn is_time(global: u16, num: u8) -> bool {
    num == 253
        || matches!(
            (global, num),
            (0, 4) | (18, 2) | (19, 2) | (34, 5) | (101, 2)
        )
}

/// A FIT file (chained files too) with every timestamp moved by `shift` seconds (a multiple of 32,
/// so compressed timestamp headers stay consistent) and its CRCs recomputed.
fn shift_fit(bytes: &[u8], shift: i64) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(shift % 32 == 0, "FIT shifts must be multiples of 32 s");
    let mut out = bytes.to_vec();
    let mut start = 0;
    while start + 12 <= out.len() {
        let header = usize::from(out[start]);
        anyhow::ensure!(
            (header == 12 || header == 14) && &out[start + 8..start + 12] == b".FIT",
            "not a FIT header at {start}"
        );
        let data_size = u32::from_le_bytes(out[start + 4..start + 8].try_into().unwrap()) as usize;
        let data_end = start + header + data_size;
        anyhow::ensure!(data_end + 2 <= out.len(), "truncated FIT file");
        let mut definitions: Vec<Option<Definition>> = (0..16).map(|_| None).collect();
        let mut at = start + header;
        while at < data_end {
            let record = out[at];
            at += 1;
            if record & 0x80 == 0 && record & 0x40 != 0 {
                let local = usize::from(record & 0x0F);
                let big_endian = out[at + 1] == 1;
                let global = if big_endian {
                    u16::from_be_bytes([out[at + 2], out[at + 3]])
                } else {
                    u16::from_le_bytes([out[at + 2], out[at + 3]])
                };
                let count = usize::from(out[at + 4]);
                at += 5;
                let fields = (0..count)
                    .map(|i| (out[at + 3 * i], out[at + 3 * i + 1], out[at + 3 * i + 2]))
                    .collect();
                at += 3 * count;
                let mut developer_bytes = 0;
                if record & 0x20 != 0 {
                    let developer = usize::from(out[at]);
                    at += 1;
                    developer_bytes = (0..developer)
                        .map(|i| usize::from(out[at + 3 * i + 1]))
                        .sum();
                    at += 3 * developer;
                }
                definitions[local] = Some(Definition {
                    global,
                    big_endian,
                    fields,
                    developer_bytes,
                });
                continue;
            }
            let local = if record & 0x80 != 0 {
                usize::from((record >> 5) & 0x03)
            } else {
                usize::from(record & 0x0F)
            };
            let definition = definitions[local]
                .as_ref()
                .with_context(|| format!("data message without a definition at {at}"))?;
            for &(num, size, base) in &definition.fields {
                let size = usize::from(size);
                if size == 4 && base & 0x1F == 0x06 && is_time(definition.global, num) {
                    let field: [u8; 4] = out[at..at + 4].try_into().unwrap();
                    let value = if definition.big_endian {
                        u32::from_be_bytes(field)
                    } else {
                        u32::from_le_bytes(field)
                    };
                    // 0xFFFFFFFF is "invalid", below 0x10000000 a device-relative time.
                    if value != u32::MAX && value >= 0x1000_0000 {
                        let shifted = u32::try_from(i64::from(value) + shift)?;
                        let bytes = if definition.big_endian {
                            shifted.to_be_bytes()
                        } else {
                            shifted.to_le_bytes()
                        };
                        out[at..at + 4].copy_from_slice(&bytes);
                    }
                }
                at += size;
            }
            at += definition.developer_bytes;
        }
        anyhow::ensure!(at == data_end, "FIT records overrun the data size");
        let crc = fit_crc(&out[start..data_end]);
        out[data_end..data_end + 2].copy_from_slice(&crc.to_le_bytes());
        start = data_end + 2;
    }
    Ok(out)
}

/// What `ImportRun` keeps of a file: the run is its longest running session, else its longest.
fn analyse(bytes: &[u8]) -> anyhow::Result<domain::Analysis> {
    let activity = domain::parse(bytes, &Limits::default())?;
    let session = activity
        .running_sessions()
        .max_by_key(|s| s.points.len())
        .or_else(|| activity.sessions.iter().max_by_key(|s| s.points.len()))
        .context("no session")?;
    Ok(domain::analyse(session, &AnalysisConfig::default()))
}

/// Writes the export (child process mode).
fn build_archive(path: &Path, activities: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    // The plain bytes of each fixture and its analysis (start, elapsed, distance).
    let mut sources = Vec::new();
    for (name, extension) in SOURCES {
        let stored = fixture(name)?;
        let plain = if name.ends_with(".gz") {
            gunzip(&stored)?
        } else {
            stored
        };
        let analysis = analyse(&plain).with_context(|| name.to_owned())?;
        sources.push((name, extension, plain, analysis));
    }
    let file = std::fs::File::create(path)?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    let mut csv = format!("{HEADER}\n");
    let mut plain_bytes = 0usize;
    let mut checked = vec![false; sources.len()];
    for n in 0..activities {
        let which = n % sources.len();
        let (name, extension, plain, analysis) = &sources[which];
        let days = i64::try_from(n / sources.len() + 1)?;
        let shift = chrono::Duration::days(days);
        let shifted = if extension.starts_with("fit") {
            shift_fit(plain, -shift.num_seconds())?
        } else {
            shift_xml(plain, -shift)
        };
        if !checked[which] {
            // Each fixture's first copy is parsed back: same run, `shift` earlier.
            let again = analyse(&shifted).with_context(|| format!("shifted {name}"))?;
            anyhow::ensure!(
                again.start == analysis.start - shift
                    && (again.distance_m - analysis.distance_m).abs() < 0.01,
                "{name}: shifted copy starts at {} ({} m), expected {} ({} m)",
                again.start,
                again.distance_m,
                analysis.start - shift,
                analysis.distance_m
            );
            checked[which] = true;
        }
        plain_bytes += shifted.len();
        let id = 10_000_000_000u64 + n as u64;
        let entry = format!("activities/{id}.{extension}");
        let stored = if extension.ends_with(".gz") {
            gzip(&shifted)?
        } else {
            shifted
        };
        zip.start_file(entry.as_str(), options)?;
        zip.write_all(&stored)?;
        let start = analysis.start - shift;
        let km = analysis.distance_m / 1_000.0;
        let elapsed = analysis.elapsed_s.round();
        let moving = analysis.moving_s.round();
        csv.push_str(&format!(
            "{id},\"{}\",Bench run {n},Run,\"Copy {} of {name}\",{elapsed},{km:.2},,,false,,Bench shoes,{entry},,,{elapsed}.0,{moving}.0,{:.1},\n",
            start.format("%b %-d, %Y, %-I:%M:%S %p"),
            days,
            analysis.distance_m
        ));
    }
    zip.start_file("activities.csv", options)?;
    zip.write_all(csv.as_bytes())?;
    zip.start_file("profile.csv", options)?;
    zip.write_all(b"Athlete ID,First Name\n1,Bench\n")?;
    zip.finish()?.flush()?;
    println!(
        "export: {activities} activities ({} FIT, {} TCX, {} GPX), {:.1} MB inflated, {:.1} MB zipped, built in {:.1} s",
        (0..activities)
            .filter(|n| SOURCES[n % SOURCES.len()].1.starts_with("fit"))
            .count(),
        (0..activities)
            .filter(|n| SOURCES[n % SOURCES.len()].1.starts_with("tcx"))
            .count(),
        (0..activities)
            .filter(|n| SOURCES[n % SOURCES.len()].1 == "gpx")
            .count(),
        plain_bytes as f64 / 1e6,
        std::fs::metadata(path)?.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Times, per entry and single-threaded, what an import does to a file besides the database:
/// reading the zip entry, hashing, gunzip + parse + analysis + streams, encoding.
fn profile_archive(path: &Path) -> anyhow::Result<()> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path)?)?;
    let (mut read, mut hash, mut analyse_time, mut encode) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    let mut entries = 0;
    let limits = Limits::default();
    let config = AnalysisConfig::default();
    for i in 0..zip.len() {
        let t = Instant::now();
        let mut file = zip.by_index(i)?;
        if !file.name().starts_with("activities/") {
            continue;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        drop(file);
        read += t.elapsed();
        let t = Instant::now();
        std::hint::black_box(runmesh_svc_run::runs::sha256_hex(&bytes));
        hash += t.elapsed();
        let t = Instant::now();
        let activity = domain::parse(&bytes, &limits)?;
        let session = activity
            .running_sessions()
            .max_by_key(|s| s.points.len())
            .or_else(|| activity.sessions.iter().max_by_key(|s| s.points.len()))
            .context("no session")?;
        let analysis = domain::analyse(session, &config);
        let streams = RunStreams::of(session, &config);
        analyse_time += t.elapsed();
        let t = Instant::now();
        std::hint::black_box(runmesh_svc_run::wire::details(&analysis));
        std::hint::black_box(runmesh_svc_run::wire::streams_message(&streams).encode_to_vec());
        encode += t.elapsed();
        entries += 1;
    }
    println!(
        "  profile of the {entries} entries alone (1 thread): zip read {:.2} s, sha256 {:.2} s, gunzip+parse+analysis+streams {:.2} s, encode {:.2} s",
        read.as_secs_f64(),
        hash.as_secs_f64(),
        analyse_time.as_secs_f64(),
        encode.as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The service

struct Backend {
    label: &'static str,
    database_url: Option<String>,
    redis_url: Option<String>,
    /// A database this bench created and drops: (server URL, name).
    created: Option<(String, String)>,
}

struct Node {
    addr: SocketAddr,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_node(
    backend: &Backend,
    data_dir: &Path,
    issuer: &TestIssuer,
) -> anyhow::Result<Node> {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let settings = Settings {
        grpc_addr: loopback,
        metrics_addr: loopback,
        data_dir: data_dir.to_path_buf(),
        database_url: backend.database_url.clone(),
        redis_url: backend.redis_url.clone(),
        shutdown_delay: Duration::ZERO,
        shutdown_grace: Duration::from_secs(5),
        log_filter: "warn".to_owned(),
        ..Settings::default()
    };
    let shutdown = CancellationToken::new();
    let (ready, listening) = tokio::sync::oneshot::channel();
    let service: Arc<dyn Service> = Arc::new(RunService::from_env()?);
    let handle = tokio::spawn(service::run(
        settings,
        vec![service],
        "runmesh-svc-run-bench",
        Some(issuer.key_source()),
        shutdown.clone(),
        Some(ready),
    ));
    let addr = match listening.await {
        Ok(listening) => listening.grpc,
        Err(_) => {
            handle.await??;
            bail!("the service stopped before listening");
        }
    };
    Ok(Node {
        addr,
        shutdown,
        handle,
    })
}

fn client(addr: SocketAddr) -> RunServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    RunServiceClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024)
}

fn as_runner<T>(issuer: &TestIssuer, user: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        issuer.bearer(user, &["runner"]).parse().unwrap(),
    );
    request
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|line| line.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn bench(args: &Args) -> anyhow::Result<()> {
    println!(
        "svc-run bench: {} cores, load average {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let work = tempfile::tempdir()?;
    let archive = work.path().join("export.zip");
    if args.archive_activities > 0 {
        // Built by a child process, so this process's peak RSS is the service's.
        let status = std::process::Command::new(std::env::current_exe()?)
            .arg("--build-archive")
            .arg(&archive)
            .arg("--archive-activities")
            .arg(args.archive_activities.to_string())
            .status()?;
        anyhow::ensure!(status.success(), "building the export failed");
    }

    let mut backends = Vec::new();
    if !args.no_sqlite {
        backends.push(Backend {
            label: "SQLite (embedded)",
            database_url: None,
            redis_url: None,
            created: None,
        });
    }
    if let Ok(url) = std::env::var("RUNMESH_DATABASE_URL") {
        backends.push(Backend {
            label: "PostgreSQL + Redis",
            database_url: Some(url),
            redis_url: std::env::var("RUNMESH_REDIS_URL").ok(),
            created: None,
        });
    } else if args.postgres {
        let server = runmesh_platform::testkit::postgres_server_url();
        let name = format!("svc_run_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(format!("{server}/postgres"))
            .await
            .with_context(|| format!("connecting to PostgreSQL at {server}"))?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        admin.close().await?;
        backends.push(Backend {
            label: "PostgreSQL + Redis",
            database_url: Some(format!("{server}/{name}")),
            redis_url: Some(runmesh_platform::testkit::redis_url()),
            created: Some((server, name)),
        });
    }

    let issuer = TestIssuer::new();
    for backend in &backends {
        let data_dir = tempfile::tempdir()?;
        println!("\n== {} ==", backend.label);
        let outcome = async {
            let node = start_node(backend, data_dir.path(), &issuer).await?;
            let mut imported = Vec::new();
            if args.archive_activities > 0 {
                imported = archive_import(args, node.addr, &issuer, &archive).await?;
            }
            create_runs(args, node.addr, &issuer).await?;
            if !imported.is_empty() {
                let label = "imported runs (splits, best efforts)";
                get_runs(args, node.addr, &issuer, label, ARCHIVE_RUNNER, imported).await?;
            }
            let manual = list_runs(node.addr, &issuer, "bench-runner-0", 1_000).await?;
            let label = "manual runs from CreateRun";
            get_runs(args, node.addr, &issuer, label, "bench-runner-0", manual).await?;
            node.shutdown.cancel();
            node.handle.await??;
            anyhow::Ok(())
        }
        .await;
        if let Some((server, name)) = &backend.created {
            let admin = Database::connect(format!("{server}/postgres")).await?;
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await?;
        }
        outcome?;
    }
    println!(
        "\nload average after: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Benchmark 2: the archive import

/// Imports the export; returns the imported runs' ids.
async fn archive_import(
    args: &Args,
    addr: SocketAddr,
    issuer: &TestIssuer,
    archive: &Path,
) -> anyhow::Result<Vec<String>> {
    let size = std::fs::metadata(archive)?.len();
    // Peak RSS from here on: reset VmHWM to the current RSS (Linux clear_refs 5).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss_before = proc_status_kib("VmRSS:").unwrap_or(0);
    let sampling = Arc::new(AtomicBool::new(true));
    let sampled_peak = Arc::new(AtomicU64::new(rss_before));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        let sampled_peak = Arc::clone(&sampled_peak);
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let Some(rss) = proc_status_kib("VmRSS:") {
                    sampled_peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let chunk = args.chunk_kib * 1024;
    let file = tokio::fs::File::open(archive).await?;
    // Read from disk a chunk at a time, as a client streaming a large file would.
    let body = futures::stream::unfold(file, move |mut file| async move {
        let mut data = vec![0u8; chunk];
        let mut filled = 0;
        while filled < chunk {
            let read = file
                .read(&mut data[filled..])
                .await
                .expect("reading the export");
            if read == 0 {
                break;
            }
            filled += read;
        }
        if filled == 0 {
            return None;
        }
        data.truncate(filled);
        let message = proto::StartArchiveImportRequest {
            archive: Some(HttpBody {
                content_type: "application/zip".to_owned(),
                data,
                extensions: Vec::new(),
            }),
        };
        Some((message, file))
    });
    let messages =
        futures::stream::iter([proto::StartArchiveImportRequest { archive: None }]).chain(body);
    let started = Instant::now();
    let import = client(addr)
        .start_archive_import(as_runner(issuer, ARCHIVE_RUNNER, messages))
        .await?
        .into_inner()
        .archive_import
        .context("no import in the answer")?;
    let uploaded = started.elapsed();
    println!(
        "archive import: {:.1} MB uploaded in {} KiB chunks in {:.2} s; import {}",
        size as f64 / 1e6,
        args.chunk_kib,
        uploaded.as_secs_f64(),
        import.import_id
    );
    let mut stream = client(addr)
        .watch_archive_import(as_runner(
            issuer,
            ARCHIVE_RUNNER,
            proto::WatchArchiveImportRequest {
                import_id: import.import_id.clone(),
            },
        ))
        .await?
        .into_inner();
    let mut last = None;
    let mut reports = 0u64;
    let mut printed = Instant::now();
    while let Some(report) = tokio::time::timeout(Duration::from_secs(600), stream.next())
        .await
        .context("no progress for 10 minutes")?
    {
        let report = report?.archive_import.context("empty report")?;
        reports += 1;
        let handled = report.imported + report.skipped + report.failed;
        let running = report.state == proto::archive_import::State::Running as i32;
        if !running || printed.elapsed() >= Duration::from_secs(2) {
            println!(
                "  {:6.2} s  {handled:>5}/{} handled: {} imported, {} skipped, {} failed; RSS {:.0} MiB",
                started.elapsed().as_secs_f64(),
                report.activities_seen,
                report.imported,
                report.skipped,
                report.failed,
                mib(proc_status_kib("VmRSS:").unwrap_or(0))
            );
            printed = Instant::now();
        }
        last = Some(report);
    }
    let wall = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    sampler.join().ok();
    let peak = proc_status_kib("VmHWM:").unwrap_or(0);
    let last = last.context("no progress at all")?;
    anyhow::ensure!(
        last.state == proto::archive_import::State::Done as i32,
        "the import ended {:?}: {}",
        last.state,
        last.error
    );
    println!(
        "archive import: {} activities in {:.2} s from the first upload byte to DONE ({:.2} s upload, {:.2} s import, {:.0} activities/s; {reports} progress reports)",
        last.activities_seen,
        wall.as_secs_f64(),
        uploaded.as_secs_f64(),
        (wall - uploaded).as_secs_f64(),
        f64::from(last.activities_seen) / wall.as_secs_f64()
    );
    println!(
        "  outcome: {} imported, {} skipped, {} failed{}",
        last.imported,
        last.skipped,
        last.failed,
        last.problems
            .iter()
            .take(5)
            .map(|p| format!("; {} {} ({})", p.entry, p.reason, p.message))
            .collect::<String>()
    );
    println!(
        "  process RSS: {:.1} MiB before the upload, peak {:.1} MiB during the import (VmHWM{}; sampled every 20 ms: {:.1} MiB), +{:.1} MiB",
        mib(rss_before),
        mib(peak),
        if reset {
            ", reset before the upload"
        } else {
            " since the process started: clear_refs failed"
        },
        mib(sampled_peak.load(Ordering::Relaxed)),
        mib(peak.saturating_sub(rss_before))
    );
    // Where the time goes: the same entries parsed and analysed alone, in a child process.
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("--profile-archive")
        .arg(archive)
        .status()?;
    anyhow::ensure!(status.success(), "profiling the export failed");

    let ids = list_runs(addr, issuer, ARCHIVE_RUNNER, usize::MAX).await?;
    println!("  ListRuns: the runner has {} runs", ids.len());
    Ok(ids)
}

/// The ids of `runner`'s runs, newest first, at most `limit` of them.
async fn list_runs(
    addr: SocketAddr,
    issuer: &TestIssuer,
    runner: &str,
    limit: usize,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut page_token = String::new();
    while ids.len() < limit {
        let page = client(addr)
            .list_runs(as_runner(
                issuer,
                runner,
                proto::ListRunsRequest {
                    page_size: 100,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
            ))
            .await?
            .into_inner();
        ids.extend(page.runs.into_iter().map(|run| run.run_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    ids.truncate(limit);
    Ok(ids)
}

// ---------------------------------------------------------------------------------------------
// Benchmark 3: CreateRun and GetRun

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

fn report(name: &str, args: &Args, merged: &Histogram<u64>, errors: u64, elapsed: Duration) {
    println!(
        "{name}: {} callers, {:.1} s: {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms ({} calls, {errors} errors)",
        args.callers,
        elapsed.as_secs_f64(),
        merged.len() as f64 / elapsed.as_secs_f64(),
        merged.value_at_quantile(0.50) as f64 / 1e3,
        merged.value_at_quantile(0.99) as f64 / 1e3,
        merged.max() as f64 / 1e3,
        merged.len()
    );
}

async fn create_runs(args: &Args, addr: SocketAddr, issuer: &TestIssuer) -> anyhow::Result<()> {
    let duration = Duration::from_secs(args.seconds);
    let now = Utc::now();
    let started = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..args.callers {
        let mut client = client(addr);
        let runner = format!("bench-runner-{caller}");
        let header: tonic::metadata::MetadataValue<_> =
            issuer.bearer(&runner, &["runner"]).parse()?;
        callers.spawn(async move {
            let mut latencies = histogram();
            let mut errors = 0u64;
            let mut first_error = None;
            let mut n = 0i64;
            while started.elapsed() < duration {
                n += 1;
                let start: DateTime<Utc> = now - chrono::Duration::hours(2 * n);
                let run = proto::Run {
                    sport: proto::Sport::Run.into(),
                    title: format!("Easy run {n}"),
                    notes: "Felt fine".to_owned(),
                    start_time: Some(prost_types::Timestamp {
                        seconds: start.timestamp(),
                        nanos: 0,
                    }),
                    time_zone: "Europe/Paris".to_owned(),
                    elapsed_time: Some(prost_types::Duration {
                        seconds: 2_400 + n % 600,
                        nanos: 0,
                    }),
                    distance_meters: 8_000.0 + (n % 50) as f64 * 10.0,
                    elevation_gain_meters: Some(35.0),
                    average_heart_rate: Some(148),
                    visibility: proto::Visibility::Private.into(),
                    ..Default::default()
                };
                let mut request = tonic::Request::new(proto::CreateRunRequest { run: Some(run) });
                request
                    .metadata_mut()
                    .insert("authorization", header.clone());
                let call = Instant::now();
                match client.create_run(request).await {
                    Ok(_) => latencies.record(call.elapsed().as_micros() as u64).unwrap(),
                    Err(status) => {
                        errors += 1;
                        first_error.get_or_insert(status);
                    }
                }
            }
            (latencies, errors, first_error)
        });
    }
    let mut merged = histogram();
    let mut errors = 0;
    while let Some(done) = callers.join_next().await {
        let (latencies, caller_errors, first_error) = done?;
        merged.add(&latencies)?;
        errors += caller_errors;
        if let Some(status) = first_error {
            println!("  CreateRun error: {status:?}");
        }
    }
    report("CreateRun", args, &merged, errors, started.elapsed());
    Ok(())
}

async fn get_runs(
    args: &Args,
    addr: SocketAddr,
    issuer: &TestIssuer,
    label: &str,
    runner: &str,
    ids: Vec<String>,
) -> anyhow::Result<()> {
    anyhow::ensure!(!ids.is_empty(), "no runs to read");
    let ids = Arc::new(ids);
    let header: tonic::metadata::MetadataValue<_> = issuer.bearer(runner, &["runner"]).parse()?;
    let duration = Duration::from_secs(args.seconds);
    let started = Instant::now();
    let bytes = Arc::new(AtomicU64::new(0));
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..args.callers {
        let mut client = client(addr);
        let ids = Arc::clone(&ids);
        let header = header.clone();
        let bytes = Arc::clone(&bytes);
        callers.spawn(async move {
            let mut latencies = histogram();
            let mut errors = 0u64;
            let mut first_error = None;
            let mut n = caller;
            while started.elapsed() < duration {
                let mut request = tonic::Request::new(proto::GetRunRequest {
                    run_id: ids[n % ids.len()].clone(),
                });
                n += stride(ids.len());
                request
                    .metadata_mut()
                    .insert("authorization", header.clone());
                let call = Instant::now();
                match client.get_run(request).await {
                    Ok(response) => {
                        latencies.record(call.elapsed().as_micros() as u64).unwrap();
                        bytes.fetch_add(
                            response.into_inner().encoded_len() as u64,
                            Ordering::Relaxed,
                        );
                    }
                    Err(status) => {
                        errors += 1;
                        first_error.get_or_insert(status);
                    }
                }
            }
            (latencies, errors, first_error)
        });
    }
    let mut merged = histogram();
    let mut errors = 0;
    while let Some(done) = callers.join_next().await {
        let (latencies, caller_errors, first_error) = done?;
        merged.add(&latencies)?;
        errors += caller_errors;
        if let Some(status) = first_error {
            println!("  GetRun error: {status:?}");
        }
    }
    report(
        &format!(
            "GetRun, {label} ({} runs, {:.2} KB per answer)",
            ids.len(),
            { bytes.load(Ordering::Relaxed) as f64 / merged.len().max(1) as f64 / 1e3 }
        ),
        args,
        &merged,
        errors,
        started.elapsed(),
    );
    Ok(())
}

/// How far a caller moves through the run ids between calls.
fn stride(len: usize) -> usize {
    if len > 7 { 7 } else { 1 }
}
