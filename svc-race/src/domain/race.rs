//! What a race is made of, and the rules every race keeps.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Rejected, Violations};

pub const MAX_CATEGORIES: usize = 20;
pub const MAX_CAPACITY: u32 = 200_000;
pub const MAX_DISTANCE_METERS: u32 = 1_000_000;

/// Whether the public can see a race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaceStatus {
    Draft,
    Published,
}

impl RaceStatus {
    /// The database code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "draft" => Some(Self::Draft),
            "published" => Some(Self::Published),
            _ => None,
        }
    }
}

/// Where registration stands at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationState {
    Upcoming,
    Open,
    Closed,
}

/// When registration is open: from `opens_at` (inclusive) until `closes_at` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationWindow {
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
}

impl RegistrationWindow {
    pub fn state_at(&self, now: DateTime<Utc>) -> RegistrationState {
        if now < self.opens_at {
            RegistrationState::Upcoming
        } else if now < self.closes_at {
            RegistrationState::Open
        } else {
            RegistrationState::Closed
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coordinates {
    pub latitude: f64,
    pub longitude: f64,
}

impl Coordinates {
    pub fn parse(latitude: f64, longitude: f64) -> Result<Self, Rejected> {
        if !(latitude.is_finite() && (-90.0..=90.0).contains(&latitude)) {
            return Err(Rejected::new("latitude must be between -90 and 90"));
        }
        if !(longitude.is_finite() && (-180.0..=180.0).contains(&longitude)) {
            return Err(Rejected::new("longitude must be between -180 and 180"));
        }
        Ok(Self {
            latitude,
            longitude,
        })
    }
}

/// An entry fee in the currency's minor unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fee {
    pub currency_code: String,
    pub amount_minor: i64,
}

impl Fee {
    /// `None` for a free race (no currency and no amount).
    pub fn parse(currency_code: &str, amount_minor: i64) -> Result<Option<Self>, Rejected> {
        if currency_code.is_empty() && amount_minor == 0 {
            return Ok(None);
        }
        if currency_code.len() != 3 || !currency_code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Rejected::new(
                "currency_code must be an ISO 4217 code such as KRW or USD",
            ));
        }
        if amount_minor < 0 {
            return Err(Rejected::new("amount_minor must not be negative"));
        }
        Ok(Some(Self {
            currency_code: currency_code.to_owned(),
            amount_minor,
        }))
    }
}

/// One category of a race, as an organizer describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CategorySpec {
    /// Set when the category already exists.
    pub category_id: Option<Uuid>,
    pub name: String,
    pub distance_meters: u32,
    pub capacity: u32,
    pub waitlist_capacity: u32,
    pub fee: Option<Fee>,
}

impl CategorySpec {
    pub fn distance(meters: u32) -> Result<u32, Rejected> {
        if meters == 0 || meters > MAX_DISTANCE_METERS {
            return Err(Rejected::new(format!(
                "must be between 1 and {MAX_DISTANCE_METERS}"
            )));
        }
        Ok(meters)
    }

    pub fn capacity(places: u32) -> Result<u32, Rejected> {
        if places == 0 || places > MAX_CAPACITY {
            return Err(Rejected::new(format!(
                "must be between 1 and {MAX_CAPACITY}"
            )));
        }
        Ok(places)
    }

    pub fn waitlist_capacity(places: u32) -> Result<u32, Rejected> {
        if places > MAX_CAPACITY {
            return Err(Rejected::new(format!("must be at most {MAX_CAPACITY}")));
        }
        Ok(places)
    }
}

/// A race as an organizer describes it; every rule holds once it exists.
#[derive(Debug, Clone, PartialEq)]
pub struct RaceSpec {
    pub name: String,
    pub description: String,
    pub region: String,
    pub venue: String,
    pub coordinates: Option<Coordinates>,
    pub starts_at: DateTime<Utc>,
    pub window: RegistrationWindow,
    pub official_url: String,
    pub categories: Vec<CategorySpec>,
}

