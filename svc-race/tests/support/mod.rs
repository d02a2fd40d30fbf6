//! Spawns svc-race for tests: [`Harness`] assembles the module behind the platform's gRPC server
//! and auth layer without an event bus (so the outbox keeps every event for the test to read);
//! [`Node`] runs it exactly as production does, through `service::run`, against PostgreSQL,
//! Redis and the broker.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use runmesh_platform::auth::{AuthLayer, TokenVerifier, VerifierConfig};
use runmesh_platform::cache::{self, SharedCache};
use runmesh_platform::config::Settings;
use runmesh_platform::server::GrpcServer;
use runmesh_platform::service::{self, Service};
use runmesh_platform::testkit::{
    self, TestDatabase, TestIssuer, TestSqlite, redis_url, unique_name,
};
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::race::v1 as proto;
use runmesh_proto::runmesh::race::v1::race_service_client::RaceServiceClient;
use runmesh_svc_race::{RaceConfig, RaceModule, RaceService};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL and Redis, as `runmesh serve race` runs.
    Postgres,
    /// SQLite and the in-memory cache, as `runmesh up` runs.
    Embedded,
}

/// Generates one test per backend from an `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await;
                }
            )+
        }
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Embedded).await;
                }
            )+
        }
    };
}

/// Fast loops and a generous rate limit, so tests wait little and are limited only on purpose.
pub fn test_config() -> RaceConfig {
    RaceConfig {
        register_attempts: 1_000,
        register_window: Duration::from_secs(60),
        reservation_timeout: Duration::from_secs(5),
        maintenance_interval: Duration::from_millis(200),
        scheduler_interval: Duration::from_millis(200),
        watch_interval: Duration::from_millis(100),
        race_cache_ttl: Duration::from_millis(200),
        // The service's own: several tests run at once against one PostgreSQL (100
        // connections), and grouped writes are what the crowd tests exercise.
        ..RaceConfig::default()
    }
}

/// A fresh database of `backend`: its URL, and the SQLite directory to keep alive.
pub async fn database(backend: Backend) -> (String, Option<TestSqlite>) {
    match backend {
        Backend::Postgres => (TestDatabase::create().await.unwrap().url, None),
        Backend::Embedded => {
            let sqlite = TestSqlite::create().unwrap();
            (sqlite.url.clone(), Some(sqlite))
        }
    }
}

