//! The rules of crews, boards, meetups and the feed as types and pure functions. No I/O here.

mod page;
mod rsvp;

pub use page::{PageSize, PageToken};
pub use rsvp::{RsvpOutcome, RsvpStatus, decide_rsvp};

pub use runmesh_platform::validation::{FieldViolation, Rejected, Violations};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

/// Text limits, in characters (also stated in `social.proto`).
pub mod limits {
    pub const CREW_NAME: usize = 60;
    pub const CREW_DESCRIPTION: usize = 2_000;
    pub const REGION: usize = 60;
    pub const COVER_URL: usize = 500;
    pub const POST_TITLE: usize = 120;
    pub const POST_BODY: usize = 20_000;
    pub const COMMENT_BODY: usize = 2_000;
    pub const REPORT_REASON: usize = 500;
    pub const JOIN_MESSAGE: usize = 500;
    pub const MEETUP_TITLE: usize = 120;
    pub const MEETUP_DESCRIPTION: usize = 4_000;
    pub const MEETING_POINT: usize = 120;
    pub const PACE_GROUPS: usize = 8;
    pub const PACE_GROUP: usize = 30;
    pub const RUN_COMMENT: usize = 1_000;
    pub const CANCEL_REASON: usize = 500;
    pub const MAX_CAPACITY: u32 = 10_000;
    pub const MAX_DISTANCE_METERS: u32 = 200_000;
}

/// A UUID the service assigned (crew, post, comment or meetup id).
pub fn parse_id(value: &str) -> Result<uuid::Uuid, Rejected> {
    if value.is_empty() {
        return Err(Rejected::new("is required"));
    }
    uuid::Uuid::parse_str(value).map_err(|_| Rejected::new("is not a valid id"))
}

