//! `RUNMESH_*` settings: documented defaults, one-line errors naming the variable, file + env
//! precedence, and secrets kept out of `Debug`. Each test runs in a figment `Jail`, which
//! restores the environment and working directory afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// `Jail` closures return `figment::Result`, whose error is large; not ours to shrink.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
use std::time::Duration;

use figment::Jail;
use runmesh_platform::config::{LogFormat, Settings};

/// The error `from_env` gives with exactly one variable set.
fn error_for(variable: &str, value: &str) -> String {
    let mut message = None;
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env(variable, value);
        message = Some(Settings::from_env().unwrap_err().to_string());
        Ok(())
    });
    let message = message.unwrap();
    assert!(!message.contains('\n'), "not one line: {message:?}");
    assert!(
        message.starts_with(&format!("{variable}: ")),
        "does not name {variable}: {message:?}"
    );
    message
}

#[test]
fn defaults_are_the_documented_ones() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let settings = Settings::from_env().unwrap();
        assert_eq!(settings.grpc_addr, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(settings.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(settings.metrics_addr, "127.0.0.1:9464".parse().unwrap());
        assert_eq!(settings.data_dir, PathBuf::from("./data"));
        assert_eq!(settings.database_url, None);
        assert_eq!(settings.redis_url, None);
        assert_eq!(settings.kafka_brokers, None);
        assert_eq!(settings.log_format, LogFormat::Auto);
        assert_eq!(settings.log_filter, "info");
        assert_eq!(settings.shutdown_grace, Duration::from_secs(20));
        assert_eq!(settings.jwt_issuer, "runmesh");
        assert_eq!(settings.jwt_audience, "runmesh");
        assert_eq!(settings.grpc_max_message_bytes, 4 * 1024 * 1024);
        assert_eq!(
            settings.grpc_max_connection_age,
            Duration::from_secs(30 * 60)
        );
        Ok(())
    });
}

#[test]
fn every_variable_is_read() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("RUNMESH_GRPC_ADDR", "0.0.0.0:6000");
        jail.set_env("RUNMESH_HTTP_ADDR", "0.0.0.0:6001");
        jail.set_env("RUNMESH_METRICS_ADDR", "0.0.0.0:6002");
        jail.set_env("RUNMESH_DATA_DIR", "/var/lib/runmesh");
        jail.set_env("RUNMESH_DATABASE_URL", "postgres://app@db:5432/user");
        jail.set_env("RUNMESH_REDIS_URL", "rediss://cache:6380");
        jail.set_env("RUNMESH_KAFKA_BROKERS", " kafka-0:9092 , kafka-1:9092 ");
        jail.set_env("RUNMESH_LOG_FORMAT", "JSON");
        jail.set_env("RUNMESH_LOG", "debug,h2=info");
        jail.set_env("RUNMESH_SHUTDOWN_GRACE", "45s");
        jail.set_env("RUNMESH_SHUTDOWN_DELAY", "0");
        jail.set_env("RUNMESH_JWT_ISSUER", "https://id.example");
        jail.set_env("RUNMESH_JWT_AUDIENCE", "runmesh-api");
        jail.set_env("RUNMESH_GRPC_MAX_MESSAGE_BYTES", "1048576");
        jail.set_env("RUNMESH_GRPC_MAX_CONNECTION_AGE", "5m");
        jail.set_env("RUNMESH_GRPC_KEEPALIVE_INTERVAL", "30s");
        jail.set_env("RUNMESH_GRPC_KEEPALIVE_TIMEOUT", "10");
        jail.set_env("RUNMESH_GRPC_REQUEST_TIMEOUT", "1m 30s");

        let settings = Settings::from_env().unwrap();
        assert_eq!(settings.grpc_addr, "0.0.0.0:6000".parse().unwrap());
        assert_eq!(settings.http_addr, "0.0.0.0:6001".parse().unwrap());
        assert_eq!(settings.metrics_addr, "0.0.0.0:6002".parse().unwrap());
        assert_eq!(settings.data_dir, PathBuf::from("/var/lib/runmesh"));
        assert_eq!(
            settings.database_url.as_deref(),
            Some("postgres://app@db:5432/user")
        );
        assert_eq!(settings.redis_url.as_deref(), Some("rediss://cache:6380"));
        assert_eq!(
            settings.kafka_brokers.as_deref(),
            Some("kafka-0:9092,kafka-1:9092")
        );
        assert_eq!(settings.log_format, LogFormat::Json);
        assert_eq!(settings.log_filter, "debug,h2=info");
        assert_eq!(settings.shutdown_grace, Duration::from_secs(45));
        assert_eq!(settings.shutdown_delay, Duration::ZERO);
        assert_eq!(settings.jwt_issuer, "https://id.example");
        assert_eq!(settings.jwt_audience, "runmesh-api");
        assert_eq!(settings.grpc_max_message_bytes, 1_048_576);
        assert_eq!(settings.grpc_max_connection_age, Duration::from_secs(300));
        assert_eq!(settings.grpc_keepalive_interval, Duration::from_secs(30));
        assert_eq!(settings.grpc_keepalive_timeout, Duration::from_secs(10));
        assert_eq!(settings.grpc_request_timeout, Duration::from_secs(90));
        Ok(())
    });
}