pub struct Harness {
    pub addr: SocketAddr,
    pub module: RaceModule,
    pub db: DatabaseConnection,
    pub cache: SharedCache,
    pub issuer: Arc<TestIssuer>,
    pub database_url: String,
    pub shutdown: CancellationToken,
    /// Statements this module sent that read or wrote the `registrations` table.
    pub registration_statements: Arc<AtomicU64>,
    _sqlite: Option<TestSqlite>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Harness {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, test_config()).await
    }

    pub async fn start_with(backend: Backend, config: RaceConfig) -> Self {
        let (database_url, sqlite) = database(backend).await;
        let redis = (backend == Backend::Postgres).then(redis_url);
        let cache = cache::connect(redis.as_deref(), &unique_name("svc_race_test"))
            .await
            .unwrap();
        let mut harness = Self::over(
            &database_url,
            cache,
            Arc::new(TestIssuer::new()),
            config,
            true,
        )
        .await;
        harness._sqlite = sqlite;
        harness
    }

    /// Another module over the same database and cache, as a second replica (or a restart),
    /// without background loops (the test drives them).
    pub async fn replica(&self, cache: SharedCache, config: RaceConfig) -> Self {
        Self::over(
            &self.database_url,
            cache,
            Arc::clone(&self.issuer),
            config,
            false,
        )
        .await
    }

    /// The module over `database_url` and `cache`; `background` runs the scheduler and the
    /// maintenance loop.
    pub async fn over(
        database_url: &str,
        cache: SharedCache,
        issuer: Arc<TestIssuer>,
        config: RaceConfig,
        background: bool,
    ) -> Self {
        let mut db = runmesh_platform::db::connect(database_url).await.unwrap();
        let registration_statements = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&registration_statements);
        db.set_metric_callback(move |info| {
            if info.statement.sql.contains("\"registrations\"") {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        runmesh_svc_race::migrate(&db).await.unwrap();
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let module =
            RaceModule::assemble(db.clone(), cache.clone(), None, config, &tasks, &shutdown);
        if background {
            module.spawn_background(&tasks, &shutdown);
        }
        let mut verifier_config =
            VerifierConfig::new(issuer.issuer.clone(), issuer.audience.clone());
        verifier_config.min_refresh_interval = Duration::ZERO;
        let verifier = Arc::new(TokenVerifier::new(verifier_config, issuer.key_source()).unwrap());
        let settings = Settings {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shutdown_delay: Duration::ZERO,
            ..Settings::default()
        };
        let server = GrpcServer::builder(&settings)
            .layer(AuthLayer::new(verifier))
            .add_service(module.server(), vec![])
            .bind()
            .await
            .unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.serve(shutdown.clone()));
        Self {
            addr,
            module,
            db,
            cache,
            issuer,
            database_url: database_url.to_owned(),
            shutdown,
            registration_statements,
            _sqlite: None,
        }
    }

    pub fn client(&self) -> RaceServiceClient<Channel> {
        client(self.addr)
    }

    /// `message` with a bearer token for `user_id` holding `roles`.
    pub fn as_user<T>(&self, message: T, user_id: &str, roles: &[&str]) -> tonic::Request<T> {
        authorized(&self.issuer, message, user_id, roles)
    }

    pub fn as_runner<T>(&self, message: T, user_id: &str) -> tonic::Request<T> {
        self.as_user(message, user_id, &["runner"])
    }

    /// Creates and publishes `race` as `organizer`.
    pub async fn published_race(&self, organizer: &str, race: proto::Race) -> proto::Race {
        publish_race(&self.client(), &self.issuer, organizer, race).await
    }

    pub async fn register(
        &self,
        race: &proto::Race,
        category: usize,
        user_id: &str,
        key: &str,
    ) -> Result<proto::Registration, Status> {
        register(&self.client(), &self.issuer, race, category, user_id, key).await
    }

    pub async fn cancel(
        &self,
        registration_id: &str,
        user_id: &str,
        roles: &[&str],
    ) -> Result<proto::Registration, Status> {
        self.client()
            .cancel_registration(self.as_user(
                proto::CancelRegistrationRequest {
                    registration_id: registration_id.to_owned(),
                },
                user_id,
                roles,
            ))
            .await
            .map(|response| response.into_inner().registration.unwrap())
    }

    /// Every envelope in the outbox, oldest first.
    pub async fn outbox(&self) -> Vec<Envelope> {
        testkit::outbox_envelopes(&self.db).await
    }

    /// The event types in the outbox, oldest first.
    pub async fn outbox_types(&self) -> Vec<String> {
        testkit::outbox_types(&self.db).await
    }

    /// Forgets everything the gate holds for `race`, as a Redis that lost its data would.
    pub async fn forget_gate(&self, race: &proto::Race) {
        forget_gate(&self.cache, race).await;
    }
}

/// Deletes every gate key of `race` from `cache`.
pub async fn forget_gate(cache: &SharedCache, race: &proto::Race) {
    let prefix = format!("gate:{{{}}}", race.race_id);
    let mut keys = vec![
        format!("{prefix}:ready"),
        format!("{prefix}:members"),
        format!("{prefix}:pending"),
    ];
    for category in &race.categories {
        let hash = format!("{prefix}:c:{}", category.category_id);
        keys.extend([format!("{hash}:free"), format!("{hash}:wfree"), hash]);
    }
    for key in keys {
        cache.delete(&key).await.unwrap();
    }
}

pub fn client(addr: SocketAddr) -> RaceServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    RaceServiceClient::new(channel)
}

pub fn authorized<T>(
    issuer: &TestIssuer,
    message: T,
    user_id: &str,
    roles: &[&str],
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        issuer.bearer(user_id, roles).parse().unwrap(),
    );
    request
}

