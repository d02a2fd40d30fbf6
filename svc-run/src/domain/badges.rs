//! Badges as data: the versioned TOML format, its validation (one-line errors naming the file,
//! line and badge) and the evaluation of every rule over a runner's runs. Pure.
//!
//! Evaluation is total: given all of a runner's running activities (and their improved personal
//! records, race results and completed challenges) it answers every achievement they hold, each
//! with the run that earned it: the first run (by start) at which the rule held. Awarding is the
//! difference between this answer and what is stored, so a deleted run withdraws what only it
//! earned and nothing is ever awarded twice.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::periods::{PeriodKind, period_of};

/// The format version this server reads.
pub const FORMAT_VERSION: u32 = 1;
/// The badges shipped with runmesh.
pub const DEFAULT_BADGES: &str = include_str!("../../badges/default.toml");
/// The badge a challenge awards when it names none.
pub const DEFAULT_CHALLENGE_BADGE: &str = "challenge_finisher";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub en: String,
    pub ko: String,
}

/// What counts toward a cumulative badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    DistanceKm,
    MovingHours,
    ElevationM,
    Runs,
}

impl Metric {
    pub fn unit(self) -> &'static str {
        match self {
            Self::DistanceKm => "km",
            Self::MovingHours => "h",
            Self::ElevationM => "m",
            Self::Runs => "runs",
        }
    }

    fn of(self, run: &RunFact) -> f64 {
        match self {
            Self::DistanceKm => run.distance_m / 1_000.0,
            Self::MovingHours => run.moving_s / 3_600.0,
            Self::ElevationM => run.elevation_m,
            Self::Runs => 1.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreakUnit {
    Days,
    Weeks,
}

/// The fixed set of rule kinds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// One run with every threshold given.
    SingleRun {
        min_distance_km: Option<f64>,
        min_duration_min: Option<f64>,
        min_elevation_m: Option<f64>,
        max_pace_s_per_km: Option<f64>,
    },
    /// A total within each period (or lifetime) reaching each tier.
    Cumulative {
        metric: Metric,
        period: String,
        tiers: Vec<f64>,
    },
    /// N runs within each period (or lifetime).
    Count { runs: u32, period: String },
    /// Runs on N consecutive days or ISO weeks (each run's own local calendar).
    Streak { unit: StreakUnit, length: u32 },
    /// A run starting before (or at/after) a local time of day.
    TimeOfDay {
        before: Option<String>,
        after: Option<String>,
    },
    /// A run improved one of the runner's records (at `distance` when given: `5k`, `10k`,
    /// `half_marathon`, …).
    PersonalRecord { distance: Option<String> },
    /// A run linked as the result of a race the runner registered for; once per race.
    RaceFinisher { min_distance_km: Option<f64> },
    /// A challenge completed (the challenge names its badge); once per challenge.
    ChallengeCompleted {},
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadgeDef {
    pub id: String,
    pub icon: String,
    pub points: u32,
    pub name: Text,
    pub description: Text,
    pub rule: Rule,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BadgeFile {
    version: u32,
    #[serde(default)]
    badge: Vec<BadgeDef>,
}

/// A validated set of badges.
#[derive(Debug, Clone, PartialEq)]
pub struct BadgeSet {
    pub version: u32,
    pub badges: Vec<BadgeDef>,
}

impl Default for BadgeSet {
    fn default() -> Self {
        Self::parse(DEFAULT_BADGES, "default badges").unwrap_or(Self {
            version: FORMAT_VERSION,
            badges: Vec::new(),
        })
    }
}

/// The one line naming the file, the line and the badge of a refused badge file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct BadgeFileError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Tiers, unit and period of a badge, for answers.
#[derive(Debug, Clone, PartialEq)]
pub struct BadgeShape {
    pub tiers: Vec<f64>,
    pub unit: &'static str,
    pub period: &'static str,
}

impl BadgeDef {
    pub fn kind(&self) -> &'static str {
        match self.rule {
            Rule::SingleRun { .. } => "single_run",
            Rule::Cumulative { .. } => "cumulative",
            Rule::Count { .. } => "count",
            Rule::Streak { .. } => "streak",
            Rule::TimeOfDay { .. } => "time_of_day",
            Rule::PersonalRecord { .. } => "personal_record",
            Rule::RaceFinisher { .. } => "race_finisher",
            Rule::ChallengeCompleted {} => "challenge_completed",
        }
    }

    pub fn shape(&self) -> BadgeShape {
        let lifetime = "lifetime";
        match &self.rule {
            Rule::SingleRun {
                min_distance_km,
                min_duration_min,
                min_elevation_m,
                ..
            } => {
                let (threshold, unit) = if let Some(km) = min_distance_km {
                    (*km, "km")
                } else if let Some(min) = min_duration_min {
                    (*min, "min")
                } else {
                    (min_elevation_m.unwrap_or(0.0), "m")
                };
                BadgeShape {
                    tiers: vec![threshold],
                    unit,
                    period: lifetime,
                }
            }
            Rule::Cumulative {
                metric,
                period,
                tiers,
            } => BadgeShape {
                tiers: tiers.clone(),
                unit: metric.unit(),
                period: PeriodKind::parse(period).map_or(lifetime, PeriodKind::as_str),
            },
            Rule::Count { runs, period } => BadgeShape {
                tiers: vec![f64::from(*runs)],
                unit: "runs",
                period: PeriodKind::parse(period).map_or(lifetime, PeriodKind::as_str),
            },
            Rule::Streak { unit, length } => BadgeShape {
                tiers: vec![f64::from(*length)],
                unit: match unit {
                    StreakUnit::Days => "days",
                    StreakUnit::Weeks => "weeks",
                },
                period: lifetime,
            },
            Rule::TimeOfDay { .. } | Rule::PersonalRecord { .. } => BadgeShape {
                tiers: vec![1.0],
                unit: "runs",
                period: lifetime,
            },
            Rule::RaceFinisher { .. } => BadgeShape {
                tiers: vec![1.0],
                unit: "races",
                period: "race",
            },
            Rule::ChallengeCompleted {} => BadgeShape {
                tiers: vec![1.0],
                unit: "challenges",
                period: "challenge",
            },
        }
    }
}

fn local_time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M").ok()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl BadgeSet {
    /// Parses and validates `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, BadgeFileError> {
        let refuse = |line: usize, message: String| BadgeFileError {
            file: file.to_owned(),
            line,
            message,
        };
        let parsed: BadgeFile = toml::from_str(text).map_err(|err| {
            let line = err.span().map_or(1, |span| line_of(text, span.start));
            // Name the badge whose table holds the error, when there is one.
            let badge = err
                .span()
                .and_then(|span| text[..span.start.min(text.len())].rfind("[[badge]]"))
                .and_then(|start| {
                    text[start..]
                        .lines()
                        .find_map(|l| l.trim().strip_prefix("id = ").map(str::to_owned))
                });
            let message = err.message().replace('\n', " ");
            match badge {
                Some(id) => refuse(line, format!("badge {id}: {message}")),
                None => refuse(line, message),
            }
        })?;
        if parsed.version != FORMAT_VERSION {
            return Err(refuse(
                1,
                format!(
                    "version {} is not supported (this server reads version {FORMAT_VERSION})",
                    parsed.version
                ),
            ));
        }
        let mut seen = BTreeSet::new();
        for badge in &parsed.badge {
            let line = text
                .find(&format!("id = \"{}\"", badge.id))
                .map_or(1, |at| line_of(text, at));
            let bad = |message: &str| refuse(line, format!("badge \"{}\": {message}", badge.id));
            if badge.id.is_empty()
                || badge.id.len() > 64
                || !badge
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(bad("id must be 1-64 of a-z, 0-9 and _"));
            }
            if !seen.insert(badge.id.clone()) {
                return Err(bad("id is used twice"));
            }
            if badge.name.en.trim().is_empty() || badge.name.ko.trim().is_empty() {
                return Err(bad("name needs en and ko"));
            }
            let positive = |v: &Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0);
            match &badge.rule {
                Rule::SingleRun {
                    min_distance_km,
                    min_duration_min,
                    min_elevation_m,
                    max_pace_s_per_km,
                } => {
                    if min_distance_km.is_none()
                        && min_duration_min.is_none()
                        && min_elevation_m.is_none()
                        && max_pace_s_per_km.is_none()
                    {
                        return Err(bad("single_run needs at least one threshold"));
                    }
                    if ![
                        min_distance_km,
                        min_duration_min,
                        min_elevation_m,
                        max_pace_s_per_km,
                    ]
                    .iter()
                    .all(|v| positive(v))
                    {
                        return Err(bad("single_run thresholds must be positive"));
                    }
                }
                Rule::Cumulative { period, tiers, .. } => {
                    if PeriodKind::parse(period).is_none() {
                        return Err(bad("period must be week, month, year or lifetime"));
                    }
                    if tiers.is_empty()
                        || !tiers.iter().all(|t| t.is_finite() && *t > 0.0)
                        || tiers.windows(2).any(|w| w[1] <= w[0])
                    {
                        return Err(bad("tiers must be positive and increasing"));
                    }
                }
                Rule::Count { runs, period } => {
                    if PeriodKind::parse(period).is_none() {
                        return Err(bad("period must be week, month, year or lifetime"));
                    }
                    if *runs == 0 {
                        return Err(bad("runs must be at least 1"));
                    }
                }
                Rule::Streak { length, .. } => {
                    if *length < 2 {
                        return Err(bad("length must be at least 2"));
                    }
                }
                Rule::TimeOfDay { before, after } => {
                    let valid =
                        |t: &Option<String>| t.as_deref().is_none_or(|t| local_time(t).is_some());
                    if before.is_some() == after.is_some() {
                        return Err(bad("time_of_day needs exactly one of before and after"));
                    }
                    if !valid(before) || !valid(after) {
                        return Err(bad("times are HH:MM, e.g. 06:00"));
                    }
                }
                Rule::PersonalRecord { distance } => {
                    if distance
                        .as_deref()
                        .is_some_and(|d| !super::EFFORT_DISTANCES.iter().any(|e| e.key == d))
                    {
                        return Err(bad("distance is not a best-effort distance"));
                    }
                }
                Rule::RaceFinisher { min_distance_km } => {
                    if !positive(min_distance_km) {
                        return Err(bad("min_distance_km must be positive"));
                    }
                }
                Rule::ChallengeCompleted {} => {}
            }
        }
        Ok(Self {
            version: parsed.version,
            badges: parsed.badge,
        })
    }

    pub fn get(&self, id: &str) -> Option<&BadgeDef> {
        self.badges.iter().find(|b| b.id == id)
    }
}

