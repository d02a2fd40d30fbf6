//! Dates in questions ("this month", "last Tuesday", "지난주 화요일", "이번 달") resolved in the
//! runner's time zone into a half-open UTC range.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use super::text::Lang;

/// A span of local days: `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub first_day: NaiveDate,
    /// The day after the last.
    pub end_day: NaiveDate,
    pub kind: PeriodKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    /// The UTC instants of the local midnights bounding the period.
    pub fn utc_range(&self, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        (midnight(tz, self.first_day), midnight(tz, self.end_day))
    }

    /// "this month (2026-12-01 – 2026-12-31)" in the language.
    pub fn describe(&self, lang: Lang) -> String {
        let last = self.end_day.pred_opt().unwrap_or(self.end_day);
        if self.first_day == last {
            return match lang {
                Lang::En => format!("{} ({})", self.first_day.format("%A"), self.first_day),
                Lang::Ko => format!(
                    "{} ({})",
                    self.first_day,
                    korean_weekday(self.first_day.weekday())
                ),
            };
        }
        format!("{} – {}", self.first_day, last)
    }
}

fn midnight(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&naive))
}

pub fn korean_weekday(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "월요일",
        Weekday::Tue => "화요일",
        Weekday::Wed => "수요일",
        Weekday::Thu => "목요일",
        Weekday::Fri => "금요일",
        Weekday::Sat => "토요일",
        Weekday::Sun => "일요일",
    }
}

const WEEKDAYS: [(Weekday, &str, &str, &str); 7] = [
    (Weekday::Mon, "monday", "월요일", "mon"),
    (Weekday::Tue, "tuesday", "화요일", "tue"),
    (Weekday::Wed, "wednesday", "수요일", "wed"),
    (Weekday::Thu, "thursday", "목요일", "thu"),
    (Weekday::Fri, "friday", "금요일", "fri"),
    (Weekday::Sat, "saturday", "토요일", "sat"),
    (Weekday::Sun, "sunday", "일요일", "sun"),
];

