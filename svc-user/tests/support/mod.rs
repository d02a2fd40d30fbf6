//! Spawns svc-user on a free loopback port, behind the platform's gRPC server and auth layer,
//! against PostgreSQL + Redis or (embedded mode) SQLite + the in-memory cache.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use runmesh_platform::auth::{
    AuthLayer, MeshKey, ServiceCredentials, ServiceTokenIssuer, ServiceTokenVerifier,
    TokenVerifier, VerifierConfig,
};
use runmesh_platform::cache::{self, SharedCache};
use runmesh_platform::config::Settings;
use runmesh_platform::events::{EventBus, RelayOptions};
use runmesh_platform::server::GrpcServer;
use runmesh_platform::testkit::{self, TestDatabase, TestSqlite, redis_url, unique_name};
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::user::v1 as proto;
use runmesh_proto::runmesh::user::v1::user_internal_service_client::UserInternalServiceClient;
use runmesh_proto::runmesh::user::v1::user_service_client::UserServiceClient;
use runmesh_svc_user::{UserConfig, UserModule};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A password no list knows.
pub const PASSWORD: &str = "Tempo run at dawn, 42!";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL and Redis, as `runmesh serve user` runs.
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
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await;
                }
            )+
        }
        mod embedded {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::support::Backend::Embedded).await;
                }
            )+
        }
    };
}

/// What the tests tune: low sign-in limits so a handful of attempts reaches them.
pub fn test_config() -> UserConfig {
    UserConfig {
        issuer: "https://user.runmesh.test".to_owned(),
        audience: "runmesh".to_owned(),
        sign_in_failures_per_account: 3,
        sign_in_failures_per_client: 6,
        sign_in_failure_window: Duration::from_secs(60),
        password_hash_concurrency: 2,
        ..UserConfig::default()
    }
}

pub struct Harness {
    pub addr: SocketAddr,
    pub module: UserModule,
    pub db: DatabaseConnection,
    pub config: UserConfig,
    pub cache: SharedCache,
    pub database_url: String,
    /// The mesh key the server checks service tokens with.
    pub mesh: MeshKey,
    shutdown: CancellationToken,
    _sqlite: Option<TestSqlite>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub struct Options {
    pub config: UserConfig,
    /// The event bus; without one the outbox keeps every event for the test to read.
    pub bus: Option<EventBus>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: test_config(),
            bus: None,
        }
    }
}

impl Harness {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options) -> Self {
        let (database_url, sqlite, redis) = match backend {
            Backend::Postgres => (
                TestDatabase::create().await.unwrap().url,
                None,
                Some(redis_url()),
            ),
            Backend::Embedded => {
                let sqlite = TestSqlite::create().unwrap();
                (sqlite.url.clone(), Some(sqlite), None)
            }
        };
        let db = runmesh_platform::db::connect(&database_url).await.unwrap();
        runmesh_svc_user::migrate(&db).await.unwrap();
        let cache = cache::connect(redis.as_deref(), &unique_name("svc_user_test"))
            .await
            .unwrap();
        let module = UserModule::start(
            db.clone(),
            cache.clone(),
            options.bus.clone(),
            &options.config,
        )
        .await
        .unwrap();

        let shutdown = CancellationToken::new();
        module.spawn_background(&TaskTracker::new(), &shutdown);
        if let Some(bus) = &options.bus {
            bus.spawn_relay("svc-user", db.clone(), shutdown.clone());
        }
        let mut verifier_config = VerifierConfig::new(
            options.config.issuer.clone(),
            options.config.audience.clone(),
        );
        verifier_config.min_refresh_interval = Duration::ZERO;
        let verifier = Arc::new(TokenVerifier::new(verifier_config, module.key_source()).unwrap());
        let settings = Settings {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shutdown_delay: Duration::ZERO,
            ..Settings::default()
        };
        let mesh = MeshKey::random();
        let server = GrpcServer::builder(&settings)
            .layer(
                AuthLayer::new(verifier)
                    .with_service_tokens(Arc::new(ServiceTokenVerifier::new(mesh.clone()))),
            )
            .add_service(
                module.user_server(),
                vec![runmesh_platform::db::probe(db.clone())],
            )
            .add_service(module.internal_server(), vec![])
            .bind()
            .await
            .unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.serve(shutdown.clone()));
        Self {
            addr,
            module,
            db,
            config: options.config,
            cache,
            database_url,
            mesh,
            shutdown,
            _sqlite: sqlite,
        }
    }

    pub fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_lazy()
    }

    pub fn client(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.channel())
    }

    /// Service tokens of the component `caller`, signed with this harness's mesh key.
    pub fn service_tokens(&self, caller: &str) -> ServiceTokenIssuer {
        ServiceTokenIssuer::new(caller, self.mesh.clone())
    }

    /// `UserInternalService` as another runmesh service (`race`) calls it: with a service token.
    pub fn internal(
        &self,
    ) -> UserInternalServiceClient<InterceptedService<Channel, ServiceCredentials>> {
        UserInternalServiceClient::with_interceptor(
            self.channel(),
            self.service_tokens("race").credentials("user"),
        )
    }

    /// `UserInternalService` without any credentials.
    pub fn anonymous_internal(&self) -> UserInternalServiceClient<Channel> {
        UserInternalServiceClient::new(self.channel())
    }

    /// Signs up `email` with [`PASSWORD`].
    pub async fn sign_up(&self, email: &str) -> proto::SignUpResponse {
        self.client()
            .sign_up(proto::SignUpRequest {
                email: email.to_owned(),
                password: PASSWORD.to_owned(),
                display_name: "Ada".to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
    ) -> Result<proto::SignInResponse, Status> {
        self.client()
            .sign_in(proto::SignInRequest {
                email: email.to_owned(),
                password: password.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<proto::Tokens, Status> {
        self.client()
            .refresh_token(proto::RefreshTokenRequest {
                refresh_token: refresh_token.to_owned(),
            })
            .await
            .map(|response| response.into_inner().tokens.unwrap())
    }

    pub async fn get_me(&self, access_token: &str) -> Result<proto::User, Status> {
        self.client()
            .get_me(authorized(proto::GetMeRequest {}, access_token))
            .await
            .map(|response| response.into_inner().user.unwrap())
    }

    /// Every envelope in the outbox, oldest first.
    pub async fn outbox(&self) -> Vec<Envelope> {
        testkit::outbox_envelopes(&self.db).await
    }

    /// The event types in the outbox, oldest first.
    pub async fn outbox_types(&self) -> Vec<String> {
        testkit::outbox_types(&self.db).await
    }
}

/// `message` with `authorization: Bearer <token>`.
pub fn authorized<T>(message: T, access_token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {access_token}").parse().unwrap(),
    );
    request
}

/// `message` as if forwarded by a proxy for `client`.
pub fn from_client<T>(message: T, client: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-forwarded-for", client.parse().unwrap());
    request
}

/// A fresh address for a test account.
pub fn email() -> String {
    format!("{}@example.org", unique_name("runner"))
}

// Not every test binary that includes this module uses them.
#[allow(unused_imports)]
pub use runmesh_platform::testkit::{assert_status, violated_fields};

/// Relay options that publish promptly in tests.
pub fn fast_relay() -> RelayOptions {
    RelayOptions {
        batch_size: 64,
        poll_interval: Duration::from_millis(100),
    }
}
