//! Every proto ↔ domain conversion of svc-run (answers and events alike), and the codes stored
//! in the database for enums.

use chrono::{DateTime, Utc};
use prost::Message;
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_proto::runmesh::user::v1 as user_proto;

use crate::boards::{Metric as BoardMetric, Page, Ranked, Scope};
use crate::domain::badges::BadgeDef;
use crate::domain::periods::PeriodKind;
use crate::domain::{self, Analysis, BestEffort, EFFORT_DISTANCES, LatLng, MILE_M, RunStreams};
use crate::store::progress::{achievement, challenge, goal, race, race_result};
use crate::store::run;

pub mod recap;

pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf time, truncated to microseconds (what the database keeps).
pub fn from_timestamp(at: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let micros = at
        .seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(at.nanos) / 1_000)?;
    DateTime::from_timestamp_micros(micros)
}

/// Now, truncated to microseconds so stored times compare equal after a round trip.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Seconds as a protobuf duration (millisecond precision).
pub fn duration(seconds: f64) -> prost_types::Duration {
    if !seconds.is_finite() {
        return prost_types::Duration::default();
    }
    let millis = (seconds * 1_000.0).round();
    // Saturating float→int casts: any finite value fits after clamping.
    #[allow(clippy::cast_possible_truncation)]
    let millis = millis.clamp(i64::MIN as f64, i64::MAX as f64) as i64;
    prost_types::Duration {
        seconds: millis / 1_000,
        nanos: i32::try_from((millis % 1_000) * 1_000_000).unwrap_or(0),
    }
}

/// A protobuf duration in seconds; `None` when negative or malformed.
pub fn from_duration(duration: &prost_types::Duration) -> Option<f64> {
    if duration.seconds < 0 || duration.nanos < 0 || duration.nanos >= 1_000_000_000 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    Some(duration.seconds as f64 + f64::from(duration.nanos) / 1e9)
}

fn whole(value: f64) -> Option<u32> {
    if value.is_finite() && value >= 0.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(value.round().min(f64::from(u32::MAX)) as u32)
    } else {
        None
    }
}

// ---- sports ----

pub fn sport_code(sport: proto::Sport) -> &'static str {
    match sport {
        proto::Sport::Unspecified | proto::Sport::Run => "run",
        proto::Sport::TrailRun => "trail_run",
        proto::Sport::Treadmill => "treadmill",
        proto::Sport::Walk => "walk",
        proto::Sport::Hike => "hike",
        proto::Sport::Ride => "ride",
        proto::Sport::Swim => "swim",
        proto::Sport::Other => "other",
    }
}

pub fn sport_from_code(code: &str) -> proto::Sport {
    match code {
        "run" => proto::Sport::Run,
        "trail_run" => proto::Sport::TrailRun,
        "treadmill" => proto::Sport::Treadmill,
        "walk" => proto::Sport::Walk,
        "hike" => proto::Sport::Hike,
        "ride" => proto::Sport::Ride,
        "swim" => proto::Sport::Swim,
        "other" => proto::Sport::Other,
        _ => proto::Sport::Unspecified,
    }
}

/// The codes of the sports that are running (stats and records count these).
pub const RUNNING_SPORTS: [&str; 3] = ["run", "trail_run", "treadmill"];

/// The analysis' sport for a requested one.
pub fn domain_sport(sport: proto::Sport) -> domain::Sport {
    match sport {
        proto::Sport::Unspecified
        | proto::Sport::Run
        | proto::Sport::TrailRun
        | proto::Sport::Treadmill => domain::Sport::Running,
        proto::Sport::Walk => domain::Sport::Walking,
        proto::Sport::Hike => domain::Sport::Hiking,
        proto::Sport::Ride => domain::Sport::Cycling,
        proto::Sport::Swim => domain::Sport::Swimming,
        proto::Sport::Other => domain::Sport::Other,
    }
}

/// The sport of a file's session.
pub fn proto_sport(sport: domain::Sport) -> proto::Sport {
    match sport {
        domain::Sport::Running => proto::Sport::Run,
        domain::Sport::Walking => proto::Sport::Walk,
        domain::Sport::Hiking => proto::Sport::Hike,
        domain::Sport::Cycling => proto::Sport::Ride,
        domain::Sport::Swimming => proto::Sport::Swim,
        domain::Sport::Other => proto::Sport::Other,
    }
}

