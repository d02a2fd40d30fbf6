//! Parse + analyse each real fixture N times and print per-file µs and MB/s.
//!
//! `cargo run --release -p runmesh-svc-run --example analysis_bench -- [N] [FILES...]`
//! (default: 20 iterations over every file in svc-run/tests/fixtures). `bench_file` is the one
//! measurement, for a side-by-side comparison to call.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runmesh_svc_run::domain::{AnalysisConfig, Limits, RunStreams, analyse_activity, parse};

/// One file's figures.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub bytes: usize,
    pub iterations: u32,
    /// Mean time of one parse + analysis (+ streams) of the file.
    pub per_iteration: Duration,
    /// File bytes (as stored, compressed or not) per second.
    pub mb_per_s: f64,
    pub points: usize,
}

/// Parses and analyses `bytes` `iterations` times (after one warm-up) and times it; the error
/// of a file that does not parse.
pub fn bench_file(bytes: &[u8], iterations: u32) -> Result<BenchResult, String> {
    let limits = Limits::default();
    let config = AnalysisConfig::default();
    let warm = parse(bytes, &limits).map_err(|e| e.to_string())?;
    let points = warm.sessions.iter().map(|s| s.points.len()).sum();
    let iterations = iterations.max(1);
    let started = Instant::now();
    for _ in 0..iterations {
        let activity = parse(bytes, &limits).map_err(|e| e.to_string())?;
        let analyses = analyse_activity(&activity, &config);
        let streams: Vec<RunStreams> = activity
            .sessions
            .iter()
            .map(|s| RunStreams::of(s, &config))
            .collect();
        std::hint::black_box((analyses, streams));
    }
    let per_iteration = started.elapsed() / iterations;
    let secs = per_iteration.as_secs_f64().max(1e-12);
    Ok(BenchResult {
        bytes: bytes.len(),
        iterations,
        per_iteration,
        mb_per_s: bytes.len() as f64 / secs / 1e6,
        points,
    })
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "NOTICE"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let iterations = args
        .peek()
        .and_then(|a| a.parse::<u32>().ok())
        .inspect(|_| {
            args.next();
        })
        .unwrap_or(20);
    let mut files: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if files.is_empty() {
        files = fixtures();
    }
    println!(
        "{:<48} {:>10} {:>8} {:>12} {:>8}",
        "file", "bytes", "points", "µs/file", "MB/s"
    );
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let result = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| bench_file(&bytes, iterations));
        match result {
            Ok(r) => println!(
                "{:<48} {:>10} {:>8} {:>12.1} {:>8.1}",
                name,
                r.bytes,
                r.points,
                r.per_iteration.as_secs_f64() * 1e6,
                r.mb_per_s
            ),
            Err(e) => println!("{name:<48} error: {e}"),
        }
    }
}
