//! svc-race: the race catalog and registration that survives a flash crowd.
//!
//! [`RaceService`] is the [`Service`] the runtime runs (`runmesh up`, `runmesh serve race`).
//! [`RaceModule`] is the same service assembled by hand (tests, the benchmark).
//!
//! How registration keeps its invariants (details in [`gate`] and [`registrations`]):
//! - an atomic Redis script, the gate, answers duplicates and sold-out attempts without the
//!   database and reserves a place for each runner it admits;
//! - PostgreSQL is the source of truth: a registration and its event are written in one
//!   transaction, and unique indexes hold one registration per runner and race and each place
//!   and bib once (confirmed places are `1..=capacity`, so capacity is never exceeded);
//! - a failed write releases its reservation; a writer that crashed has its reservation
//!   settled against the database by the maintenance loop;
//! - when Redis lost the gate's data, the gate is rebuilt from PostgreSQL (under a lock, by one
//!   replica) before anyone is admitted.
//!
//! It consumes svc-run's events ([`events::consumer`]) to show on each registration the run
//! linked as its result ([`results`]).

pub mod catalog;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod gate;
pub mod grpc;
pub mod metrics;
pub mod registrations;
pub mod results;
pub mod scheduler;
pub mod store;
pub mod watch;
pub mod wire;

use std::sync::Arc;

use runmesh_platform::cache::SharedCache;
use runmesh_platform::events::EventBus;
use runmesh_platform::server::GrpcServerBuilder;
use runmesh_platform::service::{Service, ServiceContext};
use runmesh_proto::runmesh::race::v1::race_service_server::RaceServiceServer;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use catalog::Catalog;
pub use config::{RaceConfig, RaceConfigError};
pub use error::Error;
pub use gate::Gate;
pub use registrations::Registrar;
pub use scheduler::OpeningScheduler;

use crate::grpc::RaceApi;
use crate::store::Migrator;
use crate::watch::WatchHub;

/// The service's name: database file, cache namespace, logs.
pub const NAME: &str = "race";

/// Runs svc-race's migrations (and the platform's event tables) on `db`.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// svc-race for the runtime.
#[derive(Debug, Clone, Default)]
pub struct RaceService {
    config: RaceConfig,
}

impl RaceService {
    pub fn new(config: RaceConfig) -> Self {
        metrics::register();
        Self { config }
    }

    /// With `RUNMESH_RACE_*` from the environment.
    pub fn from_env() -> Result<Self, RaceConfigError> {
        Ok(Self::new(RaceConfig::from_env()?))
    }
}

#[async_trait::async_trait]
impl Service for RaceService {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn migrate(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        migrate(db).await
    }

    async fn start(
        &self,
        ctx: ServiceContext,
        server: GrpcServerBuilder,
    ) -> anyhow::Result<GrpcServerBuilder> {
        let module = RaceModule::assemble(
            ctx.db.clone(),
            ctx.cache.clone(),
            Some(ctx.bus.clone()),
            self.config.clone(),
            &ctx.tasks,
            &ctx.shutdown,
        );
        module.spawn_background(&ctx.tasks, &ctx.shutdown);
        let topics = events::consumed_topics();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        ctx.tasks.spawn(ctx.bus.spawn_consumer(
            events::GROUP,
            &topics,
            ctx.db.clone(),
            events::consumer(),
            ctx.shutdown.clone(),
        ));
        let max_message_bytes = server.max_message_bytes();
        Ok(server.add_service(
            module
                .server()
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
            ctx.probes(),
        ))
    }
}

/// svc-race assembled: its parts and the tonic service to mount.
#[derive(Clone)]
pub struct RaceModule {
    pub catalog: Arc<Catalog>,
    pub registrar: Arc<Registrar>,
    pub gate: Arc<Gate>,
    pub scheduler: Arc<OpeningScheduler>,
    watch: Arc<WatchHub>,
}

impl RaceModule {
    /// Assembles the service over a migrated `db`. `bus` is woken after each transaction that
    /// wrote events (the relay itself is the runtime's); watch pollers run on `tasks` until
    /// `shutdown`.
    pub fn assemble(
        db: DatabaseConnection,
        cache: SharedCache,
        bus: Option<EventBus>,
        config: RaceConfig,
        tasks: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Self {
        let gate = Arc::new(Gate::new(cache.clone(), db.clone()));
        let catalog = Arc::new(Catalog::new(
            db.clone(),
            bus.clone(),
            Arc::clone(&gate),
            config.race_cache_ttl,
            config.watch_interval,
        ));
        let scheduler = Arc::new(OpeningScheduler::new(
            db.clone(),
            bus.clone(),
            config.scheduler_interval,
        ));
        let watch = Arc::new(WatchHub::new(
            Arc::clone(&catalog),
            config.watch_interval,
            tasks.clone(),
            shutdown.clone(),
        ));
        // SQLite takes one writer at a time: more writers would only hold the small pool's
        // connections waiting for its lock, while grouped writes keep one writer fed.
        let config = match db.get_database_backend() {
            sea_orm::DbBackend::Sqlite => RaceConfig {
                write_concurrency: 1,
                ..config
            },
            _ => config,
        };
        let registrar = Arc::new(Registrar::new(
            db,
            cache,
            bus,
            Arc::clone(&catalog),
            Arc::clone(&gate),
            config,
        ));
        Self {
            catalog,
            registrar,
            gate,
            scheduler,
            watch,
        }
    }

    /// `runmesh.race.v1.RaceService`.
    pub fn server(&self) -> RaceServiceServer<RaceApi> {
        RaceServiceServer::new(RaceApi::new(
            Arc::clone(&self.catalog),
            Arc::clone(&self.registrar),
            Arc::clone(&self.watch),
        ))
    }

    /// The opening scheduler and the registration maintenance loop on `tasks`, until `shutdown`.
    pub fn spawn_background(&self, tasks: &TaskTracker, shutdown: &CancellationToken) {
        tasks.spawn(Arc::clone(&self.scheduler).run(shutdown.clone()));
        tasks.spawn(Arc::clone(&self.registrar).maintain(shutdown.clone()));
    }
}