// ---- visibility ----

pub fn visibility_code(visibility: proto::Visibility) -> Option<&'static str> {
    match visibility {
        proto::Visibility::Unspecified => None,
        proto::Visibility::Private => Some("private"),
        proto::Visibility::Crews => Some("crews"),
        proto::Visibility::Public => Some("public"),
    }
}

pub fn visibility_from_code(code: &str) -> proto::Visibility {
    match code {
        "private" => proto::Visibility::Private,
        "crews" => proto::Visibility::Crews,
        "public" => proto::Visibility::Public,
        _ => proto::Visibility::Unspecified,
    }
}

/// A profile's default run privacy as a visibility code (empty when unset).
pub fn privacy_code(privacy: user_proto::RunPrivacy) -> &'static str {
    match privacy {
        user_proto::RunPrivacy::Unspecified => "",
        user_proto::RunPrivacy::Private => "private",
        user_proto::RunPrivacy::Crews => "crews",
        user_proto::RunPrivacy::Public => "public",
    }
}

pub fn distance_unit_code(unit: user_proto::DistanceUnit) -> &'static str {
    match unit {
        user_proto::DistanceUnit::Unspecified => "",
        user_proto::DistanceUnit::Kilometers => "km",
        user_proto::DistanceUnit::Miles => "mile",
    }
}

// ---- sources and formats ----

pub fn source_from_code(code: &str) -> proto::RunSource {
    match code {
        "manual" => proto::RunSource::Manual,
        "gpx" => proto::RunSource::Gpx,
        "tcx" => proto::RunSource::Tcx,
        "fit" => proto::RunSource::Fit,
        "strava_manual" => proto::RunSource::StravaManual,
        _ => proto::RunSource::Unspecified,
    }
}

/// The content type of an uploaded file, by what it is.
pub fn content_type(format: domain::FileFormat, gzipped: bool) -> &'static str {
    if gzipped {
        return "application/gzip";
    }
    match format {
        domain::FileFormat::Fit => "application/vnd.ant.fit",
        domain::FileFormat::Gpx => "application/gpx+xml",
        domain::FileFormat::Tcx => "application/vnd.garmin.tcx+xml",
    }
}

// ---- best efforts ----

pub fn effort_distance(key: &str) -> proto::EffortDistance {
    match key {
        "400m" => proto::EffortDistance::EffortDistance400m,
        "1k" => proto::EffortDistance::EffortDistance1k,
        "1mi" => proto::EffortDistance::EffortDistance1Mile,
        "5k" => proto::EffortDistance::EffortDistance5k,
        "10k" => proto::EffortDistance::EffortDistance10k,
        "15k" => proto::EffortDistance::EffortDistance15k,
        "half_marathon" => proto::EffortDistance::HalfMarathon,
        "marathon" => proto::EffortDistance::Marathon,
        _ => proto::EffortDistance::Unspecified,
    }
}

/// The metres of a distance key.
pub fn effort_meters(key: &str) -> f64 {
    EFFORT_DISTANCES
        .iter()
        .find(|distance| distance.key == key)
        .map_or(0.0, |distance| distance.meters)
}

// ---- runs ----

fn split_message(split: &domain::Split, unit_m: f64) -> proto::Split {
    let pace = if split.distance_m > 0.0 {
        split.elapsed_s / split.distance_m * unit_m
    } else {
        0.0
    };
    proto::Split {
        index: split.index,
        distance_meters: split.distance_m,
        elapsed_time: Some(duration(split.elapsed_s)),
        // The analysis times splits by elapsed time only.
        moving_time: Some(duration(split.elapsed_s)),
        elevation_change_meters: split.elevation_change_m.unwrap_or(0.0),
        average_heart_rate: split.average_heart_rate_bpm.and_then(whole),
        pace_seconds: pace,
    }
}

pub fn best_effort_message(effort: &BestEffort) -> proto::BestEffort {
    proto::BestEffort {
        distance: effort_distance(effort.distance.key).into(),
        distance_meters: effort.distance.meters,
        elapsed_time: Some(duration(effort.elapsed_s)),
        start_offset: Some(duration(effort.start_offset_s)),
        personal_record: false,
    }
}

