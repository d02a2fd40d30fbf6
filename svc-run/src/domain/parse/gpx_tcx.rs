//! GPX and TCX in one streaming pass with `quick-xml`, matching elements by local name so any
//! namespace prefix works (`gpxtpx:hr`, `ns3:hr`, `TPX`, `ns3:TPX`, ...).

use chrono::{DateTime, Utc};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{Limits, ParseError, parse_xml_time};
use crate::domain::track::{
    Activity, DeviceTotals, FileFormat, Lap, LatLng, Session, Sport, TrackPoint,
};

/// The elements this reader acts on; everything else is walked over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    // GPX
    Gpx,
    Trk,
    Trkseg,
    Trkpt,
    Ele,
    Time,
    Type,
    Hr,
    Cad,
    // TCX
    Tcd,
    Activity,
    Id,
    Lap,
    TotalTimeSeconds,
    DistanceMeters,
    Track,
    Trackpoint,
    Position,
    LatitudeDegrees,
    LongitudeDegrees,
    AltitudeMeters,
    HeartRateBpm,
    Value,
    Cadence,
    RunCadence,
    Other,
}

impl Tag {
    fn of(local: &str) -> Tag {
        match local {
            "gpx" => Tag::Gpx,
            "trk" => Tag::Trk,
            "trkseg" => Tag::Trkseg,
            "trkpt" => Tag::Trkpt,
            "ele" => Tag::Ele,
            "time" | "Time" => Tag::Time,
            "type" => Tag::Type,
            "hr" | "heartrate" => Tag::Hr,
            "cad" | "cadence" => Tag::Cad,
            "TrainingCenterDatabase" => Tag::Tcd,
            "Activity" => Tag::Activity,
            "Id" => Tag::Id,
            "Lap" => Tag::Lap,
            "TotalTimeSeconds" => Tag::TotalTimeSeconds,
            "DistanceMeters" => Tag::DistanceMeters,
            "Track" => Tag::Track,
            "Trackpoint" => Tag::Trackpoint,
            "Position" => Tag::Position,
            "LatitudeDegrees" => Tag::LatitudeDegrees,
            "LongitudeDegrees" => Tag::LongitudeDegrees,
            "AltitudeMeters" => Tag::AltitudeMeters,
            "HeartRateBpm" => Tag::HeartRateBpm,
            "Value" => Tag::Value,
            "Cadence" => Tag::Cadence,
            "RunCadence" => Tag::RunCadence,
            _ => Tag::Other,
        }
    }

    /// Leaves whose text this reader reads.
    fn has_text(self) -> bool {
        matches!(
            self,
            Tag::Ele
                | Tag::Time
                | Tag::Type
                | Tag::Hr
                | Tag::Cad
                | Tag::Id
                | Tag::TotalTimeSeconds
                | Tag::DistanceMeters
                | Tag::LatitudeDegrees
                | Tag::LongitudeDegrees
                | Tag::AltitudeMeters
                | Tag::Value
                | Tag::Cadence
                | Tag::RunCadence
        )
    }
}

