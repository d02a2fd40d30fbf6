//! Rules for a run entered by hand: parse, don't validate — a [`ManualRun`] exists only when
//! every field made sense.

use chrono::{DateTime, Duration, Utc};

use super::best_efforts::world_record_speed_mps;
use super::track::Sport;

/// What the runner typed.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualRunInput {
    pub sport: Sport,
    pub start: DateTime<Utc>,
    pub duration_s: f64,
    pub distance_m: f64,
    pub elevation_gain_m: Option<f64>,
    pub average_heart_rate_bpm: Option<f64>,
}

/// A manual run whose fields passed [`validate_manual_run`].
#[derive(Debug, Clone, PartialEq)]
pub struct ManualRun {
    pub sport: Sport,
    pub start: DateTime<Utc>,
    pub duration_s: f64,
    pub distance_m: f64,
    pub elevation_gain_m: Option<f64>,
    pub average_heart_rate_bpm: Option<f64>,
}

/// One refused field. `field` names the input field (`start`, `duration`, `distance`,
/// `elevation_gain`, `average_heart_rate`); the service maps it to its proto path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: &'static str,
    pub description: String,
}

/// Clocks differ: a start up to this far in the future is accepted.
const CLOCK_SKEW: Duration = Duration::minutes(5);
/// Longest single activity accepted (multi-day ultras fit).
const MAX_DURATION_S: f64 = 14.0 * 24.0 * 3600.0;
const MAX_DISTANCE_M: f64 = 5_000_000.0;
const MAX_ELEVATION_GAIN_M: f64 = 50_000.0;

/// The fastest average speed believable for a manual entry of `sport` over `meters`.
fn max_speed_mps(sport: Sport, meters: f64) -> f64 {
    match sport {
        Sport::Running | Sport::Walking | Sport::Hiking => world_record_speed_mps(meters),
        // The hour record is under 16 m/s; downhill and paced rides go faster.
        Sport::Cycling => 25.0,
        // 50 m freestyle record: about 2.4 m/s.
        Sport::Swimming => 2.5,
        Sport::Other => 50.0,
    }
}

/// Checks every field at once against `now`; all refusals are returned together.
pub fn validate_manual_run(
    input: &ManualRunInput,
    now: DateTime<Utc>,
) -> Result<ManualRun, Vec<Violation>> {
    let mut violations = Vec::new();
    let mut refuse = |field: &'static str, description: String| {
        violations.push(Violation { field, description })
    };

    if input.start > now + CLOCK_SKEW {
        refuse("start", "must not be in the future".to_owned());
    }
    let duration_ok = if !input.duration_s.is_finite() || input.duration_s <= 0.0 {
        refuse("duration", "must be positive".to_owned());
        false
    } else if input.duration_s > MAX_DURATION_S {
        refuse("duration", "must be at most 14 days".to_owned());
        false
    } else {
        true
    };
    let distance_ok = if !input.distance_m.is_finite() || input.distance_m < 0.0 {
        refuse("distance", "must not be negative".to_owned());
        false
    } else if input.distance_m > MAX_DISTANCE_M {
        refuse("distance", "must be at most 5,000 km".to_owned());
        false
    } else {
        true
    };
    if duration_ok && distance_ok && input.distance_m > 0.0 {
        let speed = input.distance_m / input.duration_s;
        let limit = max_speed_mps(input.sport, input.distance_m);
        if speed > limit {
            let description = if input.sport == Sport::Running
                || input.sport == Sport::Walking
                || input.sport == Sport::Hiking
            {
                "is faster than the world record for that distance"
            } else {
                "is faster than possible for that sport"
            };
            refuse("duration", description.to_owned());
        }
    }
    if let Some(gain) = input.elevation_gain_m {
        if !gain.is_finite() || gain < 0.0 {
            refuse("elevation_gain", "must not be negative".to_owned());
        } else if gain > MAX_ELEVATION_GAIN_M {
            refuse("elevation_gain", "must be at most 50,000 m".to_owned());
        }
    }
    if let Some(hr) = input.average_heart_rate_bpm
        && !(25.0..=250.0).contains(&hr)
    {
        refuse(
            "average_heart_rate",
            "must be between 25 and 250 beats per minute".to_owned(),
        );
    }

    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(ManualRun {
        sport: input.sport,
        start: input.start,
        duration_s: input.duration_s,
        distance_m: input.distance_m,
        elevation_gain_m: input.elevation_gain_m,
        average_heart_rate_bpm: input.average_heart_rate_bpm,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap()
    }

    fn a_10k() -> ManualRunInput {
        ManualRunInput {
            sport: Sport::Running,
            start: now() - Duration::hours(2),
            duration_s: 3_000.0,
            distance_m: 10_000.0,
            elevation_gain_m: Some(40.0),
            average_heart_rate_bpm: Some(155.0),
        }
    }

    fn fields(input: &ManualRunInput) -> Vec<&'static str> {
        validate_manual_run(input, now())
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_plausible_run_passes() {
        let run = validate_manual_run(&a_10k(), now()).unwrap();
        assert_eq!(run.distance_m, 10_000.0);
    }

    #[test]
    fn every_bad_field_is_named() {
        let input = ManualRunInput {
            start: now() + Duration::days(1),
            duration_s: -1.0,
            distance_m: -5.0,
            elevation_gain_m: Some(-3.0),
            average_heart_rate_bpm: Some(400.0),
            ..a_10k()
        };
        assert_eq!(
            fields(&input),
            [
                "start",
                "duration",
                "distance",
                "elevation_gain",
                "average_heart_rate"
            ]
        );
    }

    #[test]
    fn faster_than_the_world_record_is_refused() {
        // A 25-minute 10 km is faster than the 26:11 record.
        let input = ManualRunInput {
            duration_s: 25.0 * 60.0,
            ..a_10k()
        };
        assert_eq!(fields(&input), ["duration"]);
        // The same speed on a bike is fine.
        let ride = ManualRunInput {
            sport: Sport::Cycling,
            ..input
        };
        assert!(validate_manual_run(&ride, now()).is_ok());
    }

    #[test]
    fn nan_is_refused_not_passed() {
        let input = ManualRunInput {
            duration_s: f64::NAN,
            distance_m: f64::INFINITY,
            ..a_10k()
        };
        assert_eq!(fields(&input), ["duration", "distance"]);
    }
}
