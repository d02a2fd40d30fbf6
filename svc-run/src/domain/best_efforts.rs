//! Best efforts: the fastest elapsed time over exactly a standard distance anywhere in a run.
//!
//! For each start point the window's end is found by a pointer that only moves forward (both
//! ends are monotone, so one pass per distance: O(n)), and the time at exactly `start + D` is
//! interpolated linearly between the two points around it. The track is cut into stretches at
//! recording gaps and at steps faster than a human can run, and an effort faster than the
//! world record by more than a margin is refused.

/// A distance best efforts are computed for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EffortDistance {
    /// A stable key: `400m`, `1k`, `1mi`, `5k`, `10k`, `15k`, `half_marathon`, `marathon`.
    pub key: &'static str,
    pub meters: f64,
    /// About the men's world record (road or track), rounded down: the floor of what is
    /// possible, used with [`BestEffortConfig::world_record_margin`].
    pub world_record_s: f64,
}

/// The standard distances, shortest first.
pub const EFFORT_DISTANCES: [EffortDistance; 8] = [
    EffortDistance {
        key: "400m",
        meters: 400.0,
        world_record_s: 43.0,
    },
    EffortDistance {
        key: "1k",
        meters: 1_000.0,
        world_record_s: 131.0,
    },
    EffortDistance {
        key: "1mi",
        meters: 1_609.344,
        world_record_s: 223.0,
    },
    EffortDistance {
        key: "5k",
        meters: 5_000.0,
        world_record_s: 755.0,
    },
    EffortDistance {
        key: "10k",
        meters: 10_000.0,
        world_record_s: 1_571.0,
    },
    EffortDistance {
        key: "15k",
        meters: 15_000.0,
        world_record_s: 2_400.0,
    },
    EffortDistance {
        key: "half_marathon",
        meters: 21_097.5,
        world_record_s: 3_450.0,
    },
    EffortDistance {
        key: "marathon",
        meters: 42_195.0,
        world_record_s: 7_235.0,
    },
];

/// The fastest speed (m/s) a runner can hold over `meters`, from the world records: log-log
/// interpolation between the standard distances, the 400 m speed below 400 m and the marathon
/// speed beyond it.
pub fn world_record_speed_mps(meters: f64) -> f64 {
    let first = EFFORT_DISTANCES[0];
    let last = EFFORT_DISTANCES[EFFORT_DISTANCES.len() - 1];
    if meters.is_nan() || meters <= first.meters {
        return first.meters / first.world_record_s;
    }
    if meters >= last.meters {
        return last.meters / last.world_record_s;
    }
    for pair in EFFORT_DISTANCES.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if meters <= b.meters {
            let f = (meters.ln() - a.meters.ln()) / (b.meters.ln() - a.meters.ln());
            let time =
                (a.world_record_s.ln() + f * (b.world_record_s.ln() - a.world_record_s.ln())).exp();
            return meters / time;
        }
    }
    last.meters / last.world_record_s
}

/// How best efforts treat gaps and impossible speeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestEffortConfig {
    /// A step longer than this (seconds) splits the run: no effort spans it.
    pub gap_s: f64,
    /// A step faster than this (m/s) is a GPS or sensor glitch: no effort spans it.
    /// Default 12.5 m/s, above the fastest human sprint.
    pub max_step_speed_mps: f64,
    /// An effort faster than `world_record_s × (1 − margin)` is refused. Default 0.05.
    pub world_record_margin: f64,
}

impl Default for BestEffortConfig {
    fn default() -> Self {
        BestEffortConfig {
            gap_s: 60.0,
            max_step_speed_mps: 12.5,
            world_record_margin: 0.05,
        }
    }
}

/// The fastest time found over one distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestEffort {
    pub distance: EffortDistance,
    /// Elapsed seconds over exactly `distance.meters`.
    pub elapsed_s: f64,
    /// Where the effort started: seconds and metres from the session's first point.
    pub start_offset_s: f64,
    pub start_distance_m: f64,
}

/// Best efforts over `t` (seconds, non-decreasing) and `d` (metres, non-decreasing) for each of
/// `distances` the run covers in one stretch; distances it never covers are left out.
pub fn best_efforts(
    t: &[f64],
    d: &[f64],
    distances: &[EffortDistance],
    config: &BestEffortConfig,
) -> Vec<BestEffort> {
    let n = t.len().min(d.len());
    let stretches = stretches(&t[..n], &d[..n], config);
    distances
        .iter()
        .filter_map(|distance| {
            stretches
                .iter()
                .filter_map(|&(a, b)| fastest(&t[a..=b], &d[a..=b], *distance, config))
                .min_by(|x, y| x.elapsed_s.total_cmp(&y.elapsed_s))
        })
        .collect()
}

/// Inclusive index ranges with no gap and no impossible step inside.
fn stretches(t: &[f64], d: &[f64], config: &BestEffortConfig) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if t.is_empty() {
        return out;
    }
    let mut start = 0;
    for i in 1..t.len() {
        let dt = t[i] - t[i - 1];
        let dd = d[i] - d[i - 1];
        let broken = dt > config.gap_s || (dd > 0.0 && dd > dt * config.max_step_speed_mps);
        if broken {
            if i - 1 > start {
                out.push((start, i - 1));
            }
            start = i;
        }
    }
    if t.len() - 1 > start {
        out.push((start, t.len() - 1));
    }
    out
}

