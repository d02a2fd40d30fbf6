//! Calendar periods (ISO weeks, months, years, all time) as keys and local-date bounds, board
//! scores with their tie-break, and age groups. Pure: the caller passes dates and times.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

/// A calendar period kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeriodKind {
    Week,
    Month,
    Year,
    AllTime,
}

impl PeriodKind {
    pub const ALL: [PeriodKind; 4] = [Self::Week, Self::Month, Self::Year, Self::AllTime];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
            Self::AllTime => "lifetime",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            "lifetime" | "all_time" => Some(Self::AllTime),
            _ => None,
        }
    }
}

/// The period of `kind` holding `day`: its key (`2026-W49`, `2026-12`, `2026`, `all`) and its
/// first day and the day after its last (`None` for all time).
pub fn period_of(kind: PeriodKind, day: NaiveDate) -> (String, Option<(NaiveDate, NaiveDate)>) {
    match kind {
        PeriodKind::Week => {
            let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
            let iso = day.iso_week();
            (
                format!("{}-W{:02}", iso.year(), iso.week()),
                Some((monday, monday + Duration::days(7))),
            )
        }
        PeriodKind::Month => {
            let first = day.with_day(1).unwrap_or(day);
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
            }
            .unwrap_or(first);
            (
                format!("{}-{:02}", first.year(), first.month()),
                Some((first, next)),
            )
        }
        PeriodKind::Year => {
            let first = NaiveDate::from_ymd_opt(day.year(), 1, 1).unwrap_or(day);
            let next = NaiveDate::from_ymd_opt(day.year() + 1, 1, 1).unwrap_or(day);
            (format!("{}", day.year()), Some((first, next)))
        }
        PeriodKind::AllTime => ("all".to_owned(), None),
    }
}

/// The whole-unit value a board ranks by and when it was reached, packed into one exact `f64`:
/// `value · 2^25 + (2^25 − 1 − tick)`, so a higher value ranks first and on equal values the
/// earlier tick. Ticks are seconds since the period's start (a year has fewer than 2^25) or,
/// for all time, minutes since 2000 (until 2063). Values are capped at 2^28 − 1 (268,435 km).
pub const TICK_BITS: u32 = 25;
const TICK_SPAN: u64 = 1 << TICK_BITS;
pub const MAX_VALUE: u64 = (1 << 28) - 1;

/// The tie-break tick of `reached` in a period starting at `start` (`None`: all time).
pub fn tick(reached: DateTime<Utc>, start: Option<DateTime<Utc>>) -> u64 {
    let raw = match start {
        Some(start) => (reached - start).num_seconds(),
        None => {
            let epoch = DateTime::from_timestamp(946_684_800, 0).unwrap_or_default();
            (reached - epoch).num_minutes()
        }
    };
    u64::try_from(raw.max(0)).unwrap_or(0).min(TICK_SPAN - 1)
}

/// The packed score of `value` reached at `tick`.
pub fn score(value: u64, tick: u64) -> f64 {
    let value = value.min(MAX_VALUE);
    #[allow(clippy::cast_precision_loss)]
    let packed = (value * TICK_SPAN + (TICK_SPAN - 1 - tick.min(TICK_SPAN - 1))) as f64;
    packed
}

/// The value and tick packed in `score`.
pub fn unpack(score: f64) -> (u64, u64) {
    if !score.is_finite() || score < 0.0 {
        return (0, 0);
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let packed = score as u64;
    (packed / TICK_SPAN, TICK_SPAN - 1 - packed % TICK_SPAN)
}

/// The instant of a tick in a period starting at `start`.
pub fn tick_time(tick: u64, start: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let tick = i64::try_from(tick).unwrap_or(0);
    match start {
        Some(start) => start + Duration::seconds(tick),
        None => {
            DateTime::from_timestamp(946_684_800, 0).unwrap_or_default() + Duration::minutes(tick)
        }
    }
}

/// Whole units of a total: metres, seconds, runs or metres of climb, rounded.
pub fn whole(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rounded = value.round() as u64;
        rounded.min(MAX_VALUE)
    } else {
        0
    }
}

/// The age groups of the boards, by age on December 31 of `year`.
pub const AGE_GROUPS: [&str; 9] = [
    "u20", "20-24", "25-34", "35-44", "45-54", "55-64", "65-69", "70-74", "75+",
];

/// The age group of a runner born in `birth_year`, in `year`.
pub fn age_group(birth_year: i32, year: i32) -> Option<&'static str> {
    let age = year - birth_year;
    if !(0..=130).contains(&age) {
        return None;
    }
    Some(match age {
        ..=19 => AGE_GROUPS[0],
        20..=24 => AGE_GROUPS[1],
        25..=34 => AGE_GROUPS[2],
        35..=44 => AGE_GROUPS[3],
        45..=54 => AGE_GROUPS[4],
        55..=64 => AGE_GROUPS[5],
        65..=69 => AGE_GROUPS[6],
        70..=74 => AGE_GROUPS[7],
        _ => AGE_GROUPS[8],
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeZone;

    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn iso_weeks_run_monday_to_sunday_across_years() {
        let (key, bounds) = period_of(PeriodKind::Week, day(2027, 1, 1));
        assert_eq!(key, "2026-W53");
        assert_eq!(bounds, Some((day(2026, 12, 28), day(2027, 1, 4))));
        assert_eq!(period_of(PeriodKind::Month, day(2026, 12, 9)).0, "2026-12");
        assert_eq!(
            period_of(PeriodKind::Month, day(2026, 12, 9)).1,
            Some((day(2026, 12, 1), day(2027, 1, 1)))
        );
        assert_eq!(period_of(PeriodKind::AllTime, day(2026, 12, 9)).1, None);
    }

    #[test]
    fn scores_rank_by_value_then_earlier_tick() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let early = score(10_000, tick(start + Duration::hours(1), Some(start)));
        let late = score(10_000, tick(start + Duration::days(300), Some(start)));
        let more = score(10_001, tick(start + Duration::days(364), Some(start)));
        assert!(more > early && early > late);
        assert_eq!(unpack(early), (10_000, 3600));
        let all = score(MAX_VALUE, tick(Utc::now(), None));
        assert_eq!(unpack(all).0, MAX_VALUE);
        assert!(all < 2f64.powi(53));
    }

    #[test]
    fn age_groups_follow_the_brackets() {
        assert_eq!(age_group(2008, 2026), Some("u20"));
        assert_eq!(age_group(2006, 2026), Some("20-24"));
        assert_eq!(age_group(1992, 2026), Some("25-34"));
        assert_eq!(age_group(1951, 2026), Some("75+"));
        assert_eq!(age_group(2030, 2026), None);
    }
}
