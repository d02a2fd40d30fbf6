//! svc-run's settings: `RUNMESH_RUN_*` environment variables.

use figment::Figment;
use figment::providers::Env;
use runmesh_platform::config;
use serde::Deserialize;

use crate::domain::badges::BadgeSet;
use crate::domain::{AnalysisConfig, Limits};

/// Prefix of svc-run's own variables.
pub const ENV_PREFIX: &str = "RUNMESH_RUN_";

/// Settings of the run service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    /// Largest activity file accepted by `ImportRun`, in bytes, and what a `.gz` may inflate to
    /// (`RUNMESH_RUN_MAX_FILE_BYTES`, default 50 MiB). A bigger upload is refused with
    /// `FILE_TOO_LARGE` as soon as it passes the limit, before the rest is read.
    #[serde(deserialize_with = "config::positive_count")]
    pub max_file_bytes: u64,
    /// Most track points accepted in one file (`RUNMESH_RUN_MAX_POINTS`, default 2,000,000).
    #[serde(deserialize_with = "config::positive_count")]
    pub max_points: u64,
    /// Running speed (m/s) under which a file without the device's timer time counts as
    /// stopped (`RUNMESH_RUN_MOVING_SPEED_MPS`, default 0.894, a 30-minute mile).
    pub moving_speed_mps: f64,
    /// Elevation change (m) that counts as climbing when the file has no device totals
    /// (`RUNMESH_RUN_ELEVATION_HYSTERESIS_M`, default 3).
    pub elevation_hysteresis_m: f64,
    /// Positions within this many metres of a run's start and end are hidden from everyone but
    /// the owner (`RUNMESH_RUN_PRIVACY_ZONE_M`, default 200; 0 turns the zone off), for runners
    /// whose svc-user profile sets no `privacy_zone_meters`.
    pub privacy_zone_m: f64,
    /// The time zone of runners svc-run has no profile for yet (`RUNMESH_RUN_DEFAULT_TIME_ZONE`,
    /// an IANA name, default `UTC`).
    pub default_time_zone: String,
    /// Largest Strava bulk export accepted by `StartArchiveImport`, in bytes
    /// (`RUNMESH_RUN_MAX_ARCHIVE_BYTES`, default 2 GiB). A bigger upload is refused with
    /// `FILE_TOO_LARGE` as soon as it passes the limit; the spooled part is deleted.
    #[serde(deserialize_with = "config::positive_count")]
    pub max_archive_bytes: u64,
    /// Most entries in an export's zip (`RUNMESH_RUN_MAX_ARCHIVE_ENTRIES`, default 100,000).
    #[serde(deserialize_with = "config::positive_count")]
    pub max_archive_entries: u64,
    /// Most bytes an export's entries may inflate to, all together
    /// (`RUNMESH_RUN_MAX_ARCHIVE_UNCOMPRESSED_BYTES`, default 16 GiB). Each activity file is
    /// capped by `RUNMESH_RUN_MAX_FILE_BYTES`, `activities.csv` by 256 MiB.
    #[serde(deserialize_with = "config::positive_count")]
    pub max_archive_uncompressed_bytes: u64,
    /// Largest inflated/compressed ratio of an entry over 1 MiB
    /// (`RUNMESH_RUN_MAX_ARCHIVE_RATIO`, default 100).
    #[serde(deserialize_with = "config::positive_count")]
    pub max_archive_ratio: u64,
    /// Where uploaded exports are spooled while they are imported (one file per import,
    /// deleted when it ends): `<RUNMESH_DATA_DIR>/run-imports`, set by the service from the
    /// platform settings.
    #[serde(skip)]
    pub archive_dir: std::path::PathBuf,
    /// The time zone boards' weeks, months and years follow (`RUNMESH_RUN_BOARD_TIME_ZONE`, an
    /// IANA name, default `Asia/Seoul`); every board answer states it.
    pub board_time_zone: String,
    /// Days a finished period's boards stay in the cache before they expire and are answered
    /// from the database (`RUNMESH_RUN_BOARD_GRACE_DAYS`, default 7).
    pub board_grace_days: u32,
    /// An operator's badge file (`RUNMESH_RUN_BADGES`, TOML, see docs/run-rankings.md) replacing
    /// the default set; validated at start.
    pub badges: Option<std::path::PathBuf>,
    /// The badges in force: the file's, else the default set.
    #[serde(skip)]
    pub badge_set: BadgeSet,
    /// How far a run's distance may be from a race category's and still be its result, as a
    /// fraction (`RUNMESH_RUN_RACE_DISTANCE_TOLERANCE`, default 0.05).
    pub race_distance_tolerance: f64,
    /// How far from the venue a run may start and still be a race's result, when both have
    /// coordinates (`RUNMESH_RUN_RACE_VENUE_RADIUS_M`, default 3000).
    pub race_venue_radius_m: f64,
    /// How often runners due a `RecapReady` (last week's from Monday 08:00 in their time zone,
    /// the year's from December 15 08:00) are looked for (`RUNMESH_RUN_RECAP_NOTICE_INTERVAL`,
    /// `500ms`, `5m` or seconds; default 5 minutes).
    #[serde(deserialize_with = "config::positive_duration")]
    pub recap_notice_interval: std::time::Duration,
    /// Runners given a `RecapReady` per round at most (`RUNMESH_RUN_RECAP_NOTICE_BATCH`, default
    /// 200); a full round is followed by the next one after a second instead of the interval.
    #[serde(deserialize_with = "config::positive_count")]
    pub recap_notice_batch: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 50 * 1024 * 1024,
            max_points: 2_000_000,
            moving_speed_mps: 0.894,
            elevation_hysteresis_m: 3.0,
            privacy_zone_m: 200.0,
            default_time_zone: "UTC".to_owned(),
            max_archive_bytes: 2 * 1024 * 1024 * 1024,
            max_archive_entries: 100_000,
            max_archive_uncompressed_bytes: 16 * 1024 * 1024 * 1024,
            max_archive_ratio: 100,
            archive_dir: std::path::PathBuf::from("./data/run-imports"),
            board_time_zone: "Asia/Seoul".to_owned(),
            board_grace_days: 7,
            badges: None,
            badge_set: BadgeSet::default(),
            race_distance_tolerance: 0.05,
            race_venue_radius_m: 3_000.0,
            recap_notice_interval: std::time::Duration::from_secs(300),
            recap_notice_batch: 200,
        }
    }
}