#[test]
fn bad_socket_address() {
    assert_eq!(
        error_for("RUNMESH_GRPC_ADDR", "nonsense"),
        r#"RUNMESH_GRPC_ADDR: invalid socket address "nonsense" (expected host:port, e.g. 127.0.0.1:50051)"#
    );
    error_for("RUNMESH_HTTP_ADDR", "8080");
    error_for("RUNMESH_METRICS_ADDR", "localhost");
}

#[test]
fn bad_database_url_names_the_scheme_but_never_the_password() {
    let message = error_for("RUNMESH_DATABASE_URL", "mysql://root:hunter2@db/runs");
    assert!(message.contains(r#""mysql""#), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    let message = error_for("RUNMESH_DATABASE_URL", "root:hunter2@db/runs");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn bad_redis_url() {
    let message = error_for("RUNMESH_REDIS_URL", "http://cache:6379");
    assert!(message.contains("redis://"), "{message}");
}

#[test]
fn bad_kafka_brokers() {
    let message = error_for("RUNMESH_KAFKA_BROKERS", "kafka-0:9092,kafka-1");
    assert!(message.contains(r#""kafka-1""#), "{message}");
    error_for("RUNMESH_KAFKA_BROKERS", "kafka-0:notaport");
}

#[test]
fn bad_durations() {
    assert_eq!(
        error_for("RUNMESH_SHUTDOWN_GRACE", "soon"),
        r#"RUNMESH_SHUTDOWN_GRACE: invalid duration "soon" (expected e.g. 20s, 500ms or 1m)"#
    );
    error_for("RUNMESH_GRPC_MAX_CONNECTION_AGE", "0s");
    error_for("RUNMESH_GRPC_REQUEST_TIMEOUT", "-5s");
}

#[test]
fn bad_log_settings() {
    assert_eq!(
        error_for("RUNMESH_LOG_FORMAT", "xml"),
        r#"RUNMESH_LOG_FORMAT: unknown log format "xml" (expected json, pretty or auto)"#
    );
    error_for("RUNMESH_LOG", "info,[unclosed");
}

#[test]
fn bad_numbers_and_empty_names() {
    error_for("RUNMESH_GRPC_MAX_MESSAGE_BYTES", "4MiB");
    error_for("RUNMESH_GRPC_MAX_MESSAGE_BYTES", "0");
    error_for("RUNMESH_JWT_ISSUER", " ");
}

#[test]
fn empty_optional_urls_mean_unset() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("RUNMESH_DATABASE_URL", "");
        jail.set_env("RUNMESH_REDIS_URL", "");
        jail.set_env("RUNMESH_KAFKA_BROKERS", "");
        let settings = Settings::from_env().unwrap();
        assert_eq!(settings.database_url, None);
        assert_eq!(settings.redis_url, None);
        assert_eq!(settings.kafka_brokers, None);
        Ok(())
    });
}

#[test]
fn file_values_apply_and_the_environment_wins() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file(
            "runmesh.toml",
            r#"
                grpc_addr = "0.0.0.0:7000"
                http_addr = "0.0.0.0:7001"
                kafka_brokers = ["kafka-0:9092", "kafka-1:9092"]
                shutdown_grace = "5s"
                grpc_max_message_bytes = 2097152
                log = "warn"
            "#,
        )?;
        jail.set_env("RUNMESH_CONFIG", "runmesh.toml");
        jail.set_env("RUNMESH_GRPC_ADDR", "127.0.0.1:7100");

        let settings = Settings::from_env().unwrap();
        assert_eq!(settings.grpc_addr, "127.0.0.1:7100".parse().unwrap());
        assert_eq!(settings.http_addr, "0.0.0.0:7001".parse().unwrap());
        assert_eq!(
            settings.kafka_brokers.as_deref(),
            Some("kafka-0:9092,kafka-1:9092")
        );
        assert_eq!(settings.shutdown_grace, Duration::from_secs(5));
        assert_eq!(settings.grpc_max_message_bytes, 2_097_152);
        assert_eq!(settings.log_filter, "warn");
        assert_eq!(settings.metrics_addr, "127.0.0.1:9464".parse().unwrap());
        Ok(())
    });
}

