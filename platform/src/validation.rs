//! Parsing requests into domain types: a refused value says why, and every refused field of a
//! request is collected so the client learns of all of them at once. Services turn the collected
//! violations into INVALID_ARGUMENT with `BadRequest` details in their error mapping.

/// Why a value was refused, in words a client can show next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

impl Rejected {
    pub fn new(description: impl Into<String>) -> Self {
        Self(description.into())
    }
}

/// One refused field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The request field as a path in the proto, e.g. `race.categories[1].capacity`.
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
            field: field.to_owned(),
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
