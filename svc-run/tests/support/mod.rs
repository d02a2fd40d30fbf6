//! Spawns svc-run for tests: the module behind the platform's gRPC server and auth layer,
//! without an event bus (so the outbox keeps every event for the test to read), against
//! PostgreSQL + Redis-less (svc-run uses no cache) or SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use runmesh_platform::auth::{AuthLayer, TokenVerifier, VerifierConfig};
use runmesh_platform::cache::{self, SharedCache};
use runmesh_platform::config::Settings;
use runmesh_platform::server::GrpcServer;
use runmesh_platform::testkit::{self, TestDatabase, TestIssuer, TestSqlite};
use runmesh_proto::google::api::HttpBody;
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_proto::runmesh::run::v1::ranking_service_client::RankingServiceClient;
use runmesh_proto::runmesh::run::v1::recap_service_client::RecapServiceClient;
use runmesh_proto::runmesh::run::v1::run_service_client::RunServiceClient;
use runmesh_svc_run::{RunConfig, RunModule};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL, as `runmesh serve run` runs.
    Postgres,
    /// SQLite, as `runmesh up` runs.
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

pub const ALICE: &str = "runner-alice";
pub const BOB: &str = "runner-bob";

pub struct Harness {
    pub addr: SocketAddr,
    pub module: RunModule,
    pub db: DatabaseConnection,
    /// Redis under a namespace of this test's own (PostgreSQL), or the in-memory cache.
    pub cache: SharedCache,
    pub issuer: Arc<TestIssuer>,
    shutdown: CancellationToken,
    /// Stops the module's background work (archive imports).
    work: CancellationToken,
    tasks: TaskTracker,
    database_url: String,
    config: RunConfig,
    sqlite: Option<TestSqlite>,
    data_dir: Option<Arc<tempfile::TempDir>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.work.cancel();
    }
}

