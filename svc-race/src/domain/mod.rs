//! The rules of races and registrations as types and pure functions. No I/O here.

mod page;
mod race;
mod registration;

pub use page::{PageSize, PageToken};
pub use race::{
    CategorySpec, Coordinates, Fee, RaceSpec, RaceStatus, RegistrationState, RegistrationWindow,
    assign_first_bibs,
};
pub use registration::{IdempotencyKey, RegistrationStatus};

pub use runmesh_platform::validation::{FieldViolation, Rejected, Violations};

/// A UUID the service assigned (race, category or registration id).
pub fn parse_id(value: &str) -> Result<uuid::Uuid, Rejected> {
    if value.is_empty() {
        return Err(Rejected::new("is required"));
    }
    uuid::Uuid::parse_str(value).map_err(|_| Rejected::new("is not a valid id"))
}

/// Trimmed text of `min..=max` characters.
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
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Rejected::new("must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn ids_must_be_uuids() {
        assert!(parse_id("0198f0c2-6a39-7c6e-9a43-0c4b5f4b8d11").is_ok());
        assert_eq!(parse_id("").unwrap_err().0, "is required");
        assert_eq!(parse_id("race-1").unwrap_err().0, "is not a valid id");
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("  Seoul Marathon ", 1, 20).unwrap(), "Seoul Marathon");
        assert_eq!(text("   ", 1, 20).unwrap_err().0, "is required");
        assert!(text("abcdef", 1, 5).is_err());
        assert!(text("a\u{0}b", 1, 5).is_err());
        assert_eq!(text("", 0, 5).unwrap(), "");
    }
}
