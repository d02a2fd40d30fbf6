//! What a service crate exports ([`Service`]) and the one runtime that runs any set of them:
//! `runmesh up` runs all of them in one process, `runmesh serve <name>` one. Both go through
//! [`run`], so there is a single code path from configuration to a draining shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use sea_orm::{DatabaseConnection, DbErr};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{
    AuthLayer, KeySource, MeshKey, ServiceTokenIssuer, ServiceTokenVerifier, StaticKeySource,
    TokenVerifier, VerifierConfig,
};
use crate::cache::{self, SharedCache};
use crate::config::{Settings, redact_url};
use crate::db;
use crate::events::{self, EventBus, LogOptions};
use crate::health::Probe;
use crate::server::{GrpcServer, GrpcServerBuilder};
use crate::telemetry;

/// Everything a service gets from the runtime. Cheap to clone.
#[derive(Clone)]
pub struct ServiceContext {
    /// Short name: `user`, `race`… (database file, cache namespace, event source, logs).
    pub name: &'static str,
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub cache: SharedCache,
    pub bus: EventBus,
    /// Verifies access tokens; the same verifier the server's auth layer uses.
    pub tokens: Arc<TokenVerifier>,
    /// The mesh key: signs the service tokens of this service's calls to internal RPCs
    /// ([`ServiceContext::service_tokens`]) and checks those of calls to its own.
    pub mesh: MeshKey,
    /// Cancelled when the process starts shutting down.
    pub shutdown: CancellationToken,
    /// Background work (relays, consumers, schedulers) the runtime waits for before exiting.
    pub tasks: TaskTracker,
    probes: Vec<Arc<dyn Probe>>,
}

impl ServiceContext {
    /// The dependency probes that decide whether this service is SERVING: its database, and the
    /// cache and event bus when they are external.
    pub fn probes(&self) -> Vec<Arc<dyn Probe>> {
        self.probes.clone()
    }

    /// Service tokens naming this service as the caller, for its calls to other services'
    /// internal RPCs (see [`crate::peer::PeerChannel`]).
    pub fn service_tokens(&self) -> ServiceTokenIssuer {
        ServiceTokenIssuer::new(self.name, self.mesh.clone())
    }
}

/// One runmesh service (`svc-*` crate).
#[async_trait::async_trait]
pub trait Service: Send + Sync {
    /// Short, stable name: `user`, `run`, `social`, `race`, `assist`.
    fn name(&self) -> &'static str;

    /// Brings the service's database up to date (its migrator includes
    /// [`crate::events::migrations`]).
    async fn migrate(&self, db: &DatabaseConnection) -> Result<(), DbErr>;

    /// Where access-token keys come from when this service issues them (svc-user). Called
    /// after migration, before [`start`](Self::start).
    async fn key_source(
        &self,
        _db: &DatabaseConnection,
    ) -> anyhow::Result<Option<Arc<dyn KeySource>>> {
        Ok(None)
    }

    /// Adds the service's gRPC services to `server` (with `ctx.probes()`) and spawns its
    /// background work on `ctx.tasks`, stopping when `ctx.shutdown` fires.
    async fn start(
        &self,
        ctx: ServiceContext,
        server: GrpcServerBuilder,
    ) -> anyhow::Result<GrpcServerBuilder>;
}

/// How [`run`] finds the signing keys when none of its services issues tokens.
pub type RemoteKeys = Option<Arc<dyn KeySource>>;

