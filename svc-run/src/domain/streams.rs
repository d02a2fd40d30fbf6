//! Per-point streams for charts and maps (GetRunStreams), and the privacy zone that hides where
//! a run starts and ends.

use super::analysis::AnalysisConfig;
use super::series::Series;
use super::track::{LatLng, Session};

/// Parallel arrays, one entry per point of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStreams {
    /// Seconds since the first point.
    pub time_s: Vec<f64>,
    /// Metres since the first point (the device's, else haversine).
    pub distance_m: Vec<f64>,
    pub latlng: Vec<Option<LatLng>>,
    pub elevation_m: Vec<Option<f64>>,
    pub heart_rate_bpm: Vec<Option<u8>>,
    /// Steps per minute for running, walking and hiking; rpm otherwise.
    pub cadence: Vec<Option<f64>>,
    /// Seconds per km over a window of [`AnalysisConfig::speed_window_s`] around the point;
    /// `None` while stopped (below the sport's moving speed).
    pub pace_s_per_km: Vec<Option<f64>>,
}

impl RunStreams {
    /// Builds the streams of one session.
    pub fn of(session: &Session, config: &AnalysisConfig) -> RunStreams {
        let series = Series::of(session);
        let factor = if session.sport.counts_steps() {
            2.0
        } else {
            1.0
        };
        let threshold = config.moving_speed_mps.of(session.sport);
        let pace = pace(&series, config.speed_window_s / 2.0, threshold);
        RunStreams {
            latlng: session.points.iter().map(|p| p.position).collect(),
            elevation_m: session.points.iter().map(|p| p.elevation_m).collect(),
            heart_rate_bpm: session.points.iter().map(|p| p.heart_rate_bpm).collect(),
            cadence: session
                .points
                .iter()
                .map(|p| p.cadence_raw.map(|c| c * factor))
                .collect(),
            pace_s_per_km: pace,
            time_s: series.t,
            distance_m: series.d,
        }
    }

    pub fn len(&self) -> usize {
        self.time_s.len()
    }

    pub fn is_empty(&self) -> bool {
        self.time_s.is_empty()
    }

    /// The privacy zone: removes the positions within `metres` of the start and of the end
    /// (by distance along the run), for everyone but the owner. Other streams stay.
    pub fn hide_ends(&mut self, metres: f64) {
        if metres.is_nan() || metres <= 0.0 {
            return;
        }
        let total = self.distance_m.last().copied().unwrap_or(0.0);
        for (position, d) in self.latlng.iter_mut().zip(&self.distance_m) {
            if *d <= metres || *d >= total - metres {
                *position = None;
            }
        }
    }
}

/// Distance over time within `half_window` seconds either side of each point.
fn pace(series: &Series, half_window: f64, threshold_mps: f64) -> Vec<Option<f64>> {
    let (t, d) = (&series.t, &series.d);
    let mut out = Vec::with_capacity(t.len());
    let (mut lo, mut hi) = (0, 0);
    for i in 0..t.len() {
        while t[i] - t[lo] > half_window {
            lo += 1;
        }
        if hi < i {
            hi = i;
        }
        while hi + 1 < t.len() && t[hi + 1] - t[i] <= half_window {
            hi += 1;
        }
        let dt = t[hi] - t[lo];
        let speed = if dt > 0.0 { (d[hi] - d[lo]) / dt } else { 0.0 };
        out.push((speed >= threshold_mps && speed > 0.0).then(|| 1000.0 / speed));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::domain::track::{DeviceTotals, Sport, TrackPoint};
    use chrono::DateTime;

    fn session() -> Session {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Session {
            sport: Sport::Running,
            start,
            points: (0..=1000)
                .map(|i| TrackPoint {
                    time: start + chrono::Duration::seconds(i),
                    position: LatLng::new(52.0 + i as f64 * 1e-5, 4.0),
                    elevation_m: None,
                    distance_m: Some(i as f64 * 2.5),
                    heart_rate_bpm: None,
                    cadence_raw: Some(80.0),
                    segment_start: i == 0,
                })
                .collect(),
            laps: Vec::new(),
            device: DeviceTotals::default(),
        }
    }

    #[test]
    fn streams_line_up_and_pace_is_per_km() {
        let s = RunStreams::of(&session(), &AnalysisConfig::default());
        assert_eq!(s.len(), 1001);
        assert_eq!(s.distance_m[1000], 2500.0);
        assert_eq!(s.cadence[0], Some(160.0));
        assert!((s.pace_s_per_km[500].unwrap() - 400.0).abs() < 1e-9);
    }

    #[test]
    fn the_privacy_zone_hides_both_ends_only() {
        let mut s = RunStreams::of(&session(), &AnalysisConfig::default());
        s.hide_ends(200.0);
        // 2.5 m per point: the first and last 80 points (200 m) lose their position.
        assert!(s.latlng[..=80].iter().all(Option::is_none));
        assert!(s.latlng[920..].iter().all(Option::is_none));
        assert!(s.latlng[81..920].iter().all(Option::is_some));
        assert!(s.distance_m.iter().all(|d| d.is_finite()));
    }
}