fn fastest(
    t: &[f64],
    d: &[f64],
    distance: EffortDistance,
    config: &BestEffortConfig,
) -> Option<BestEffort> {
    let target = distance.meters;
    let floor = distance.world_record_s * (1.0 - config.world_record_margin);
    let mut best: Option<BestEffort> = None;
    let mut j = 0;
    for i in 0..t.len() {
        let goal = d[i] + target;
        if j < i {
            j = i;
        }
        while j < t.len() && d[j] < goal {
            j += 1;
        }
        if j >= t.len() {
            break;
        }
        // d[j - 1] < goal <= d[j], and j > i because target > 0.
        let (d0, d1, t0, t1) = (d[j - 1], d[j], t[j - 1], t[j]);
        let span = d1 - d0;
        let end = if span > 0.0 {
            t0 + (t1 - t0) * (goal - d0) / span
        } else {
            t1
        };
        let elapsed = end - t[i];
        if elapsed < floor {
            continue;
        }
        if best.is_none_or(|b| elapsed < b.elapsed_s) {
            best = Some(BestEffort {
                distance,
                elapsed_s: elapsed,
                start_offset_s: t[i],
                start_distance_m: d[i],
            });
        }
    }
    best
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn steady(speed: f64, seconds: usize) -> (Vec<f64>, Vec<f64>) {
        let t: Vec<f64> = (0..=seconds).map(|s| s as f64).collect();
        let d = t.iter().map(|s| s * speed).collect();
        (t, d)
    }

    #[test]
    fn steady_pace_gives_distance_over_speed() {
        let (t, d) = steady(4.0, 3_000);
        let efforts = best_efforts(&t, &d, &EFFORT_DISTANCES, &BestEffortConfig::default());
        let keys: Vec<_> = efforts.iter().map(|e| e.distance.key).collect();
        assert_eq!(keys, ["400m", "1k", "1mi", "5k", "10k"]);
        for e in efforts {
            assert!(
                (e.elapsed_s - e.distance.meters / 4.0).abs() < 1e-9,
                "{e:?}"
            );
        }
    }

    #[test]
    fn interpolates_the_free_end() {
        // 0 m at 0 s, 300 m at 60 s, 600 m at 120 s: 400 m is reached at 80 s.
        let t = [0.0, 60.0, 120.0];
        let d = [0.0, 300.0, 600.0];
        let e = best_efforts(&t, &d, &EFFORT_DISTANCES[..1], &BestEffortConfig::default());
        assert_eq!(e.len(), 1);
        assert!((e[0].elapsed_s - 80.0).abs() < 1e-9);
    }

    #[test]
    fn finds_the_fast_stretch_in_the_middle() {
        // 10 min at 3 m/s, 1 km at 5 m/s, 10 min at 3 m/s.
        let mut t = vec![0.0];
        let mut d = vec![0.0];
        for _ in 0..600 {
            t.push(t.last().unwrap() + 1.0);
            d.push(d.last().unwrap() + 3.0);
        }
        for _ in 0..200 {
            t.push(t.last().unwrap() + 1.0);
            d.push(d.last().unwrap() + 5.0);
        }
        for _ in 0..600 {
            t.push(t.last().unwrap() + 1.0);
            d.push(d.last().unwrap() + 3.0);
        }
        let e = best_efforts(
            &t,
            &d,
            &EFFORT_DISTANCES[1..2],
            &BestEffortConfig::default(),
        );
        assert!((e[0].elapsed_s - 200.0).abs() < 1e-9);
        assert!((e[0].start_distance_m - 1800.0).abs() < 1e-9);
    }

    #[test]
    fn gaps_and_glitches_split_the_run() {
        // 300 m, a 10-minute gap, 300 m: no 400 m effort.
        let t = [0.0, 100.0, 700.0, 800.0];
        let d = [0.0, 300.0, 300.0, 600.0];
        assert!(
            best_efforts(&t, &d, &EFFORT_DISTANCES[..1], &BestEffortConfig::default()).is_empty()
        );
        // A 500 m jump in one second is not run.
        let t = [0.0, 100.0, 101.0, 200.0];
        let d = [0.0, 300.0, 800.0, 1100.0];
        assert!(
            best_efforts(&t, &d, &EFFORT_DISTANCES[..1], &BestEffortConfig::default()).is_empty()
        );
    }

    #[test]
    fn faster_than_the_world_record_is_refused() {
        // 400 m in 30 s (13.3 m/s) but in steps under the glitch threshold.
        let (t, d) = steady(400.0 / 30.0, 40);
        let config = BestEffortConfig {
            max_step_speed_mps: 100.0,
            ..BestEffortConfig::default()
        };
        assert!(best_efforts(&t, &d, &EFFORT_DISTANCES[..1], &config).is_empty());
    }

    #[test]
    fn world_record_speeds_fall_with_distance() {
        let s400 = world_record_speed_mps(400.0);
        let s5k = world_record_speed_mps(5_000.0);
        let s3k = world_record_speed_mps(3_000.0);
        assert!(s400 > s3k && s3k > s5k);
        assert_eq!(world_record_speed_mps(100.0), s400);
        assert_eq!(world_record_speed_mps(100_000.0), 42_195.0 / 7_235.0);
        assert!(world_record_speed_mps(f64::NAN).is_finite());
    }
}
