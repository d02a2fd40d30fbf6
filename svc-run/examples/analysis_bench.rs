//! Parse + analyse each real fixture N times and print per-file µs and MB/s.
//!
//! `cargo run --release -p runmesh-svc-run --example analysis_bench -- [N] [FILES...]`
//! (default: 20 iterations over every file in svc-run/tests/fixtures). `bench_file` is the one
//! measurement, for a side-by-side comparison to call.
//!
//! `analysis_bench --json [--batch-seconds S] [--batches R] FILES...` is the machine-readable
//! mode `scripts/bench-analysis` uses: per file, the iteration count is calibrated so one batch
//! lasts at least S seconds (default 0.3), R batches (default 5) are timed with `bench_file`,
//! and one JSON line is printed with the median and the fastest batch's µs per file, then the
//! mean µs of parsing alone, analysis alone and streams alone (one more batch each).

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

/// One file in `--json` mode: calibrate, time `batches` batches, print one JSON line.
fn json_line(path: &Path, batch_seconds: f64, batches: usize) -> String {
    let name = json_string(&path.to_string_lossy());
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            return format!(
                r#"{{"file":{name},"error":{}}}"#,
                json_string(&e.to_string())
            );
        }
    };
    // Calibration: double the iterations until one batch lasts `batch_seconds`.
    let mut iterations: u32 = 1;
    let first = loop {
        match bench_file(&bytes, iterations) {
            Err(e) => return format!(r#"{{"file":{name},"error":{}}}"#, json_string(&e)),
            Ok(r) if r.per_iteration.as_secs_f64() * f64::from(iterations) >= batch_seconds => {
                break r;
            }
            Ok(r) => {
                let per = r.per_iteration.as_secs_f64().max(1e-9);
                let want = (batch_seconds / per * 1.1).ceil().min(1e7) as u32;
                iterations = want.max(iterations.saturating_mul(2));
            }
        }
    };
    let mut times: Vec<f64> = Vec::with_capacity(batches);
    for _ in 0..batches.max(1) {
        match bench_file(&bytes, iterations) {
            Ok(r) => times.push(r.per_iteration.as_secs_f64() * 1e6),
            Err(e) => return format!(r#"{{"file":{name},"error":{}}}"#, json_string(&e)),
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let (parse_us, analyse_us, streams_us) = phases(&bytes, iterations);
    format!(
        r#"{{"file":{name},"bytes":{},"points":{},"iterations":{iterations},"batches":{},"median_us":{median:.3},"min_us":{:.3},"max_us":{:.3},"parse_us":{parse_us:.3},"analyse_us":{analyse_us:.3},"streams_us":{streams_us:.3}}}"#,
        first.bytes,
        first.points,
        times.len(),
        times[0],
        times[times.len() - 1],
    )
}

/// Mean µs of parse alone, analysis alone and streams alone over `iterations` (after the
/// batches): where svc-run's time goes.
fn phases(bytes: &[u8], iterations: u32) -> (f64, f64, f64) {
    let limits = Limits::default();
    let config = AnalysisConfig::default();
    let n = iterations.max(1);
    let per = |started: Instant| started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(parse(std::hint::black_box(bytes), &limits).ok());
    }
    let parse_us = per(started);
    let Ok(activity) = parse(bytes, &limits) else {
        return (parse_us, 0.0, 0.0);
    };
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(analyse_activity(std::hint::black_box(&activity), &config));
    }
    let analyse_us = per(started);
    let started = Instant::now();
    for _ in 0..n {
        for session in &std::hint::black_box(&activity).sessions {
            std::hint::black_box(RunStreams::of(session, &config));
        }
    }
    (parse_us, analyse_us, per(started))
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_main(args: Vec<String>) {
    let mut batch_seconds = 0.3;
    let mut batches = 5;
    let mut files = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => {}
            "--batch-seconds" => {
                batch_seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(batch_seconds);
            }
            "--batches" => batches = args.next().and_then(|v| v.parse().ok()).unwrap_or(batches),
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if files.is_empty() {
        files = fixtures();
    }
    for path in files {
        println!("{}", json_line(&path, batch_seconds, batches));
    }
}

fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    if all.iter().any(|a| a == "--json") {
        return json_main(all);
    }
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
