//! svc-run: run records — manual entry, GPX/TCX/FIT import and analysis, the original files,
//! best efforts and personal records, stats.
//!
//! [`RunService`] is the [`Service`] the runtime runs (`runmesh up`, `runmesh serve run`).
//! [`RunModule`] is the same service assembled by hand (tests).
//!
//! - [`domain`]: the analysis as pure functions (parsing, distance, times, elevation, splits,
//!   best efforts, streams, manual-entry rules);
//! - [`runs`]: the operations over the database, with ownership and visibility;
//! - [`events`]: `RunRecorded`/`RunUpdated`/`RunDeleted`/`PersonalRecordSet` through the outbox,
//!   and the consumer of svc-user's events (the runner profile projection; `UserDeleted` erases
//!   the runner's runs).
//!
//! - [`archive`]: the Strava bulk-export import, in the background, resumed after a restart.
//! - [`metrics`]: imports by source, format and outcome, their failures by reason, exports being
//!   imported (docs/operations.md).
//!
//! - [`boards`], [`progress`], [`rankings`]: leaderboards (database truth, Redis fast path),
//!   badges defined as data, goals, challenges and race results linked to registrations
//!   (`RankingService`), fed by svc-social's crew and svc-race's registration events.
//! - [`recap`], [`card`]: week, month and year recaps of a runner or a crew and their image
//!   cards (`RecapService`); [`recap_notices`]: `RecapReady` when last week's (Monday 08:00 in
//!   the runner's time zone) or the year's (December 15) recap is ready, once per runner.

pub mod archive;
pub mod boards;
pub mod card;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod metrics;
pub mod progress;
pub mod ranking_grpc;
pub mod rankings;
pub mod recap;
pub mod recap_grpc;
pub mod recap_notices;
pub mod runs;
pub mod store;
pub mod wire;

use std::sync::Arc;

use runmesh_platform::cache::SharedCache;
use runmesh_platform::events::{EventBus, EventHandler};
use runmesh_platform::server::GrpcServerBuilder;
use runmesh_platform::service::{Service, ServiceContext};
use runmesh_proto::runmesh::run::v1::ranking_service_server::RankingServiceServer;
use runmesh_proto::runmesh::run::v1::recap_service_server::RecapServiceServer;
use runmesh_proto::runmesh::run::v1::run_service_server::RunServiceServer;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use archive::Archives;
pub use boards::Boards;
pub use config::{RunConfig, RunConfigError};
pub use error::Error;
pub use rankings::Rankings;
pub use recap::Recaps;
pub use recap_notices::RecapNotices;
pub use runs::Runs;

use crate::grpc::RunApi;
use crate::ranking_grpc::RankingApi;
use crate::recap_grpc::RecapApi;
use crate::store::Migrator;

/// The service's name: database file, cache namespace, logs.
pub const NAME: &str = "run";

/// Runs svc-run's migrations (and the platform's event tables) on `db`.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Rebuilds every live board (current and in-grace periods) from the database into the cache:
/// what an operator runs after replacing Redis (readers also rebuild a period whose marker is
/// gone by themselves). Answers how many periods were rebuilt.
pub async fn rebuild_boards(
    db: DatabaseConnection,
    cache: SharedCache,
    config: &RunConfig,
) -> Result<usize, Error> {
    Boards::new(db, cache, config).rebuild_all().await
}

/// svc-run for the runtime.
#[derive(Debug, Clone, Default)]
pub struct RunService {
    config: RunConfig,
}

impl RunService {
    pub fn new(config: RunConfig) -> Self {
        metrics::register();
        Self { config }
    }

    /// With `RUNMESH_RUN_*` from the environment.
    pub fn from_env() -> Result<Self, RunConfigError> {
        Ok(Self::new(RunConfig::from_env()?))
    }
}

