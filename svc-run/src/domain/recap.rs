//! Recap figures as pure functions: the runs of a period (and the one before) in, totals,
//! calendar, buckets, streaks and a templated narrative out. No I/O, no clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::periods::{PeriodKind, period_of};

/// One running activity as a recap sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFact {
    pub id: Uuid,
    pub owner: String,
    pub title: String,
    pub start: DateTime<Utc>,
    pub distance_m: f64,
    pub moving_s: f64,
    pub elevation_m: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub distance_m: f64,
    pub moving_s: f64,
    pub runs: u32,
    pub elevation_m: f64,
    pub active_days: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub date: NaiveDate,
    pub distance_m: f64,
    pub runs: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub label: String,
    pub distance_m: f64,
    pub runs: u32,
}

/// The figures of one period.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub totals: Totals,
    pub longest: Option<RunFact>,
    pub longest_streak_days: u32,
    pub calendar: Vec<Day>,
    pub by_bucket: Vec<Bucket>,
    pub by_weekday: Vec<Bucket>,
    pub by_hour: Vec<Bucket>,
}

/// A recap's period: its kind, key and local days `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecapPeriod {
    pub kind: PeriodKind,
    pub key: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl RecapPeriod {
    /// The week, month or year holding `day` (`None` for all time).
    pub fn of(kind: PeriodKind, day: NaiveDate) -> Option<Self> {
        let (key, bounds) = period_of(kind, day);
        let (from, to) = bounds?;
        Some(Self {
            kind,
            key,
            from,
            to,
        })
    }

    /// The period just before this one.
    pub fn previous(&self) -> Option<Self> {
        Self::of(self.kind, self.from - Duration::days(1))
    }

    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from <= day && day < self.to
    }
}

pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Totals of `runs` (active days counted in `tz`).
pub fn totals(runs: &[RunFact], tz: Tz) -> Totals {
    let mut totals = Totals::default();
    let mut days = std::collections::BTreeSet::new();
    for run in runs {
        totals.distance_m += run.distance_m;
        totals.moving_s += run.moving_s;
        totals.runs += 1;
        totals.elevation_m += run.elevation_m;
        days.insert(run.start.with_timezone(&tz).date_naive());
    }
    totals.active_days = u32::try_from(days.len()).unwrap_or(u32::MAX);
    totals
}

/// Everything a recap charts, from the runs inside `period` (others are ignored).
pub fn figures(period: &RecapPeriod, tz: Tz, runs: &[RunFact]) -> Figures {
    let inside: Vec<&RunFact> = runs
        .iter()
        .filter(|run| period.contains(run.start.with_timezone(&tz).date_naive()))
        .collect();
    let owned: Vec<RunFact> = inside.iter().map(|run| (*run).clone()).collect();
    let totals = totals(&owned, tz);

    let longest = inside
        .iter()
        .copied()
        .max_by(|a, b| {
            a.distance_m
                .total_cmp(&b.distance_m)
                // The earlier of equal runs.
                .then_with(|| b.start.cmp(&a.start))
        })
        .cloned();

    let mut per_day: BTreeMap<NaiveDate, (f64, u32)> = BTreeMap::new();
    let mut weekday = [(0.0, 0u32); 7];
    let mut hour = [(0.0, 0u32); 24];
    let mut buckets: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    for run in &inside {
        let local = run.start.with_timezone(&tz);
        let date = local.date_naive();
        let entry = per_day.entry(date).or_default();
        entry.0 += run.distance_m;
        entry.1 += 1;
        let w = usize::try_from(date.weekday().num_days_from_monday()).unwrap_or(0);
        weekday[w].0 += run.distance_m;
        weekday[w].1 += 1;
        let h = usize::try_from(local.hour()).unwrap_or(0);
        hour[h].0 += run.distance_m;
        hour[h].1 += 1;
        let bucket = buckets.entry(bucket_key(period.kind, date)).or_default();
        bucket.0 += run.distance_m;
        bucket.1 += 1;
    }

    let mut calendar = Vec::new();
    let mut streak = 0u32;
    let mut longest_streak = 0u32;
    let mut day = period.from;
    while day < period.to {
        let (distance_m, runs) = per_day.get(&day).copied().unwrap_or_default();
        if runs > 0 {
            streak += 1;
            longest_streak = longest_streak.max(streak);
        } else {
            streak = 0;
        }
        calendar.push(Day {
            date: day,
            distance_m,
            runs,
        });
        day += Duration::days(1);
    }

    let by_bucket = bucket_keys(period)
        .into_iter()
        .map(|label| {
            let (distance_m, runs) = buckets.get(&label).copied().unwrap_or_default();
            Bucket {
                label,
                distance_m,
                runs,
            }
        })
        .collect();
    let by_weekday = WEEKDAYS
        .iter()
        .zip(weekday)
        .map(|(label, (distance_m, runs))| Bucket {
            label: (*label).to_owned(),
            distance_m,
            runs,
        })
        .collect();
    let by_hour = hour
        .iter()
        .enumerate()
        .map(|(h, (distance_m, runs))| Bucket {
            label: h.to_string(),
            distance_m: *distance_m,
            runs: *runs,
        })
        .collect();

    Figures {
        totals,
        longest,
        longest_streak_days: longest_streak,
        calendar,
        by_bucket,
        by_weekday,
        by_hour,
    }
}

