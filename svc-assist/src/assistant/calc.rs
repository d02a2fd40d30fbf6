//! Running calculators: pure functions, every number an answer states comes from here or from
//! the runner's data, never from a model.
//!
//! - pace ↔ speed ↔ finish time;
//! - race-time prediction from a recent effort (Riegel: `T2 = T1 · (D2/D1)^1.06`);
//! - VDOT and training paces (Daniels & Gilbert's oxygen-cost and time-to-exhaustion formulas);
//! - heart-rate zones from the maximum (percent of max) or the reserve (Karvonen);
//! - weekly volume change against the 10% rule;
//! - even splits for a target time.

/// Metres of the standard distances.
pub const MARATHON_M: f64 = 42_195.0;
pub const HALF_MARATHON_M: f64 = 21_097.5;
pub const TEN_K_M: f64 = 10_000.0;
pub const FIVE_K_M: f64 = 5_000.0;
pub const MILE_M: f64 = 1_609.344;

/// Riegel's fatigue exponent.
pub const RIEGEL_EXPONENT: f64 = 1.06;

/// Seconds per kilometre of `seconds` over `meters` (`None` for a zero or negative distance).
pub fn pace_seconds_per_km(meters: f64, seconds: f64) -> Option<f64> {
    (meters > 0.0 && seconds > 0.0 && meters.is_finite() && seconds.is_finite())
        .then(|| seconds / (meters / 1000.0))
}

/// km/h of a pace in seconds per kilometre.
pub fn speed_kmh(pace_seconds_per_km: f64) -> Option<f64> {
    (pace_seconds_per_km > 0.0 && pace_seconds_per_km.is_finite())
        .then(|| 3600.0 / pace_seconds_per_km)
}

/// Seconds per kilometre of a speed in km/h.
pub fn pace_from_speed(speed_kmh: f64) -> Option<f64> {
    (speed_kmh > 0.0 && speed_kmh.is_finite()).then(|| 3600.0 / speed_kmh)
}

/// Seconds to cover `meters` at `pace_seconds_per_km`.
pub fn finish_time(meters: f64, pace_seconds_per_km: f64) -> Option<f64> {
    (meters > 0.0 && pace_seconds_per_km > 0.0).then(|| meters / 1000.0 * pace_seconds_per_km)
}

/// Riegel's prediction of the time over `target_meters` from `seconds` over `meters`.
pub fn riegel(meters: f64, seconds: f64, target_meters: f64) -> Option<f64> {
    (meters > 0.0 && seconds > 0.0 && target_meters > 0.0)
        .then(|| seconds * (target_meters / meters).powf(RIEGEL_EXPONENT))
}

/// Oxygen cost (ml/kg/min) of running at `v` metres per minute (Daniels & Gilbert).
fn oxygen_cost(v: f64) -> f64 {
    -4.60 + 0.182_258 * v + 0.000_104 * v * v
}

/// The share of VO2max sustainable for `minutes` (Daniels & Gilbert).
fn sustainable_fraction(minutes: f64) -> f64 {
    0.8 + 0.189_439_3 * (-0.012_778 * minutes).exp() + 0.298_955_8 * (-0.193_260_5 * minutes).exp()
}

/// The velocity (m/min) whose oxygen cost is `vo2`.
fn velocity_for(vo2: f64) -> f64 {
    let (a, b, c) = (0.000_104, 0.182_258, -4.60 - vo2);
    (-b + (b * b - 4.0 * a * c).sqrt()) / (2.0 * a)
}

/// VDOT of a race: `seconds` over `meters`.
pub fn vdot(meters: f64, seconds: f64) -> Option<f64> {
    if meters <= 0.0 || seconds <= 0.0 {
        return None;
    }
    let minutes = seconds / 60.0;
    let v = meters / minutes;
    Some(oxygen_cost(v) / sustainable_fraction(minutes))
}

