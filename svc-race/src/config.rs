//! svc-race's settings: `RUNMESH_RACE_*` environment variables (durations in humantime form,
//! e.g. `500ms`, `1m`).

use std::time::Duration;

use figment::Figment;
use figment::providers::Env;
use runmesh_platform::config;
use serde::Deserialize;

/// Prefix of svc-race's own variables.
pub const ENV_PREFIX: &str = "RUNMESH_RACE_";

/// Settings of the race service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RaceConfig {
    /// Register attempts one runner may make per window (`RUNMESH_RACE_REGISTER_ATTEMPTS`).
    #[serde(deserialize_with = "config::positive_count")]
    pub register_attempts: u64,
    /// `RUNMESH_RACE_REGISTER_WINDOW`.
    #[serde(deserialize_with = "config::positive_duration")]
    pub register_window: Duration,
    /// A gate reservation whose registration is neither written nor released after this long
    /// (its writer crashed) is settled against the database (`RUNMESH_RACE_RESERVATION_TIMEOUT`).
    /// Keep it above the gRPC request timeout.
    #[serde(deserialize_with = "config::positive_duration")]
    pub reservation_timeout: Duration,
    /// How often stale reservations are settled and free places handed to the waitlist
    /// (`RUNMESH_RACE_MAINTENANCE_INTERVAL`).
    #[serde(deserialize_with = "config::positive_duration")]
    pub maintenance_interval: Duration,
    /// How often due `RegistrationOpened` events are looked for
    /// (`RUNMESH_RACE_SCHEDULER_INTERVAL`).
    #[serde(deserialize_with = "config::positive_duration")]
    pub scheduler_interval: Duration,
    /// How often a watched race's places are read, per process (`RUNMESH_RACE_WATCH_INTERVAL`).
    #[serde(deserialize_with = "config::positive_duration")]
    pub watch_interval: Duration,
    /// How long a race's definition is cached in process before the database is asked again
    /// (`RUNMESH_RACE_RACE_CACHE_TTL`).
    #[serde(deserialize_with = "config::positive_duration")]
    pub race_cache_ttl: Duration,
    /// Transactions writing registrations at once per process
    /// (`RUNMESH_RACE_WRITE_CONCURRENCY`); registrations admitted meanwhile queue and are
    /// written together in the next transaction, so a few writers keep up with a crowd (and
    /// fewer, larger transactions commit faster on a busy machine). Keep it below the database
    /// pool size (32) so reads always find a connection.
    #[serde(deserialize_with = "config::positive_count")]
    pub write_concurrency: u64,
    /// How long a writer waits for more admitted runners to join its transaction when fewer
    /// than a full batch queue (`RUNMESH_RACE_WRITE_LINGER`): a little latency per registration
    /// for far fewer commits when a crowd arrives.
    #[serde(deserialize_with = "config::positive_duration")]
    pub write_linger: Duration,
}

impl Default for RaceConfig {
    fn default() -> Self {
        Self {
            register_attempts: 20,
            register_window: Duration::from_secs(10),
            reservation_timeout: Duration::from_secs(60),
            maintenance_interval: Duration::from_secs(1),
            scheduler_interval: Duration::from_secs(1),
            watch_interval: Duration::from_millis(500),
            race_cache_ttl: Duration::from_secs(1),
            write_concurrency: 4,
            write_linger: Duration::from_millis(3),
        }
    }
}

/// A bad `RUNMESH_RACE_*` value; `Display` is one line naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct RaceConfigError {
    pub variable: String,
    pub message: String,
}

impl RaceConfig {
    /// Reads `RUNMESH_RACE_*` from the process environment.
    pub fn from_env() -> Result<Self, RaceConfigError> {
        Self::from_figment(Figment::new().merge(Env::prefixed(ENV_PREFIX)))
    }

    /// Reads the settings from `figment` (keys without the prefix, e.g. `register_window`).
    pub fn from_figment(figment: Figment) -> Result<Self, RaceConfigError> {
        figment.extract().map_err(|err| {
            let (variable, message) = runmesh_platform::config::env_setting_error(ENV_PREFIX, &err);
            RaceConfigError { variable, message }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use figment::providers::Serialized;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<RaceConfig, RaceConfigError> {
        let mut figment = Figment::new();
        for (key, value) in pairs {
            figment = figment.merge(Serialized::default(key, value));
        }
        RaceConfig::from_figment(figment)
    }

    #[test]
    fn defaults_without_variables() {
        assert_eq!(load(&[]).unwrap(), RaceConfig::default());
    }

    #[test]
    fn durations_are_human_readable() {
        let config = load(&[("watch_interval", "250ms"), ("reservation_timeout", "2m")]).unwrap();
        assert_eq!(config.watch_interval, Duration::from_millis(250));
        assert_eq!(config.reservation_timeout, Duration::from_secs(120));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = load(&[("register_window", "soon")]).unwrap_err();
        assert_eq!(err.variable, "RUNMESH_RACE_REGISTER_WINDOW");
        assert!(!err.to_string().contains('\n'));
        let err = load(&[("register_attempts", "0")]).unwrap_err();
        assert_eq!(err.variable, "RUNMESH_RACE_REGISTER_ATTEMPTS");
    }
}