/// A year is charted by month; a month or a week by ISO week.
fn bucket_key(kind: PeriodKind, date: NaiveDate) -> String {
    match kind {
        PeriodKind::Year => period_of(PeriodKind::Month, date).0,
        _ => period_of(PeriodKind::Week, date).0,
    }
}

fn bucket_keys(period: &RecapPeriod) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let mut day = period.from;
    while day < period.to {
        let key = bucket_key(period.kind, day);
        if keys.last() != Some(&key) {
            keys.push(key);
        }
        day += Duration::days(1);
    }
    keys
}

/// Percent change from `previous` to `current`; `None` when there was nothing before.
pub fn change_percent(current: f64, previous: f64) -> Option<f64> {
    (previous > 0.0).then(|| (current - previous) / previous * 100.0)
}

/// The narrative's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    Korean,
    English,
}

impl Language {
    pub fn parse(code: &str) -> Option<Self> {
        match code.to_ascii_lowercase().as_str() {
            "ko" | "ko-kr" => Some(Self::Korean),
            "en" | "en-us" | "en-gb" => Some(Self::English),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Korean => "ko",
            Self::English => "en",
        }
    }
}

/// The facts a narrative is built from (every number comes from here).
#[derive(Debug, Clone, Default)]
pub struct NarrativeFacts {
    pub crew: bool,
    pub totals: Totals,
    pub distance_change: Option<f64>,
    pub longest_m: Option<f64>,
    pub longest_streak_days: u32,
    pub records: usize,
    pub badges: usize,
    pub races: usize,
    pub rank: Option<(u32, u32)>,
    pub top_member: Option<(String, f64)>,
}

/// `12.3` km from metres, one decimal.
pub fn km(metres: f64) -> String {
    format!("{:.1}", metres / 1000.0)
}

/// `3:25:07` or `42:10` from seconds.
pub fn clock(seconds: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = seconds.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// The period as the narrative names it: `이번 주`/`2026년 12월`, `this week`/`December 2026`.
pub fn period_label(period: &RecapPeriod, language: Language) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let from = period.from;
    let last = period.to - Duration::days(1);
    match (period.kind, language) {
        (PeriodKind::Week, Language::Korean) => format!(
            "{}.{}.{} – {}.{}",
            from.year(),
            from.month(),
            from.day(),
            last.month(),
            last.day()
        ),
        (PeriodKind::Week, Language::English) => format!(
            "Week of {} {}, {}",
            &MONTHS[from.month0() as usize][..3],
            from.day(),
            from.year()
        ),
        (PeriodKind::Month, Language::Korean) => format!("{}년 {}월", from.year(), from.month()),
        (PeriodKind::Month, Language::English) => {
            format!("{} {}", MONTHS[from.month0() as usize], from.year())
        }
        (_, Language::Korean) => format!("{}년", from.year()),
        (_, Language::English) => format!("{}", from.year()),
    }
}

