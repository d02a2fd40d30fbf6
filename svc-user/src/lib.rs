//! svc-user: accounts, sign-up and sign-in, sessions with rotating refresh tokens, the access
//! token issuer (EdDSA JWTs, keys in the database, JWKS), profiles and roles.
//!
//! [`UserService`] is the [`Service`] the runtime runs. [`UserModule`] is the same service
//! assembled by hand (tests, benchmarks): its tonic services go behind an
//! [`AuthLayer`](runmesh_platform::auth::AuthLayer) fed by [`UserModule::key_source`].
//! Other services verify tokens with [`GrpcKeySource`]; `runmesh user create-admin` calls
//! [`create_admin`].

pub mod accounts;
pub mod config;
pub mod credentials;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod key_source;
pub mod keys;
pub mod metrics;
pub mod store;
pub mod throttle;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use runmesh_platform::auth::KeySource;
use runmesh_platform::cache::SharedCache;
use runmesh_platform::events::EventBus;
use runmesh_platform::server::GrpcServerBuilder;
use runmesh_platform::service::{Service, ServiceContext};
use runmesh_proto::runmesh::user::v1::user_internal_service_server::UserInternalServiceServer;
use runmesh_proto::runmesh::user::v1::user_service_server::UserServiceServer;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait as _;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use accounts::Accounts;
pub use config::{UserConfig, UserConfigError};
pub use error::Error;
pub use key_source::GrpcKeySource;
pub use keys::KeyRing;

use crate::credentials::{HashError, PasswordHasher};
use crate::domain::{Email, NewPassword};
use crate::grpc::{UserApi, UserInternalApi};
use crate::keys::KeyError;
use crate::store::Migrator;
use crate::throttle::SignInThrottle;
use crate::tokens::AccessTokenIssuer;

/// The service's name: database file, cache namespace, logs.
pub const NAME: &str = "user";

/// How often keys are checked for rotation (and reloaded from the database).
const KEY_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);
/// How often expired sessions are purged, and how long after expiry.
const SESSION_PURGE_INTERVAL: Duration = Duration::from_secs(3600);
const SESSION_PURGE_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Runs svc-user's migrations (and the platform's outbox tables) on `db`.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// svc-user for the runtime (`runmesh up`, `runmesh serve user`).
pub struct UserService {
    config: UserConfig,
    keys: OnceCell<Arc<KeyRing>>,
}

impl UserService {
    pub fn new(config: UserConfig) -> Self {
        metrics::register();
        Self {
            config,
            keys: OnceCell::new(),
        }
    }

    /// With `RUNMESH_USER_*` from the environment and the token issuer/audience of `settings`.
    pub fn from_env(
        settings: &runmesh_platform::config::Settings,
    ) -> Result<Self, UserConfigError> {
        Ok(Self::new(UserConfig::from_env(settings)?))
    }