/// A running activity as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFact {
    pub id: Uuid,
    pub start: DateTime<Utc>,
    /// The start in the run's own time zone.
    pub local_start: NaiveDateTime,
    pub distance_m: f64,
    pub moving_s: f64,
    pub elapsed_s: f64,
    pub elevation_m: f64,
}

/// Everything the rules read of one runner.
#[derive(Debug, Clone, Default)]
pub struct RunnerFacts {
    /// Running activities, any order.
    pub runs: Vec<RunFact>,
    /// Efforts that beat an earlier record: (run, distance key).
    pub improved_records: Vec<(Uuid, String)>,
    /// Race results: (race id, run, category distance in metres).
    pub race_results: Vec<(String, Uuid, f64)>,
    /// Completed challenges: (challenge id, badge id, run that completed it).
    pub challenges: Vec<(String, String, Option<Uuid>)>,
}

/// One achievement: a badge's tier in a period, with the run that earned it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Earned {
    pub badge_id: String,
    pub tier: u32,
    pub period: String,
    pub run_id: Option<Uuid>,
}

/// Every achievement `facts` earn under `set`.
pub fn evaluate(set: &BadgeSet, facts: &RunnerFacts) -> Vec<Earned> {
    let mut runs: Vec<&RunFact> = facts.runs.iter().collect();
    runs.sort_by(|a, b| a.start.cmp(&b.start).then(a.id.cmp(&b.id)));
    let mut earned = Vec::new();
    for badge in &set.badges {
        let mut award = |tier: u32, period: String, run_id: Option<Uuid>| {
            earned.push(Earned {
                badge_id: badge.id.clone(),
                tier,
                period,
                run_id,
            });
        };
        match &badge.rule {
            Rule::SingleRun { .. } => {
                if let Some(run) = runs.iter().find(|r| single_run_holds(&badge.rule, r)) {
                    award(1, "lifetime".to_owned(), Some(run.id));
                }
            }
            Rule::Cumulative {
                metric,
                period,
                tiers,
            } => {
                let kind = PeriodKind::parse(period).unwrap_or(PeriodKind::AllTime);
                for (key, group) in by_period(&runs, kind) {
                    let mut total = 0.0;
                    let mut next = 0;
                    for run in group {
                        total += metric.of(run);
                        while next < tiers.len() && total + 1e-9 >= tiers[next] {
                            next += 1;
                            award(
                                u32::try_from(next).unwrap_or(u32::MAX),
                                key.clone(),
                                Some(run.id),
                            );
                        }
                    }
                }
            }
            Rule::Count {
                runs: needed,
                period,
            } => {
                let kind = PeriodKind::parse(period).unwrap_or(PeriodKind::AllTime);
                for (key, group) in by_period(&runs, kind) {
                    if let Some(run) = group.get(usize::try_from(*needed).unwrap_or(usize::MAX) - 1)
                    {
                        award(1, key, Some(run.id));
                    }
                }
            }
            Rule::Streak { unit, length } => {
                if let Some(run) = streak_reached(&runs, *unit, *length) {
                    award(1, "lifetime".to_owned(), Some(run));
                }
            }
            Rule::TimeOfDay { before, after } => {
                let before = before.as_deref().and_then(local_time);
                let after = after.as_deref().and_then(local_time);
                let hit = runs.iter().find(|r| {
                    let time = r.local_start.time();
                    before.is_some_and(|b| time < b) || after.is_some_and(|a| time >= a)
                });
                if let Some(run) = hit {
                    award(1, "lifetime".to_owned(), Some(run.id));
                }
            }
            Rule::PersonalRecord { distance } => {
                let hit = runs.iter().find(|r| {
                    facts.improved_records.iter().any(|(run, d)| {
                        *run == r.id && distance.as_deref().is_none_or(|want| want == d)
                    })
                });
                if let Some(run) = hit {
                    award(1, "lifetime".to_owned(), Some(run.id));
                }
            }
            Rule::RaceFinisher { min_distance_km } => {
                for (race, run, category_m) in &facts.race_results {
                    if min_distance_km.is_none_or(|km| *category_m + 1e-9 >= km * 1_000.0) {
                        award(1, race.clone(), Some(*run));
                    }
                }
            }
            Rule::ChallengeCompleted {} => {
                for (challenge, badge_id, run) in &facts.challenges {
                    if *badge_id == badge.id {
                        award(1, challenge.clone(), *run);
                    }
                }
            }
        }
    }
    earned.sort();
    earned
}

