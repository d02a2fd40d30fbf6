//! Spawns svc-assist for tests the way a process runs it: on its own tokio runtime (so a test
//! can kill it mid-delivery, as kill -9 would, or stop it gracefully), with the embedded event
//! bus reading a publisher database's outbox (svc-race's migrations; events written with
//! svc-race's own `events::enqueue`), the delivery worker talking to the Slack-compatible
//! [`slack::SlackServer`], and the gRPC API behind the platform's auth layer. PostgreSQL (fresh
//! database per test) or SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod slack;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::{Message, Name};
use runmesh_platform::auth::{AuthLayer, TokenVerifier, VerifierConfig};
use runmesh_platform::config::Settings;
use runmesh_platform::events::{self, EventBus, LogOptions};
use runmesh_platform::server::GrpcServer;
use runmesh_platform::testkit::{TestDatabase, TestIssuer, TestSqlite};
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::notify::v1 as proto;
use runmesh_proto::runmesh::notify::v1::notification_service_client::NotificationServiceClient;
use runmesh_proto::runmesh::race::v1 as race_proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use runmesh_svc_assist::config::Secret;
use runmesh_svc_assist::{AssistConfig, NotifyModule};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;

#[allow(unused_imports)]
pub use slack::{Answer, SlackServer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
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

/// Settings with time compressed: fast polls, short leases and retries.
pub fn config(slack: &SlackServer) -> AssistConfig {
    AssistConfig {
        slack_bot_token: Some(Secret::new(slack::TOKEN)),
        slack_api_url: slack.url(),
        public_base_url: Some("https://runmesh.example".to_owned()),
        notify_workspace_rate: 1000,
        notify_retry_min_delay: Duration::from_millis(100),
        notify_retry_max_delay: Duration::from_millis(400),
        notify_retry_attempts: 40,
        notify_retry_window: Duration::from_secs(60),
        notify_poll_interval: Duration::from_millis(50),
        // Generous: on a loaded machine a slow answer would be a lost one (AMBIGUOUS, never
        // resent). Tests about timeouts and leases set their own.
        notify_slack_timeout: Duration::from_secs(10),
        notify_lease: Duration::from_secs(12),
        notify_watch_interval: Duration::from_millis(100),
        ..AssistConfig::default()
    }
}

/// One running svc-assist "process".
struct Process {
    runtime: tokio::runtime::Runtime,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

pub struct Harness {
    pub backend: Backend,
    pub slack: SlackServer,
    /// svc-assist's database, for assertions.
    pub db: DatabaseConnection,
    /// The publisher's database (svc-race's schema): its outbox is the event source.
    pub publisher: DatabaseConnection,
    pub issuer: Arc<TestIssuer>,
    pub addr: SocketAddr,
    pub config: AssistConfig,
    assist_url: String,
    publisher_url: String,
    process: Option<Process>,
    _sqlite: Vec<TestSqlite>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            process.shutdown.cancel();
            process.runtime.shutdown_background();
        }
    }
}

async fn database(backend: Backend, keep: &mut Vec<TestSqlite>) -> String {
    match backend {
        Backend::Postgres => TestDatabase::create().await.unwrap().url,
        Backend::Embedded => {
            let sqlite = TestSqlite::create().unwrap();
            let url = sqlite.url.clone();
            keep.push(sqlite);
            url
        }
    }
}

impl Harness {
    pub async fn start(backend: Backend) -> Self {
        let slack = SlackServer::start().await;
        let config = config(&slack);
        Self::start_with(backend, slack, config).await
    }

    pub async fn start_with(backend: Backend, slack: SlackServer, config: AssistConfig) -> Self {
        let mut keep = Vec::new();
        let assist_url = database(backend, &mut keep).await;
        let publisher_url = database(backend, &mut keep).await;
        let db = runmesh_platform::db::connect(&assist_url).await.unwrap();
        runmesh_svc_assist::migrate(&db).await.unwrap();
        let publisher = runmesh_platform::db::connect(&publisher_url).await.unwrap();
        runmesh_svc_race::migrate(&publisher).await.unwrap();
        let issuer = Arc::new(TestIssuer::new());
        let mut harness = Self {
            backend,
            slack,
            db,
            publisher,
            issuer,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            config,
            assist_url,
            publisher_url,
            process: None,
            _sqlite: keep,
        };
        harness.boot().await;
        harness
    }