#[async_trait::async_trait]
impl Service for RunService {
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
        let mut config = self.config.clone();
        config.archive_dir = ctx.settings.data_dir.join("run-imports");
        let module = RunModule::assemble_with(
            ctx.db.clone(),
            Some(ctx.bus.clone()),
            ctx.cache.clone(),
            config,
            ctx.tasks.clone(),
            ctx.shutdown.clone(),
        );
        module.archives.resume().await?;
        ctx.tasks
            .spawn(Arc::clone(&module.recap_notices).run(ctx.shutdown.clone()));
        let topics = events::consumed_topics();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        ctx.tasks.spawn(ctx.bus.spawn_consumer(
            events::GROUP,
            &topics,
            ctx.db.clone(),
            module.events_handler(),
            ctx.shutdown.clone(),
        ));
        let max_message_bytes = server.max_message_bytes();
        Ok(server
            .add_service(
                module
                    .server()
                    .max_decoding_message_size(max_message_bytes)
                    .max_encoding_message_size(max_message_bytes),
                ctx.probes(),
            )
            .add_service(module.ranking_server(), ctx.probes())
            .add_service(module.recap_server(), ctx.probes()))
    }
}

/// svc-run assembled: its parts and the tonic service to mount.
#[derive(Clone)]
pub struct RunModule {
    pub runs: Arc<Runs>,
    pub archives: Arc<Archives>,
    pub rankings: Arc<Rankings>,
    pub boards: Arc<Boards>,
    pub recaps: Arc<Recaps>,
    /// `RecapReady` notices; [`RunService`] runs [`RecapNotices::run`], tests call
    /// [`RecapNotices::publish_due`] with the instant they want.
    pub recap_notices: Arc<RecapNotices>,
}

impl RunModule {
    /// Assembles the service over a migrated `db`; `bus` is woken after each transaction that
    /// wrote events (the relay itself is the runtime's).
    pub fn assemble(
        db: DatabaseConnection,
        bus: Option<EventBus>,
        cache: SharedCache,
        config: RunConfig,
    ) -> Self {
        Self::assemble_with(
            db,
            bus,
            cache,
            config,
            TaskTracker::new(),
            CancellationToken::new(),
        )
    }

    /// [`RunModule::assemble`] with archive imports run on `tasks` and stopped by `shutdown`
    /// (call [`Archives::resume`] to start again those an earlier process left unfinished).
    pub fn assemble_with(
        db: DatabaseConnection,
        bus: Option<EventBus>,
        cache: SharedCache,
        config: RunConfig,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let boards = Arc::new(Boards::new(db.clone(), cache, &config));
        let rankings = Arc::new(Rankings::new(
            db.clone(),
            bus.clone(),
            config.clone(),
            Arc::clone(&boards),
        ));
        let recaps = Arc::new(Recaps::new(db.clone(), config.clone()));
        let recap_notices = Arc::new(RecapNotices::new(
            db.clone(),
            bus.clone(),
            Arc::clone(&recaps),
            &config,
        ));
        let runs = Arc::new(Runs::new(db, bus, config, Arc::clone(&boards)));
        let archives = Arc::new(Archives::new(Arc::clone(&runs), tasks, shutdown));
        Self {
            runs,
            archives,
            rankings,
            boards,
            recaps,
            recap_notices,
        }
    }

    /// `runmesh.run.v1.RecapService`.
    pub fn recap_server(&self) -> RecapServiceServer<RecapApi> {
        RecapServiceServer::new(RecapApi::new(Arc::clone(&self.recaps)))
    }

    /// `runmesh.run.v1.RankingService`.
    pub fn ranking_server(&self) -> RankingServiceServer<RankingApi> {
        RankingServiceServer::new(RankingApi::new(Arc::clone(&self.rankings)))
    }

    /// The handler of every topic svc-run consumes ([`events::consumed_topics`], group
    /// [`events::GROUP`]).
    pub fn events_handler(&self) -> Arc<dyn EventHandler> {
        events::consumer(self.rankings.config().clone(), Arc::clone(&self.boards))
    }

    /// `runmesh.run.v1.RunService`.
    pub fn server(&self) -> RunServiceServer<RunApi> {
        RunServiceServer::new(RunApi::new(
            Arc::clone(&self.runs),
            Arc::clone(&self.archives),
        ))
    }

    /// The handler of svc-user's events (consumer group [`events::GROUP`]).
    pub fn user_events_handler() -> Arc<dyn EventHandler> {
        events::user_events_handler()
    }
}