fn single_run_holds(rule: &Rule, run: &RunFact) -> bool {
    let Rule::SingleRun {
        min_distance_km,
        min_duration_min,
        min_elevation_m,
        max_pace_s_per_km,
    } = rule
    else {
        return false;
    };
    min_distance_km.is_none_or(|km| run.distance_m + 1e-6 >= km * 1_000.0)
        && min_duration_min.is_none_or(|min| run.elapsed_s + 1e-6 >= min * 60.0)
        && min_elevation_m.is_none_or(|m| run.elevation_m + 1e-6 >= m)
        && max_pace_s_per_km.is_none_or(|pace| {
            run.distance_m > 0.0 && run.moving_s / run.distance_m * 1_000.0 <= pace + 1e-9
        })
}

/// Runs grouped by the period of their local date, each group in start order.
fn by_period<'a>(runs: &[&'a RunFact], kind: PeriodKind) -> BTreeMap<String, Vec<&'a RunFact>> {
    let mut groups: BTreeMap<String, Vec<&RunFact>> = BTreeMap::new();
    for run in runs {
        let key = if kind == PeriodKind::AllTime {
            "lifetime".to_owned()
        } else {
            period_of(kind, run.local_start.date()).0
        };
        groups.entry(key).or_default().push(run);
    }
    groups
}