    async fn key_ring(&self, db: &DatabaseConnection) -> Result<Arc<KeyRing>, KeyError> {
        self.keys
            .get_or_try_init(|| async {
                KeyRing::open(db.clone(), self.config.key_policy())
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }
}

#[async_trait::async_trait]
impl Service for UserService {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn migrate(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        migrate(db).await
    }

    /// svc-user issues the tokens: its own key ring is the process's key source.
    async fn key_source(
        &self,
        db: &DatabaseConnection,
    ) -> anyhow::Result<Option<Arc<dyn KeySource>>> {
        let keys = self.key_ring(db).await?;
        Ok(Some(keys as Arc<dyn KeySource>))
    }

    async fn start(
        &self,
        ctx: ServiceContext,
        server: GrpcServerBuilder,
    ) -> anyhow::Result<GrpcServerBuilder> {
        let mut config = self.config.clone();
        config.issuer.clone_from(&ctx.settings.jwt_issuer);
        config.audience.clone_from(&ctx.settings.jwt_audience);
        let keys = self.key_ring(&ctx.db).await?;
        let module = UserModule::assemble(
            ctx.db.clone(),
            ctx.cache.clone(),
            Some(ctx.bus.clone()),
            &config,
            keys,
        )
        .await?;
        module.spawn_background(&ctx.tasks, &ctx.shutdown);
        let max_message_bytes = server.max_message_bytes();
        Ok(server
            .add_service(
                module
                    .user_server()
                    .max_decoding_message_size(max_message_bytes)
                    .max_encoding_message_size(max_message_bytes),
                ctx.probes(),
            )
            .add_service(
                module
                    .internal_server()
                    .max_decoding_message_size(max_message_bytes)
                    .max_encoding_message_size(max_message_bytes),
                ctx.probes(),
            ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("preparing the signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("preparing the password hasher: {0}")]
    Hasher(#[from] HashError),
}

/// svc-user assembled: its state and the tonic services to mount.
#[derive(Clone)]
pub struct UserModule {
    accounts: Arc<Accounts>,
    keys: Arc<KeyRing>,
}

impl UserModule {
    /// Prepares the signing keys and the password hasher on a migrated `db`. `bus` is woken
    /// after each transaction that wrote events (the relay itself is the runtime's).
    pub async fn start(
        db: DatabaseConnection,
        cache: SharedCache,
        bus: Option<EventBus>,
        config: &UserConfig,
    ) -> Result<Self, StartError> {
        let keys = Arc::new(KeyRing::open(db.clone(), config.key_policy()).await?);
        Self::assemble(db, cache, bus, config, keys).await
    }

    async fn assemble(
        db: DatabaseConnection,
        cache: SharedCache,
        bus: Option<EventBus>,
        config: &UserConfig,
        keys: Arc<KeyRing>,
    ) -> Result<Self, StartError> {
        let concurrency = usize::try_from(config.password_hash_concurrency).unwrap_or(usize::MAX);
        let hasher = PasswordHasher::new(concurrency).await?;
        let throttle = SignInThrottle::new(
            cache,
            config.sign_in_failures_per_account,
            config.sign_in_failures_per_client,
            config.sign_in_failure_window,
        );
        let tokens = AccessTokenIssuer::new(
            Arc::clone(&keys),
            config.issuer.clone(),
            config.audience.clone(),
            config.access_token_ttl,
        );
        let accounts = Arc::new(Accounts::new(
            db,
            hasher,
            throttle,
            tokens,
            config.session_ttl,
            bus,
        ));
        Ok(Self { accounts, keys })
    }

    /// `runmesh.user.v1.UserService`.
    pub fn user_server(&self) -> UserServiceServer<UserApi> {
        UserServiceServer::new(UserApi::new(Arc::clone(&self.accounts)))
    }

    /// `runmesh.user.v1.UserInternalService` (not for the edge).
    pub fn internal_server(&self) -> UserInternalServiceServer<UserInternalApi> {
        UserInternalServiceServer::new(UserInternalApi::new(
            Arc::clone(&self.accounts),
            Arc::clone(&self.keys),
        ))
    }

    /// The public keys, in process: for the auth layer of this process's gRPC server.
    pub fn key_source(&self) -> Arc<dyn KeySource> {
        Arc::clone(&self.keys) as Arc<dyn KeySource>
    }

    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    pub fn accounts(&self) -> &Arc<Accounts> {
        &self.accounts
    }

    /// Key rotation and expired-session clean-up on `tasks`, until `shutdown`.
    pub fn spawn_background(&self, tasks: &TaskTracker, shutdown: &CancellationToken) {
        tasks.spawn(
            Arc::clone(&self.keys).maintain_every(KEY_MAINTENANCE_INTERVAL, shutdown.clone()),
        );
        tasks.spawn(Arc::clone(&self.accounts).purge_expired_sessions_every(
            SESSION_PURGE_INTERVAL,
            SESSION_PURGE_GRACE,
            shutdown.clone(),
        ));
    }
}

/// Creates an admin account on `db` (migrated), or makes the existing account with this email
/// and password an admin: `runmesh user create-admin --email E --password P`. The password must
/// meet the usual rules; a different password for an existing email is refused.
pub async fn create_admin(
    db: &DatabaseConnection,
    email: &str,
    password: &str,
) -> Result<store::user::Model, CreateAdminError> {
    let email = Email::parse(email).map_err(|rejected| CreateAdminError::Invalid {
        field: "email",
        reason: rejected.0,
    })?;
    let password = NewPassword::parse(password).map_err(|rejected| CreateAdminError::Invalid {
        field: "password",
        reason: rejected.0,
    })?;
    let hasher = PasswordHasher::new(1).await.map_err(Error::from)?;
    Ok(accounts::create_admin(db, &hasher, email, password).await?)
}

/// Why [`create_admin`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateAdminError {
    #[error("{field} {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Failed(#[from] Error),
}
