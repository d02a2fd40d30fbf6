//! Recaps ↔ proto.

use runmesh_proto::google::api::HttpBody;
use runmesh_proto::runmesh::run::v1 as proto;

use super::{duration, effort_distance, timestamp};
use crate::card::{CardFormat, CardSize};
use crate::domain::periods::PeriodKind;
use crate::domain::recap::{Bucket, Language, RecapPeriod, Totals, change_percent};
use crate::recap::{EffortFact, Recap};

/// `week`, `month`, `year` (nothing else has a recap).
pub fn recap_period(text: &str) -> Option<PeriodKind> {
    match text {
        "week" => Some(PeriodKind::Week),
        "month" => Some(PeriodKind::Month),
        "year" => Some(PeriodKind::Year),
        _ => None,
    }
}

/// `ko`/`en`; Korean when unset.
pub fn recap_language(code: Option<&str>) -> Option<Language> {
    match code {
        None | Some("") => Some(Language::default()),
        Some(code) => Language::parse(code),
    }
}

pub fn card_format(format: proto::RecapCardFormat) -> CardFormat {
    match format {
        proto::RecapCardFormat::Svg => CardFormat::Svg,
        proto::RecapCardFormat::Png | proto::RecapCardFormat::Unspecified => CardFormat::Png,
    }
}

pub fn card_size(size: proto::RecapCardSize) -> CardSize {
    match size {
        proto::RecapCardSize::Square => CardSize::Square,
        proto::RecapCardSize::Portrait | proto::RecapCardSize::Unspecified => CardSize::Portrait,
    }
}

/// `RecapReady` for `owner_id`'s `period` in `time_zone`, with the recap's `totals`.
pub fn recap_ready(
    owner_id: &str,
    period: &RecapPeriod,
    time_zone: chrono_tz::Tz,
    totals: &Totals,
) -> proto::RecapReady {
    proto::RecapReady {
        owner_id: owner_id.to_owned(),
        period: period.kind.as_str().to_owned(),
        date: period.from.format("%Y-%m-%d").to_string(),
        time_zone: time_zone.name().to_owned(),
        distance_meters: totals.distance_m,
        runs: totals.runs,
        moving_time: Some(duration(totals.moving_s)),
        active_days: totals.active_days,
    }
}

fn totals(totals: &Totals) -> proto::RecapTotals {
    proto::RecapTotals {
        distance_meters: totals.distance_m,
        moving_time: Some(duration(totals.moving_s)),
        runs: totals.runs,
        elevation_gain_meters: totals.elevation_m,
        active_days: totals.active_days,
    }
}

fn bucket(bucket: &Bucket) -> proto::RecapBucket {
    proto::RecapBucket {
        label: bucket.label.clone(),
        distance_meters: bucket.distance_m,
        runs: bucket.runs,
    }
}

fn effort(effort: &EffortFact) -> proto::RecapEffort {
    proto::RecapEffort {
        distance: effort_distance(&effort.distance).into(),
        elapsed_time: Some(duration(effort.elapsed_s)),
        run_id: effort.run_id.to_string(),
        achieved_at: Some(timestamp(effort.achieved_at)),
    }
}

pub fn recap_message(recap: &Recap) -> proto::Recap {
    let t = &recap.totals;
    let p = &recap.previous;
    proto::Recap {
        period: recap.period.kind.as_str().to_owned(),
        period_key: recap.period.key.clone(),
        from_date: recap.period.from.to_string(),
        to_date: recap.period.to.to_string(),
        time_zone: recap.time_zone.name().to_owned(),
        owner_id: recap.owner_id.clone(),
        crew_id: recap.crew_id.clone(),
        display_name: recap.display_name.clone(),
        in_progress: recap.in_progress,
        empty: t.runs == 0,
        totals: Some(totals(t)),
        previous_totals: Some(totals(p)),
        distance_change_percent: change_percent(t.distance_m, p.distance_m),
        moving_time_change_percent: change_percent(t.moving_s, p.moving_s),
        runs_change_percent: change_percent(f64::from(t.runs), f64::from(p.runs)),
        longest_run: recap.longest.as_ref().map(|run| proto::RecapRun {
            run_id: run.id.to_string(),
            title: run.title.clone(),
            start_time: Some(timestamp(run.start)),
            distance_meters: run.distance_m,
            moving_time: Some(duration(run.moving_s)),
            owner_id: run.owner.clone(),
        }),
        fastest_efforts: recap.fastest.iter().map(effort).collect(),
        personal_records: recap.records.iter().map(effort).collect(),
        badges: recap
            .badges
            .iter()
            .map(|badge| proto::RecapBadge {
                badge_id: badge.badge_id.clone(),
                tier: badge.tier,
                earned_at: Some(timestamp(badge.earned_at)),
            })
            .collect(),
        challenges_completed: recap
            .challenges
            .iter()
            .map(|challenge| proto::RecapChallenge {
                challenge_id: challenge.id.to_string(),
                title: challenge.title.clone(),
                completed_at: Some(timestamp(challenge.completed_at)),
            })
            .collect(),
        races: recap
            .races
            .iter()
            .map(|race| proto::RecapRace {
                race_id: race.race_id.clone(),
                name: race.name.clone(),
                category_id: race.category_id.clone(),
                run_id: race.run_id.map(|id| id.to_string()).unwrap_or_default(),
                elapsed_time: race.elapsed_s.map(duration),
                starts_at: Some(timestamp(race.starts_at)),
            })
            .collect(),
        longest_streak_days: recap.longest_streak_days,
        calendar: recap
            .calendar
            .iter()
            .map(|day| proto::RecapDay {
                date: day.date.to_string(),
                distance_meters: day.distance_m,
                runs: day.runs,
            })
            .collect(),
        distance_by_bucket: recap.by_bucket.iter().map(bucket).collect(),
        distance_by_weekday: recap.by_weekday.iter().map(bucket).collect(),
        runs_by_hour: recap.by_hour.iter().map(bucket).collect(),
        rank: recap.rank.as_ref().map(|rank| proto::RecapRank {
            board_period: rank.board_period.clone(),
            rank: rank.rank,
            ranked_runners: rank.ranked,
            percentile: rank.percentile,
        }),
        crews: recap
            .crews
            .iter()
            .map(|crew| proto::RecapCrew {
                crew_id: crew.crew_id.clone(),
                name: crew.name.clone(),
                distance_meters: crew.distance_m,
            })
            .collect(),
        most_active_members: recap
            .members
            .iter()
            .map(|member| proto::RecapMember {
                user_id: member.user_id.clone(),
                display_name: member.display_name.clone(),
                distance_meters: member.distance_m,
                runs: member.runs,
            })
            .collect(),
        group_runs_available: false,
        language: recap.language.code().to_owned(),
        narrative: recap.narrative.clone(),
    }
}

/// The card's answer: the image with its content type, and a file name.
pub fn card_message(
    recap: &Recap,
    format: CardFormat,
    bytes: Vec<u8>,
) -> proto::GetRecapCardResponse {
    let subject = if recap.crew_id.is_empty() {
        "recap".to_owned()
    } else {
        "crew-recap".to_owned()
    };
    proto::GetRecapCardResponse {
        file_name: format!("{subject}-{}.{}", recap.period.key, format.extension()),
        size_bytes: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
        card: Some(HttpBody {
            content_type: format.content_type().to_owned(),
            data: bytes,
            extensions: Vec::new(),
        }),
    }
}