/// The local day (or ISO week's Monday) of a run.
fn streak_slot(run: &RunFact, unit: StreakUnit) -> NaiveDate {
    let day = run.local_start.date();
    match unit {
        StreakUnit::Days => day,
        StreakUnit::Weeks => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
    }
}

/// The run on whose slot a streak of `length` first completed, in slot order.
fn streak_reached(runs: &[&RunFact], unit: StreakUnit, length: u32) -> Option<Uuid> {
    let step = match unit {
        StreakUnit::Days => Duration::days(1),
        StreakUnit::Weeks => Duration::days(7),
    };
    // The first run (by start) of each slot.
    let mut slots: BTreeMap<NaiveDate, &RunFact> = BTreeMap::new();
    for run in runs {
        slots.entry(streak_slot(run, unit)).or_insert(run);
    }
    let mut count = 0;
    let mut previous: Option<NaiveDate> = None;
    for (slot, run) in &slots {
        count = match previous {
            Some(p) if *slot - p == step => count + 1,
            _ => 1,
        };
        previous = Some(*slot);
        if count >= length {
            return Some(run.id);
        }
    }
    None
}

/// The current value of a badge for progress answers: this period's total, the current streak,
/// the best single run…, in the badge's unit; and the period it is counted in.
pub fn progress_value(badge: &BadgeDef, facts: &RunnerFacts, today: NaiveDate) -> (f64, String) {
    match &badge.rule {
        Rule::SingleRun {
            min_distance_km,
            min_duration_min,
            ..
        } => {
            let best = facts
                .runs
                .iter()
                .map(|r| {
                    if min_distance_km.is_some() {
                        r.distance_m / 1_000.0
                    } else if min_duration_min.is_some() {
                        r.elapsed_s / 60.0
                    } else {
                        r.elevation_m
                    }
                })
                .fold(0.0, f64::max);
            let holds = facts.runs.iter().any(|r| single_run_holds(&badge.rule, r));
            (
                if holds {
                    best.max(badge.shape().tiers[0])
                } else {
                    best
                },
                "lifetime".to_owned(),
            )
        }
        Rule::Cumulative { metric, period, .. } => {
            let kind = PeriodKind::parse(period).unwrap_or(PeriodKind::AllTime);
            let key = current_key(kind, today);
            let total = facts
                .runs
                .iter()
                .filter(|r| {
                    kind == PeriodKind::AllTime || period_of(kind, r.local_start.date()).0 == key
                })
                .map(|r| metric.of(r))
                .sum();
            (total, key)
        }
        Rule::Count { period, .. } => {
            let kind = PeriodKind::parse(period).unwrap_or(PeriodKind::AllTime);
            let key = current_key(kind, today);
            let count = facts
                .runs
                .iter()
                .filter(|r| {
                    kind == PeriodKind::AllTime || period_of(kind, r.local_start.date()).0 == key
                })
                .count();
            #[allow(clippy::cast_precision_loss)]
            (count as f64, key)
        }
        Rule::Streak { unit, .. } => {
            let refs: Vec<&RunFact> = facts.runs.iter().collect();
            (
                f64::from(current_streak(&refs, *unit, today)),
                "lifetime".to_owned(),
            )
        }
        Rule::TimeOfDay { .. } | Rule::PersonalRecord { .. } => {
            let earned = evaluate(
                &BadgeSet {
                    version: FORMAT_VERSION,
                    badges: vec![badge.clone()],
                },
                facts,
            );
            (
                if earned.is_empty() { 0.0 } else { 1.0 },
                "lifetime".to_owned(),
            )
        }
        Rule::RaceFinisher { .. } =>
        {
            #[allow(clippy::cast_precision_loss)]
            (facts.race_results.len() as f64, "race".to_owned())
        }
        Rule::ChallengeCompleted {} => {
            #[allow(clippy::cast_precision_loss)]
            let done = facts.challenges.iter().filter(|c| c.1 == badge.id).count() as f64;
            (done, "challenge".to_owned())
        }
    }
}

