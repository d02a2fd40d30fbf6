//! svc-social: running crews — membership, the crew board (posts, comments, reactions,
//! moderation), group runs (meetups) with RSVP and a waitlist, and the crew feed of members'
//! runs.
//!
//! [`SocialService`] is the [`Service`] the runtime runs (`runmesh up`, `runmesh serve social`).
//! [`SocialModule`] is the same service assembled by hand (tests, the benchmark).
//!
//! - [`crews`]: crews and membership (events svc-run consumes for crew boards and CREWS runs);
//! - [`board`]: posts, comments, reactions, reports with auto-hide at a threshold, exactly once;
//! - [`meetups`]: RSVP under the meetup row's lock, so capacity and waitlist order hold across
//!   replicas; [`watch`] streams changes; [`scheduler`] fires reminders once across replicas;
//! - [`feed`]: members' runs from svc-run's events, never more than each run's owner shared;
//! - [`events`]: the outbox and the consumer of svc-user's and svc-run's events;
//!   [`erasure`]: what `UserDeleted` erases.
//! - [`metrics`]: posts, comments and reports by outcome (docs/operations.md).

pub mod board;
pub mod config;
pub mod core;
pub mod crews;
pub mod domain;
pub mod erasure;
pub mod error;
pub mod events;
pub mod feed;
pub mod grpc;
pub mod meetups;
pub mod metrics;
pub mod scheduler;
pub mod seed;
pub mod store;
pub mod watch;
pub mod wire;

use std::sync::Arc;

use runmesh_platform::cache::SharedCache;
use runmesh_platform::events::{EventBus, EventHandler};
use runmesh_platform::server::GrpcServerBuilder;
use runmesh_platform::service::{Service, ServiceContext};
use runmesh_proto::runmesh::social::v1::crew_service_server::CrewServiceServer;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{SocialConfig, SocialConfigError};
pub use core::Social;
pub use error::Error;
pub use scheduler::MeetupScheduler;

use crate::grpc::SocialApi;
use crate::store::Migrator;
use crate::watch::WatchHub;

/// The service's name: database file, cache namespace, logs.
pub const NAME: &str = "social";

/// Runs svc-social's migrations (and the platform's event tables) on `db`.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// svc-social for the runtime.
#[derive(Debug, Clone, Default)]
pub struct SocialService {
    config: SocialConfig,
}

impl SocialService {
    pub fn new(config: SocialConfig) -> Self {
        metrics::register();
        Self { config }
    }

    /// With `RUNMESH_SOCIAL_*` from the environment.
    pub fn from_env() -> Result<Self, SocialConfigError> {
        Ok(Self::new(SocialConfig::from_env()?))
    }
}

#[async_trait::async_trait]
impl Service for SocialService {
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
        let module = SocialModule::assemble(
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
            SocialModule::events_handler(),
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

/// svc-social assembled: its parts and the tonic service to mount.
#[derive(Clone)]
pub struct SocialModule {
    pub social: Arc<Social>,
    pub scheduler: Arc<MeetupScheduler>,
    watch: Arc<WatchHub>,
}

impl SocialModule {
    /// Assembles the service over a migrated `db`. `bus` is woken after each transaction that
    /// wrote events (the relay itself is the runtime's); watch pollers run on `tasks` until
    /// `shutdown`.
    pub fn assemble(
        db: DatabaseConnection,
        cache: SharedCache,
        bus: Option<EventBus>,
        config: SocialConfig,
        tasks: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Self {
        let scheduler = Arc::new(MeetupScheduler::new(
            db.clone(),
            bus.clone(),
            config.scheduler_interval,
            config.reminder_lead,
        ));
        let watch = Arc::new(WatchHub::new(
            db.clone(),
            config.watch_interval,
            tasks.clone(),
            shutdown.clone(),
        ));
        let social = Arc::new(Social::new(db, cache, bus, config));
        Self {
            social,
            scheduler,
            watch,
        }
    }

    /// `runmesh.social.v1.CrewService`.
    pub fn server(&self) -> CrewServiceServer<SocialApi> {
        CrewServiceServer::new(SocialApi::new(
            Arc::clone(&self.social),
            Arc::clone(&self.watch),
        ))
    }

    /// The meetup scheduler on `tasks`, until `shutdown`.
    pub fn spawn_background(&self, tasks: &TaskTracker, shutdown: &CancellationToken) {
        tasks.spawn(Arc::clone(&self.scheduler).run(shutdown.clone()));
    }

    /// The handler of svc-user's and svc-run's events (consumer group [`events::GROUP`]).
    pub fn events_handler() -> Arc<dyn EventHandler> {
        events::handler()
    }
}
