use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::AuthError;
use crate::error::ApiError;

/// The claims of a runmesh access token: what svc-user signs and every verifier expects. All of
/// them are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user id.
    pub sub: String,
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: u64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// The token's own id.
    pub jti: String,
    /// The sign-in session the token belongs to (revoking a session ends its refresh tokens).
    pub sid: String,
    /// Role names, see [`Role`].
    pub roles: Vec<String>,
}

/// What a caller may be besides a plain user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Runner,
    Organizer,
    Admin,
}

impl Role {
    /// The name used in tokens.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Runner => "runner",
            Self::Organizer => "organizer",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role name is not one runmesh knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "runner" => Ok(Self::Runner),
            "organizer" => Ok(Self::Organizer),
            "admin" => Ok(Self::Admin),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

/// Who is calling, from a verified access token. [`super::AuthLayer`] puts it into the request
/// extensions; handlers read it with [`require_caller`] or [`optional_caller`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject.
    pub user_id: String,
    pub session_id: String,
    /// The token's `jti`.
    pub token_id: String,
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }

    /// `PERMISSION_DENIED` (reason `ROLE_REQUIRED`) unless the caller has `role`.
    pub fn require_role(&self, role: Role) -> Result<(), ApiError> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(
                ApiError::permission_denied("ROLE_REQUIRED", format!("this needs the {role} role"))
                    .with_metadata("role", role.as_str()),
            )
        }
    }
}

impl From<AccessClaims> for Caller {
    /// Role names this version does not know are dropped, so an issuer may add roles before
    /// every verifier knows them.
    fn from(claims: AccessClaims) -> Self {
        Self {
            user_id: claims.sub,
            session_id: claims.sid,
            token_id: claims.jti,
            roles: claims
                .roles
                .iter()
                .filter_map(|name| name.parse().ok())
                .collect(),
        }
    }
}

/// The verified caller, or `UNAUTHENTICATED` with reason `TOKEN_REQUIRED`.
pub fn require_caller<T>(request: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
    optional_caller(request).ok_or_else(|| ApiError::from(AuthError::TokenRequired).into())
}

/// The verified caller, if the call came with a valid token.
pub fn optional_caller<T>(request: &tonic::Request<T>) -> Option<Caller> {
    request.extensions().get::<Caller>().cloned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use tonic_types::StatusExt;

    use super::*;

    fn claims(roles: &[&str]) -> AccessClaims {
        AccessClaims {
            iss: "https://user.runmesh.dev".into(),
            sub: "user-1".into(),
            aud: "runmesh".into(),
            exp: 2,
            nbf: 1,
            iat: 1,
            jti: "token-1".into(),
            sid: "session-1".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn caller_keeps_known_roles_and_drops_unknown_ones() {
        let caller = Caller::from(claims(&["runner", "coach", "admin"]));
        assert_eq!(caller.user_id, "user-1");
        assert_eq!(caller.session_id, "session-1");
        assert_eq!(caller.token_id, "token-1");
        assert_eq!(caller.roles, [Role::Runner, Role::Admin]);
        assert!(caller.is_admin());
        assert!(caller.has_role(Role::Runner));
        assert!(!caller.has_role(Role::Organizer));
    }

    #[test]
    fn role_names_round_trip() {
        for role in [Role::Runner, Role::Organizer, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn require_role_denies_with_the_missing_role() {
        let caller = Caller::from(claims(&["runner"]));
        assert!(caller.require_role(Role::Runner).is_ok());
        let denied = caller.require_role(Role::Organizer).unwrap_err();
        assert_eq!(denied.reason(), "ROLE_REQUIRED");
        assert_eq!(denied.metadata()["role"], "organizer");
    }

    #[test]
    fn require_caller_without_a_caller_asks_for_a_token() {
        let request = tonic::Request::new(());
        assert_eq!(optional_caller(&request), None);
        let status = require_caller(&request).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert_eq!(
            status.get_details_error_info().unwrap().reason,
            "TOKEN_REQUIRED"
        );
    }

    #[test]
    fn require_caller_returns_the_caller_from_the_extensions() {
        let caller = Caller::from(claims(&[]));
        let mut request = tonic::Request::new(());
        request.extensions_mut().insert(caller.clone());
        assert_eq!(require_caller(&request).unwrap(), caller);
    }
}
