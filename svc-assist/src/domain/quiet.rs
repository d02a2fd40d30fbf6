//! Quiet hours: a daily window in the runner's time zone during which non-urgent Slack messages
//! wait (deferred, never dropped) until the window ends.

use chrono::{DateTime, Duration, NaiveTime, TimeZone as _, Timelike as _, Utc};
use chrono_tz::Tz;

/// A daily window `[start, end)` in minutes after local midnight; `end < start` spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start_minute: u16,
    pub end_minute: u16,
}

impl QuietHours {
    /// From `HH:MM` strings; the error names which one is wrong. Equal start and end is refused
    /// (an empty or an all-day window is surely a mistake).
    pub fn parse(start: &str, end: &str) -> Result<Self, (&'static str, String)> {
        let start_minute = parse_hhmm(start).map_err(|e| ("quiet_hours.start", e))?;
        let end_minute = parse_hhmm(end).map_err(|e| ("quiet_hours.end", e))?;
        if start_minute == end_minute {
            return Err(("quiet_hours.end", "must differ from start".to_owned()));
        }
        Ok(Self {
            start_minute,
            end_minute,
        })
    }

    pub fn format(minute: u16) -> String {
        format!("{:02}:{:02}", minute / 60, minute % 60)
    }

    fn contains(self, minute: u16) -> bool {
        if self.start_minute < self.end_minute {
            (self.start_minute..self.end_minute).contains(&minute)
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }

    /// When a message due at `now` may go out: `None` when `now` is outside the window, else
    /// the instant the window ends in `tz` (a local end time skipped by a DST change becomes
    /// the first valid instant after it).
    pub fn release_at(self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&tz);
        let minute = u16::try_from(local.hour() * 60 + local.minute()).unwrap_or(0);
        if !self.contains(minute) {
            return None;
        }
        let end = NaiveTime::from_hms_opt(
            u32::from(self.end_minute / 60),
            u32::from(self.end_minute % 60),
            0,
        )?;
        let mut day = local.date_naive();
        if minute >= self.end_minute {
            day = day.succ_opt()?;
        }
        let naive = day.and_time(end);
        let mut probe = naive;
        for _ in 0..4 {
            if let Some(at) = tz.from_local_datetime(&probe).earliest() {
                return Some(at.with_timezone(&Utc));
            }
            probe += Duration::minutes(30);
        }
        None
    }
}

fn parse_hhmm(text: &str) -> Result<u16, String> {
    let bad = || format!("{text:?} is not a time of day as HH:MM (00:00 to 23:59)");
    let (hours, minutes) = text.trim().split_once(':').ok_or_else(bad)?;
    if hours.len() != 2 || minutes.len() != 2 {
        return Err(bad());
    }
    let hours: u16 = hours.parse().map_err(|_| bad())?;
    let minutes: u16 = minutes.parse().map_err(|_| bad())?;
    if hours > 23 || minutes > 59 {
        return Err(bad());
    }
    Ok(hours * 60 + minutes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn malformed_times_name_their_field() {
        assert_eq!(
            QuietHours::parse("25:00", "07:00").unwrap_err().0,
            "quiet_hours.start"
        );
        assert_eq!(
            QuietHours::parse("22:00", "7").unwrap_err().0,
            "quiet_hours.end"
        );
        assert_eq!(
            QuietHours::parse("22:00", "22:00").unwrap_err().0,
            "quiet_hours.end"
        );
        assert_eq!(
            QuietHours::format(QuietHours::parse("07:05", "08:00").unwrap().start_minute),
            "07:05"
        );
    }

    #[test]
    fn a_window_over_midnight_releases_at_its_local_end() {
        let quiet = QuietHours::parse("22:00", "07:00").unwrap();
        let seoul: Tz = "Asia/Seoul".parse().unwrap();
        // 23:30 in Seoul → 07:00 next morning Seoul = 22:00 UTC.
        assert_eq!(
            quiet.release_at(utc("2026-12-01T14:30:00Z"), seoul),
            Some(utc("2026-12-01T22:00:00Z"))
        );
        // 03:00 in Seoul → 07:00 the same morning.
        assert_eq!(
            quiet.release_at(utc("2026-12-01T18:00:00Z"), seoul),
            Some(utc("2026-12-01T22:00:00Z"))
        );
        // 12:00 in Seoul: not quiet.
        assert_eq!(quiet.release_at(utc("2026-12-01T03:00:00Z"), seoul), None);
    }

    #[test]
    fn a_daytime_window_and_dst() {
        let quiet = QuietHours::parse("01:00", "02:30").unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2026-03-29 02:00-03:00 does not exist in Berlin: 02:30 local becomes 03:00 CEST.
        assert_eq!(
            quiet.release_at(utc("2026-03-29T00:30:00Z"), berlin),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }
}