/// What is stored in `runs.details`: a `Run` holding only the splits and best efforts.
pub fn details(analysis: &Analysis) -> Vec<u8> {
    proto::Run {
        splits_km: analysis
            .splits_km
            .iter()
            .map(|split| split_message(split, 1_000.0))
            .collect(),
        splits_mile: analysis
            .splits_mile
            .iter()
            .map(|split| split_message(split, MILE_M))
            .collect(),
        best_efforts: analysis
            .best_efforts
            .iter()
            .map(best_effort_message)
            .collect(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The run; `details` (the stored `run_analyses.details`) adds the splits and best efforts
/// (GetRun), whose `personal_record` flags the caller sets.
pub fn run_message(row: &run::Model, details: Option<&[u8]>) -> proto::Run {
    let stored = details
        .and_then(|bytes| proto::Run::decode(bytes).ok())
        .unwrap_or_default();
    proto::Run {
        run_id: row.id.to_string(),
        owner_id: row.owner_id.clone(),
        sport: sport_from_code(&row.sport).into(),
        title: row.title.clone(),
        notes: row.notes.clone(),
        visibility: visibility_from_code(&row.visibility).into(),
        start_time: Some(timestamp(row.start_time)),
        time_zone: row.time_zone.clone(),
        elapsed_time: Some(duration(row.elapsed_s)),
        moving_time: Some(duration(row.moving_s)),
        distance_meters: row.distance_m,
        elevation_gain_meters: row.elevation_gain_m,
        elevation_loss_meters: row.elevation_loss_m,
        average_heart_rate: row.average_heart_rate.and_then(|v| u32::try_from(v).ok()),
        max_heart_rate: row.max_heart_rate.and_then(|v| u32::try_from(v).ok()),
        average_cadence: row.average_cadence.and_then(|v| u32::try_from(v).ok()),
        max_cadence: row.max_cadence.and_then(|v| u32::try_from(v).ok()),
        average_pace_seconds_per_km: row.average_pace_s_per_km,
        source: source_from_code(&row.source).into(),
        original_file_name: row.original_file_name.clone(),
        has_track: row.has_track,
        splits_km: stored.splits_km,
        splits_mile: stored.splits_mile,
        best_efforts: stored.best_efforts,
        device: String::new(),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        race_result: None,
    }
}

/// Whole numbers of a summary, for the stored columns.
pub fn rounded(value: Option<f64>) -> Option<i32> {
    value
        .and_then(whole)
        .map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

// ---- streams ----

/// What is stored in `runs.streams`.
pub fn streams_message(streams: &RunStreams) -> proto::GetRunStreamsResponse {
    let has = |any: bool| any;
    let with_positions = has(streams.latlng.iter().any(Option::is_some));
    let with_elevation = has(streams.elevation_m.iter().any(Option::is_some));
    let with_heart_rate = has(streams.heart_rate_bpm.iter().any(Option::is_some));
    let with_cadence = has(streams.cadence.iter().any(Option::is_some));
    proto::GetRunStreamsResponse {
        time_seconds: streams.time_s.clone(),
        distance_meters: streams.distance_m.clone(),
        latitude: if with_positions {
            streams
                .latlng
                .iter()
                .map(|p| p.map_or(f64::NAN, |p| p.lat))
                .collect()
        } else {
            Vec::new()
        },
        longitude: if with_positions {
            streams
                .latlng
                .iter()
                .map(|p| p.map_or(f64::NAN, |p| p.lng))
                .collect()
        } else {
            Vec::new()
        },
        elevation_meters: if with_elevation {
            streams
                .elevation_m
                .iter()
                .map(|e| e.unwrap_or(f64::NAN))
                .collect()
        } else {
            Vec::new()
        },
        heart_rate: if with_heart_rate {
            streams
                .heart_rate_bpm
                .iter()
                .map(|hr| hr.map_or(0, u32::from))
                .collect()
        } else {
            Vec::new()
        },
        cadence: if with_cadence {
            streams
                .cadence
                .iter()
                .map(|c| c.and_then(whole).unwrap_or(0))
                .collect()
        } else {
            Vec::new()
        },
        pace_seconds_per_km: streams
            .pace_s_per_km
            .iter()
            .map(|p| p.unwrap_or(0.0))
            .collect(),
    }
}

/// The stored streams back as the domain's, to apply its privacy zone.
pub fn domain_streams(message: &proto::GetRunStreamsResponse) -> RunStreams {
    let n = message.time_seconds.len();
    let latlng = (0..n)
        .map(|i| {
            let lat = message.latitude.get(i).copied()?;
            let lng = message.longitude.get(i).copied()?;
            LatLng::new(lat, lng)
        })
        .collect();
    RunStreams {
        time_s: message.time_seconds.clone(),
        distance_m: message.distance_meters.clone(),
        latlng,
        elevation_m: (0..n)
            .map(|i| {
                message
                    .elevation_meters
                    .get(i)
                    .copied()
                    .filter(|e| e.is_finite())
            })
            .collect(),
        heart_rate_bpm: (0..n)
            .map(|i| {
                message
                    .heart_rate
                    .get(i)
                    .and_then(|hr| u8::try_from(*hr).ok())
                    .filter(|hr| *hr > 0)
            })
            .collect(),
        cadence: (0..n)
            .map(|i| message.cadence.get(i).map(|c| f64::from(*c)))
            .collect(),
        pace_s_per_km: (0..n)
            .map(|i| message.pace_seconds_per_km.get(i).copied())
            .collect(),
    }
}

/// A personal record with the earlier records at its distance.
pub fn personal_record(record: &crate::runs::Record) -> proto::PersonalRecord {
    let entry = |effort: &crate::store::effort::Model| proto::PersonalRecordHistoryEntry {
        elapsed_time: Some(duration(effort.elapsed_s)),
        run_id: effort.run_id.to_string(),
        achieved_at: Some(timestamp(effort.achieved_at)),
    };
    proto::PersonalRecord {
        distance: effort_distance(&record.current.distance).into(),
        elapsed_time: Some(duration(record.current.elapsed_s)),
        run_id: record.current.run_id.to_string(),
        achieved_at: Some(timestamp(record.current.achieved_at)),
        history: record.history.iter().map(entry).collect(),
    }
}

// ---- rankings, badges, goals, challenges, race results ----

pub fn board_period(period: proto::BoardPeriod) -> Option<PeriodKind> {
    match period {
        proto::BoardPeriod::Week => Some(PeriodKind::Week),
        proto::BoardPeriod::Month => Some(PeriodKind::Month),
        proto::BoardPeriod::Year => Some(PeriodKind::Year),
        proto::BoardPeriod::AllTime => Some(PeriodKind::AllTime),
        proto::BoardPeriod::Unspecified => None,
    }
}

pub fn board_metric(metric: proto::BoardMetric) -> Option<BoardMetric> {
    match metric {
        proto::BoardMetric::Distance => Some(BoardMetric::Distance),
        proto::BoardMetric::MovingTime => Some(BoardMetric::MovingTime),
        proto::BoardMetric::RunCount => Some(BoardMetric::Runs),
        proto::BoardMetric::ElevationGain => Some(BoardMetric::Elevation),
        proto::BoardMetric::Unspecified => None,
    }
}

pub fn age_group_code(group: proto::AgeGroup) -> Option<&'static str> {
    use crate::domain::periods::AGE_GROUPS as G;
    match group {
        proto::AgeGroup::Unspecified => None,
        proto::AgeGroup::Under20 => Some(G[0]),
        proto::AgeGroup::AgeGroup2024 => Some(G[1]),
        proto::AgeGroup::AgeGroup2534 => Some(G[2]),
        proto::AgeGroup::AgeGroup3544 => Some(G[3]),
        proto::AgeGroup::AgeGroup4554 => Some(G[4]),
        proto::AgeGroup::AgeGroup5564 => Some(G[5]),
        proto::AgeGroup::AgeGroup6569 => Some(G[6]),
        proto::AgeGroup::AgeGroup7074 => Some(G[7]),
        proto::AgeGroup::AgeGroup75AndOver => Some(G[8]),
    }
}

pub fn board_gender_code(gender: proto::BoardGender) -> Option<&'static str> {
    match gender {
        proto::BoardGender::Female => Some("female"),
        proto::BoardGender::Male => Some("male"),
        proto::BoardGender::NonBinary => Some("non_binary"),
        proto::BoardGender::Unspecified => None,
    }
}

pub fn gender_code(gender: user_proto::Gender) -> &'static str {
    match gender {
        user_proto::Gender::Female => "female",
        user_proto::Gender::Male => "male",
        user_proto::Gender::NonBinary => "non_binary",
        user_proto::Gender::Unspecified => "",
    }
}

pub fn scope_label(scope: &Scope) -> String {
    match scope {
        Scope::Everyone => "everyone".to_owned(),
        Scope::AgeGroup(group) => format!("age group {group}"),
        Scope::Gender(gender) => format!("gender {gender}"),
        Scope::Crew(crew) => format!("crew {crew}"),
    }
}

pub const TIE_RULE: &str = "equal values rank the runner who reached the value first (the end of their last counted run) first; exact ties by runner id, descending";

pub fn board_entry(ranked: &Ranked) -> proto::BoardEntry {
    #[allow(clippy::cast_precision_loss)]
    let value = ranked.value as f64;
    proto::BoardEntry {
        rank: ranked.rank,
        runner_id: ranked.runner_id.clone(),
        display_name: ranked.display_name.clone(),
        value,
        reached_at: Some(timestamp(ranked.reached_at)),
    }
}

pub fn leaderboard(page: &Page) -> proto::GetLeaderboardResponse {
    let (from_date, to_date) = page
        .bounds
        .map(|(from, to)| (from.to_string(), to.to_string()))
        .unwrap_or_default();
    proto::GetLeaderboardResponse {
        entries: page.entries.iter().map(board_entry).collect(),
        me: page.me.as_ref().map(board_entry),
        around_me: page.around.iter().map(board_entry).collect(),
        total_runners: page.total,
        time_zone: page.time_zone.clone(),
        from_date,
        to_date,
        tie_rule: TIE_RULE.to_owned(),
    }
}

pub fn badge_message(badge: &BadgeDef) -> proto::Badge {
    let shape = badge.shape();
    proto::Badge {
        badge_id: badge.id.clone(),
        name: Some(proto::LocalizedText {
            en: badge.name.en.clone(),
            ko: badge.name.ko.clone(),
        }),
        description: Some(proto::LocalizedText {
            en: badge.description.en.clone(),
            ko: badge.description.ko.clone(),
        }),
        icon: badge.icon.clone(),
        points: badge.points,
        kind: badge.kind().to_owned(),
        tiers: shape.tiers,
        unit: shape.unit.to_owned(),
        period: shape.period.to_owned(),
    }
}

pub fn achievement_message(
    row: &achievement::Model,
    badge: Option<&BadgeDef>,
) -> proto::Achievement {
    proto::Achievement {
        badge_id: row.badge_id.clone(),
        tier: u32::try_from(row.tier).unwrap_or(0),
        period: row.period.clone(),
        run_id: row.run_id.map(|id| id.to_string()).unwrap_or_default(),
        earned_at: Some(timestamp(row.earned_at)),
        points: badge.map_or(0, |b| b.points),
        badge: badge.map(badge_message),
    }
}

pub fn goal_metric_code(metric: proto::GoalMetric) -> Option<&'static str> {
    match metric {
        proto::GoalMetric::Distance => Some("distance"),
        proto::GoalMetric::MovingTime => Some("moving_time"),
        proto::GoalMetric::RunCount => Some("runs"),
        proto::GoalMetric::ElevationGain => Some("elevation"),
        proto::GoalMetric::Unspecified => None,
    }
}