pub async fn publish_race(
    client: &RaceServiceClient<Channel>,
    issuer: &TestIssuer,
    organizer: &str,
    race: proto::Race,
) -> proto::Race {
    let created = client
        .clone()
        .create_race(authorized(
            issuer,
            proto::CreateRaceRequest { race: Some(race) },
            organizer,
            &["runner", "organizer"],
        ))
        .await
        .unwrap()
        .into_inner()
        .race
        .unwrap();
    client
        .clone()
        .publish_race(authorized(
            issuer,
            proto::PublishRaceRequest {
                race_id: created.race_id,
            },
            organizer,
            &["runner", "organizer"],
        ))
        .await
        .unwrap()
        .into_inner()
        .race
        .unwrap()
}

pub async fn register(
    client: &RaceServiceClient<Channel>,
    issuer: &TestIssuer,
    race: &proto::Race,
    category: usize,
    user_id: &str,
    key: &str,
) -> Result<proto::Registration, Status> {
    client
        .clone()
        .register(authorized(
            issuer,
            proto::RegisterRequest {
                race_id: race.race_id.clone(),
                category_id: race.categories[category].category_id.clone(),
                idempotency_key: key.to_owned(),
            },
            user_id,
            &["runner"],
        ))
        .await
        .map(|response| response.into_inner().registration.unwrap())
}

pub fn at(offset: chrono::Duration) -> Option<prost_types::Timestamp> {
    let at = Utc::now() + offset;
    Some(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap(),
    })
}

pub fn category(name: &str, distance_meters: u32, capacity: u32, waitlist: u32) -> proto::Category {
    proto::Category {
        name: name.to_owned(),
        distance_meters,
        capacity,
        waitlist_capacity: waitlist,
        fee: Some(proto::Fee {
            currency_code: "KRW".to_owned(),
            amount_minor: 50_000,
        }),
        ..Default::default()
    }
}

/// A race whose registration opened a minute ago and closes in an hour, starting tomorrow.
pub fn open_race(name: &str, categories: Vec<proto::Category>) -> proto::Race {
    proto::Race {
        name: name.to_owned(),
        description: "Along the river".to_owned(),
        region: "Seoul".to_owned(),
        venue: "Gwanghwamun".to_owned(),
        coordinates: Some(proto::Coordinates {
            latitude: 37.57,
            longitude: 126.98,
        }),
        starts_at: at(chrono::Duration::days(1)),
        registration_opens_at: at(chrono::Duration::minutes(-1)),
        registration_closes_at: at(chrono::Duration::hours(1)),
        official_url: "https://seoul-marathon.example/2026".to_owned(),
        categories,
        ..Default::default()
    }
}

// Not every test binary that includes this module uses them.
#[allow(unused_imports)]
pub use runmesh_platform::testkit::{assert_status, violated_fields};

/// svc-race run as production runs it (`service::run`), reachable at `addr`.
pub struct Node {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Node {
    pub async fn start(settings: Settings, config: RaceConfig, issuer: &TestIssuer) -> Self {
        let shutdown = CancellationToken::new();
        let (ready, listening) = tokio::sync::oneshot::channel();
        let service: Arc<dyn Service> = Arc::new(RaceService::new(config));
        let handle = tokio::spawn(service::run(
            settings,
            vec![service],
            "runmesh-svc-race-test",
            Some(issuer.key_source()),
            shutdown.clone(),
            Some(ready),
        ));
        let addr = listening.await.unwrap().grpc;
        Self {
            addr,
            shutdown,
            handle,
        }
    }

    /// Stops gracefully (as on SIGTERM) and waits for the drain.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

/// Per-service settings on loopback ports with no shutdown delay.
pub fn node_settings(
    database_url: &str,
    redis_url: Option<String>,
    brokers: Option<String>,
) -> Settings {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    Settings {
        grpc_addr: loopback,
        metrics_addr: loopback,
        database_url: Some(database_url.to_owned()),
        redis_url,
        kafka_brokers: brokers,
        shutdown_delay: Duration::ZERO,
        shutdown_grace: Duration::from_secs(5),
        log_filter: "warn".to_owned(),
        ..Settings::default()
    }
}