/// A few sentences from `facts`, by template.
pub fn narrative(period: &RecapPeriod, language: Language, facts: &NarrativeFacts) -> Vec<String> {
    let (ko_unit, en_unit, ko_prev, en_prev) = match period.kind {
        PeriodKind::Week => ("주", "week", "지난주", "last week"),
        PeriodKind::Month => ("달", "month", "지난달", "last month"),
        _ => ("해", "year", "작년", "last year"),
    };
    let t = &facts.totals;
    let mut lines = Vec::new();
    if t.runs == 0 {
        lines.push(match (language, facts.crew) {
            (Language::Korean, false) => format!(
                "이번 {ko_unit}에는 기록된 달리기가 없어요. 가벼운 한 번이면 다시 시작이에요!"
            ),
            (Language::Korean, true) => {
                format!("이번 {ko_unit}에는 크루의 달리기 기록이 없어요. 함께 다시 달려봐요!")
            }
            (Language::English, false) => format!(
                "No runs recorded this {en_unit}. One easy run is all it takes to start again!"
            ),
            (Language::English, true) => {
                format!("The crew recorded no runs this {en_unit}. Time for a group run!")
            }
        });
        return lines;
    }
    lines.push(match (language, facts.crew) {
        (Language::Korean, false) => format!(
            "{}번 달려 {} km, {}일을 달렸어요.",
            t.runs,
            km(t.distance_m),
            t.active_days
        ),
        (Language::Korean, true) => format!(
            "우리 크루는 {}번 달려 함께 {} km를 달렸어요.",
            t.runs,
            km(t.distance_m)
        ),
        (Language::English, false) => format!(
            "You ran {} km over {} runs on {} days.",
            km(t.distance_m),
            t.runs,
            t.active_days
        ),
        (Language::English, true) => format!(
            "Together the crew ran {} km over {} runs.",
            km(t.distance_m),
            t.runs
        ),
    });
    if let Some(change) = facts.distance_change {
        let amount = format!("{:.0}", change.abs());
        lines.push(match (language, change >= 0.0) {
            (Language::Korean, true) => format!("{ko_prev}보다 거리가 {amount}% 늘었어요."),
            (Language::Korean, false) => format!("{ko_prev}보다 거리가 {amount}% 줄었어요."),
            (Language::English, true) => format!("That is {amount}% more distance than {en_prev}."),
            (Language::English, false) => {
                format!("That is {amount}% less distance than {en_prev}.")
            }
        });
    }
    if let Some(longest) = facts.longest_m {
        lines.push(match language {
            Language::Korean => format!("가장 긴 달리기는 {} km였어요.", km(longest)),
            Language::English => format!("The longest run was {} km.", km(longest)),
        });
    }
    if facts.longest_streak_days >= 2 {
        lines.push(match language {
            Language::Korean => format!("최장 {}일 연속으로 달렸어요.", facts.longest_streak_days),
            Language::English => format!(
                "Longest streak: {} days in a row.",
                facts.longest_streak_days
            ),
        });
    }
    if facts.records > 0 {
        lines.push(match language {
            Language::Korean => format!("개인 기록을 {}개 세웠어요.", facts.records),
            Language::English => format!("{} personal records set.", facts.records),
        });
    }
    if facts.badges > 0 || facts.races > 0 {
        lines.push(match language {
            Language::Korean => format!("배지 {}개, 완주한 대회 {}개.", facts.badges, facts.races),
            Language::English => format!(
                "{} badges earned, {} races finished.",
                facts.badges, facts.races
            ),
        });
    }
    if let Some((rank, of)) = facts.rank {
        lines.push(match language {
            Language::Korean => format!("거리 순위 {of}명 중 {rank}위."),
            Language::English => format!("Ranked {rank} of {of} runners by distance."),
        });
    }
    if let Some((name, distance)) = &facts.top_member {
        lines.push(match language {
            Language::Korean => format!("가장 많이 달린 멤버는 {name} ({} km).", km(*distance)),
            Language::English => format!("Most active member: {name} ({} km).", km(*distance)),
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeZone;

    use super::*;

    fn run(start: DateTime<Utc>, km: f64) -> RunFact {
        RunFact {
            id: Uuid::now_v7(),
            owner: "r".into(),
            title: "Run".into(),
            start,
            distance_m: km * 1000.0,
            moving_s: km * 300.0,
            elevation_m: 10.0,
        }
    }

    #[test]
    fn a_week_across_new_year_counts_local_days_and_streaks() {
        let seoul: Tz = "Asia/Seoul".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        let period = RecapPeriod::of(PeriodKind::Week, day).unwrap();
        assert_eq!(period.key, "2026-W53");
        let runs = vec![
            // 2026-12-31 23:30 Seoul.
            run(Utc.with_ymd_and_hms(2026, 12, 31, 14, 30, 0).unwrap(), 5.0),
            // 2027-01-01 08:00 Seoul.
            run(Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap(), 10.0),
            // 2026-12-27 (Sunday before: outside).
            run(Utc.with_ymd_and_hms(2026, 12, 27, 1, 0, 0).unwrap(), 3.0),
        ];
        let figures = figures(&period, seoul, &runs);
        assert_eq!(figures.totals.runs, 2);
        assert_eq!(figures.totals.active_days, 2);
        assert_eq!(figures.longest_streak_days, 2);
        assert_eq!(figures.calendar.len(), 7);
        assert_eq!(figures.by_hour[23].runs, 1);
        assert_eq!(figures.by_hour[8].runs, 1);
        assert_eq!(figures.by_weekday[3].runs, 1); // Thursday
        assert_eq!(figures.by_bucket.len(), 1);
        assert_eq!(figures.longest.unwrap().distance_m, 10_000.0);
    }

    #[test]
    fn narratives_carry_the_numbers() {
        let period = RecapPeriod::of(
            PeriodKind::Month,
            NaiveDate::from_ymd_opt(2026, 12, 9).unwrap(),
        )
        .unwrap();
        let facts = NarrativeFacts {
            totals: Totals {
                distance_m: 123_456.0,
                moving_s: 0.0,
                runs: 14,
                elevation_m: 0.0,
                active_days: 12,
            },
            distance_change: Some(-12.4),
            ..NarrativeFacts::default()
        };
        let ko = narrative(&period, Language::Korean, &facts);
        assert!(ko[0].contains("123.5 km") && ko[0].contains("14번"));
        assert!(ko[1].contains("12% 줄었어요"));
        let en = narrative(&period, Language::English, &facts);
        assert!(en[0].contains("123.5 km over 14 runs on 12 days"));
        let empty = narrative(&period, Language::English, &NarrativeFacts::default());
        assert!(empty[0].starts_with("No runs"));
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(period_label(&period, Language::Korean), "2026년 12월");
    }
}
