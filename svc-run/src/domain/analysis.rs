//! A session's numbers: distance, elapsed and moving time, elevation, splits, pace, heart rate,
//! cadence and (for running) best efforts. The device's own totals win when the file has them.

use chrono::{DateTime, Utc};

use super::best_efforts::{BestEffort, BestEffortConfig, EFFORT_DISTANCES, best_efforts};
use super::series::Series;
use super::track::{Activity, Session, Sport};

/// Metres in a mile.
pub const MILE_M: f64 = 1_609.344;

/// The speed (m/s) at or above which a step counts as moving, per sport.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MovingSpeeds {
    /// Default 0.894 m/s: a 30-minute mile.
    pub running: f64,
    pub walking: f64,
    pub hiking: f64,
    pub cycling: f64,
    pub swimming: f64,
    pub other: f64,
}

impl Default for MovingSpeeds {
    fn default() -> Self {
        MovingSpeeds {
            running: 0.894,
            walking: 0.5,
            hiking: 0.3,
            cycling: 1.0,
            swimming: 0.1,
            other: 0.5,
        }
    }
}

impl MovingSpeeds {
    pub fn of(&self, sport: Sport) -> f64 {
        match sport {
            Sport::Running => self.running,
            Sport::Walking => self.walking,
            Sport::Hiking => self.hiking,
            Sport::Cycling => self.cycling,
            Sport::Swimming => self.swimming,
            Sport::Other => self.other,
        }
    }
}

/// Every tunable of the analysis; `Default` is what the service uses unless configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalysisConfig {
    /// Used for moving time when the file has no timer time.
    pub moving_speed_mps: MovingSpeeds,
    /// Elevation must move this far (m) from the last turning point to count; default 3 m.
    pub elevation_hysteresis_m: f64,
    /// Steps longer than this (s) are recording gaps: not moving time, no effort spans them.
    pub gap_s: f64,
    /// Window (s) for the maximum speed and the pace stream; default 10 s.
    pub speed_window_s: f64,
    pub best_efforts: BestEffortConfig,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        let best_efforts = BestEffortConfig::default();
        AnalysisConfig {
            moving_speed_mps: MovingSpeeds::default(),
            elevation_hysteresis_m: 3.0,
            gap_s: best_efforts.gap_s,
            speed_window_s: 10.0,
            best_efforts,
        }
    }
}

/// Where a figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The device's own total or stream (FIT session, TCX laps, distance stream).
    Device,
    /// Computed here from the points (haversine, speed threshold, hysteresis).
    Computed,
}

/// Average and maximum of a sampled value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Time-weighted over the points that have the value.
    pub average: f64,
    pub maximum: f64,
}

/// One split of a whole unit (km or mile), or the shorter remainder at the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// 1-based.
    pub index: u32,
    /// The unit, or less for the last split.
    pub distance_m: f64,
    /// Elapsed seconds over the split.
    pub elapsed_s: f64,
    /// `elapsed_s` per 1,000 m (for a mile split, `elapsed_s` itself is the pace per mile).
    pub pace_s_per_km: f64,
    /// Elevation at the split's end minus at its start, when the track has elevation.
    pub elevation_change_m: Option<f64>,
    pub average_heart_rate_bpm: Option<f64>,
}

/// A session analysed.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub sport: Sport,
    pub start: DateTime<Utc>,
    pub distance_m: f64,
    pub distance_source: Source,
    /// First to last point, or the device's elapsed time.
    pub elapsed_s: f64,
    pub moving_s: f64,
    pub moving_source: Source,
    /// `None` when the track has no elevation and the device gave no totals.
    pub elevation_gain_m: Option<f64>,
    pub elevation_loss_m: Option<f64>,
    pub elevation_source: Source,
    /// Moving time per kilometre; `None` without distance.
    pub average_pace_s_per_km: Option<f64>,
    /// Distance over moving time.
    pub average_speed_mps: Option<f64>,
    /// Fastest speed held over [`AnalysisConfig::speed_window_s`].
    pub max_speed_mps: Option<f64>,
    pub heart_rate_bpm: Option<Summary>,
    /// Steps per minute for running, walking and hiking (twice the strides devices record),
    /// revolutions per minute otherwise.
    pub cadence: Option<Summary>,
    pub splits_km: Vec<Split>,
    pub splits_mile: Vec<Split>,
    pub lap_count: usize,
    pub point_count: usize,
    pub has_positions: bool,
    /// Empty unless the session is a run.
    pub best_efforts: Vec<BestEffort>,
}

