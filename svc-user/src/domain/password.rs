use std::fmt;

use super::Rejected;

const MIN_CHARS: usize = 8;
const MAX_CHARS: usize = 128;
/// Bounds the hashing work a sign-in may ask for (128 characters of 4 UTF-8 bytes each, rounded).
const MAX_ATTEMPT_BYTES: usize = 1024;

/// A password good enough to be set: 8 to 128 characters (Unicode scalar values) and not one of
/// the ~100,000 most common passwords. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(input: &str) -> Result<Self, Rejected> {
        let chars = input.chars().count();
        if chars < MIN_CHARS {
            return Err(Rejected::new(format!(
                "must be at least {MIN_CHARS} characters"
            )));
        }
        if chars > MAX_CHARS {
            return Err(Rejected::new(format!(
                "must be at most {MAX_CHARS} characters"
            )));
        }
        if input.trim().is_empty() {
            return Err(Rejected::new("must not be only spaces"));
        }
        if is_common(input) {
            return Err(Rejected::new(
                "is one of the most common passwords; choose another",
            ));
        }
        Ok(Self(input.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The embedded list is case-sensitive; `Password123` is as weak as `password123`.
fn is_common(password: &str) -> bool {
    passwords::analyzer::is_common_password(password)
        || passwords::analyzer::is_common_password(password.to_lowercase())
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

/// A password presented to prove who someone is. Only its size is checked: policies apply when
/// a password is set, not when it is tried. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordAttempt(String);

impl PasswordAttempt {
    pub fn parse(input: &str) -> Result<Self, Rejected> {
        if input.is_empty() {
            return Err(Rejected::new("is required"));
        }
        if input.len() > MAX_ATTEMPT_BYTES {
            return Err(Rejected::new(format!(
                "must be at most {MAX_CHARS} characters"
            )));
        }
        Ok(Self(input.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordAttempt(***)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(NewPassword::parse("ẞtrøngé").is_err(), "7 characters");
        assert!(
            NewPassword::parse("ẞtrøngé!").is_ok(),
            "8 characters, 12 bytes"
        );
        assert!(NewPassword::parse(&"ü".repeat(128)).is_ok());
        assert!(NewPassword::parse(&"ü".repeat(129)).is_err());
    }

    #[test]
    fn refuses_common_passwords_whatever_their_case() {
        for common in [
            "password",
            "12345678",
            "iloveyou",
            "Password1",
            "QWERTYUIOP",
        ] {
            let err = NewPassword::parse(common).unwrap_err();
            assert!(err.0.contains("common"), "{common}: {err}");
        }
        assert!(NewPassword::parse("correct horse battery staple").is_ok());
    }

    #[test]
    fn refuses_blank_passwords() {
        assert!(NewPassword::parse("          ").is_err());
    }

    #[test]
    fn never_prints_the_secret() {
        let password = NewPassword::parse("correct horse battery staple").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
        let attempt = PasswordAttempt::parse("hunter2hunter2").unwrap();
        assert!(!format!("{attempt:?}").contains("hunter"));
    }

    #[test]
    fn attempts_need_content_and_a_bounded_size() {
        assert!(PasswordAttempt::parse("").is_err());
        assert!(PasswordAttempt::parse("x").is_ok());
        assert!(PasswordAttempt::parse(&"x".repeat(1025)).is_err());
    }
}
