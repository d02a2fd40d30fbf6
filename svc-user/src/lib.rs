//! svc-user: accounts, sign-up and sign-in, sessions with rotating refresh tokens, the access
//! token issuer (EdDSA JWTs, keys in the database, JWKS), profiles and roles.
//!
//! [`UserModule::start`] builds everything from a database, a cache and the event bus;
//! [`UserModule::user_server`] and [`UserModule::internal_server`] are the tonic services to
//! mount behind an [`AuthLayer`](runmesh_platform::auth::AuthLayer) fed by
//! [`UserModule::key_source`], and [`UserModule::spawn_background`] runs key maintenance,
//! session clean-up and the outbox relay.

pub mod accounts;
pub mod config;
pub mod credentials;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod key_source;
pub mod keys;
pub mod store;
pub mod throttle;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use runmesh_platform::auth::KeySource;
use runmesh_platform::cache::SharedCache;
use runmesh_platform::events::EventBus;
use runmesh_proto::runmesh::user::v1::user_internal_service_server::UserInternalServiceServer;
use runmesh_proto::runmesh::user::v1::user_service_server::UserServiceServer;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use accounts::Accounts;
pub use config::UserConfig;
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

/// The service's name in logs, metrics and the outbox.
pub const NAME: &str = "user";

/// How often keys are checked for rotation (and reloaded from the database).
const KEY_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);
/// How often expired sessions are purged, and how long after expiry.
const SESSION_PURGE_INTERVAL: Duration = Duration::from_secs(3600);
const SESSION_PURGE_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("migrating the user database: {0}")]
    Migrate(#[source] DbErr),
    #[error("preparing the signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("preparing the password hasher: {0}")]
    Hasher(#[from] HashError),
}

/// Runs svc-user's migrations (and the platform's outbox tables) on `db`.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// A started svc-user: its state and the tonic services to mount.
#[derive(Clone)]
pub struct UserModule {
    db: DatabaseConnection,
    accounts: Arc<Accounts>,
    keys: Arc<KeyRing>,
    bus: Option<EventBus>,
}

impl UserModule {
    /// Prepares the signing keys and the password hasher. Run [`migrate`] first. `bus` is woken
    /// after each transaction that wrote events; without one, the relay finds them at its next
    /// poll.
    pub async fn start(
        db: DatabaseConnection,
        cache: SharedCache,
        bus: Option<EventBus>,
        config: &UserConfig,
    ) -> Result<Self, StartError> {
        let keys = Arc::new(KeyRing::open(db.clone(), config.key_policy()).await?);
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
            db.clone(),
            hasher,
            throttle,
            tokens,
            config.session_ttl,
            bus.clone(),
        ));
        Ok(Self {
            db,
            accounts,
            keys,
            bus,
        })
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

    /// Key rotation, expired-session clean-up and (with a bus) the outbox relay, until
    /// `shutdown`.
    pub fn spawn_background(&self, shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
        let mut tasks = vec![
            self.keys
                .spawn_maintenance(KEY_MAINTENANCE_INTERVAL, shutdown.clone()),
            spawn_session_purge(Arc::clone(&self.accounts), shutdown.clone()),
        ];
        if let Some(bus) = &self.bus {
            tasks.push(bus.spawn_relay(events::SOURCE, self.db.clone(), shutdown.clone()));
        }
        tasks
    }
}

fn spawn_session_purge(accounts: Arc<Accounts>, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SESSION_PURGE_INTERVAL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match accounts.purge_expired_sessions(SESSION_PURGE_GRACE).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged expired sessions"),
                Err(err) => tracing::warn!(error = %err, "purging expired sessions failed"),
            }
        }
    })
}

/// Creates an admin account on `db` (migrated), or makes the existing account with this email
/// and password an admin: `runmesh user create-admin --email E --password P`. The password must
/// meet the usual rules.
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
    // Only the password rules and the database are used; tokens and throttling are not.
    let config = UserConfig::default();
    let keys = Arc::new(
        KeyRing::open(db.clone(), config.key_policy())
            .await
            .map_err(Error::from)?,
    );
    let accounts = Accounts::new(
        db.clone(),
        hasher,
        SignInThrottle::new(
            Arc::new(runmesh_platform::cache::MemoryCache::new(NAME)),
            config.sign_in_failures_per_account,
            config.sign_in_failures_per_client,
            config.sign_in_failure_window,
        ),
        AccessTokenIssuer::new(
            keys,
            config.issuer,
            config.audience,
            config.access_token_ttl,
        ),
        config.session_ttl,
        None,
    );
    Ok(accounts.create_admin(email, password).await?)
}

/// Why [`create_admin`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateAdminError {
    #[error("{field} {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Failed(#[from] Error),
}