/// Every session of an activity, in order.
pub fn analyse_activity(activity: &Activity, config: &AnalysisConfig) -> Vec<Analysis> {
    activity
        .sessions
        .iter()
        .map(|s| analyse(s, config))
        .collect()
}

/// One session.
pub fn analyse(session: &Session, config: &AnalysisConfig) -> Analysis {
    let series = Series::of(session);
    let device = &session.device;

    let (distance_m, distance_source) = match device.distance_m {
        Some(d) => (d, Source::Device),
        None if series.device_distance => (series.distance(), Source::Device),
        None => (series.distance(), Source::Computed),
    };
    let elapsed_s = device.elapsed_s.unwrap_or_else(|| series.duration());
    let (moving_s, moving_source) = match device.timer_s {
        Some(timer) => (timer, Source::Device),
        None => (
            series.moving_time(config.moving_speed_mps.of(session.sport), config),
            Source::Computed,
        ),
    };
    let elevations: Vec<Option<f64>> = session.points.iter().map(|p| p.elevation_m).collect();
    let (elevation_gain_m, elevation_loss_m, elevation_source) =
        match (device.ascent_m, device.descent_m) {
            (Some(up), Some(down)) => (Some(up), Some(down), Source::Device),
            _ => match hysteresis(&elevations, config.elevation_hysteresis_m) {
                Some((up, down)) => (Some(up), Some(down), Source::Computed),
                None => (None, None, Source::Computed),
            },
        };

    let average_speed_mps = (moving_s > 0.0 && distance_m > 0.0).then(|| distance_m / moving_s);
    let average_pace_s_per_km = average_speed_mps.map(|v| 1000.0 / v);

    let heart_rate: Vec<Option<f64>> = session
        .points
        .iter()
        .map(|p| p.heart_rate_bpm.map(f64::from))
        .collect();
    let factor = if session.sport.counts_steps() {
        2.0
    } else {
        1.0
    };
    let cadence: Vec<Option<f64>> = session
        .points
        .iter()
        .map(|p| p.cadence_raw.filter(|c| *c > 0.0).map(|c| c * factor))
        .collect();

    let best = if session.sport == Sport::Running {
        best_efforts(
            &series.t,
            &series.d,
            &EFFORT_DISTANCES,
            &config.best_efforts,
        )
    } else {
        Vec::new()
    };

    Analysis {
        sport: session.sport,
        start: session.start,
        distance_m,
        distance_source,
        elapsed_s,
        moving_s,
        moving_source,
        elevation_gain_m,
        elevation_loss_m,
        elevation_source,
        average_pace_s_per_km,
        average_speed_mps,
        max_speed_mps: max_speed(&series, config),
        heart_rate_bpm: summary(&series.t, &heart_rate, config.gap_s),
        cadence: summary(&series.t, &cadence, config.gap_s),
        splits_km: splits(&series, &elevations, &heart_rate, 1000.0, config.gap_s),
        splits_mile: splits(&series, &elevations, &heart_rate, MILE_M, config.gap_s),
        lap_count: session.laps.len(),
        point_count: session.points.len(),
        has_positions: session.has_positions(),
        best_efforts: best,
    }
}

/// Total gain and loss: a change counts once elevation has moved `threshold` metres from the
/// last point counted. `None` when no point has an elevation.
pub fn hysteresis(elevations: &[Option<f64>], threshold: f64) -> Option<(f64, f64)> {
    let mut values = elevations
        .iter()
        .flatten()
        .copied()
        .filter(|e| e.is_finite());
    let mut reference = values.next()?;
    let (mut gain, mut loss) = (0.0, 0.0);
    for e in values {
        let delta = e - reference;
        if delta >= threshold {
            gain += delta;
            reference = e;
        } else if -delta >= threshold {
            loss -= delta;
            reference = e;
        }
    }
    Some((gain, loss))
}