impl RaceSpec {
    /// An `http(s)` URL of at most 2048 bytes, or nothing.
    pub fn official_url(value: &str) -> Result<String, Rejected> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(String::new());
        }
        if value.len() > 2048 {
            return Err(Rejected::new("must be at most 2048 bytes"));
        }
        match url::Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                Ok(value.to_owned())
            }
            _ => Err(Rejected::new("must be an http or https URL")),
        }
    }

    /// The rules that involve several fields: registration opens before it closes, and closes no
    /// later than the start; 1 to 20 categories with distinct names and ids.
    pub fn check_consistency(
        starts_at: DateTime<Utc>,
        window: RegistrationWindow,
        categories: &[CategorySpec],
        violations: &mut Violations,
    ) {
        if window.opens_at >= window.closes_at {
            violations.add(
                "race.registration_closes_at",
                "must be after registration_opens_at",
            );
        }
        if window.closes_at > starts_at {
            violations.add("race.registration_closes_at", "must not be after starts_at");
        }
        if categories.is_empty() {
            violations.add("race.categories", "at least one category is required");
        }
        if categories.len() > MAX_CATEGORIES {
            violations.add(
                "race.categories",
                format!("at most {MAX_CATEGORIES} categories"),
            );
        }
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        for (index, category) in categories.iter().enumerate() {
            if !names.insert(category.name.to_lowercase()) {
                violations.add(
                    &format!("race.categories[{index}].name"),
                    "is used by another category",
                );
            }
            if let Some(id) = category.category_id
                && !ids.insert(id)
            {
                violations.add(
                    &format!("race.categories[{index}].category_id"),
                    "is used by another category",
                );
            }
        }
    }
}

/// The first bib of each category: categories take consecutive ranges in their order, starting
/// at 1, so a bib is unique within the race as long as each category's places are.
pub fn assign_first_bibs(capacities: &[u32]) -> Vec<u32> {
    let mut next = 1u32;
    capacities
        .iter()
        .map(|capacity| {
            let first = next;
            next = next.saturating_add(*capacity);
            first
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeZone;

    use super::*;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).unwrap()
    }

    fn category(name: &str) -> CategorySpec {
        CategorySpec {
            category_id: None,
            name: name.to_owned(),
            distance_meters: 10_000,
            capacity: 10,
            waitlist_capacity: 5,
            fee: None,
        }
    }

    #[test]
    fn the_window_is_half_open() {
        let window = RegistrationWindow {
            opens_at: at(9),
            closes_at: at(12),
        };
        assert_eq!(window.state_at(at(8)), RegistrationState::Upcoming);
        assert_eq!(window.state_at(at(9)), RegistrationState::Open);
        assert_eq!(window.state_at(at(11)), RegistrationState::Open);
        assert_eq!(window.state_at(at(12)), RegistrationState::Closed);
    }

    #[test]
    fn times_and_categories_must_agree() {
        let mut violations = Violations::new();
        let window = RegistrationWindow {
            opens_at: at(12),
            closes_at: at(10),
        };
        RaceSpec::check_consistency(
            at(9),
            window,
            &[category("10K"), category("10k")],
            &mut violations,
        );
        let fields: Vec<_> = violations.into_vec().into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "race.registration_closes_at",
                "race.registration_closes_at",
                "race.categories[1].name"
            ]
        );

        let mut violations = Violations::new();
        RaceSpec::check_consistency(at(9), window, &[], &mut violations);
        assert!(
            violations
                .into_vec()
                .iter()
                .any(|v| v.field == "race.categories")
        );
    }

    #[test]
    fn fees_are_iso_codes_and_non_negative() {
        assert_eq!(Fee::parse("", 0).unwrap(), None);
        assert_eq!(
            Fee::parse("KRW", 50_000).unwrap(),
            Some(Fee {
                currency_code: "KRW".into(),
                amount_minor: 50_000
            })
        );
        assert!(Fee::parse("krw", 1).is_err());
        assert!(Fee::parse("", 100).is_err());
        assert!(Fee::parse("USD", -1).is_err());
    }

    #[test]
    fn coordinates_and_urls_are_checked() {
        assert!(Coordinates::parse(37.5, 127.0).is_ok());
        assert!(Coordinates::parse(91.0, 0.0).is_err());
        assert!(Coordinates::parse(0.0, f64::NAN).is_err());
        assert_eq!(RaceSpec::official_url("").unwrap(), "");
        assert!(RaceSpec::official_url("https://seoul-marathon.example/2026").is_ok());
        assert!(RaceSpec::official_url("javascript:alert(1)").is_err());
        assert!(RaceSpec::official_url("not a url").is_err());
    }

    #[test]
    fn bib_ranges_follow_the_category_order() {
        assert_eq!(assign_first_bibs(&[100, 50, 1]), [1, 101, 151]);
        assert!(assign_first_bibs(&[]).is_empty());
    }

    #[test]
    fn capacities_are_bounded() {
        assert!(CategorySpec::capacity(0).is_err());
        assert!(CategorySpec::capacity(MAX_CAPACITY + 1).is_err());
        assert_eq!(CategorySpec::waitlist_capacity(0).unwrap(), 0);
        assert!(CategorySpec::distance(0).is_err());
    }
}
