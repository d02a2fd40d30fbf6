//! svc-user's settings: `RUNMESH_USER_*` environment variables (durations in humantime form,
//! e.g. `15m`, `30d`), on top of the platform's (which name the token issuer and audience).

use std::time::Duration;

use figment::Figment;
use figment::providers::Env;
use runmesh_platform::config::{self, Settings};
use serde::Deserialize;

use crate::keys::KeyPolicy;

/// Prefix of svc-user's own variables.
pub const ENV_PREFIX: &str = "RUNMESH_USER_";

/// Settings of the accounts service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UserConfig {
    /// `iss` of the access tokens (from `RUNMESH_JWT_ISSUER`).
    #[serde(skip)]
    pub issuer: String,
    /// `aud` of the access tokens (from `RUNMESH_JWT_AUDIENCE`).
    #[serde(skip)]
    pub audience: String,
    /// `RUNMESH_USER_ACCESS_TOKEN_TTL`.
    #[serde(deserialize_with = "config::positive_duration")]
    pub access_token_ttl: Duration,
    /// Absolute lifetime of a session and its refresh tokens (`RUNMESH_USER_SESSION_TTL`).
    #[serde(deserialize_with = "config::positive_duration")]
    pub session_ttl: Duration,
    /// How long one signing key signs (`RUNMESH_USER_KEY_ROTATION`).
    #[serde(deserialize_with = "config::positive_duration")]
    pub key_rotation: Duration,
    /// How long a key is published before it signs (`RUNMESH_USER_KEY_PUBLISH_AHEAD`); keep it
    /// longer than verifiers cache the JWKS (5 minutes by default).
    #[serde(deserialize_with = "config::positive_duration")]
    pub key_publish_ahead: Duration,
    /// Failed sign-ins allowed per account per window (`RUNMESH_USER_SIGN_IN_FAILURES_PER_ACCOUNT`).
    #[serde(deserialize_with = "config::positive_count")]
    pub sign_in_failures_per_account: u64,
    /// Failed sign-ins allowed per client address per window
    /// (`RUNMESH_USER_SIGN_IN_FAILURES_PER_CLIENT`).
    #[serde(deserialize_with = "config::positive_count")]
    pub sign_in_failures_per_client: u64,
    /// `RUNMESH_USER_SIGN_IN_FAILURE_WINDOW`.
    #[serde(deserialize_with = "config::positive_duration")]
    pub sign_in_failure_window: Duration,
    /// Password hashes computed at once (`RUNMESH_USER_PASSWORD_HASH_CONCURRENCY`); each takes
    /// 19 MiB. Defaults to the number of cores.
    #[serde(deserialize_with = "config::positive_count")]
    pub password_hash_concurrency: u64,
}

impl Default for UserConfig {
    fn default() -> Self {
        let defaults = Settings::default();
        Self {
            issuer: defaults.jwt_issuer,
            audience: defaults.jwt_audience,
            access_token_ttl: Duration::from_secs(15 * 60),
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            key_rotation: Duration::from_secs(30 * 24 * 3600),
            key_publish_ahead: Duration::from_secs(10 * 60),
            sign_in_failures_per_account: 5,
            sign_in_failures_per_client: 30,
            sign_in_failure_window: Duration::from_secs(15 * 60),
            password_hash_concurrency: std::thread::available_parallelism()
                .map_or(2, |cores| cores.get() as u64),
        }
    }
}

/// A bad `RUNMESH_USER_*` value; `Display` is one line naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct UserConfigError {
    pub variable: String,
    pub message: String,
}

impl UserConfig {
    /// Reads `RUNMESH_USER_*` from the process environment, with the issuer and audience of
    /// `settings`.
    pub fn from_env(settings: &Settings) -> Result<Self, UserConfigError> {
        Self::from_figment(Figment::new().merge(Env::prefixed(ENV_PREFIX)), settings)
    }

    /// Reads the settings from `figment` (keys without the prefix, e.g. `access_token_ttl`).
    pub fn from_figment(figment: Figment, settings: &Settings) -> Result<Self, UserConfigError> {
        let mut config: Self = figment.extract().map_err(|err| {
            let (variable, message) = runmesh_platform::config::env_setting_error(ENV_PREFIX, &err);
            UserConfigError { variable, message }
        })?;
        config.issuer = settings.jwt_issuer.clone();
        config.audience = settings.jwt_audience.clone();
        Ok(config)
    }

    pub(crate) fn key_policy(&self) -> KeyPolicy {
        KeyPolicy {
            rotation: self.key_rotation,
            publish_ahead: self.key_publish_ahead,
            // Verifiers tolerate some clock skew past `exp`.
            token_lifetime: self.access_token_ttl + Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use figment::providers::Serialized;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<UserConfig, UserConfigError> {
        let mut figment = Figment::new();
        for (key, value) in pairs {
            figment = figment.merge(Serialized::default(key, value));
        }
        UserConfig::from_figment(figment, &Settings::default())
    }

    #[test]
    fn defaults_follow_the_design() {
        let config = load(&[]).unwrap();
        assert_eq!(config.access_token_ttl, Duration::from_secs(900));
        assert_eq!(config.session_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(config.issuer, Settings::default().jwt_issuer);
    }

    #[test]
    fn durations_are_human_readable() {
        let config = load(&[("access_token_ttl", "5m"), ("session_ttl", "7days")]).unwrap();
        assert_eq!(config.access_token_ttl, Duration::from_secs(300));
        assert_eq!(config.session_ttl, Duration::from_secs(7 * 86_400));
        let config = UserConfig::from_figment(
            Figment::new().merge(Serialized::default("key_publish_ahead", 90)),
            &Settings::default(),
        )
        .unwrap();
        assert_eq!(config.key_publish_ahead, Duration::from_secs(90));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = load(&[("access_token_ttl", "soon")]).unwrap_err();
        assert_eq!(err.variable, "RUNMESH_USER_ACCESS_TOKEN_TTL");
        assert!(
            err.to_string()
                .starts_with("RUNMESH_USER_ACCESS_TOKEN_TTL: ")
        );
        assert!(!err.to_string().contains('\n'));

        let err = load(&[("sign_in_failures_per_account", "0")]).unwrap_err();
        assert_eq!(err.variable, "RUNMESH_USER_SIGN_IN_FAILURES_PER_ACCOUNT");
    }
}