fn goal_metric(code: &str) -> proto::GoalMetric {
    match code {
        "distance" => proto::GoalMetric::Distance,
        "moving_time" => proto::GoalMetric::MovingTime,
        "runs" => proto::GoalMetric::RunCount,
        "elevation" => proto::GoalMetric::ElevationGain,
        _ => proto::GoalMetric::Unspecified,
    }
}

pub fn goal_period_code(period: proto::GoalPeriod) -> Option<&'static str> {
    match period {
        proto::GoalPeriod::Week => Some("week"),
        proto::GoalPeriod::Month => Some("month"),
        proto::GoalPeriod::Year => Some("year"),
        proto::GoalPeriod::Unspecified => None,
    }
}

fn goal_period(code: &str) -> proto::GoalPeriod {
    match code {
        "week" => proto::GoalPeriod::Week,
        "month" => proto::GoalPeriod::Month,
        "year" => proto::GoalPeriod::Year,
        _ => proto::GoalPeriod::Unspecified,
    }
}

pub fn goal_message(row: &goal::Model) -> proto::Goal {
    proto::Goal {
        goal_id: row.id.to_string(),
        metric: goal_metric(&row.metric).into(),
        period: goal_period(&row.period).into(),
        target: row.target,
        created_at: Some(timestamp(row.created_at)),
    }
}

