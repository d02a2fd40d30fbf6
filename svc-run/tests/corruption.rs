//! Every fixture mutated thousands of times in all — truncated, bytes flipped, bytes inserted —
//! must give a result or a clean error: never a panic, never a hang. Each parse (and the
//! analysis and streams of what parses) runs under `catch_unwind`; a watchdog fails the test
//! if one case runs longer than a generous bound.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runmesh_svc_run::domain::{AnalysisConfig, Limits, RunStreams, analyse_activity, parse};

/// Only a hang detector: a healthy parse of the largest fixture takes well under a second.
const HANG_BOUND: Duration = Duration::from_secs(5);

fn fixture_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = Vec::new();
    for sub in [dir.clone(), dir.join("gpxpy")] {
        for entry in std::fs::read_dir(sub).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && path.file_name().unwrap() != "NOTICE" {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Truncate,
    Flip,
    Insert,
}

struct Case {
    label: String,
    bytes: Vec<u8>,
}

fn mutate(original: &[u8], kind: Kind, rng: &mut StdRng) -> Vec<u8> {
    let mut bytes = original.to_vec();
    match kind {
        Kind::Truncate => bytes.truncate(rng.random_range(0..original.len().max(1))),
        Kind::Flip => {
            for _ in 0..rng.random_range(1..=8) {
                if bytes.is_empty() {
                    break;
                }
                let i = rng.random_range(0..bytes.len());
                bytes[i] = rng.random();
            }
        }
        Kind::Insert => {
            let at = rng.random_range(0..=bytes.len());
            let n = rng.random_range(1..=16);
            let insert: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            bytes.splice(at..at, insert);
        }
    }
    bytes
}

/// The mutations of one file: its plain bytes (inflated for a `.gz`) mutated, and for a `.gz`
/// some mutations of the compressed bytes too. Smaller files get more.
fn cases(path: &Path, seed: u64) -> Vec<Case> {
    let stored = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let gz = stored.starts_with(&[0x1f, 0x8b]);
    let plain = if gz {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(stored.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        stored.clone()
    };
    let count = (4_000_000 / plain.len().max(1)).clamp(40, 300);
    let mut rng = StdRng::seed_from_u64(seed);
    let kinds = [Kind::Truncate, Kind::Flip, Kind::Insert];
    let mut out = Vec::with_capacity(count + 30);
    for i in 0..count {
        let kind = kinds[i % 3];
        out.push(Case {
            label: format!("{name} #{i} {kind:?} (seed {seed})"),
            bytes: mutate(&plain, kind, &mut rng),
        });
    }
    if gz {
        for i in 0..30 {
            let kind = kinds[i % 3];
            out.push(Case {
                label: format!("{name} gz #{i} {kind:?} (seed {seed})"),
                bytes: mutate(&stored, kind, &mut rng),
            });
        }
    }
    out
}

/// Parse, and analyse what parses: the outcome's name, or the panic.
fn run(bytes: &[u8]) -> Result<&'static str, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let config = AnalysisConfig::default();
        match parse(bytes, &Limits::default()) {
            Ok(activity) => {
                let analyses = analyse_activity(&activity, &config);
                for (session, analysis) in activity.sessions.iter().zip(&analyses) {
                    assert!(analysis.distance_m.is_finite());
                    assert!(analysis.elapsed_s.is_finite());
                    let streams = RunStreams::of(session, &config);
                    assert_eq!(streams.len(), session.points.len());
                }
                "ok"
            }
            Err(e) => e.reason(),
        }
    }))
    .map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic".to_owned())
    })
}

#[test]
fn mutated_fixtures_never_panic_or_hang() {
    let files = fixture_files();
    assert!(files.len() >= 45, "{} fixtures", files.len());
    let workers = 2;
    type InFlight = Arc<Mutex<Option<(Instant, String)>>>;
    let slots: Vec<InFlight> = (0..workers).map(|_| Arc::new(Mutex::new(None))).collect();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let slot = Arc::clone(&slots[w]);
            let mine: Vec<(u64, PathBuf)> = files
                .iter()
                .enumerate()
                .filter(|(i, _)| i % workers == w)
                .map(|(i, p)| (i as u64 + 1, p.clone()))
                .collect();
            std::thread::spawn(move || {
                let mut tally: BTreeMap<&'static str, usize> = BTreeMap::new();
                let mut panics = Vec::new();
                for (seed, path) in mine {
                    for case in cases(&path, seed) {
                        *slot.lock().unwrap() = Some((Instant::now(), case.label.clone()));
                        match run(&case.bytes) {
                            Ok(outcome) => *tally.entry(outcome).or_default() += 1,
                            Err(message) => panics.push(format!("{}: {message}", case.label)),
                        }
                        *slot.lock().unwrap() = None;
                    }
                }
                (tally, panics)
            })
        })
        .collect();

    // The watchdog: no case may stay in flight past the bound.
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        for slot in &slots {
            if let Some((started, label)) = slot.lock().unwrap().as_ref() {
                assert!(
                    started.elapsed() < HANG_BOUND,
                    "{label} still parsing after {:?}",
                    started.elapsed()
                );
            }
        }
    }

    let mut tally: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut panics = Vec::new();
    for handle in handles {
        let (t, p) = handle.join().unwrap();
        for (k, v) in t {
            *tally.entry(k).or_default() += v;
        }
        panics.extend(p);
    }
    let total: usize = tally.values().sum::<usize>() + panics.len();
    eprintln!("{total} mutations over {} fixtures: {tally:?}", files.len());
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
    assert!(total >= 5_000, "{total} mutations");
    // Both kinds of outcome happen: damage is noticed, and not everything is refused.
    assert!(tally.get("ok").copied().unwrap_or(0) > 100, "{tally:?}");
    assert!(
        tally.get("CORRUPT_FILE").copied().unwrap_or(0) > 100,
        "{tally:?}"
    );
}
