//! FIT activities with `rustyfit`'s streaming decoder: chained files, compressed timestamps and
//! developer fields are the decoder's business; here records, laps and sessions become
//! [`Session`]s, one per FIT session (a triathlon has five).

use chrono::{DateTime, Utc};
use rustyfit::profile::{mesgdef, typedef};
use rustyfit::{Decoder, DecoderEvent, StreamingIterator};

use super::{Limits, ParseError};
use crate::domain::track::{
    Activity, DeviceTotals, FileFormat, Lap, LatLng, Session, Sport, TrackPoint,
};

/// A FIT file header: size 12 or 14 and `.FIT` at bytes 8..12.
pub(super) fn looks_like_fit(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(12 | 14)) && bytes.get(8..12) == Some(b".FIT".as_slice())
}

fn time(t: typedef::DateTime) -> Option<DateTime<Utc>> {
    // Below 0x10000000 a FIT time counts from the device's power-on, not a date.
    if t.0 < typedef::DateTime::MIN.0 {
        return None;
    }
    DateTime::from_timestamp(t.unix_timestamp()?, 0)
}

fn sport(sport: typedef::Sport) -> Sport {
    match sport {
        typedef::Sport::RUNNING => Sport::Running,
        typedef::Sport::WALKING => Sport::Walking,
        typedef::Sport::HIKING => Sport::Hiking,
        typedef::Sport::CYCLING | typedef::Sport::E_BIKING => Sport::Cycling,
        typedef::Sport::SWIMMING => Sport::Swimming,
        _ => Sport::Other,
    }
}

struct FitSession {
    start: DateTime<Utc>,
    sport: Sport,
    device: DeviceTotals,
}

fn positive(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v >= 0.0)
}

fn totals_u16(v: u16) -> Option<f64> {
    (v != u16::MAX).then_some(f64::from(v))
}

fn point(record: &mesgdef::Record) -> Option<TrackPoint> {
    let time = time(record.timestamp)?;
    let position = record
        .position_lat_degrees()
        .zip(record.position_long_degrees())
        .and_then(|(lat, lng)| LatLng::new(lat, lng));
    let elevation_m = record
        .enhanced_altitude_scaled()
        .or_else(|| record.altitude_scaled())
        .filter(|e| e.is_finite());
    let cadence_raw = (record.cadence != u8::MAX).then(|| {
        let fraction = if record.fractional_cadence == u8::MAX {
            0.0
        } else {
            f64::from(record.fractional_cadence) / 128.0
        };
        f64::from(record.cadence) + fraction
    });
    Some(TrackPoint {
        time,
        position,
        elevation_m,
        distance_m: positive(record.distance_scaled()),
        heart_rate_bpm: (record.heart_rate != u8::MAX && record.heart_rate > 0)
            .then_some(record.heart_rate),
        cadence_raw,
        segment_start: false,
    })
}

