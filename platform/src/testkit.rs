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

fn tansu_bin() -> anyhow::Result<PathBuf> {
    let path = std::env::var("RUNMESH_TEST_TANSU_BIN").map(PathBuf::from).context(
        "RUNMESH_TEST_TANSU_BIN is not set: run the suite through scripts/test, which installs the broker",
    )?;
    if !path.exists() {
        bail!("RUNMESH_TEST_TANSU_BIN={} does not exist", path.display());
    }
    Ok(path)
}

/// A private Kafka-protocol broker (tansu, in-memory storage) on its own loopback port, for
/// tests that take the broker away and bring it back. Killed when dropped.
pub struct Broker {
    pub port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker on a free port and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        let mut broker = Self {
            port: free_port(),
            child: None,
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

    /// Starts a broker again on the same port (a fresh, empty one: storage is in memory).
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        self.stop();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::env::temp_dir().join(format!("tansu-{}.log", self.port));
        let log_file = std::fs::File::create(&log)?;
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
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "tansu did not listen on {} within 20s (log: {})",
                    self.port,
                    log.display()
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