/// A bad `RUNMESH_RUN_*` value; `Display` is one line naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct RunConfigError {
    pub variable: String,
    pub message: String,
}

impl RunConfig {
    /// Reads `RUNMESH_RUN_*` from the process environment.
    pub fn from_env() -> Result<Self, RunConfigError> {
        Self::from_figment(Figment::new().merge(Env::prefixed(ENV_PREFIX)))
    }

    /// Reads the settings from `figment` (keys without the prefix, e.g. `max_file_bytes`).
    pub fn from_figment(figment: Figment) -> Result<Self, RunConfigError> {
        let config: Self = figment.extract().map_err(|err| {
            let (variable, message) = runmesh_platform::config::env_setting_error(ENV_PREFIX, &err);
            RunConfigError { variable, message }
        })?;
        let mut config = config;
        config.validate()?;
        if let Some(path) = &config.badges {
            let text = std::fs::read_to_string(path).map_err(|err| RunConfigError {
                variable: format!("{ENV_PREFIX}BADGES"),
                message: format!("{}: {err}", path.display()),
            })?;
            config.badge_set =
                BadgeSet::parse(&text, &path.display().to_string()).map_err(|err| {
                    RunConfigError {
                        variable: format!("{ENV_PREFIX}BADGES"),
                        message: err.to_string(),
                    }
                })?;
        }
        Ok(config)
    }

    fn validate(&self) -> Result<(), RunConfigError> {
        let refuse = |name: &str, message: &str| {
            Err(RunConfigError {
                variable: format!("{ENV_PREFIX}{name}"),
                message: message.to_owned(),
            })
        };
        if !(self.moving_speed_mps.is_finite() && self.moving_speed_mps > 0.0) {
            return refuse("MOVING_SPEED_MPS", "must be a positive number of m/s");
        }
        if !(self.elevation_hysteresis_m.is_finite() && self.elevation_hysteresis_m >= 0.0) {
            return refuse("ELEVATION_HYSTERESIS_M", "must be a number of metres ≥ 0");
        }
        if !(self.privacy_zone_m.is_finite() && self.privacy_zone_m >= 0.0) {
            return refuse("PRIVACY_ZONE_M", "must be a number of metres ≥ 0");
        }
        if self.board_time_zone.parse::<chrono_tz::Tz>().is_err() {
            return refuse(
                "BOARD_TIME_ZONE",
                "must be an IANA time zone, e.g. Asia/Seoul",
            );
        }
        if !(self.race_distance_tolerance.is_finite()
            && (0.0..1.0).contains(&self.race_distance_tolerance))
        {
            return refuse("RACE_DISTANCE_TOLERANCE", "must be a fraction in [0, 1)");
        }
        if !(self.race_venue_radius_m.is_finite() && self.race_venue_radius_m > 0.0) {
            return refuse("RACE_VENUE_RADIUS_M", "must be a positive number of metres");
        }
        if self.default_time_zone.parse::<chrono_tz::Tz>().is_err() {
            return refuse("DEFAULT_TIME_ZONE", "must be an IANA time zone, e.g. UTC");
        }
        Ok(())
    }