/// Time-weighted average (each value holds until the next point, at most `gap_s`) and maximum.
fn summary(t: &[f64], values: &[Option<f64>], gap_s: f64) -> Option<Summary> {
    let mut maximum = f64::NEG_INFINITY;
    let (mut weighted, mut weight, mut sum, mut count) = (0.0, 0.0, 0.0, 0usize);
    for (i, v) in values.iter().enumerate() {
        let Some(v) = *v else { continue };
        maximum = maximum.max(v);
        sum += v;
        count += 1;
        if let (Some(now), Some(next)) = (t.get(i), t.get(i + 1)) {
            let w = (next - now).clamp(0.0, gap_s);
            weighted += v * w;
            weight += w;
        }
    }
    if count == 0 {
        return None;
    }
    let average = if weight > 0.0 {
        weighted / weight
    } else {
        sum / count as f64
    };
    Some(Summary { average, maximum })
}

/// Faster than this over a whole window (180 km/h) is a glitch in any sport here.
const GLITCH_SPEED_MPS: f64 = 50.0;

/// Fastest distance over time across windows of at least `speed_window_s` that span no gap.
fn max_speed(series: &Series, config: &AnalysisConfig) -> Option<f64> {
    let (t, d) = (&series.t, &series.d);
    let mut best: Option<f64> = None;
    let mut j = 0;
    let mut gap_before = 0; // index of the first point after the last gap seen
    for i in 0..t.len() {
        if j < i {
            j = i;
        }
        while j < t.len() && t[j] - t[i] < config.speed_window_s {
            j += 1;
            if j < t.len() && t[j] - t[j - 1] > config.gap_s {
                gap_before = j;
            }
        }
        if j >= t.len() {
            break;
        }
        if gap_before > i {
            continue;
        }
        let dt = t[j] - t[i];
        if dt > 0.0 {
            let v = (d[j] - d[i]) / dt;
            if v <= GLITCH_SPEED_MPS && best.is_none_or(|b| v > b) {
                best = Some(v);
            }
        }
    }
    best
}

/// Linear interpolation of an optional stream at fractional index `i - 1 + f`.
fn interpolate(values: &[Option<f64>], i: usize, f: f64) -> Option<f64> {
    match (
        values.get(i.wrapping_sub(1)).copied().flatten(),
        values.get(i).copied().flatten(),
    ) {
        (Some(a), Some(b)) => Some(a + (b - a) * f),
        (a, b) => b.or(a),
    }
}