    async fn boot(&mut self) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let (assist_url, publisher_url, config, issuer) = (
            self.assist_url.clone(),
            self.publisher_url.clone(),
            self.config.clone(),
            Arc::clone(&self.issuer),
        );
        let (stop, work) = (shutdown.clone(), tasks.clone());
        let addr = runtime
            .spawn(async move {
                let db = runmesh_platform::db::connect(&assist_url).await.unwrap();
                let publisher = runmesh_platform::db::connect(&publisher_url).await.unwrap();
                let bus = EventBus::embedded(LogOptions {
                    poll_interval: Duration::from_millis(50),
                    ..LogOptions::default()
                });
                let relay = bus.spawn_relay("race", publisher, stop.clone());
                work.spawn(async move {
                    relay.await.ok();
                });
                let module = NotifyModule::assemble(db.clone(), config, &work, &stop).unwrap();
                module.spawn_background(&work, &stop);
                let topics = runmesh_svc_assist::events::topics();
                let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
                let consumer = bus.spawn_consumer(
                    runmesh_svc_assist::events::GROUP,
                    &topics,
                    db,
                    module.events_handler(),
                    stop.clone(),
                );
                work.spawn(async move {
                    consumer.await.ok();
                });
                let mut verifier_config =
                    VerifierConfig::new(issuer.issuer.clone(), issuer.audience.clone());
                verifier_config.min_refresh_interval = Duration::ZERO;
                let verifier =
                    Arc::new(TokenVerifier::new(verifier_config, issuer.key_source()).unwrap());
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
                tokio::spawn(server.serve(stop));
                addr
            })
            .await
            .unwrap();
        self.addr = addr;
        self.process = Some(Process {
            runtime,
            shutdown,
            tasks,
        });
    }

    /// Kills the process at once (every task dropped at its next await, as kill -9 would), and
    /// starts a new one on the same databases.
    pub async fn kill_and_restart(&mut self) {
        if let Some(process) = self.process.take() {
            process.runtime.shutdown_background();
        }
        self.boot().await;
    }

    /// Stops the process gracefully (in-flight sends finish) and starts a new one.
    pub async fn restart(&mut self) {
        if let Some(process) = self.process.take() {
            process.shutdown.cancel();
            process.tasks.close();
            let tasks = process.tasks.clone();
            process
                .runtime
                .spawn(async move { tasks.wait().await })
                .await
                .ok();
            process.runtime.shutdown_background();
        }
        self.boot().await;
    }

    pub fn client(&self) -> NotificationServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_lazy();
        NotificationServiceClient::new(channel)
    }

    pub fn as_user<T>(&self, message: T, user_id: &str) -> tonic::Request<T> {
        self.as_roles(message, user_id, &["runner"])
    }

    pub fn as_roles<T>(&self, message: T, user_id: &str, roles: &[&str]) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            self.issuer.bearer(user_id, roles).parse().unwrap(),
        );
        request
    }

    /// Writes `envelope` to the publisher's outbox on `domain`'s topic.
    pub async fn publish_envelope(&self, domain: &str, envelope: &Envelope) {
        events::enqueue(&self.publisher, &events::topic(domain), envelope)
            .await
            .unwrap();
    }

    /// Publishes `event` on `domain`'s topic; returns its envelope.
    pub async fn publish<E: Message + Name>(
        &self,
        domain: &str,
        aggregate: &str,
        event: &E,
    ) -> Envelope {
        let envelope = events::new_envelope(&format!("svc-{domain}"), aggregate, event);
        self.publish_envelope(domain, &envelope).await;
        envelope
    }

    /// A runner exists (svc-user's `UserRegistered`), with a Slack id when given.
    pub async fn runner(&self, user_id: &str, slack_member_id: &str) {
        self.publish(
            "user",
            user_id,
            &user_proto::UserRegistered {
                user: Some(user(user_id, slack_member_id)),
            },
        )
        .await;
    }

    /// A published race with one category (svc-race's `RacePublished`).
    pub async fn race(&self, race_id: &str, name: &str, category_id: &str) {
        let event = race_proto::RacePublished {
            race: Some(race_proto::Race {
                race_id: race_id.to_owned(),
                name: name.to_owned(),
                categories: vec![race_proto::Category {
                    category_id: category_id.to_owned(),
                    name: "10K".to_owned(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        let race_uuid = uuid::Uuid::parse_str(race_id).unwrap();
        runmesh_svc_race::events::enqueue(&self.publisher, race_uuid, &event)
            .await
            .unwrap();
    }

    /// svc-race's `RegistrationConfirmed`, through its own outbox writer.
    pub async fn confirmed(
        &self,
        race_id: &str,
        category_id: &str,
        user_id: &str,
        bib: u32,
    ) -> Envelope {
        let event = race_proto::RegistrationConfirmed {
            registration: Some(race_proto::Registration {
                registration_id: uuid::Uuid::now_v7().to_string(),
                race_id: race_id.to_owned(),
                category_id: category_id.to_owned(),
                user_id: user_id.to_owned(),
                status: race_proto::RegistrationStatus::Confirmed.into(),
                bib_number: Some(bib),
                ..Default::default()
            }),
        };
        let envelope =
            runmesh_svc_race::events::envelope(uuid::Uuid::parse_str(race_id).unwrap(), &event);
        runmesh_svc_race::events::enqueue_many(&self.publisher, std::slice::from_ref(&envelope))
            .await
            .unwrap();
        envelope
    }

    pub async fn list(&self, user_id: &str) -> proto::ListNotificationsResponse {
        self.client()
            .list_notifications(self.as_user(proto::ListNotificationsRequest::default(), user_id))
            .await
            .unwrap()
            .into_inner()
    }

    /// The Slack deliveries' statuses of `user_id`'s notifications, newest first.
    pub async fn slack_statuses(&self, user_id: &str) -> Vec<proto::DeliveryStatus> {
        self.list(user_id)
            .await
            .notifications
            .iter()
            .flat_map(|n| n.deliveries.iter())
            .filter(|d| d.channel() == proto::NotificationChannel::Slack)
            .map(|d| d.status())
            .collect()
    }

    pub async fn stats(&self) -> proto::GetDeliveryStatsResponse {
        self.client()
            .get_delivery_stats(self.as_roles(
                proto::GetDeliveryStatsRequest {},
                "admin-1",
                &["runner", "admin"],
            ))
            .await
            .unwrap()
            .into_inner()
    }
}

/// A svc-user `User` with every notification choice on.
pub fn user(user_id: &str, slack_member_id: &str) -> user_proto::User {
    user_proto::User {
        id: user_id.to_owned(),
        display_name: format!("Runner {user_id}"),
        slack_member_id: slack_member_id.to_owned(),
        time_zone: "Asia/Seoul".to_owned(),
        notification_preferences: Some(user_proto::NotificationPreferences {
            race_opening: true,
            registration_result: true,
            achievement: true,
            crew_activity: true,
        }),
        ..Default::default()
    }
}

/// Waits until `condition` holds, checking every 25 ms; panics naming `what` after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[allow(unused_imports)]
pub use runmesh_platform::testkit::{assert_status, violated_fields};
