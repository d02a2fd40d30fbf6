//! The rules of accounts as types: a value that exists is valid ("parse, don't validate").
//! No I/O here.

mod email;
mod password;
mod profile;

pub use email::Email;
pub use password::{NewPassword, PasswordAttempt};
pub use profile::{
    BirthYear, DisplayName, DistanceUnit, Gender, NotificationPreferences, ProfileChanges,
    RunPrivacy, SlackMemberId, TimeZone,
};
pub use runmesh_platform::auth::Role;

/// Why a value was refused, in words a client can show next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

impl Rejected {
    pub(crate) fn new(description: impl Into<String>) -> Self {
        Self(description.into())
    }
}

/// One refused field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The request field, as named in the proto (e.g. `new_password`).
    pub field: String,
    pub description: String,
}

/// Collects every invalid field of a request, so the client learns of all of them at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// The parsed value, or `None` after recording why `field` was refused.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, Rejected>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(rejected) => {
                self.add(field, rejected.0);
                None
            }
        }
    }

    pub fn add(&mut self, field: &str, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.to_string(),
            description: description.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.0
    }
}