#[test]
fn bad_file_values_name_the_key_and_the_file() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file("runmesh.toml", "metrics_addr = \"everywhere\"\n")?;
        jail.set_env("RUNMESH_CONFIG", "runmesh.toml");

        let message = Settings::from_env().unwrap_err().to_string();
        assert!(
            message.starts_with("metrics_addr in ") && message.contains("runmesh.toml: "),
            "{message}"
        );
        assert!(
            message.contains(r#"invalid socket address "everywhere""#),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
        Ok(())
    });
}

#[test]
fn a_missing_or_malformed_file_is_reported_against_runmesh_config() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("RUNMESH_CONFIG", "missing.toml");
        let message = Settings::from_env().unwrap_err().to_string();
        assert!(message.starts_with("RUNMESH_CONFIG: "), "{message}");

        jail.create_file("broken.toml", "grpc_addr = \n")?;
        jail.set_env("RUNMESH_CONFIG", "broken.toml");
        let message = Settings::from_env().unwrap_err().to_string();
        assert!(message.starts_with("RUNMESH_CONFIG"), "{message}");
        assert!(!message.contains('\n'), "{message}");
        Ok(())
    });
}

#[test]
fn debug_output_redacts_passwords() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env(
            "RUNMESH_DATABASE_URL",
            "postgres://app:hunter2@db:5432/user",
        );
        jail.set_env("RUNMESH_REDIS_URL", "redis://:swordfish@cache:6379");
        let settings = Settings::from_env().unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("swordfish"), "{debug}");
        assert!(debug.contains("postgres://app:***@db:5432/user"), "{debug}");
        Ok(())
    });
}

#[test]
fn the_service_secret_is_at_least_32_bytes_and_never_shown() {
    let error = error_for("RUNMESH_SERVICE_SECRET", "too-short-secret");
    assert_eq!(
        error,
        "RUNMESH_SERVICE_SECRET: must be at least 32 bytes (got 16); generate one with `openssl rand -base64 48`"
    );
    assert!(!error.contains("too-short-secret"));

    Jail::expect_with(|jail| {
        jail.clear_env();
        let settings = Settings::from_env().unwrap();
        assert!(settings.service_secret.is_none());
        jail.set_env(
            "RUNMESH_SERVICE_SECRET",
            "correct-horse-battery-staple-and-more-words",
        );
        let settings = Settings::from_env().unwrap();
        assert!(settings.service_secret.is_some());
        let debug = format!("{settings:?}");
        assert!(!debug.contains("correct-horse"), "{debug}");
        assert!(
            debug.contains("service_secret: Some(\"<redacted>\")"),
            "{debug}"
        );
        Ok(())
    });
}
