//! svc-social's settings: `RUNMESH_SOCIAL_*` environment variables (durations in humantime form,
//! e.g. `500ms`, `2h`).

use std::time::Duration;

use figment::Figment;
use figment::providers::Env;
use runmesh_platform::config;
use serde::Deserialize;

/// Prefix of svc-social's own variables.
pub const ENV_PREFIX: &str = "RUNMESH_SOCIAL_";

/// Settings of the social service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SocialConfig {
    /// Distinct reporters that hide a post or comment pending review
    /// (`RUNMESH_SOCIAL_REPORT_THRESHOLD`).
    #[serde(deserialize_with = "config::positive_count")]
    pub report_threshold: u64,
    /// Posts one runner may write per window (`RUNMESH_SOCIAL_POST_LIMIT`).
    #[serde(deserialize_with = "config::positive_count")]
    pub post_limit: u64,
    /// Comments (on posts and runs) one runner may write per window
    /// (`RUNMESH_SOCIAL_COMMENT_LIMIT`).
    #[serde(deserialize_with = "config::positive_count")]
    pub comment_limit: u64,
    /// Reports one runner may file per window (`RUNMESH_SOCIAL_REPORT_LIMIT`).
    #[serde(deserialize_with = "config::positive_count")]
    pub report_limit: u64,
    /// Invites one runner may create per window (`RUNMESH_SOCIAL_INVITE_LIMIT`).
    #[serde(deserialize_with = "config::positive_count")]
    pub invite_limit: u64,
    /// The window of every rate limit above (`RUNMESH_SOCIAL_RATE_WINDOW`).
    #[serde(deserialize_with = "config::positive_duration")]
    pub rate_window: Duration,
    /// How long before a meetup starts `MeetupReminderDue` is published
    /// (`RUNMESH_SOCIAL_REMINDER_LEAD`).
    #[serde(deserialize_with = "config::positive_duration")]
    pub reminder_lead: Duration,
    /// How often due reminders and weekly occurrences are looked for
    /// (`RUNMESH_SOCIAL_SCHEDULER_INTERVAL`).
    #[serde(deserialize_with = "config::positive_duration")]
    pub scheduler_interval: Duration,
    /// How often a watched meetup is read, per process (`RUNMESH_SOCIAL_WATCH_INTERVAL`).
    #[serde(deserialize_with = "config::positive_duration")]
    pub watch_interval: Duration,
}

impl Default for SocialConfig {
    fn default() -> Self {
        Self {
            report_threshold: 3,
            post_limit: 10,
            comment_limit: 30,
            report_limit: 20,
            invite_limit: 20,
            rate_window: Duration::from_secs(60),
            reminder_lead: Duration::from_secs(2 * 3600),
            scheduler_interval: Duration::from_secs(5),
            watch_interval: Duration::from_millis(500),
        }
    }
}

/// A bad `RUNMESH_SOCIAL_*` value; `Display` is one line naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct SocialConfigError {
    pub variable: String,
    pub message: String,
}

impl SocialConfig {
    /// Reads `RUNMESH_SOCIAL_*` from the process environment.
    pub fn from_env() -> Result<Self, SocialConfigError> {
        Self::from_figment(Figment::new().merge(Env::prefixed(ENV_PREFIX)))
    }

    /// Reads the settings from `figment` (keys without the prefix, e.g. `report_threshold`).
    pub fn from_figment(figment: Figment) -> Result<Self, SocialConfigError> {
        figment.extract().map_err(|err| {
            let (variable, message) = runmesh_platform::config::env_setting_error(ENV_PREFIX, &err);
            SocialConfigError { variable, message }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use figment::providers::Serialized;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<SocialConfig, SocialConfigError> {
        let mut figment = Figment::new();
        for (key, value) in pairs {
            figment = figment.merge(Serialized::default(key, value));
        }
        SocialConfig::from_figment(figment)
    }

    #[test]
    fn defaults_without_variables() {
        let config = load(&[]).unwrap();
        assert_eq!(config, SocialConfig::default());
        assert_eq!(config.report_threshold, 3);
        assert_eq!(config.reminder_lead, Duration::from_secs(7200));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = load(&[("report_threshold", "0")]).unwrap_err();
        assert_eq!(err.variable, "RUNMESH_SOCIAL_REPORT_THRESHOLD");
        let err = load(&[("reminder_lead", "soon")]).unwrap_err();
        assert_eq!(err.variable, "RUNMESH_SOCIAL_REMINDER_LEAD");
        assert_eq!(
            load(&[("reminder_lead", "90m")]).unwrap().reminder_lead,
            Duration::from_secs(5400)
        );
    }
}