/// The race time over `meters` that a `vdot` predicts (bisection on the VDOT formula).
pub fn time_for_vdot(vdot_value: f64, meters: f64) -> Option<f64> {
    if vdot_value.is_nan() || vdot_value <= 0.0 || meters <= 0.0 {
        return None;
    }
    // VDOT falls as time grows: find t with vdot(meters, t) = vdot_value.
    let (mut low, mut high) = (meters / 1000.0 * 60.0, meters / 1000.0 * 1800.0);
    for _ in 0..100 {
        let mid = (low + high) / 2.0;
        if vdot(meters, mid)? > vdot_value {
            low = mid;
        } else {
            high = mid;
        }
    }
    Some((low + high) / 2.0)
}

/// Daniels' training paces (seconds per kilometre) for a VDOT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingPaces {
    pub vdot: f64,
    /// Easy and long runs: ~70% of VO2max (a range of about 59–74%).
    pub easy: f64,
    /// Marathon race pace from the VDOT.
    pub marathon: f64,
    /// Threshold (tempo): ~88% of VO2max.
    pub threshold: f64,
    /// Intervals: ~97.5% of VO2max.
    pub interval: f64,
    /// Repetitions: ~105% of VO2max.
    pub repetition: f64,
}

/// Training paces from a race (`seconds` over `meters`).
pub fn training_paces(meters: f64, seconds: f64) -> Option<TrainingPaces> {
    let value = vdot(meters, seconds)?;
    training_paces_for(value)
}

/// Training paces for a VDOT.
pub fn training_paces_for(value: f64) -> Option<TrainingPaces> {
    if value.is_nan() || value <= 0.0 {
        return None;
    }
    let pace_at = |fraction: f64| 60_000.0 / velocity_for(value * fraction);
    let marathon = time_for_vdot(value, MARATHON_M)? / (MARATHON_M / 1000.0);
    Some(TrainingPaces {
        vdot: value,
        easy: pace_at(0.70),
        marathon,
        threshold: pace_at(0.88),
        interval: pace_at(0.975),
        repetition: pace_at(1.05),
    })
}

/// One heart-rate zone, bpm inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HrZone {
    pub zone: u8,
    pub low: u32,
    pub high: u32,
}

/// Zone bounds, as fractions of the maximum (or of the reserve).
const ZONE_FRACTIONS: [(f64, f64); 5] =
    [(0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0)];

/// Maximum heart rate estimated from age: Tanaka (208 − 0.7 × age) and the classic 220 − age.
pub fn max_hr_tanaka(age: u32) -> u32 {
    (208.0 - 0.7 * f64::from(age)).round() as u32
}

pub fn max_hr_classic(age: u32) -> u32 {
    220u32.saturating_sub(age)
}

/// Five zones as 50–60 … 90–100% of `max_hr`.
pub fn hr_zones_max(max_hr: u32) -> Vec<HrZone> {
    ZONE_FRACTIONS
        .iter()
        .enumerate()
        .map(|(i, (low, high))| HrZone {
            zone: i as u8 + 1,
            low: (f64::from(max_hr) * low).round() as u32,
            high: (f64::from(max_hr) * high).round() as u32,
        })
        .collect()
}

/// Five zones by heart-rate reserve (Karvonen): `rest + fraction × (max − rest)`.
pub fn hr_zones_karvonen(max_hr: u32, rest_hr: u32) -> Option<Vec<HrZone>> {
    if rest_hr >= max_hr {
        return None;
    }
    let reserve = f64::from(max_hr - rest_hr);
    Some(
        ZONE_FRACTIONS
            .iter()
            .enumerate()
            .map(|(i, (low, high))| HrZone {
                zone: i as u8 + 1,
                low: (f64::from(rest_hr) + reserve * low).round() as u32,
                high: (f64::from(rest_hr) + reserve * high).round() as u32,
            })
            .collect(),
    )
}

/// Karvonen target for one intensity (e.g. 0.7).
pub fn karvonen_target(max_hr: u32, rest_hr: u32, intensity: f64) -> Option<u32> {
    (rest_hr < max_hr)
        .then(|| (f64::from(rest_hr) + f64::from(max_hr - rest_hr) * intensity).round() as u32)
}