/// Skips a UTF-8 byte order mark and the whitespace Strava writes before `<?xml`.
fn skip_preamble(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// GPX or TCX by the local name of the root element.
pub(super) fn sniff_root(bytes: &[u8]) -> Option<FileFormat> {
    let body = skip_preamble(bytes);
    if !body.starts_with(b"<") {
        return None;
    }
    let body = String::from_utf8_lossy(body);
    let mut reader = Reader::from_str(&body);
    // A root must come within a few prologue events (declaration, comments, doctype).
    for _ in 0..64 {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                return match Tag::of(e.local_name().as_ref()) {
                    Tag::Gpx => Some(FileFormat::Gpx),
                    Tag::Tcd => Some(FileFormat::Tcx),
                    _ => None,
                };
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}

#[derive(Default)]
struct PointBuilder {
    time: Option<DateTime<Utc>>,
    lat: Option<f64>,
    lng: Option<f64>,
    elevation_m: Option<f64>,
    distance_m: Option<f64>,
    heart_rate_bpm: Option<u8>,
    cadence: Option<f64>,
    run_cadence: Option<f64>,
}

#[derive(Default)]
struct LapBuilder {
    start: Option<DateTime<Utc>>,
    timer_s: Option<f64>,
    distance_m: Option<f64>,
}

struct SessionBuilder {
    sport: Option<Sport>,
    start: Option<DateTime<Utc>>,
    points: Vec<TrackPoint>,
    laps: Vec<Lap>,
    /// Laps that did not carry a distance or a time: device totals are then not trusted.
    incomplete_laps: bool,
}

impl SessionBuilder {
    fn new(sport: Option<Sport>) -> Self {
        SessionBuilder {
            sport,
            start: None,
            points: Vec::new(),
            laps: Vec::new(),
            incomplete_laps: false,
        }
    }

    fn finish(self) -> Option<Session> {
        let first = self.points.first()?;
        let start = self.start.unwrap_or(first.time);
        let device = if self.laps.is_empty() || self.incomplete_laps {
            DeviceTotals::default()
        } else {
            DeviceTotals {
                distance_m: self.laps.iter().map(|l| l.distance_m).sum(),
                timer_s: self.laps.iter().map(|l| l.timer_s).sum(),
                ..DeviceTotals::default()
            }
        };
        Some(Session {
            sport: self.sport.unwrap_or(Sport::Other),
            start,
            points: self.points,
            laps: self.laps,
            device,
        })
    }
}

struct XmlReader<'l> {
    limits: &'l Limits,
    stack: Vec<Tag>,
    text: String,
    sessions: Vec<Session>,
    session: Option<SessionBuilder>,
    point: Option<PointBuilder>,
    lap: Option<LapBuilder>,
    segment_start: bool,
    points: usize,
    untimed_points: usize,
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

fn heart_rate(text: &str) -> Option<u8> {
    number(text)
        .filter(|v| *v >= 1.0 && *v <= 255.0)
        .map(|v| v.round() as u8)
}

fn cadence(text: &str) -> Option<f64> {
    number(text).filter(|v| (0.0..=500.0).contains(v))
}

fn attribute(e: &BytesStart<'_>, local: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .map(|a| a.value.into_owned())
}

impl<'l> XmlReader<'l> {
    fn new(limits: &'l Limits) -> Self {
        XmlReader {
            limits,
            stack: Vec::new(),
            text: String::new(),
            sessions: Vec::new(),
            session: None,
            point: None,
            lap: None,
            segment_start: true,
            points: 0,
            untimed_points: 0,
        }
    }

    fn parent(&self) -> Option<Tag> {
        self.stack.last().copied()
    }

    fn open(&mut self, tag: Tag, e: &BytesStart<'_>) {
        self.text.clear();
        match tag {
            Tag::Gpx => {
                self.finish_session();
                self.session = Some(SessionBuilder::new(None));
            }
            Tag::Trk | Tag::Trkseg | Tag::Track => self.segment_start = true,
            Tag::Trkpt if self.session.is_some() => {
                let lat = attribute(e, "lat").and_then(|v| number(&v));
                let lng = attribute(e, "lon").and_then(|v| number(&v));
                self.point = Some(PointBuilder {
                    lat,
                    lng,
                    ..PointBuilder::default()
                });
            }
            Tag::Activity => {
                self.finish_session();
                let sport = attribute(e, "Sport").map(|s| Sport::from_name(&s));
                self.session = Some(SessionBuilder::new(sport));
            }
            Tag::Lap if self.session.is_some() => {
                self.lap = Some(LapBuilder {
                    start: attribute(e, "StartTime").and_then(|v| parse_xml_time(&v)),
                    ..LapBuilder::default()
                });
            }
            Tag::Trackpoint if self.session.is_some() => self.point = Some(PointBuilder::default()),
            _ => {}
        }
    }

    fn close(&mut self, tag: Tag) -> Result<(), ParseError> {
        let parent = self.parent();
        let text = std::mem::take(&mut self.text);
        match tag {
            Tag::Trkpt | Tag::Trackpoint => self.finish_point()?,
            Tag::Lap => {
                if let (Some(lap), Some(session)) = (self.lap.take(), self.session.as_mut()) {
                    if lap.distance_m.is_none() || lap.timer_s.is_none() {
                        session.incomplete_laps = true;
                    }
                    if let Some(start) = lap.start {
                        session.laps.push(Lap {
                            start,
                            elapsed_s: None,
                            timer_s: lap.timer_s,
                            distance_m: lap.distance_m,
                        });
                    } else {
                        session.incomplete_laps = true;
                    }
                }
            }
            Tag::Activity | Tag::Gpx => self.finish_session(),
            _ => {}
        }
        if let Some(point) = self.point.as_mut() {
            match (tag, parent) {
                (Tag::Time, _) => point.time = parse_xml_time(&text),
                (Tag::Ele | Tag::AltitudeMeters, _) => point.elevation_m = number(&text),
                (Tag::Hr, _) | (Tag::Value, Some(Tag::HeartRateBpm)) => {
                    point.heart_rate_bpm = heart_rate(&text)
                }
                (Tag::Cad | Tag::Cadence, _) => point.cadence = cadence(&text),
                (Tag::RunCadence, _) => point.run_cadence = cadence(&text),
                (Tag::DistanceMeters, _) => point.distance_m = number(&text),
                (Tag::LatitudeDegrees, _) => point.lat = number(&text),
                (Tag::LongitudeDegrees, _) => point.lng = number(&text),
                _ => {}
            }
            return Ok(());
        }
        if let Some(lap) = self.lap.as_mut() {
            match (tag, parent) {
                (Tag::TotalTimeSeconds, Some(Tag::Lap)) => lap.timer_s = number(&text),
                (Tag::DistanceMeters, Some(Tag::Lap)) => lap.distance_m = number(&text),
                _ => {}
            }
            return Ok(());
        }
        if let Some(session) = self.session.as_mut() {
            match (tag, parent) {
                (Tag::Type, Some(Tag::Trk)) if session.sport.is_none() => {
                    session.sport = Some(Sport::from_name(&text))
                }
                (Tag::Id, Some(Tag::Activity)) => session.start = parse_xml_time(&text),
                _ => {}
            }
        }
        Ok(())
    }

    fn finish_point(&mut self) -> Result<(), ParseError> {
        let (Some(point), Some(session)) = (self.point.take(), self.session.as_mut()) else {
            return Ok(());
        };
        let Some(time) = point.time else {
            self.untimed_points += 1;
            return Ok(());
        };
        self.points += 1;
        if self.points > self.limits.max_points {
            return Err(ParseError::TooManyPoints {
                limit: self.limits.max_points,
            });
        }
        session.points.push(TrackPoint {
            time,
            position: point
                .lat
                .zip(point.lng)
                .and_then(|(lat, lng)| LatLng::new(lat, lng)),
            elevation_m: point.elevation_m,
            distance_m: point.distance_m.filter(|d| *d >= 0.0),
            heart_rate_bpm: point.heart_rate_bpm,
            cadence_raw: point.cadence.or(point.run_cadence),
            segment_start: self.segment_start,
        });
        self.segment_start = false;
        Ok(())
    }

    fn finish_session(&mut self) {
        self.point = None;
        self.lap = None;
        if let Some(session) = self.session.take().and_then(SessionBuilder::finish) {
            self.sessions.push(session);
        }
    }
}

pub(super) fn parse(
    bytes: &[u8],
    format: FileFormat,
    limits: &Limits,
) -> Result<Activity, ParseError> {
    // Only numbers, times and sport names are read, so a file in another encoding (Latin-1
    // names) parses with its odd characters replaced.
    let text = String::from_utf8_lossy(skip_preamble(bytes));
    let mut reader = Reader::from_str(&text);
    let mut state = XmlReader::new(limits);
    loop {
        let event = reader.read_event().map_err(|e| {
            ParseError::CorruptFile(format!(
                "{} XML at byte {}: {e}",
                format.as_str(),
                reader.error_position()
            ))
        })?;
        match event {
            Event::Start(e) => {
                let tag = Tag::of(e.local_name().as_ref());
                state.open(tag, &e);
                state.stack.push(tag);
            }
            Event::Empty(e) => {
                let tag = Tag::of(e.local_name().as_ref());
                state.open(tag, &e);
                state.close(tag)?;
            }
            Event::End(_) => {
                let tag = state.stack.pop().unwrap_or(Tag::Other);
                state.close(tag)?;
            }
            Event::Text(t) => {
                if state.parent().is_some_and(Tag::has_text) && state.text.len() < 256 {
                    state.text.push_str(&t);
                }
            }
            Event::CData(t) => {
                if state.parent().is_some_and(Tag::has_text) && state.text.len() < 256 {
                    state.text.push_str(&t);
                }
            }
            Event::Eof => break,
            Event::Decl(_)
            | Event::PI(_)
            | Event::Comment(_)
            | Event::DocType(_)
            | Event::GeneralRef(_) => {}
        }
    }
    if let Some(open) = state.stack.last() {
        return Err(ParseError::CorruptFile(format!(
            "{} XML ends inside an open element ({open:?}): truncated?",
            format.as_str()
        )));
    }
    state.finish_session();
    if state.sessions.is_empty() {
        let why = if state.untimed_points > 0 {
            format!("{} points, none with a time", state.untimed_points)
        } else {
            "no track points".to_owned()
        };
        return Err(ParseError::NoTrack(why));
    }
    Ok(Activity {
        format,
        gzipped: false,
        sessions: state.sessions,
    })
}
