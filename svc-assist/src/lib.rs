//! svc-assist: notifications (and, later, the assistant).
//!
//! [`AssistService`] is the [`Service`] the runtime runs (`runmesh up`, `runmesh serve assist`).
//! [`NotifyModule`] is the notification part assembled by hand (tests, the benchmark).
//!
//! How a notification travels (details in [`notify`]):
//! - the consumer ([`events`]) turns each domain event into notifications for the right runners,
//!   rendered from templates in their language and time zone, and writes in the consumer's
//!   transaction the inbox entry and the Slack delivery row, both unique per recipient and
//!   event — a redelivered event or a restart writes nothing twice;
//! - the delivery worker (one per process, any number of replicas) claims due deliveries under
//!   a lease, keeps each DM channel at ≤ 1 message/s and the workspace under its rate, and
//!   settles each Slack answer: sent, retried with backoff, held (rate limited, token refused),
//!   failed, or AMBIGUOUS when the answer was lost after the request left (never resent);
//! - the inbox is read, marked and watched live through `runmesh.notify.v1.NotificationService`.

pub mod assistant;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod metrics;
pub mod notify;
pub mod store;
pub mod wire;

use std::sync::Arc;

use runmesh_platform::events::EventHandler;
use runmesh_platform::server::GrpcServerBuilder;
use runmesh_platform::service::{Service, ServiceContext};
use runmesh_proto::runmesh::notify::v1::notification_service_server::NotificationServiceServer;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{AssistConfig, AssistConfigError};
pub use error::Error;

use crate::domain::Templates;
use crate::grpc::NotifyApi;
use crate::notify::slack::SlackClient;
use crate::notify::{DeliveryWorker, Inbox, Planner, WatchHub, Workspace};
use crate::store::Migrator;

/// The service's name: database file, cache namespace, logs.
pub const NAME: &str = "assist";

/// Runs svc-assist's migrations (and the platform's event tables) on `db`.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// svc-assist for the runtime.
#[derive(Debug, Clone, Default)]
pub struct AssistService {
    config: AssistConfig,
}

impl AssistService {
    pub fn new(config: AssistConfig) -> Self {
        metrics::register();
        Self { config }
    }

    /// With `RUNMESH_SLACK_*`, `RUNMESH_PUBLIC_BASE_URL` and `RUNMESH_NOTIFY_*` from the
    /// environment.
    pub fn from_env() -> Result<Self, AssistConfigError> {
        Ok(Self::new(AssistConfig::from_env()?))
    }
}

#[async_trait::async_trait]
impl Service for AssistService {
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
        let module = NotifyModule::assemble(
            ctx.db.clone(),
            self.config.clone(),
            &ctx.tasks,
            &ctx.shutdown,
        )?;
        module.spawn_background(&ctx.tasks, &ctx.shutdown);
        let topics = events::topics();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        ctx.tasks.spawn(ctx.bus.spawn_consumer(
            events::GROUP,
            &topics,
            ctx.db.clone(),
            module.events_handler(),
            ctx.shutdown.clone(),
        ));
        let server = assistant::mount(&ctx, server)?;
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

/// Notifications assembled: their parts and the tonic service to mount.
#[derive(Clone)]
pub struct NotifyModule {
    pub inbox: Arc<Inbox>,
    pub planner: Arc<Planner>,
    pub workspace: Arc<Workspace>,
    /// `None` when Slack delivery is off.
    pub worker: Option<Arc<DeliveryWorker>>,
    watch: Arc<WatchHub>,
    wake: Arc<Notify>,
}

impl NotifyModule {
    /// Assembles notifications over a migrated `db`; watch pollers run on `tasks` until
    /// `shutdown`. Fails on a template override that does not compile or a Slack client that
    /// cannot be built.
    pub fn assemble(
        db: DatabaseConnection,
        config: AssistConfig,
        tasks: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let templates = Arc::new(Templates::load(config.notify_templates.as_deref())?);
        let token = config.slack_bot_token.clone();
        let workspace = Arc::new(Workspace::new(token.as_ref().map(|t| t.expose())));
        let wake = Arc::new(Notify::new());
        let worker = match token {
            Some(token) => {
                tracing::info!(api = %config.slack_api_url, "Slack delivery is on");
                let slack =
                    SlackClient::new(&config.slack_api_url, token, config.notify_slack_timeout)?;
                Some(Arc::new(DeliveryWorker::new(
                    db.clone(),
                    slack,
                    Arc::clone(&workspace),
                    Arc::clone(&templates),
                    Arc::clone(&wake),
                    &config,
                )))
            }
            None => {
                tracing::info!(
                    "Slack delivery is off: RUNMESH_SLACK_BOT_TOKEN is not set (inbox only)"
                );
                None
            }
        };
        let planner = Arc::new(Planner::new(
            templates,
            worker.is_some(),
            config.base_url().map(str::to_owned),
        ));
        let inbox = Arc::new(Inbox::new(
            db,
            Arc::clone(&planner),
            Arc::clone(&workspace),
            Arc::clone(&wake),
        ));
        let watch = Arc::new(WatchHub::new(
            Arc::clone(&inbox),
            config.notify_watch_interval,
            tasks.clone(),
            shutdown.clone(),
        ));
        Ok(Self {
            inbox,
            planner,
            workspace,
            worker,
            watch,
            wake,
        })
    }

    /// `runmesh.notify.v1.NotificationService`.
    pub fn server(&self) -> NotificationServiceServer<NotifyApi> {
        NotificationServiceServer::new(NotifyApi::new(
            Arc::clone(&self.inbox),
            Arc::clone(&self.watch),
        ))
    }

    /// The handler of the consumed topics (consumer group [`events::GROUP`]).
    pub fn events_handler(&self) -> Arc<dyn EventHandler> {
        events::handler(Arc::clone(&self.planner), Arc::clone(&self.wake))
    }

    /// The delivery worker on `tasks`, until `shutdown` (nothing when Slack is off).
    pub fn spawn_background(&self, tasks: &TaskTracker, shutdown: &CancellationToken) {
        if let Some(worker) = &self.worker {
            tasks.spawn(Arc::clone(worker).run(shutdown.clone()));
        }
    }
}