pub(super) fn parse(bytes: &[u8], limits: &Limits) -> Result<Activity, ParseError> {
    let mut decoder = Decoder::new();
    let mut reader: &[u8] = bytes;
    let mut stream = decoder.stream(&mut reader);

    let mut points: Vec<TrackPoint> = Vec::new();
    let mut laps: Vec<Lap> = Vec::new();
    let mut sessions: Vec<FitSession> = Vec::new();
    let mut file_sport: Option<Sport> = None;
    let mut next_segment_start = true;

    while let Some(event) = stream.next() {
        let event = event.map_err(|e| ParseError::CorruptFile(format!("FIT: {e}")))?;
        let DecoderEvent::Message(message) = event else {
            continue;
        };
        match message.num {
            typedef::MesgNum::FILE_ID => {
                let file_id = mesgdef::FileId::from(message);
                if file_id.r#type != typedef::File::ACTIVITY && file_id.r#type.0 != u8::MAX {
                    return Err(ParseError::UnsupportedFile(format!(
                        "a FIT {} file, not an activity",
                        file_id.r#type
                    )));
                }
            }
            typedef::MesgNum::RECORD => {
                if let Some(mut p) = point(&mesgdef::Record::from(message)) {
                    if points.len() >= limits.max_points {
                        return Err(ParseError::TooManyPoints {
                            limit: limits.max_points,
                        });
                    }
                    p.segment_start = std::mem::take(&mut next_segment_start);
                    points.push(p);
                }
            }
            typedef::MesgNum::EVENT => {
                // The timer stopped: the next record starts a new segment.
                let event = mesgdef::Event::from(message);
                if event.event == typedef::Event::TIMER
                    && matches!(
                        event.event_type,
                        typedef::EventType::STOP | typedef::EventType::STOP_ALL
                    )
                {
                    next_segment_start = true;
                }
            }
            typedef::MesgNum::LAP => {
                let lap = mesgdef::Lap::from(message);
                if let Some(start) = time(lap.start_time) {
                    laps.push(Lap {
                        start,
                        elapsed_s: positive(lap.total_elapsed_time_scaled()),
                        timer_s: positive(lap.total_timer_time_scaled()),
                        distance_m: positive(lap.total_distance_scaled()),
                    });
                }
            }
            typedef::MesgNum::SESSION => {
                let s = mesgdef::Session::from(message);
                if let Some(start) = time(s.start_time) {
                    sessions.push(FitSession {
                        start,
                        sport: sport(s.sport),
                        device: DeviceTotals {
                            distance_m: positive(s.total_distance_scaled()),
                            elapsed_s: positive(s.total_elapsed_time_scaled()),
                            timer_s: positive(s.total_timer_time_scaled()),
                            ascent_m: totals_u16(s.total_ascent),
                            descent_m: totals_u16(s.total_descent),
                        },
                    });
                }
            }
            typedef::MesgNum::SPORT => {
                let s = mesgdef::Sport::from(message);
                file_sport.get_or_insert(sport(s.sport));
            }
            _ => {}
        }
    }

    if points.is_empty() {
        return Err(ParseError::NoTrack(
            "a FIT activity without records".to_owned(),
        ));
    }
    sessions.sort_by_key(|s| s.start);
    Ok(Activity {
        format: FileFormat::Fit,
        gzipped: false,
        sessions: split_sessions(points, laps, sessions, file_sport),
    })
}

/// Hands each record and lap to the last session started at or before it (records before the
/// first session go to the first). Without session messages (a file cut short) everything is
/// one session with the file's sport.
fn split_sessions(
    points: Vec<TrackPoint>,
    laps: Vec<Lap>,
    sessions: Vec<FitSession>,
    file_sport: Option<Sport>,
) -> Vec<Session> {
    if sessions.is_empty() {
        let start = points.first().map(|p| p.time);
        return start
            .map(|start| Session {
                sport: file_sport.unwrap_or(Sport::Other),
                start,
                points,
                laps,
                device: DeviceTotals::default(),
            })
            .into_iter()
            .collect();
    }
    let starts: Vec<DateTime<Utc>> = sessions.iter().map(|s| s.start).collect();
    let index_of = |t: DateTime<Utc>| starts.partition_point(|s| *s <= t).saturating_sub(1);
    let mut out: Vec<Session> = sessions
        .into_iter()
        .map(|s| Session {
            sport: s.sport,
            start: s.start,
            points: Vec::new(),
            laps: Vec::new(),
            device: s.device,
        })
        .collect();
    for p in points {
        let i = index_of(p.time);
        if let Some(session) = out.get_mut(i) {
            let first = session.points.is_empty();
            session.points.push(TrackPoint {
                segment_start: p.segment_start || first,
                ..p
            });
        }
    }
    for lap in laps {
        let i = index_of(lap.start);
        if let Some(session) = out.get_mut(i) {
            session.laps.push(lap);
        }
    }
    out.retain(|s| !s.points.is_empty());
    out
}