/// A weekly volume change against the 10% rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VolumeChange {
    /// Percent change from last week to this week (`None` when last week was 0).
    pub change_percent: Option<f64>,
    /// The most the 10% rule allows after `last_week_km`.
    pub next_week_max_km: f64,
    pub within_rule: bool,
}

pub fn weekly_volume(last_week_km: f64, this_week_km: f64) -> VolumeChange {
    let change_percent =
        (last_week_km > 0.0).then(|| (this_week_km - last_week_km) / last_week_km * 100.0);
    VolumeChange {
        change_percent,
        next_week_max_km: last_week_km * 1.1,
        within_rule: change_percent.is_none_or(|c| c <= 10.0 + 1e-9),
    }
}

/// Even splits: the cumulative time at each kilometre (the last one at the finish).
pub fn even_splits(meters: f64, target_seconds: f64) -> Vec<(f64, f64)> {
    if meters <= 0.0 || target_seconds <= 0.0 {
        return Vec::new();
    }
    let pace = target_seconds / (meters / 1000.0);
    let mut marks = Vec::new();
    let mut km = 1.0;
    while km * 1000.0 < meters - 1e-6 {
        marks.push((km, km * pace));
        km += 1.0;
    }
    marks.push((meters / 1000.0, target_seconds));
    marks
}

