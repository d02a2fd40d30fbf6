//! The rules of accounts as types: a value that exists is valid ("parse, don't validate").
//! No I/O here.

mod email;
mod password;
mod profile;

pub use email::Email;
pub use password::{NewPassword, PasswordAttempt};
pub use profile::{
    BirthYear, DisplayName, DistanceUnit, Gender, NotificationPreferences, PrivacyZone,
    ProfileChanges, RunPrivacy, SlackMemberId, TimeZone,
};
pub use runmesh_platform::auth::Role;

pub use runmesh_platform::validation::{FieldViolation, Rejected, Violations};
