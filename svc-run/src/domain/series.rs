//! A session as two monotone arrays — seconds since the first point and metres since it — the
//! shape every computation here walks.

use super::analysis::AnalysisConfig;
use super::track::{LatLng, Session};

/// Mean Earth radius (IUGG), metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres on a sphere (2-D: elevation ignored).
pub fn haversine_m(a: LatLng, b: LatLng) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlng = (b.lng - a.lng).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Time and distance per point, both non-decreasing and starting at 0.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub t: Vec<f64>,
    pub d: Vec<f64>,
    /// Distances are the device's (else haversine between positions).
    pub device_distance: bool,
}

impl Series {
    pub fn of(session: &Session) -> Series {
        let Some(first) = session.points.first() else {
            return Series {
                t: Vec::new(),
                d: Vec::new(),
                device_distance: false,
            };
        };
        let t0 = first.time;
        let mut t = Vec::with_capacity(session.points.len());
        let mut last = 0.0_f64;
        for p in &session.points {
            let s = (p.time - t0).num_milliseconds() as f64 / 1000.0;
            last = last.max(s);
            t.push(last);
        }
        let base = session.points.iter().find_map(|p| p.distance_m);
        let (d, device_distance) = match base {
            Some(base) => {
                let mut d = Vec::with_capacity(t.len());
                let mut last = 0.0_f64;
                for p in &session.points {
                    if let Some(v) = p.distance_m {
                        last = last.max(v - base);
                    }
                    d.push(last);
                }
                (d, true)
            }
            None => {
                let mut d = Vec::with_capacity(t.len());
                let mut total = 0.0;
                let mut previous: Option<LatLng> = None;
                for p in &session.points {
                    if p.segment_start {
                        previous = None;
                    }
                    if let Some(here) = p.position {
                        if let Some(before) = previous {
                            total += haversine_m(before, here);
                        }
                        previous = Some(here);
                    }
                    d.push(total);
                }
                (d, false)
            }
        };
        Series {
            t,
            d,
            device_distance,
        }
    }

    pub fn len(&self) -> usize {
        self.t.len()
    }

    pub fn duration(&self) -> f64 {
        self.t.last().copied().unwrap_or(0.0)
    }

    pub fn distance(&self) -> f64 {
        self.d.last().copied().unwrap_or(0.0)
    }

    /// Seconds between points `i - 1` and `i` spent moving: the step's speed reaches the sport's
    /// threshold and the step is not a recording gap.
    pub fn moving_time(&self, threshold_mps: f64, config: &AnalysisConfig) -> f64 {
        let mut moving = 0.0;
        for i in 1..self.len() {
            let dt = self.t[i] - self.t[i - 1];
            let dd = self.d[i] - self.d[i - 1];
            if dt > 0.0 && dt <= config.gap_s && dd / dt >= threshold_mps {
                moving += dt;
            }
        }
        moving
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_one_degree_of_latitude() {
        let a = LatLng { lat: 0.0, lng: 0.0 };
        let b = LatLng { lat: 1.0, lng: 0.0 };
        assert!((haversine_m(a, b) - 111_195.0).abs() < 5.0);
        assert_eq!(haversine_m(a, a), 0.0);
    }
}