pub fn challenge_metric_code(metric: proto::ChallengeMetric) -> Option<&'static str> {
    match metric {
        proto::ChallengeMetric::Distance => Some("distance"),
        proto::ChallengeMetric::MovingTime => Some("moving_time"),
        proto::ChallengeMetric::RunCount => Some("runs"),
        proto::ChallengeMetric::ElevationGain => Some("elevation"),
        proto::ChallengeMetric::Unspecified => None,
    }
}

fn challenge_metric(code: &str) -> proto::ChallengeMetric {
    match code {
        "distance" => proto::ChallengeMetric::Distance,
        "moving_time" => proto::ChallengeMetric::MovingTime,
        "runs" => proto::ChallengeMetric::RunCount,
        "elevation" => proto::ChallengeMetric::ElevationGain,
        _ => proto::ChallengeMetric::Unspecified,
    }
}

pub fn challenge_message(
    row: &challenge::Model,
    participants: u32,
    joined: bool,
) -> proto::Challenge {
    proto::Challenge {
        challenge_id: row.id.to_string(),
        title: row.title.clone(),
        description: row.description.clone(),
        metric: challenge_metric(&row.metric).into(),
        target: row.target,
        start_date: row.start_date.clone(),
        end_date: row.end_date.clone(),
        crew_id: row.crew_id.clone(),
        badge_id: row.badge_id.clone(),
        created_by: row.created_by.clone(),
        participants,
        joined,
        created_at: Some(timestamp(row.created_at)),
    }
}

