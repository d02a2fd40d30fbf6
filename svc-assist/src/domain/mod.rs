//! Notification rules without I/O: categories and channels, what each event kind is, quiet
//! hours, the retry schedule, message templates and the Slack message layout.

pub mod backoff;
pub mod quiet;
pub mod slack;
pub mod templates;

use std::fmt;
use std::str::FromStr;

pub use backoff::RetrySchedule;
pub use quiet::QuietHours;
pub use templates::{Rendered, Templates};

/// What a notification is about; preferences are per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    RaceOpening,
    Registration,
    Achievement,
    CrewActivity,
    Test,
}

impl Category {
    /// The categories a runner sets preferences for (the test category is always on).
    pub const CONFIGURABLE: [Category; 4] = [
        Category::RaceOpening,
        Category::Registration,
        Category::Achievement,
        Category::CrewActivity,
    ];

    /// The code stored in the database.
    pub const fn code(self) -> &'static str {
        match self {
            Self::RaceOpening => "race_opening",
            Self::Registration => "registration",
            Self::Achievement => "achievement",
            Self::CrewActivity => "crew_activity",
            Self::Test => "test",
        }
    }
}

impl FromStr for Category {
    type Err = String;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        match code {
            "race_opening" => Ok(Self::RaceOpening),
            "registration" => Ok(Self::Registration),
            "achievement" => Ok(Self::Achievement),
            "crew_activity" => Ok(Self::CrewActivity),
            "test" => Ok(Self::Test),
            other => Err(format!("unknown category {other:?}")),
        }
    }
}

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Inbox,
    Slack,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Inbox, Channel::Slack];

    pub const fn code(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Slack => "slack",
        }
    }
}

impl FromStr for Channel {
    type Err = String;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        match code {
            "inbox" => Ok(Self::Inbox),
            "slack" => Ok(Self::Slack),
            other => Err(format!("unknown channel {other:?}")),
        }
    }
}

/// The language a runner reads notifications in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Language {
    #[default]
    Korean,
    English,
}

impl Language {
    pub const fn code(self) -> &'static str {
        match self {
            Self::Korean => "ko",
            Self::English => "en",
        }
    }

    /// `ko`/`en` (also `ko-KR`, `en-US`…); anything else is refused.
    pub fn parse(code: &str) -> Result<Self, String> {
        let primary = code.split(['-', '_']).next().unwrap_or_default();
        match primary.to_ascii_lowercase().as_str() {
            "ko" => Ok(Self::Korean),
            "en" => Ok(Self::English),
            _ => Err(format!("{code:?} is not a supported language (ko, en)")),
        }
    }
}

/// Where one delivery stands (see the proto's `DeliveryStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryStatus {
    Pending,
    Deferred,
    Digest,
    Sending,
    Sent,
    Failed,
    Ambiguous,
    Skipped,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 8] = [
        Self::Pending,
        Self::Deferred,
        Self::Digest,
        Self::Sending,
        Self::Sent,
        Self::Failed,
        Self::Ambiguous,
        Self::Skipped,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Deferred => "deferred",
            Self::Digest => "digest",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Ambiguous => "ambiguous",
            Self::Skipped => "skipped",
        }
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.code() == code)
            .ok_or_else(|| format!("unknown delivery status {code:?}"))
    }
}

/// Inbox state of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxState {
    Unread,
    Read,
    Archived,
}

impl InboxState {
    pub const fn code(self) -> &'static str {
        match self {
            Self::Unread => "unread",
            Self::Read => "read",
            Self::Archived => "archived",
        }
    }
}

impl FromStr for InboxState {
    type Err = String;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        match code {
            "unread" => Ok(Self::Unread),
            "read" => Ok(Self::Read),
            "archived" => Ok(Self::Archived),
            other => Err(format!("unknown inbox state {other:?}")),
        }
    }
}

/// One wrong request field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.description)
    }
}

/// The runner's notification choices from their svc-user profile: the default of each
/// category on every channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileChoices {
    pub race_opening: bool,
    pub registration: bool,
    pub achievement: bool,
    pub crew_activity: bool,
}

impl Default for ProfileChoices {
    /// A runner we have no profile for yet gets everything.
    fn default() -> Self {
        Self {
            race_opening: true,
            registration: true,
            achievement: true,
            crew_activity: true,
        }
    }
}

impl ProfileChoices {
    pub fn allows(self, category: Category) -> bool {
        match category {
            Category::RaceOpening => self.race_opening,
            Category::Registration => self.registration,
            Category::Achievement => self.achievement,
            Category::CrewActivity => self.crew_activity,
            Category::Test => true,
        }
    }
}

/// Whether `category` goes to `channel`: the runner's own choice for that pair when they made
/// one, else their profile's choice for the category. Tests always go everywhere.
pub fn channel_enabled(
    category: Category,
    channel: Channel,
    profile: ProfileChoices,
    overrides: &[(Category, Channel, bool)],
) -> bool {
    if category == Category::Test {
        return true;
    }
    overrides
        .iter()
        .find(|(c, ch, _)| *c == category && *ch == channel)
        .map_or_else(|| profile.allows(category), |(_, _, enabled)| *enabled)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn codes_round_trip() {
        for category in Category::CONFIGURABLE {
            assert_eq!(category.code().parse::<Category>().unwrap(), category);
        }
        for status in DeliveryStatus::ALL {
            assert_eq!(status.code().parse::<DeliveryStatus>().unwrap(), status);
        }
        assert!("weather".parse::<Category>().is_err());
        assert!("email".parse::<Channel>().is_err());
    }

    #[test]
    fn languages_default_to_korean_and_accept_regions() {
        assert_eq!(Language::default(), Language::Korean);
        assert_eq!(Language::parse("en-US").unwrap(), Language::English);
        assert_eq!(Language::parse("ko").unwrap(), Language::Korean);
        assert!(Language::parse("fr").is_err());
    }

    #[test]
    fn a_runner_choice_beats_the_profile_default() {
        let profile = ProfileChoices {
            race_opening: false,
            ..ProfileChoices::default()
        };
        assert!(!channel_enabled(
            Category::RaceOpening,
            Channel::Slack,
            profile,
            &[]
        ));
        let overrides = [(Category::RaceOpening, Channel::Slack, true)];
        assert!(channel_enabled(
            Category::RaceOpening,
            Channel::Slack,
            profile,
            &overrides
        ));
        assert!(!channel_enabled(
            Category::RaceOpening,
            Channel::Inbox,
            profile,
            &overrides
        ));
        assert!(channel_enabled(
            Category::Test,
            Channel::Slack,
            ProfileChoices {
                race_opening: false,
                registration: false,
                achievement: false,
                crew_activity: false
            },
            &[(Category::Test, Channel::Slack, false)]
        ));
    }
}