/// Runs `services` in this process until `shutdown` fires, then drains and returns.
///
/// `metrics_name` is the autometrics `service_name` of the process (one per process).
/// Bound addresses are sent on `ready` once the gRPC and metrics listeners are open.
pub async fn run(
    settings: Settings,
    services: Vec<Arc<dyn Service>>,
    metrics_name: &str,
    remote_keys: RemoteKeys,
    shutdown: CancellationToken,
    ready: Option<tokio::sync::oneshot::Sender<Listening>>,
) -> anyhow::Result<()> {
    let settings = Arc::new(settings);
    telemetry::init(&settings, metrics_name)?;
    let metrics = telemetry::serve_metrics(settings.metrics_addr, shutdown.clone())
        .await
        .with_context(|| format!("serving metrics on {}", settings.metrics_addr))?;

    let bus = match &settings.kafka_brokers {
        Some(brokers) => EventBus::kafka(brokers)?,
        None => EventBus::embedded(LogOptions {
            retention: settings.event_log_retention,
            warn_bytes: settings.event_log_warn_bytes as u64,
            ..LogOptions::default()
        }),
    };
    let tasks = TaskTracker::new();

    let mut prepared = Vec::new();
    let mut issuer_keys = None;
    for service in &services {
        let name = service.name();
        let url =
            db::service_database_url(settings.database_url.as_deref(), &settings.data_dir, name);
        let database = db::connect(&url)
            .await
            .with_context(|| format!("{name}: connecting to {}", redact_url(&url)))?;
        service
            .migrate(&database)
            .await
            .with_context(|| format!("{name}: running migrations"))?;
        let cache =
            cache::connect(settings.redis_url.as_deref(), &format!("runmesh:{name}")).await?;
        if issuer_keys.is_none() {
            issuer_keys = service.key_source(&database).await?;
        }
        prepared.push((service.clone(), database, cache));
    }

    let key_source = issuer_keys.or(remote_keys).unwrap_or_else(|| {
        // Nobody issues tokens here: every bearer token is refused as AUTH_KEYS_UNAVAILABLE.
        Arc::new(StaticKeySource::new(jsonwebtoken::jwk::JwkSet {
            keys: Vec::new(),
        }))
    });
    let tokens = Arc::new(TokenVerifier::new(
        VerifierConfig::new(&settings.jwt_issuer, &settings.jwt_audience),
        key_source,
    )?);

    // Internal RPCs take service tokens signed with the mesh key: RUNMESH_SERVICE_SECRET, or
    // this process's random key (`runmesh serve` refuses to start without the secret).
    let mesh = settings.mesh_key();
    let mut server = GrpcServer::builder(&settings).layer(
        AuthLayer::new(tokens.clone())
            .with_service_tokens(Arc::new(ServiceTokenVerifier::new(mesh.clone()))),
    );
    for (service, database, cache) in prepared {
        let mut probes = vec![db::probe(database.clone())];
        if settings.redis_url.is_some() {
            probes.push(cache::probe(cache.clone(), "redis"));
        }
        if settings.kafka_brokers.is_some() {
            probes.push(bus.probe());
        }
        tasks.spawn(report_failure(bus.spawn_relay(
            service.name(),
            database.clone(),
            shutdown.clone(),
        )));
        let ctx = ServiceContext {
            name: service.name(),
            settings: settings.clone(),
            db: database,
            cache,
            bus: bus.clone(),
            tokens: tokens.clone(),
            mesh: mesh.clone(),
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
            probes,
        };
        server = service
            .start(ctx, server)
            .await
            .with_context(|| format!("{}: starting", service.name()))?;
    }

    if settings.event_audit {
        spawn_audit(&settings, &services, &bus, &tasks, &shutdown).await?;
    }

    let bound = server.bind().await?;
    let listening = Listening {
        grpc: bound.local_addr(),
        metrics: metrics.local_addr(),
    };
    tracing::info!(
        grpc = %listening.grpc,
        metrics = %listening.metrics,
        services = ?services.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "serving"
    );
    if let Some(ready) = ready {
        ready.send(listening).ok();
    }

    bound.serve(shutdown.clone()).await?;
    tasks.close();
    if tokio::time::timeout(settings.shutdown_grace, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not stop within the shutdown grace");
    }
    metrics.stopped().await?;
    Ok(())
}

/// Starts the delivery audit over the events of `services` (see [`events::audit`]).
async fn spawn_audit(
    settings: &Settings,
    services: &[Arc<dyn Service>],
    bus: &EventBus,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    use sea_orm_migration::MigratorTrait;

    let url = db::service_database_url(
        settings.database_url.as_deref(),
        &settings.data_dir,
        events::audit::DATABASE,
    );
    let database = db::connect(&url)
        .await
        .with_context(|| format!("event audit: connecting to {}", redact_url(&url)))?;
    events::audit::Migrator::up(&database, None)
        .await
        .context("event audit: running migrations")?;
    let topics: Vec<String> = services
        .iter()
        .map(|service| events::topic(service.name()))
        .collect();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    tracing::info!(?topics, "event audit on");
    tasks.spawn(report_failure(bus.spawn_consumer(
        events::audit::GROUP,
        &topics,
        database,
        events::audit::handler(),
        shutdown.clone(),
    )));
    Ok(())
}

/// Where a running process listens.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    pub grpc: SocketAddr,
    pub metrics: SocketAddr,
}

/// A background task that panicked was already reported by the panic hook; the runtime only
/// needs to know it ended.
async fn report_failure(task: tokio::task::JoinHandle<()>) {
    if let Err(error) = task.await {
        tracing::error!(%error, "background task failed");
    }
}