fn current_key(kind: PeriodKind, today: NaiveDate) -> String {
    if kind == PeriodKind::AllTime {
        "lifetime".to_owned()
    } else {
        period_of(kind, today).0
    }
}

/// The streak still alive today: consecutive slots ending today's (or the previous one).
pub fn current_streak(runs: &[&RunFact], unit: StreakUnit, today: NaiveDate) -> u32 {
    let step = match unit {
        StreakUnit::Days => Duration::days(1),
        StreakUnit::Weeks => Duration::days(7),
    };
    let slots: BTreeSet<NaiveDate> = runs.iter().map(|r| streak_slot(r, unit)).collect();
    let this = match unit {
        StreakUnit::Days => today,
        StreakUnit::Weeks => {
            today - Duration::days(i64::from(today.weekday().num_days_from_monday()))
        }
    };
    let mut slot = if slots.contains(&this) {
        this
    } else {
        this - step
    };
    let mut count = 0;
    while slots.contains(&slot) {
        count += 1;
        slot -= step;
    }
    count
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeZone;
    use chrono_tz::Tz;

    use super::*;

    fn fact(start: DateTime<Utc>, tz: Tz, km: f64) -> RunFact {
        RunFact {
            id: Uuid::now_v7(),
            start,
            local_start: start.with_timezone(&tz).naive_local(),
            distance_m: km * 1_000.0,
            moving_s: km * 300.0,
            elapsed_s: km * 300.0,
            elevation_m: 10.0,
        }
    }

    #[test]
    fn the_default_set_is_valid() {
        let set = BadgeSet::parse(DEFAULT_BADGES, "default.toml").unwrap();
        assert!(set.badges.len() >= 15);
        assert_eq!(BadgeSet::default(), set);
    }

    #[test]
    fn an_unknown_rule_kind_is_one_line_naming_file_line_and_badge() {
        let text = "version = 1\n\n[[badge]]\nid = \"moon\"\nicon = \"m\"\npoints = 1\nname = { en = \"a\", ko = \"b\" }\ndescription = { en = \"a\", ko = \"b\" }\nrule = { kind = \"moonwalk\" }\n";
        let err = BadgeSet::parse(text, "/etc/badges.toml").unwrap_err();
        let line = err.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("/etc/badges.toml:9: badge \"moon\""),
            "{line}"
        );
        assert!(line.contains("moonwalk"), "{line}");
    }

    #[test]
    fn semantic_errors_name_the_badge_line() {
        let text = "version = 1\n[[badge]]\nid = \"x\"\nicon = \"i\"\npoints = 1\nname = { en = \"a\", ko = \"b\" }\ndescription = { en = \"a\", ko = \"b\" }\nrule = { kind = \"cumulative\", metric = \"distance_km\", period = \"week\", tiers = [10.0, 5.0] }\n";
        let err = BadgeSet::parse(text, "b.toml").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("increasing"));
        assert!(
            BadgeSet::parse("version = 2\n", "v.toml")
                .unwrap_err()
                .message
                .contains("version 2")
        );
    }

    #[test]
    fn tiers_and_periods_are_earned_once_with_the_crossing_run() {
        let set = BadgeSet::default();
        let tz: Tz = "Asia/Seoul".parse().unwrap();
        let start = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
        let runs: Vec<RunFact> = (0..12)
            .map(|i| fact(start + Duration::days(i), tz, 10.0))
            .collect();
        let facts = RunnerFacts {
            runs: runs.clone(),
            ..Default::default()
        };
        let earned = evaluate(&set, &facts);
        let find = |id: &str| {
            earned
                .iter()
                .filter(|e| e.badge_id == id)
                .collect::<Vec<_>>()
        };
        assert_eq!(find("first_run")[0].run_id, Some(runs[0].id));
        assert_eq!(find("lifetime_distance").len(), 1);
        assert_eq!(find("lifetime_distance")[0].run_id, Some(runs[9].id));
        assert_eq!(find("streak_7_days")[0].run_id, Some(runs[6].id));
        assert_eq!(find("four_a_week").len(), 2);
        assert!(find("first_half").is_empty());
    }

    #[test]
    fn streaks_follow_each_runs_local_day() {
        let seoul: Tz = "Asia/Seoul".parse().unwrap();
        // 23:30 and 00:30 in Seoul: two local days though 1 hour apart.
        let a = fact(
            Utc.with_ymd_and_hms(2026, 3, 1, 14, 30, 0).unwrap(),
            seoul,
            5.0,
        );
        let b = fact(
            Utc.with_ymd_and_hms(2026, 3, 1, 15, 30, 0).unwrap(),
            seoul,
            5.0,
        );
        let refs = vec![&a, &b];
        assert!(streak_reached(&refs, StreakUnit::Days, 2).is_some());
        let utc_a = fact(a.start, chrono_tz::UTC, 5.0);
        let utc_b = fact(b.start, chrono_tz::UTC, 5.0);
        assert!(streak_reached(&[&utc_a, &utc_b], StreakUnit::Days, 2).is_none());
    }
}