impl Harness {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, RunConfig::default()).await
    }

    pub async fn start_with(backend: Backend, mut config: RunConfig) -> Self {
        let (database_url, sqlite, redis) = match backend {
            Backend::Postgres => (
                TestDatabase::create().await.unwrap().url,
                None,
                Some(testkit::redis_url()),
            ),
            Backend::Embedded => {
                let sqlite = TestSqlite::create().unwrap();
                (sqlite.url.clone(), Some(sqlite), None)
            }
        };
        let cache = cache::connect(redis.as_deref(), &testkit::unique_name("svc_run_test"))
            .await
            .unwrap();
        let data_dir = Arc::new(tempfile::tempdir().unwrap());
        config.archive_dir = data_dir.path().join("run-imports");
        Self::start_on(
            database_url,
            sqlite,
            Some(data_dir),
            config,
            Arc::new(TestIssuer::new()),
            cache,
        )
        .await
    }

    /// Stops the service (its server and background imports, waiting for them) and starts it
    /// again on the same database and data dir, as a restart of the process would.
    pub async fn restart(mut self) -> Self {
        self.shutdown.cancel();
        self.work.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        let sqlite = self.sqlite.take();
        let data_dir = self.data_dir.take();
        Self::start_on(
            self.database_url.clone(),
            sqlite,
            data_dir,
            self.config.clone(),
            Arc::clone(&self.issuer),
            self.cache.clone(),
        )
        .await
    }

    /// Stops the module's background work without stopping the server.
    pub async fn stop_background_work(&self) {
        self.work.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    async fn start_on(
        database_url: String,
        sqlite: Option<TestSqlite>,
        data_dir: Option<Arc<tempfile::TempDir>>,
        config: RunConfig,
        issuer: Arc<TestIssuer>,
        cache: SharedCache,
    ) -> Self {
        let db = runmesh_platform::db::connect(&database_url).await.unwrap();
        runmesh_svc_run::migrate(&db).await.unwrap();
        let work = CancellationToken::new();
        let tasks = TaskTracker::new();
        let module = RunModule::assemble_with(
            db.clone(),
            None,
            cache.clone(),
            config.clone(),
            tasks.clone(),
            work.clone(),
        );
        module.archives.resume().await.unwrap();
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
            .add_service(
                module
                    .server()
                    .max_decoding_message_size(settings.grpc_max_message_bytes),
                vec![],
            )
            .add_service(module.ranking_server(), vec![])
            .add_service(module.recap_server(), vec![])
            .bind()
            .await
            .unwrap();
        let addr = server.local_addr();
        let shutdown = CancellationToken::new();
        tokio::spawn(server.serve(shutdown.clone()));
        Self {
            addr,
            module,
            db,
            cache,
            issuer,
            shutdown,
            work,
            tasks,
            database_url,
            config,
            sqlite,
            data_dir,
        }
    }

    pub fn client(&self) -> RunServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_lazy();
        RunServiceClient::new(channel)
    }

    pub fn ranking(&self) -> RankingServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_lazy();
        RankingServiceClient::new(channel)
    }

    pub fn recap(&self) -> RecapServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_lazy();
        RecapServiceClient::new(channel)
    }

    pub fn as_role<T>(&self, message: T, user_id: &str, roles: &[&str]) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            self.issuer.bearer(user_id, roles).parse().unwrap(),
        );
        request
    }

    pub fn as_runner<T>(&self, message: T, user_id: &str) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            self.issuer.bearer(user_id, &["runner"]).parse().unwrap(),
        );
        request
    }

    pub async fn create(&self, user_id: &str, run: proto::Run) -> Result<proto::Run, Status> {
        self.client()
            .create_run(self.as_runner(proto::CreateRunRequest { run: Some(run) }, user_id))
            .await
            .map(|r| r.into_inner().run.unwrap())
    }

    pub async fn get(&self, user_id: &str, run_id: &str) -> Result<proto::Run, Status> {
        self.client()
            .get_run(self.as_runner(
                proto::GetRunRequest {
                    run_id: run_id.to_owned(),
                },
                user_id,
            ))
            .await
            .map(|r| r.into_inner().run.unwrap())
    }

    pub async fn list(&self, user_id: &str) -> Vec<proto::Run> {
        self.client()
            .list_runs(self.as_runner(proto::ListRunsRequest::default(), user_id))
            .await
            .unwrap()
            .into_inner()
            .runs
    }

    /// Uploads `bytes` as `file_name` in chunks of `chunk` bytes.
    pub async fn import(
        &self,
        user_id: &str,
        file_name: &str,
        bytes: &[u8],
        chunk: usize,
        visibility: proto::Visibility,
    ) -> Result<proto::ImportRunResponse, Status> {
        let mut messages = vec![proto::ImportRunRequest {
            file_name: file_name.to_owned(),
            title: None,
            visibility: visibility.into(),
            file: None,
        }];
        for part in bytes.chunks(chunk) {
            messages.push(proto::ImportRunRequest {
                file: Some(HttpBody {
                    content_type: String::new(),
                    data: part.to_vec(),
                    extensions: Vec::new(),
                }),
                ..Default::default()
            });
        }
        self.client()
            .import_run(self.as_runner(futures::stream::iter(messages), user_id))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn set_visibility(&self, user_id: &str, run_id: &str, visibility: proto::Visibility) {
        self.client()
            .update_run(self.as_runner(
                proto::UpdateRunRequest {
                    run: Some(proto::Run {
                        run_id: run_id.to_owned(),
                        visibility: visibility.into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["visibility".to_owned()],
                    }),
                },
                user_id,
            ))
            .await
            .unwrap();
    }

    pub async fn outbox(&self) -> Vec<Envelope> {
        testkit::outbox_envelopes(&self.db).await
    }

    pub async fn outbox_types(&self) -> Vec<String> {
        testkit::outbox_types(&self.db).await
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

pub fn seconds(s: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: s,
        nanos: 0,
    }
}

/// A 10 km run in 50 minutes, starting at `start`.
pub fn manual_run(start: chrono::DateTime<chrono::Utc>) -> proto::Run {
    proto::Run {
        sport: proto::Sport::Run.into(),
        title: "Han river loop".to_owned(),
        start_time: Some(timestamp(start)),
        time_zone: "Asia/Seoul".to_owned(),
        elapsed_time: Some(seconds(3_000)),
        distance_meters: 10_000.0,
        elevation_gain_meters: Some(40.0),
        average_heart_rate: Some(150),
        visibility: proto::Visibility::Private.into(),
        ..Default::default()
    }
}

#[allow(unused_imports)]
pub use runmesh_platform::testkit::{assert_status, violated_fields};
