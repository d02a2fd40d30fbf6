//! Registrations: their status codes and the client's idempotency key.

use super::Rejected;

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationStatus {
    Confirmed,
    Waitlisted,
    Cancelled,
}

impl RegistrationStatus {
    /// The database code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Waitlisted => "waitlisted",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "confirmed" => Some(Self::Confirmed),
            "waitlisted" => Some(Self::Waitlisted),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// The key a client sends with `Register` and reuses on retries: up to 64 of
/// `A-Z a-z 0-9 - _ . :`, or empty (no idempotent retry).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 64;

    pub fn parse(value: &str) -> Result<Self, Rejected> {
        if value.len() > Self::MAX_LEN {
            return Err(Rejected::new(format!(
                "must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(Rejected::new(
                "may only contain letters, digits and - _ . :",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `other` is a retry of the call that sent this key (an empty key never matches).
    pub fn matches(&self, other: &str) -> bool {
        !self.0.is_empty() && self.0 == other
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn keys_are_short_and_plain() {
        assert!(IdempotencyKey::parse("").unwrap().is_empty());
        assert!(IdempotencyKey::parse("0198f0c2-6a39-7c6e:retry_1.a").is_ok());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("pipe|key").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(65)).is_err());
    }

    #[test]
    fn an_empty_key_matches_nothing() {
        assert!(!IdempotencyKey::default().matches(""));
        assert!(IdempotencyKey::parse("a").unwrap().matches("a"));
        assert!(!IdempotencyKey::parse("a").unwrap().matches("b"));
    }

    #[test]
    fn status_codes_round_trip() {
        for status in [
            RegistrationStatus::Confirmed,
            RegistrationStatus::Waitlisted,
            RegistrationStatus::Cancelled,
        ] {
            assert_eq!(RegistrationStatus::from_code(status.code()), Some(status));
        }
        assert_eq!(RegistrationStatus::from_code("pending"), None);
    }
}
