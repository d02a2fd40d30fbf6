use std::fmt;

use email_address::{EmailAddress, Options};

use super::Rejected;

/// The longest address SMTP can carry (RFC 5321 path limit less the brackets).
const MAX_LENGTH: usize = 254;

/// A syntactically valid email address, normalised (trimmed, lower case) so that uniqueness
/// ignores case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, Rejected> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(Rejected::new("is required"));
        }
        if trimmed.len() > MAX_LENGTH {
            return Err(Rejected::new(format!(
                "must be at most {MAX_LENGTH} characters"
            )));
        }
        let options = Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        EmailAddress::parse_with_options(trimmed, options)
            .map_err(|err| Rejected::new(format!("is not a valid email address ({err})")))?;
        Ok(Self(trimmed.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let email = Email::parse("  Ada.Lovelace@Example.ORG ").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.org");
        assert_eq!(email, Email::parse("ada.lovelace@example.org").unwrap());
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.org",
            "ada@localhost",
            "Ada <ada@example.org>",
            "ada@[127.0.0.1]",
            "a b@example.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn refuses_overlong_addresses() {
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