    /// [`RunConfig::board_time_zone`] parsed (validated at start).
    pub fn board_tz(&self) -> chrono_tz::Tz {
        self.board_time_zone
            .parse()
            .unwrap_or(chrono_tz::Asia::Seoul)
    }

    /// The parser's caps.
    pub fn limits(&self) -> Limits {
        Limits {
            max_bytes: usize::try_from(self.max_file_bytes).unwrap_or(usize::MAX),
            max_points: usize::try_from(self.max_points).unwrap_or(usize::MAX),
        }
    }

    /// The analysis' tunables.
    pub fn analysis(&self) -> AnalysisConfig {
        let mut analysis = AnalysisConfig::default();
        analysis.moving_speed_mps.running = self.moving_speed_mps;
        analysis.elevation_hysteresis_m = self.elevation_hysteresis_m;
        analysis
    }

    /// [`RunConfig::default_time_zone`] parsed (validated at start).
    pub fn default_tz(&self) -> chrono_tz::Tz {
        self.default_time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use figment::providers::Serialized;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<RunConfig, RunConfigError> {
        let mut figment = Figment::new();
        for (key, value) in pairs {
            figment = figment.merge(Serialized::default(key, value));
        }
        RunConfig::from_figment(figment)
    }

    #[test]
    fn defaults_without_variables() {
        assert_eq!(load(&[]).unwrap(), RunConfig::default());
        assert_eq!(RunConfig::default().limits().max_bytes, 50 * 1024 * 1024);
    }

    #[test]
    fn values_are_read_and_bad_ones_name_their_variable() {
        let config = RunConfig::from_figment(
            Figment::new()
                .merge(Serialized::default("max_file_bytes", 1024))
                .merge(Serialized::default("privacy_zone_m", 0.0)),
        )
        .unwrap();
        assert_eq!(config.max_file_bytes, 1024);
        assert_eq!(config.privacy_zone_m, 0.0);
        let err =
            RunConfig::from_figment(Figment::new().merge(Serialized::default("max_file_bytes", 0)))
                .unwrap_err();
        assert_eq!(err.variable, "RUNMESH_RUN_MAX_FILE_BYTES");
        let err = load(&[("default_time_zone", "Mars/Olympus")]).unwrap_err();
        assert_eq!(err.variable, "RUNMESH_RUN_DEFAULT_TIME_ZONE");
        let err = RunConfig::from_figment(
            Figment::new().merge(Serialized::default("moving_speed_mps", -1.0)),
        )
        .unwrap_err();
        assert_eq!(err.variable, "RUNMESH_RUN_MOVING_SPEED_MPS");
        let err = load(&[("board_time_zone", "Nowhere")]).unwrap_err();
        assert_eq!(err.variable, "RUNMESH_RUN_BOARD_TIME_ZONE");
        let config = RunConfig::from_figment(
            Figment::new()
                .merge(Serialized::default("recap_notice_interval", "90s"))
                .merge(Serialized::default("recap_notice_batch", 10)),
        )
        .unwrap();
        assert_eq!(
            config.recap_notice_interval,
            std::time::Duration::from_secs(90)
        );
        assert_eq!(config.recap_notice_batch, 10);
        let err = load(&[("recap_notice_interval", "0s")]).unwrap_err();
        assert_eq!(err.variable, "RUNMESH_RUN_RECAP_NOTICE_INTERVAL");
    }

    #[test]
    fn a_badge_file_with_an_unknown_rule_kind_refuses_to_start_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("badges.toml");
        std::fs::write(
            &path,
            "version = 1\n[[badge]]\nid = \"x\"\nicon = \"i\"\npoints = 1\nname = { en = \"a\", ko = \"b\" }\ndescription = { en = \"a\", ko = \"b\" }\nrule = { kind = \"teleport\" }\n",
        )
        .unwrap();
        let err = load(&[("badges", path.to_str().unwrap())]).unwrap_err();
        assert_eq!(err.variable, "RUNMESH_RUN_BADGES");
        let line = err.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains(&format!("{}:8: badge \"x\"", path.display())),
            "{line}"
        );
        assert!(line.contains("teleport"), "{line}");

        std::fs::write(&path, super::super::domain::badges::DEFAULT_BADGES).unwrap();
        let config = load(&[("badges", path.to_str().unwrap())]).unwrap();
        assert_eq!(config.badge_set, BadgeSet::default());
    }
}