/// `h:mm:ss` (or `m:ss` under an hour) of whole seconds, rounded.
pub fn format_duration(seconds: f64) -> String {
    let total = seconds.round().max(0.0) as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// `m:ss` of a pace, rounded to the second.
pub fn format_pace(seconds_per_km: f64) -> String {
    let total = seconds_per_km.round().max(0.0) as u64;
    format!("{}:{:02}", total / 60, total % 60)
}

/// `m:ss` of a pace cut down to the second: the pace at or under which a target is met.
pub fn format_pace_floor(seconds_per_km: f64) -> String {
    let total = seconds_per_km.floor().max(0.0) as u64;
    format!("{}:{:02}", total / 60, total % 60)
}

/// Kilometres with at most two decimals, trailing zeros removed.
pub fn format_km(km: f64) -> String {
    let text = format!("{:.2}", (km * 100.0).round() / 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    #[test]
    fn pace_speed_and_finish_time() {
        // A sub-4 marathon: 4:00:00 over 42.195 km is 5:41.3/km.
        let pace = pace_seconds_per_km(MARATHON_M, 4.0 * 3600.0).unwrap();
        close(pace, 341.27, 0.01);
        assert_eq!(format_pace_floor(pace), "5:41");
        // 5:00/km is 12 km/h, and 12 km/h is 5:00/km.
        close(speed_kmh(300.0).unwrap(), 12.0, 1e-9);
        close(pace_from_speed(12.0).unwrap(), 300.0, 1e-9);
        // 10 km at 5:30/km is 55:00.
        assert_eq!(
            format_duration(finish_time(TEN_K_M, 330.0).unwrap()),
            "55:00"
        );
        assert_eq!(format_duration(3.0 * 3600.0 + 5.0), "3:00:05");
        assert!(pace_seconds_per_km(0.0, 10.0).is_none());
        assert_eq!(format_km(42.195), "42.2");
        assert_eq!(format_km(10.0), "10");
    }

    #[test]
    fn riegel_matches_published_predictions() {
        // Riegel (1981): a 20:00 5K predicts 41:42 for 10K and 3:11:49 for the marathon.
        let ten = riegel(FIVE_K_M, 1200.0, TEN_K_M).unwrap();
        assert_eq!(format_duration(ten), "41:42");
        let marathon = riegel(FIVE_K_M, 1200.0, MARATHON_M).unwrap();
        close(marathon, 3.0 * 3600.0 + 11.0 * 60.0 + 49.0, 3.0);
        // A 40:00 10K predicts 1:28:16 for the half.
        let half = riegel(TEN_K_M, 2400.0, HALF_MARATHON_M).unwrap();
        close(half, 5296.0, 2.0);
    }

    #[test]
    fn vdot_matches_daniels_tables() {
        // Daniels' Running Formula, VDOT 50: 5K 19:57, 10K 41:21, half 1:31:35, marathon 3:10:49.
        close(vdot(FIVE_K_M, 19.0 * 60.0 + 57.0).unwrap(), 50.0, 0.2);
        close(vdot(TEN_K_M, 41.0 * 60.0 + 21.0).unwrap(), 50.0, 0.2);
        close(vdot(HALF_MARATHON_M, 5495.0).unwrap(), 50.0, 0.2);
        close(vdot(MARATHON_M, 11449.0).unwrap(), 50.0, 0.3);
        // VDOT 40: 5K 24:08; VDOT 60: 5K 17:03.
        close(vdot(FIVE_K_M, 1448.0).unwrap(), 40.0, 0.2);
        close(vdot(FIVE_K_M, 1023.0).unwrap(), 60.0, 0.2);
        // And back: VDOT 50 → a 10K in about 41:21.
        close(time_for_vdot(50.0, TEN_K_M).unwrap(), 2481.0, 8.0);
    }

    #[test]
    fn training_paces_match_daniels_tables() {
        // VDOT 50: easy ≈ 5:07/km, marathon ≈ 4:31/km, threshold 4:15/km, interval 3:55/km,
        // repetition ≈ 3:41/km (88 s per 400 m).
        let paces = training_paces_for(50.0).unwrap();
        close(paces.easy, 307.0, 6.0);
        close(paces.marathon, 271.0, 3.0);
        close(paces.threshold, 255.0, 3.0);
        close(paces.interval, 235.0, 3.0);
        close(paces.repetition, 221.0, 4.0);
        assert!(paces.easy > paces.marathon && paces.marathon > paces.threshold);
        assert!(paces.threshold > paces.interval && paces.interval > paces.repetition);
    }

    #[test]
    fn heart_rate_zones() {
        // The textbook Karvonen example: age 40 (max 180), rest 60: 70% is 144 bpm.
        assert_eq!(max_hr_classic(40), 180);
        assert_eq!(karvonen_target(180, 60, 0.7), Some(144));
        // Tanaka: age 40 → 180 (208 − 28).
        assert_eq!(max_hr_tanaka(40), 180);
        let zones = hr_zones_max(190);
        assert_eq!(zones.len(), 5);
        assert_eq!((zones[0].low, zones[0].high), (95, 114));
        assert_eq!((zones[4].low, zones[4].high), (171, 190));
        let reserve = hr_zones_karvonen(180, 60).unwrap();
        assert_eq!((reserve[1].low, reserve[1].high), (132, 144));
        assert!(hr_zones_karvonen(60, 60).is_none());
    }

    #[test]
    fn ten_percent_rule() {
        let ok = weekly_volume(40.0, 44.0);
        assert!(ok.within_rule);
        close(ok.next_week_max_km, 44.0, 1e-9);
        let too_much = weekly_volume(40.0, 50.0);
        assert!(!too_much.within_rule);
        close(too_much.change_percent.unwrap(), 25.0, 1e-9);
        assert_eq!(weekly_volume(0.0, 10.0).change_percent, None);
    }

    #[test]
    fn splits_for_a_target() {
        let splits = even_splits(TEN_K_M, 50.0 * 60.0);
        assert_eq!(splits.len(), 10);
        assert_eq!(format_duration(splits[0].1), "5:00");
        assert_eq!(format_duration(splits[9].1), "50:00");
        let marathon = even_splits(MARATHON_M, 4.0 * 3600.0);
        assert_eq!(marathon.len(), 43);
        close(marathon[42].0, 42.195, 1e-9);
        assert_eq!(format_duration(marathon[20].1), "1:59:27");
    }
}
