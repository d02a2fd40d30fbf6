use std::fmt;
use std::str::FromStr;

use super::Rejected;

const DISPLAY_NAME_MAX_CHARS: usize = 50;

/// How the runner is shown to others: 1 to 50 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(input: &str) -> Result<Self, Rejected> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(Rejected::new("is required"));
        }
        if trimmed.chars().count() > DISPLAY_NAME_MAX_CHARS {
            return Err(Rejected::new(format!(
                "must be at most {DISPLAY_NAME_MAX_CHARS} characters"
            )));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Rejected::new("must not contain control characters"));
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Slack member id: `U` (or `W` on Enterprise Grid) then uppercase letters and digits, as in
/// `U012AB3CD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackMemberId(String);

impl SlackMemberId {
    pub fn parse(input: &str) -> Result<Self, Rejected> {
        let id = input.trim();
        let valid = matches!(id.as_bytes().first(), Some(b'U' | b'W'))
            && (7..=21).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(id.to_string()))
        } else {
            Err(Rejected::new(
                "must be a Slack member id: U or W followed by 6 to 20 uppercase letters or digits",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which notifications the runner wants, per kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationPreferences {
    pub race_opening: bool,
    pub registration_result: bool,
    pub achievement: bool,
    pub crew_activity: bool,
}

impl Default for NotificationPreferences {
    fn default() -> Self {
        Self {
            race_opening: true,
            registration_result: true,
            achievement: true,
            crew_activity: true,
        }
    }
}

/// An IANA time zone, e.g. `Europe/Berlin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    pub fn parse(input: &str) -> Result<Self, Rejected> {
        chrono_tz::Tz::from_str(input.trim())
            .map(Self)
            .map_err(|_| Rejected::new("must be an IANA time zone name such as Europe/Berlin"))
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        Self(chrono_tz::UTC)
    }
}

const OLDEST_BIRTH_YEAR: i32 = 1900;
/// Kids' races start around this age.
const YOUNGEST_AGE: i32 = 4;

/// The year of birth, for age-group rankings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthYear(i32);

impl BirthYear {
    pub fn parse(year: i64, current_year: i32) -> Result<Self, Rejected> {
        let latest = current_year - YOUNGEST_AGE;
        match i32::try_from(year) {
            Ok(year) if (OLDEST_BIRTH_YEAR..=latest).contains(&year) => Ok(Self(year)),
            _ => Err(Rejected::new(format!(
                "must be between {OLDEST_BIRTH_YEAR} and {latest}"
            ))),
        }
    }

    pub fn value(self) -> i32 {
        self.0
    }
}

/// The largest privacy zone a runner may choose, in metres.
const MAX_PRIVACY_ZONE_METERS: u32 = 2000;

/// Metres hidden at the start and end of a runner's runs from everyone else; 0 hides nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivacyZone(u32);

impl PrivacyZone {
    pub fn parse(meters: u32) -> Result<Self, Rejected> {
        if meters <= MAX_PRIVACY_ZONE_METERS {
            Ok(Self(meters))
        } else {
            Err(Rejected::new(format!(
                "must be between 0 and {MAX_PRIVACY_ZONE_METERS} metres"
            )))
        }
    }

    pub fn meters(self) -> u32 {
        self.0
    }
}

/// Declares the database code of each variant once, for the store and for tests.
macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name stored in the database.
            pub const fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

coded_enum!(
    /// How distances are shown.
    #[derive(Default)]
    DistanceUnit { #[default] Kilometers = "km", Miles = "mi" }
);

coded_enum!(
    /// Used only to rank runners in age groups.
    Gender { Female = "female", Male = "male", NonBinary = "non_binary" }
);

coded_enum!(
    /// Who sees a run by default (crews unless the runner chooses otherwise).
    #[derive(Default)]
    RunPrivacy { Public = "public", #[default] Crews = "crews", Private = "private" }
);

/// A partial profile update: `None` leaves a field as it is; for optional fields `Some(None)`
/// clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub display_name: Option<DisplayName>,
    pub slack_member_id: Option<Option<SlackMemberId>>,
    pub notification_preferences: Option<NotificationPreferences>,
    pub distance_unit: Option<DistanceUnit>,
    pub time_zone: Option<TimeZone>,
    pub birth_year: Option<Option<BirthYear>>,
    pub gender: Option<Option<Gender>>,
    pub default_run_privacy: Option<RunPrivacy>,
    pub privacy_zone: Option<PrivacyZone>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Ada  ").unwrap().as_str(), "Ada");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"é".repeat(50)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(51)).is_err());
        assert!(DisplayName::parse("Ada\u{0}").is_err());
    }

    #[test]
    fn slack_member_ids_follow_slacks_format() {
        for good in ["U012AB3CD", "W0123456789", "UABCDEF"] {
            assert!(SlackMemberId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "u012ab3cd",
            "X012AB3CD",
            "U012",
            "U012-AB3CD",
            "U012AB3CDÄ",
        ] {
            assert!(SlackMemberId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(
            TimeZone::parse("Europe/Berlin").unwrap().name(),
            "Europe/Berlin"
        );
        assert!(TimeZone::parse("Mars/Olympus_Mons").is_err());
        assert_eq!(TimeZone::default().name(), "UTC");
    }

    #[test]
    fn birth_years_are_plausible() {
        assert_eq!(BirthYear::parse(1990, 2026).unwrap().value(), 1990);
        assert!(BirthYear::parse(1899, 2026).is_err());
        assert!(BirthYear::parse(2025, 2026).is_err());
        assert!(BirthYear::parse(i64::MAX, 2026).is_err());
    }

    #[test]
    fn privacy_zones_are_bounded() {
        assert_eq!(PrivacyZone::parse(0).unwrap().meters(), 0);
        assert_eq!(PrivacyZone::parse(2000).unwrap().meters(), 2000);
        assert!(PrivacyZone::parse(2001).is_err());
        assert!(PrivacyZone::parse(u32::MAX).is_err());
    }

    #[test]
    fn codes_round_trip() {
        for unit in DistanceUnit::ALL {
            assert_eq!(DistanceUnit::from_code(unit.code()), Some(*unit));
        }
        for gender in Gender::ALL {
            assert_eq!(Gender::from_code(gender.code()), Some(*gender));
        }
        for privacy in RunPrivacy::ALL {
            assert_eq!(RunPrivacy::from_code(privacy.code()), Some(*privacy));
        }
        assert_eq!(Gender::from_code("robot"), None);
    }
}