fn week_start(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

fn month_start(day: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(day.year(), day.month(), 1).unwrap_or(day)
}

fn next_month(day: NaiveDate) -> NaiveDate {
    let (y, m) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(day)
}

fn year_range(year: i32) -> Option<(NaiveDate, NaiveDate)> {
    Some((
        NaiveDate::from_ymd_opt(year, 1, 1)?,
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?,
    ))
}

fn day(first: NaiveDate) -> Period {
    Period {
        first_day: first,
        end_day: first + Duration::days(1),
        kind: PeriodKind::Day,
    }
}

/// The period a question names, relative to `today` (the runner's local date); `None` when it
/// names none.
pub fn resolve(question: &str, today: NaiveDate) -> Option<Period> {
    let q = question.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| q.contains(w));
    // A weekday: "last tuesday" (the latest before today), "지난주 화요일" (in last week),
    // "on tuesday"/"화요일" (the latest on or before today).
    for (weekday, english, korean, _) in WEEKDAYS {
        if q.contains(english) || q.contains(korean) {
            let offset =
                (7 + today.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
            let latest = today - Duration::days(i64::from(offset));
            let date = if has(&["지난주", "지난 주"]) {
                week_start(today) - Duration::days(7)
                    + Duration::days(i64::from(weekday.num_days_from_monday()))
            } else if has(&["이번 주", "이번주"]) {
                week_start(today) + Duration::days(i64::from(weekday.num_days_from_monday()))
            } else if q.contains(&format!("last {english}")) && offset == 0 {
                today - Duration::days(7)
            } else {
                latest
            };
            return Some(day(date));
        }
    }
    if has(&["day before yesterday", "그저께", "그제"]) {
        return Some(day(today - Duration::days(2)));
    }
    if has(&["yesterday", "어제"]) {
        return Some(day(today - Duration::days(1)));
    }
    if has(&["today", "오늘"]) {
        return Some(day(today));
    }
    if has(&["last week", "지난주", "지난 주", "저번 주", "저번주"]) {
        let start = week_start(today) - Duration::days(7);
        return Some(Period {
            first_day: start,
            end_day: start + Duration::days(7),
            kind: PeriodKind::Week,
        });
    }
    if has(&["this week", "이번 주", "이번주", "금주"]) {
        let start = week_start(today);
        return Some(Period {
            first_day: start,
            end_day: start + Duration::days(7),
            kind: PeriodKind::Week,
        });
    }
    if has(&["last month", "지난달", "지난 달", "저번 달", "저번달"]) {
        let this = month_start(today);
        let start = month_start(this - Duration::days(1));
        return Some(Period {
            first_day: start,
            end_day: this,
            kind: PeriodKind::Month,
        });
    }
    if has(&["this month", "이번 달", "이번달", "이달"]) {
        let start = month_start(today);
        return Some(Period {
            first_day: start,
            end_day: next_month(start),
            kind: PeriodKind::Month,
        });
    }
    if has(&["last year", "작년", "지난해", "지난 해"]) {
        let (first, end) = year_range(today.year() - 1)?;
        return Some(Period {
            first_day: first,
            end_day: end,
            kind: PeriodKind::Year,
        });
    }
    if has(&["this year", "올해", "금년", "이번 해"]) {
        let (first, end) = year_range(today.year())?;
        return Some(Period {
            first_day: first,
            end_day: end,
            kind: PeriodKind::Year,
        });
    }
    None
}

/// The runner's local date now.
pub fn today(tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn periods_in_both_languages() {
        // Tuesday 2026-12-01.
        let today = date(2026, 12, 1);
        let month = resolve("이번 달에 몇 km 달렸어?", today).unwrap();
        assert_eq!(
            (month.first_day, month.end_day),
            (date(2026, 12, 1), date(2027, 1, 1))
        );
        assert_eq!(resolve("How far did I run this month?", today), Some(month));
        let last_month = resolve("last month", today).unwrap();
        assert_eq!(last_month.first_day, date(2026, 11, 1));
        let week = resolve("지난주에 얼마나 달렸어", today).unwrap();
        assert_eq!(
            (week.first_day, week.end_day),
            (date(2026, 11, 23), date(2026, 11, 30))
        );
        let year = resolve("my longest run this year", today).unwrap();
        assert_eq!(year.first_day, date(2026, 1, 1));
        assert_eq!(resolve("What is a tempo run?", today), None);
    }

    #[test]
    fn weekdays() {
        // Tuesday 2026-12-01.
        let today = date(2026, 12, 1);
        assert_eq!(
            resolve("지난주 화요일 달리기", today).unwrap().first_day,
            date(2026, 11, 24)
        );
        assert_eq!(
            resolve("my run last Tuesday", today).unwrap().first_day,
            date(2026, 11, 24)
        );
        assert_eq!(
            resolve("how was my run on Sunday", today)
                .unwrap()
                .first_day,
            date(2026, 11, 29)
        );
        assert_eq!(
            resolve("지난주 금요일", today).unwrap().first_day,
            date(2026, 11, 27)
        );
        assert_eq!(
            resolve("yesterday", today).unwrap().first_day,
            date(2026, 11, 30)
        );
    }

    #[test]
    fn ranges_follow_the_time_zone() {
        let period = resolve("today", date(2026, 12, 1)).unwrap();
        let (from, to) = period.utc_range(chrono_tz::Asia::Seoul);
        assert_eq!(from.to_rfc3339(), "2026-11-30T15:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-12-01T15:00:00+00:00");
        // 23:30 UTC on 30 Nov is already 1 Dec in Seoul.
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 23, 30, 0).unwrap();
        assert_eq!(today(chrono_tz::Asia::Seoul, now), date(2026, 12, 1));
    }
}
