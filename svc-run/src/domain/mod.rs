//! Run analysis as pure functions: run files in, numbers out. No I/O, no database, no clock
//! (the caller passes `now`), no panics on any input.
//!
//! # Public API
//!
//! Parsing (the [`mod@parse`] module):
//! - [`fn@parse`]`(bytes, &Limits) -> Result<Activity, ParseError>` — FIT, GPX or TCX, plain or
//!   gzipped, recognised by content (FIT header `.FIT`, XML root `gpx` /
//!   `TrainingCenterDatabase`, gzip magic), never by file name.
//! - [`detect_format`]`(bytes) -> (Option<FileFormat>, gzipped)` — the same sniffing alone.
//! - [`Limits`] `{ max_bytes, max_points }` — caps set by the caller (default 50 MiB, 2 M points);
//!   `max_bytes` also caps what a gzip may inflate to.
//! - [`ParseError`] — `UnsupportedFile(why)`, `CorruptFile(what was wrong)`, `NoTrack(why)`,
//!   `TooLarge`, `TooManyPoints`; [`ParseError::reason`] gives `UNSUPPORTED_FILE`,
//!   `CORRUPT_FILE`, `NO_TRACK`, `FILE_TOO_LARGE`, `TOO_MANY_POINTS` for `ErrorInfo.reason`.
//!
//! What a file holds ([`Activity`] → [`Session`]s → [`TrackPoint`]s):
//! - [`Activity`] `{ format, gzipped, sessions }` — at least one session, each with points;
//!   [`Activity::running_sessions`] are the ones that feed running best efforts.
//! - [`Session`] `{ sport, start, points, laps, device }` — one GPX file, one TCX `Activity`,
//!   one FIT `session` (a triathlon FIT gives five).
//! - [`TrackPoint`] `{ time, position, elevation_m, distance_m, heart_rate_bpm, cadence_raw,
//!   segment_start }` — as recorded; cadence raw (strides or rpm).
//! - [`Lap`], [`DeviceTotals`] (the device's distance, elapsed, timer, ascent, descent),
//!   [`Sport`] (with [`Sport::from_name`] for TCX/GPX/Strava names), [`FileFormat`],
//!   [`LatLng`].
//!
//! Analysis:
//! - [`analyse`]`(&Session, &AnalysisConfig) -> Analysis`, [`analyse_activity`] for every
//!   session of an [`Activity`].
//! - [`Analysis`] — sport, start, distance (+ [`Source`]: device stream/total or haversine),
//!   elapsed and moving time (device timer, else the sport's speed threshold), elevation gain and
//!   loss (device totals, else hysteresis), average pace/speed, max speed, heart rate and
//!   cadence [`Summary`] (steps per minute = 2 × strides for running), [`Split`]s per km and per
//!   mile, lap and point counts, and best efforts (running sessions only).
//! - [`AnalysisConfig`] — [`MovingSpeeds`] per sport (running 0.894 m/s), elevation hysteresis
//!   (3 m), recording gap (60 s), speed window (10 s), [`BestEffortConfig`].
//! - [`best_efforts`]`(t, d, distances, &BestEffortConfig) -> Vec<BestEffort>` — fastest time
//!   over exactly each distance (two monotone pointers, interpolated end, split at gaps and
//!   impossible steps, world-record floor); [`EFFORT_DISTANCES`] are 400 m, 1 km, 1 mile, 5 km,
//!   10 km, 15 km, half marathon and marathon; [`world_record_speed_mps`] the fastest
//!   believable speed over a distance.
//! - [`hysteresis`] (elevation gain/loss of a stream), [`haversine_m`], [`MILE_M`].
//!
//! Streams and privacy:
//! - [`RunStreams::of`]`(&Session, &AnalysisConfig)` — per-point time, distance, lat/lng,
//!   elevation, heart rate, cadence and pace for GetRunStreams;
//!   [`RunStreams::hide_ends`]`(metres)` — the privacy zone: no position within N metres of the
//!   start or the end.
//!
//! Manual entries:
//! - [`validate_manual_run`]`(&ManualRunInput, now) -> Result<ManualRun, Vec<Violation>>` —
//!   every refused field at once (`start` in the future, negative or non-finite `duration`,
//!   `distance`, `elevation_gain`, an `average_heart_rate` outside 25–250, a pace faster than
//!   the world record for that distance).
//!
//! Not here: content hashes, storage, events and the mapping to gRPC statuses (the service's).

mod analysis;
pub mod badges;
mod best_efforts;
mod manual;
pub mod parse;
pub mod periods;
pub mod recap;
mod series;
mod streams;
mod track;

pub use analysis::{
    Analysis, AnalysisConfig, MILE_M, MovingSpeeds, Source, Split, Summary, analyse,
    analyse_activity, hysteresis,
};
pub use best_efforts::{
    BestEffort, BestEffortConfig, EFFORT_DISTANCES, EffortDistance, best_efforts,
    world_record_speed_mps,
};
pub use manual::{ManualRun, ManualRunInput, Violation, validate_manual_run};
pub use parse::{Limits, ParseError, detect_format, parse};
pub use series::haversine_m;
pub use streams::RunStreams;
pub use track::{Activity, DeviceTotals, FileFormat, Lap, LatLng, Session, Sport, TrackPoint};