fn splits(
    series: &Series,
    elevations: &[Option<f64>],
    heart_rate: &[Option<f64>],
    unit: f64,
    gap_s: f64,
) -> Vec<Split> {
    let (t, d) = (&series.t, &series.d);
    let mut out = Vec::new();
    if t.len() < 2 {
        return out;
    }
    let first_elevation = elevations.iter().flatten().copied().next();
    let (mut start_t, mut start_d, mut start_e) = (0.0, 0.0, first_elevation);
    let (mut hr_sum, mut hr_w) = (0.0, 0.0);
    let mut last_e = first_elevation;
    let mut boundary = unit;
    let mut push = |out: &mut Vec<Split>, end_t: f64, end_d: f64, end_e, hr_sum: f64, hr_w: f64| {
        let distance_m = end_d - start_d;
        let elapsed_s = end_t - start_t;
        out.push(Split {
            index: u32::try_from(out.len() + 1).unwrap_or(u32::MAX),
            distance_m,
            elapsed_s,
            pace_s_per_km: if distance_m > 0.0 {
                elapsed_s / distance_m * 1000.0
            } else {
                0.0
            },
            elevation_change_m: match (start_e, end_e) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            },
            average_heart_rate_bpm: (hr_w > 0.0).then(|| hr_sum / hr_w),
        });
        start_t = end_t;
        start_d = end_d;
        start_e = end_e;
    };
    for i in 1..t.len() {
        if let Some(e) = elevations.get(i).copied().flatten() {
            last_e = Some(e);
        }
        if let Some(h) = heart_rate.get(i - 1).copied().flatten() {
            let w = (t[i] - t[i - 1]).clamp(0.0, gap_s);
            hr_sum += h * w;
            hr_w += w;
        }
        while d[i] >= boundary && d[i] > d[i - 1] {
            let f = (boundary - d[i - 1]) / (d[i] - d[i - 1]);
            let end_t = t[i - 1] + (t[i] - t[i - 1]) * f;
            let end_e = interpolate(elevations, i, f).or(last_e);
            push(&mut out, end_t, boundary, end_e, hr_sum, hr_w);
            hr_sum = 0.0;
            hr_w = 0.0;
            boundary += unit;
        }
    }
    let (end_t, end_d) = (series.duration(), series.distance());
    // A remainder shorter than a metre is rounding, not a split.
    if end_d - (boundary - unit) >= 1.0 {
        push(&mut out, end_t, end_d, last_e, hr_sum, hr_w);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::domain::track::{DeviceTotals, LatLng, TrackPoint};

    fn run(points: usize, metres_per_s: f64) -> Session {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Session {
            sport: Sport::Running,
            start,
            points: (0..points)
                .map(|i| TrackPoint {
                    time: start + chrono::Duration::seconds(i as i64),
                    position: LatLng::new(52.0, 4.0),
                    elevation_m: Some(if i % 200 < 100 { 10.0 } else { 20.0 }),
                    distance_m: Some(i as f64 * metres_per_s),
                    heart_rate_bpm: Some(150),
                    cadence_raw: Some(85.0),
                    segment_start: i == 0,
                })
                .collect(),
            laps: Vec::new(),
            device: DeviceTotals::default(),
        }
    }

    #[test]
    fn a_steady_run_without_device_totals() {
        let a = analyse(&run(2_501, 4.0), &AnalysisConfig::default());
        assert_eq!(a.distance_m, 10_000.0);
        assert_eq!(a.distance_source, Source::Device);
        assert_eq!(a.elapsed_s, 2_500.0);
        assert_eq!(a.moving_s, 2_500.0);
        assert_eq!(a.moving_source, Source::Computed);
        assert_eq!(a.average_pace_s_per_km, Some(250.0));
        assert_eq!(a.splits_km.len(), 10);
        assert!(
            a.splits_km
                .iter()
                .all(|s| (s.elapsed_s - 250.0).abs() < 1e-9)
        );
        assert_eq!(a.splits_mile.len(), 7);
        assert!((a.splits_mile[6].distance_m - (10_000.0 - 6.0 * MILE_M)).abs() < 1e-6);
        assert_eq!(a.heart_rate_bpm.unwrap().average, 150.0);
        assert_eq!(a.cadence.unwrap().maximum, 170.0, "steps = 2 × strides");
        assert_eq!(a.best_efforts.last().unwrap().distance.key, "10k");
        // 13 climbs of 10 m, 12 descents.
        assert_eq!(a.elevation_gain_m, Some(130.0));
        assert_eq!(a.elevation_loss_m, Some(120.0));
        assert_eq!(a.elevation_source, Source::Computed);
    }

    #[test]
    fn standing_still_is_not_moving() {
        let mut session = run(601, 3.0);
        for (i, p) in session.points.iter_mut().enumerate() {
            p.distance_m = Some(if i < 300 { i as f64 * 3.0 } else { 900.0 });
        }
        let a = analyse(&session, &AnalysisConfig::default());
        assert_eq!(a.moving_s, 300.0);
        assert_eq!(a.elapsed_s, 600.0);
    }

    #[test]
    fn cycling_has_no_best_efforts_and_rpm_cadence() {
        let mut session = run(1_001, 8.0);
        session.sport = Sport::Cycling;
        let a = analyse(&session, &AnalysisConfig::default());
        assert!(a.best_efforts.is_empty());
        assert_eq!(a.cadence.unwrap().average, 85.0);
    }

    #[test]
    fn hysteresis_ignores_noise_below_the_threshold() {
        let noisy: Vec<Option<f64>> = (0..100)
            .map(|i| Some(100.0 + if i % 2 == 0 { 1.0 } else { -1.0 }))
            .collect();
        assert_eq!(hysteresis(&noisy, 3.0), Some((0.0, 0.0)));
        let climb = [Some(0.0), Some(2.0), None, Some(5.0), Some(4.0), Some(1.0)];
        assert_eq!(hysteresis(&climb, 3.0), Some((5.0, 4.0)));
        assert_eq!(hysteresis(&[None, None], 3.0), None);
    }
}