/// Trimmed text of `min..=max` characters without control characters (newlines and tabs are
/// fine): stored exactly as trimmed, never rendered.
pub fn text(value: &str, min: usize, max: usize) -> Result<String, Rejected> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if length < min {
        return Err(Rejected::new(if min == 1 {
            "is required".to_owned()
        } else {
            format!("must have at least {min} characters")
        }));
    }
    if length > max {
        return Err(Rejected::new(format!("must have at most {max} characters")));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(Rejected::new("must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// The lower-case form names and regions are searched by.
pub fn search_key(value: &str) -> String {
    value.trim().to_lowercase()
}

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// The value stored in the database.
            pub const fn code(self) -> &'static str {
                match self { $(Self::$variant => $code),+ }
            }

            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some(Self::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

code_enum!(
    /// Who may find and join a crew.
    CrewVisibility { Public = "public", Approval = "approval", Private = "private" }
);
code_enum!(
    /// A member's role; ordered from the most powerful.
    CrewRole { Owner = "owner", Admin = "admin", Member = "member" }
);
code_enum!(
    /// A membership row's state.
    MemberState { Member = "member", Requested = "requested", Banned = "banned" }
);
code_enum!(
    PostCategory {
        Notice = "notice",
        Free = "free",
        Recruiting = "recruiting",
        Review = "review",
        Question = "question",
    }
);
code_enum!(
    /// Where reported content stands.
    Moderation { Visible = "visible", Hidden = "hidden", Restored = "restored", Removed = "removed" }
);
code_enum!(
    ReactionKind { Like = "like", Fire = "fire", Clap = "clap", Laugh = "laugh" }
);
code_enum!(
    MeetupStatus { Scheduled = "scheduled", Cancelled = "cancelled" }
);
code_enum!(
    Recurrence { None = "none", Weekly = "weekly" }
);
code_enum!(
    /// How a run in the feed was shared (private runs never enter the feed).
    RunVisibility { Crews = "crews", Public = "public", Private = "private" }
);

impl CrewRole {
    /// OWNER or ADMIN.
    pub fn manages(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

impl Moderation {
    /// Whether readers other than the author and admins see it.
    pub fn shown(self) -> bool {
        matches!(self, Self::Visible | Self::Restored)
    }
}

/// What a caller is to a crew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    None,
    Requested,
    Banned,
    Member(CrewRole),
}

impl Standing {
    pub fn role(self) -> Option<CrewRole> {
        match self {
            Self::Member(role) => Some(role),
            _ => None,
        }
    }

    pub fn is_member(self) -> bool {
        matches!(self, Self::Member(_))
    }

    pub fn manages(self) -> bool {
        self.role().is_some_and(CrewRole::manages)
    }
}

/// Whether a crew's content (board, members, meetups, feed) is readable with `standing`:
/// listed crews by anyone signed in, private crews by members only.
pub fn may_read(visibility: CrewVisibility, standing: Standing) -> bool {
    standing.is_member() || visibility != CrewVisibility::Private
}

/// Whether a member with `actor` may remove (or ban) one with `target`: admins remove members,
/// only the owner removes admins, nobody removes the owner.
pub fn may_remove(actor: CrewRole, target: CrewRole) -> bool {
    match target {
        CrewRole::Owner => false,
        CrewRole::Admin => actor == CrewRole::Owner,
        CrewRole::Member => actor.manages(),
    }
}

/// Whether an auto-hide is due: visible content reaching the threshold of distinct reporters.
/// Content an admin restored is not hidden again by reports.
pub fn auto_hide_due(moderation: Moderation, reports: u64, threshold: u64) -> bool {
    moderation == Moderation::Visible && reports >= threshold
}

/// The totals period around `now`: the UTC week (from Monday) or month.
pub fn period(now: DateTime<Utc>, month: bool) -> (DateTime<Utc>, DateTime<Utc>) {
    let date = now.date_naive();
    let (start, end) = if month {
        let start = NaiveDate::from_ymd_opt(date.year(), date.month(), 1).unwrap_or(date);
        let end = if date.month() == 12 {
            NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
        }
        .unwrap_or(date);
        (start, end)
    } else {
        let start = date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
        (start, start + Duration::days(7))
    };
    (
        Utc.from_utc_datetime(&start.and_hms_opt(0, 0, 0).unwrap_or_default()),
        Utc.from_utc_datetime(&end.and_hms_opt(0, 0, 0).unwrap_or_default()),
    )
}

/// The next weekly occurrence: a week later at the same local time in `time_zone` (so a daylight
/// saving change keeps the wall-clock time).
pub fn next_week(starts_at: DateTime<Utc>, time_zone: &str) -> DateTime<Utc> {
    let Ok(tz) = time_zone.parse::<chrono_tz::Tz>() else {
        return starts_at + Duration::days(7);
    };
    let local = starts_at.with_timezone(&tz).naive_local() + Duration::days(7);
    tz.from_local_datetime(&local)
        .earliest()
        .map_or(starts_at + Duration::days(7), |at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("  Han River Crew ", 1, 60).unwrap(), "Han River Crew");
        assert_eq!(text("   ", 1, 20).unwrap_err().0, "is required");
        assert!(text("abcdef", 1, 5).is_err());
        assert!(text("a\u{0}b", 1, 5).is_err());
        assert_eq!(
            text("**bold**\n<script>", 1, 50).unwrap(),
            "**bold**\n<script>"
        );
    }

    #[test]
    fn private_crews_are_for_members_only() {
        assert!(may_read(CrewVisibility::Public, Standing::None));
        assert!(may_read(CrewVisibility::Approval, Standing::Banned));
        assert!(!may_read(CrewVisibility::Private, Standing::Requested));
        assert!(may_read(
            CrewVisibility::Private,
            Standing::Member(CrewRole::Member)
        ));
    }

    #[test]
    fn removal_follows_the_roles() {
        assert!(may_remove(CrewRole::Admin, CrewRole::Member));
        assert!(!may_remove(CrewRole::Admin, CrewRole::Admin));
        assert!(may_remove(CrewRole::Owner, CrewRole::Admin));
        assert!(!may_remove(CrewRole::Owner, CrewRole::Owner));
        assert!(!may_remove(CrewRole::Member, CrewRole::Member));
    }

    #[test]
    fn restored_content_is_not_hidden_again() {
        assert!(auto_hide_due(Moderation::Visible, 3, 3));
        assert!(!auto_hide_due(Moderation::Visible, 2, 3));
        assert!(!auto_hide_due(Moderation::Restored, 9, 3));
        assert!(!auto_hide_due(Moderation::Hidden, 9, 3));
    }

    #[test]
    fn periods_are_weeks_from_monday_and_months() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 15, 0, 0).unwrap(); // a Thursday
        let (start, end) = period(now, false);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap());
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap());
        let (start, end) = period(now, true);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
        assert_eq!(end, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn weekly_occurrences_keep_the_local_time() {
        // 2026-03-01 09:00 in New York (EST), a week later is after the DST change (EDT).
        let start = Utc.with_ymd_and_hms(2026, 3, 4, 14, 0, 0).unwrap();
        let next = next_week(start, "America/New_York");
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 3, 11, 13, 0, 0).unwrap());
        assert_eq!(next_week(start, "nowhere"), start + Duration::days(7));
    }
}