pub fn race_link(
    result: &race_result::Model,
    race: Option<&race::Model>,
) -> Option<proto::RaceResultLink> {
    let run_id = result.run_id?;
    let category_name = race
        .and_then(|r| {
            crate::progress::categories(r)
                .into_iter()
                .find(|c| c.0 == result.category_id)
        })
        .map(|c| c.2)
        .unwrap_or_default();
    Some(proto::RaceResultLink {
        race_id: result.race_id.clone(),
        race_name: race.map(|r| r.name.clone()).unwrap_or_default(),
        registration_id: result.registration_id.clone(),
        category_id: result.category_id.clone(),
        category_name,
        run_id: run_id.to_string(),
        elapsed_time: result.elapsed_s.map(duration),
        manual: result.manual,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn timestamps_keep_microseconds() {
        let at = from_timestamp(&prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 123_456_789,
        })
        .unwrap();
        assert_eq!(at.timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(from_timestamp(&timestamp(at)), Some(at));
    }

    #[test]
    fn durations_round_trip_to_the_millisecond() {
        let d = duration(3_723.456_7);
        assert_eq!((d.seconds, d.nanos), (3_723, 457_000_000));
        assert!((from_duration(&d).unwrap() - 3_723.457).abs() < 1e-9);
        assert!(
            from_duration(&prost_types::Duration {
                seconds: -1,
                nanos: 0
            })
            .is_none()
        );
    }

    #[test]
    fn every_stored_code_maps_back() {
        for sport in [
            proto::Sport::Run,
            proto::Sport::TrailRun,
            proto::Sport::Treadmill,
            proto::Sport::Walk,
            proto::Sport::Hike,
            proto::Sport::Ride,
            proto::Sport::Swim,
            proto::Sport::Other,
        ] {
            assert_eq!(sport_from_code(sport_code(sport)), sport);
        }
        for distance in EFFORT_DISTANCES {
            assert_ne!(
                effort_distance(distance.key),
                proto::EffortDistance::Unspecified
            );
        }
    }
}
