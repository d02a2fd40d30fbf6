//! What a parsed run file holds: sessions of timestamped points, as the device recorded them.

use chrono::{DateTime, Utc};

/// The sport of a session (or of a manual entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sport {
    Running,
    Walking,
    Hiking,
    Cycling,
    Swimming,
    Other,
}

impl Sport {
    /// Running-like sports report cadence in steps per minute (devices record strides, half of
    /// that); cycling reports revolutions per minute.
    pub fn counts_steps(self) -> bool {
        matches!(self, Sport::Running | Sport::Walking | Sport::Hiking)
    }

    /// A stable lower-case name (`running`, `cycling`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Sport::Running => "running",
            Sport::Walking => "walking",
            Sport::Hiking => "hiking",
            Sport::Cycling => "cycling",
            Sport::Swimming => "swimming",
            Sport::Other => "other",
        }
    }

    /// A sport named in a file or a request: TCX `Sport="Running"`, GPX `<type>running</type>`,
    /// Strava's numeric GPX types (`9` run, `1` ride, `10` walk, `4` hike), Strava CSV sport
    /// types (`Run`, `Trail Run`, `Ride`, ...). Unknown names are [`Sport::Other`].
    pub fn from_name(name: &str) -> Sport {
        let lower = name.trim().to_ascii_lowercase();
        match lower.as_str() {
            "9" | "run" | "running" | "trail run" | "trail_running" | "trailrun" | "trail_run"
            | "treadmill" | "treadmill_running" | "virtualrun" | "virtual run"
            | "street_running" | "track_running" | "indoor_running" => Sport::Running,
            "10" | "walk" | "walking" => Sport::Walking,
            "4" | "hike" | "hiking" => Sport::Hiking,
            "1" | "ride" | "biking" | "cycling" | "bike" | "virtualride" | "virtual ride"
            | "road_biking" | "mountain_biking" | "e-bike ride" | "gravel ride" => Sport::Cycling,
            "2" | "swim" | "swimming" | "open_water_swimming" | "lap_swimming" => Sport::Swimming,
            _ if lower.contains("run") => Sport::Running,
            _ if lower.contains("walk") => Sport::Walking,
            _ if lower.contains("hik") => Sport::Hiking,
            _ if lower.contains("cycl") || lower.contains("bik") || lower.contains("ride") => {
                Sport::Cycling
            }
            _ if lower.contains("swim") => Sport::Swimming,
            _ => Sport::Other,
        }
    }
}

/// The container a run file came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    Fit,
    Gpx,
    Tcx,
}

impl FileFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Fit => "fit",
            FileFormat::Gpx => "gpx",
            FileFormat::Tcx => "tcx",
        }
    }
}

/// A position in WGS84 degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

impl LatLng {
    /// `None` unless both are finite and in range (devices write 0/0 or sentinels for no fix).
    pub fn new(lat: f64, lng: f64) -> Option<LatLng> {
        let valid = lat.is_finite()
            && lng.is_finite()
            && (-90.0..=90.0).contains(&lat)
            && (-180.0..=180.0).contains(&lng)
            && !(lat == 0.0 && lng == 0.0);
        valid.then_some(LatLng { lat, lng })
    }
}

/// One recorded sample. Everything but the time is optional: indoor runs have no position,
/// GPX has no device distance, many files have no heart rate.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackPoint {
    pub time: DateTime<Utc>,
    pub position: Option<LatLng>,
    pub elevation_m: Option<f64>,
    /// The device's cumulative distance (FIT `record.distance`, TCX `DistanceMeters`).
    pub distance_m: Option<f64>,
    pub heart_rate_bpm: Option<u8>,
    /// Cadence as the device wrote it: strides per minute for running (half the steps), rpm for
    /// cycling. [`crate::domain::Analysis`] and [`crate::domain::RunStreams`] convert it.
    pub cadence_raw: Option<f64>,
    /// The point starts a new GPX segment / TCX track (a pause): no computed distance from the
    /// previous point.
    pub segment_start: bool,
}

/// A lap as the device recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lap {
    pub start: DateTime<Utc>,
    pub elapsed_s: Option<f64>,
    /// Timer time (elapsed less pauses).
    pub timer_s: Option<f64>,
    pub distance_m: Option<f64>,
}

/// Totals the device computed for a session; preferred over recomputation when present.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceTotals {
    pub distance_m: Option<f64>,
    pub elapsed_s: Option<f64>,
    pub timer_s: Option<f64>,
    pub ascent_m: Option<f64>,
    pub descent_m: Option<f64>,
}

/// One sport session: a whole GPX file, one TCX `Activity`, one FIT `session` (a triathlon FIT
/// has several: swim, transition, bike, transition, run).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub sport: Sport,
    /// The session's start: the device's when it says, else the first point's time.
    pub start: DateTime<Utc>,
    /// Points in recording order; never empty in a parsed [`Activity`].
    pub points: Vec<TrackPoint>,
    pub laps: Vec<Lap>,
    pub device: DeviceTotals,
}

impl Session {
    /// Whether any point has a position (false for treadmill and indoor runs).
    pub fn has_positions(&self) -> bool {
        self.points.iter().any(|p| p.position.is_some())
    }
}

/// A parsed run file: its format and its sessions (at least one, each with points).
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub format: FileFormat,
    /// The bytes were gzip-compressed (`.fit.gz`, `.gpx.gz`, `.tcx.gz`).
    pub gzipped: bool,
    pub sessions: Vec<Session>,
}

impl Activity {
    /// Sessions whose sport is running: the only ones that feed running best efforts.
    pub fn running_sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.iter().filter(|s| s.sport == Sport::Running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sport_names_from_every_source() {
        assert_eq!(Sport::from_name("Running"), Sport::Running);
        assert_eq!(Sport::from_name("9"), Sport::Running);
        assert_eq!(Sport::from_name("Trail Run"), Sport::Running);
        assert_eq!(Sport::from_name("Biking"), Sport::Cycling);
        assert_eq!(Sport::from_name("1"), Sport::Cycling);
        assert_eq!(Sport::from_name("hiking"), Sport::Hiking);
        assert_eq!(Sport::from_name("Other"), Sport::Other);
        assert_eq!(Sport::from_name(""), Sport::Other);
    }

    #[test]
    fn positions_without_a_fix_are_none() {
        assert!(LatLng::new(0.0, 0.0).is_none());
        assert!(LatLng::new(91.0, 3.0).is_none());
        assert!(LatLng::new(f64::NAN, 3.0).is_none());
        assert!(LatLng::new(52.1, 4.4).is_some());
    }
}
