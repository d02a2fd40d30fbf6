//! Spawns svc-social for tests: [`Harness`] assembles the module behind the platform's gRPC
//! server and auth layer, by default without an event bus (so the outbox keeps every event for
//! the test to read); [`Node`] runs it exactly as production does, through `service::run`.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use prost::{Message, Name};
use runmesh_platform::auth::{AuthLayer, TokenVerifier, VerifierConfig};
use runmesh_platform::cache::{self, SharedCache};
use runmesh_platform::config::Settings;
use runmesh_platform::events::{self, EventBus};
use runmesh_platform::server::GrpcServer;
use runmesh_platform::service::{self, Service};
use runmesh_platform::testkit::{
    self, TestDatabase, TestIssuer, TestSqlite, redis_url, unique_name,
};
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::social::v1 as proto;
use runmesh_proto::runmesh::social::v1::crew_service_client::CrewServiceClient;
use runmesh_svc_social::{SocialConfig, SocialModule, SocialService};
use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL and Redis, as `runmesh serve social` runs.
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

/// Fast loops and generous rate limits, so tests wait little and are limited only on purpose.
pub fn test_config() -> SocialConfig {
    SocialConfig {
        post_limit: 10_000,
        comment_limit: 10_000,
        report_limit: 10_000,
        invite_limit: 10_000,
        scheduler_interval: Duration::from_millis(200),
        watch_interval: Duration::from_millis(50),
        ..SocialConfig::default()
    }
}

/// A fresh database of `backend`: its URL, and the SQLite directory to keep alive.
pub async fn database(backend: Backend) -> (String, Option<TestSqlite>) {
    match backend {
        Backend::Postgres => (TestDatabase::create().await.unwrap().url, None),
        Backend::Embedded => {
            let sqlite = TestSqlite::create().unwrap();
            (sqlite.url.clone(), Some(sqlite))
        }
    }
}

/// A cache for `backend`, namespaced per test.
pub async fn test_cache(backend: Backend) -> SharedCache {
    let redis = (backend == Backend::Postgres).then(redis_url);
    cache::connect(redis.as_deref(), &unique_name("svc_social_test"))
        .await
        .unwrap()
}

pub struct Harness {
    pub addr: SocketAddr,
    pub module: SocialModule,
    pub db: DatabaseConnection,
    pub cache: SharedCache,
    pub issuer: Arc<TestIssuer>,
    pub database_url: String,
    pub shutdown: CancellationToken,
    pub backend: Backend,
    _sqlite: Option<TestSqlite>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Harness {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, test_config(), None).await
    }

    pub async fn start_with(backend: Backend, config: SocialConfig, bus: Option<EventBus>) -> Self {
        let (database_url, sqlite) = database(backend).await;
        let cache = test_cache(backend).await;
        let mut harness = Self::over(
            backend,
            &database_url,
            cache,
            Arc::new(TestIssuer::new()),
            config,
            bus,
        )
        .await;
        harness._sqlite = sqlite;
        harness
    }

    /// Another instance over the same database and cache, as a second replica.
    pub async fn replica(&self, config: SocialConfig) -> Self {
        Self::over(
            self.backend,
            &self.database_url,
            self.cache.clone(),
            Arc::clone(&self.issuer),
            config,
            None,
        )
        .await
    }

    pub async fn over(
        backend: Backend,
        database_url: &str,
        cache: SharedCache,
        issuer: Arc<TestIssuer>,
        config: SocialConfig,
        bus: Option<EventBus>,
    ) -> Self {
        let db = runmesh_platform::db::connect(database_url).await.unwrap();
        runmesh_svc_social::migrate(&db).await.unwrap();
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        if let Some(bus) = &bus {
            bus.spawn_relay("svc-social", db.clone(), shutdown.clone());
        }
        let module =
            SocialModule::assemble(db.clone(), cache.clone(), bus, config, &tasks, &shutdown);
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
            .add_service(module.server(), vec![])
            .bind()
            .await
            .unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.serve(shutdown.clone()));
        Self {
            addr,
            module,
            db,
            cache,
            issuer,
            database_url: database_url.to_owned(),
            shutdown,
            backend,
            _sqlite: None,
        }
    }

    pub fn client(&self) -> CrewServiceClient<Channel> {
        client(self.addr)
    }

    /// `message` with a runner's bearer token for `user_id`.
    pub fn as_runner<T>(&self, message: T, user_id: &str) -> tonic::Request<T> {
        authorized(&self.issuer, message, user_id, &["runner"])
    }

    /// Every envelope in the outbox, oldest first.
    pub async fn outbox(&self) -> Vec<Envelope> {
        testkit::outbox_envelopes(&self.db).await
    }

    /// The event types in the outbox, oldest first.
    pub async fn outbox_types(&self) -> Vec<String> {
        testkit::outbox_types(&self.db).await
    }

    /// The outbox's events of type `E`.
    pub async fn events<E: Message + Name + Default>(&self) -> Vec<E> {
        self.outbox()
            .await
            .iter()
            .filter(|envelope| {
                envelope
                    .payload
                    .as_ref()
                    .unwrap()
                    .type_url
                    .ends_with(&E::full_name())
            })
            .map(|envelope| E::decode(envelope.payload.as_ref().unwrap().value.as_slice()).unwrap())
            .collect()
    }

    /// Hands `event` to svc-social's consumer as if it arrived from the bus.
    pub async fn deliver<E: Message + Name>(&self, source: &str, aggregate_id: &str, event: &E) {
        let envelope = events::new_envelope(source, aggregate_id, event);
        let txn = self.db.begin().await.unwrap();
        SocialModule::events_handler()
            .handle(&txn, &envelope)
            .await
            .unwrap();
        txn.commit().await.unwrap();
    }

    /// Creates a crew of `visibility` owned by `owner`.
    pub async fn crew(
        &self,
        owner: &str,
        name: &str,
        visibility: proto::CrewVisibility,
    ) -> proto::Crew {
        self.client()
            .create_crew(self.as_runner(
                proto::CreateCrewRequest {
                    name: name.to_owned(),
                    description: "Easy runs along the Han river".to_owned(),
                    region: "Seoul".to_owned(),
                    cover_url: String::new(),
                    visibility: visibility.into(),
                },
                owner,
            ))
            .await
            .unwrap()
            .into_inner()
            .crew
            .unwrap()
    }

    pub async fn join(
        &self,
        crew_id: &str,
        user_id: &str,
    ) -> Result<proto::JoinCrewResponse, Status> {
        self.join_with(crew_id, user_id, "").await
    }

    pub async fn join_with(
        &self,
        crew_id: &str,
        user_id: &str,
        invite_code: &str,
    ) -> Result<proto::JoinCrewResponse, Status> {
        self.client()
            .join_crew(self.as_runner(
                proto::JoinCrewRequest {
                    crew_id: crew_id.to_owned(),
                    invite_code: invite_code.to_owned(),
                    message: String::new(),
                },
                user_id,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn set_role(&self, crew_id: &str, owner: &str, user_id: &str, role: proto::CrewRole) {
        self.client()
            .set_member_role(self.as_runner(
                proto::SetMemberRoleRequest {
                    crew_id: crew_id.to_owned(),
                    user_id: user_id.to_owned(),
                    role: role.into(),
                },
                owner,
            ))
            .await
            .unwrap();
    }

    pub async fn ban(&self, crew_id: &str, admin: &str, user_id: &str) {
        self.client()
            .remove_member(self.as_runner(
                proto::RemoveMemberRequest {
                    crew_id: crew_id.to_owned(),
                    user_id: user_id.to_owned(),
                    ban: true,
                },
                admin,
            ))
            .await
            .unwrap();
    }

    pub async fn post(
        &self,
        crew_id: &str,
        author: &str,
        title: &str,
    ) -> Result<proto::Post, Status> {
        self.client()
            .create_post(self.as_runner(
                proto::CreatePostRequest {
                    crew_id: crew_id.to_owned(),
                    category: proto::PostCategory::Free.into(),
                    title: title.to_owned(),
                    body: "**Markdown** as written <b>not html</b>".to_owned(),
                },
                author,
            ))
            .await
            .map(|response| response.into_inner().post.unwrap())
    }

    pub async fn meetup(
        &self,
        crew_id: &str,
        admin: &str,
        capacity: u32,
    ) -> Result<proto::Meetup, Status> {
        self.client()
            .create_meetup(self.as_runner(
                proto::CreateMeetupRequest {
                    crew_id: crew_id.to_owned(),
                    meetup: Some(meetup_spec(capacity, chrono::Duration::days(2))),
                },
                admin,
            ))
            .await
            .map(|response| response.into_inner().meetup.unwrap())
    }

    pub async fn rsvp(
        &self,
        meetup_id: &str,
        user_id: &str,
        going: bool,
    ) -> Result<proto::RsvpMeetupResponse, Status> {
        rsvp(&self.client(), &self.issuer, meetup_id, user_id, going).await
    }
}

pub async fn rsvp(
    client: &CrewServiceClient<Channel>,
    issuer: &TestIssuer,
    meetup_id: &str,
    user_id: &str,
    going: bool,
) -> Result<proto::RsvpMeetupResponse, Status> {
    client
        .clone()
        .rsvp_meetup(authorized(
            issuer,
            proto::RsvpMeetupRequest {
                meetup_id: meetup_id.to_owned(),
                status: if going {
                    proto::RsvpStatus::Going
                } else {
                    proto::RsvpStatus::NotGoing
                }
                .into(),
            },
            user_id,
            &["runner"],
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// A meetup starting `in_` from now, its RSVPs open until an hour before.
pub fn meetup_spec(capacity: u32, in_: chrono::Duration) -> proto::Meetup {
    proto::Meetup {
        title: "Sunday long run".to_owned(),
        description: "Three pace groups".to_owned(),
        starts_at: at(in_),
        time_zone: "Asia/Seoul".to_owned(),
        meeting_point: Some(proto::MeetingPoint {
            name: "Yeouido Park".to_owned(),
            location: Some(proto::GeoPoint {
                latitude: 37.526,
                longitude: 126.922,
            }),
        }),
        planned_distance_meters: 15_000,
        pace_groups: vec!["5:00".to_owned(), "5:30".to_owned(), "6:00".to_owned()],
        capacity,
        rsvp_deadline: at(in_ - chrono::Duration::hours(1)),
        members_only: true,
        recurrence: proto::Recurrence::None.into(),
        ..Default::default()
    }
}

pub fn client(addr: SocketAddr) -> CrewServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    CrewServiceClient::new(channel)
}

pub fn authorized<T>(
    issuer: &TestIssuer,
    message: T,
    user_id: &str,
    roles: &[&str],
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        issuer.bearer(user_id, roles).parse().unwrap(),
    );
    request
}

pub fn at(offset: chrono::Duration) -> Option<prost_types::Timestamp> {
    let at = Utc::now() + offset;
    Some(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap(),
    })
}

/// Polls `check` until it holds or `within` passes (then fails with `what`).
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// Not every test binary that includes this module uses them.
#[allow(unused_imports)]
pub use runmesh_platform::testkit::{assert_status, violated_fields};

/// svc-social run as production runs it (`service::run`), reachable at `addr`.
pub struct Node {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Node {
    pub async fn start(settings: Settings, config: SocialConfig, issuer: &TestIssuer) -> Self {
        let shutdown = CancellationToken::new();
        let (ready, listening) = tokio::sync::oneshot::channel();
        let service: Arc<dyn Service> = Arc::new(SocialService::new(config));
        let handle = tokio::spawn(service::run(
            settings,
            vec![service],
            "runmesh-svc-social-test",
            Some(issuer.key_source()),
            shutdown.clone(),
            Some(ready),
        ));
        let addr = listening.await.unwrap().grpc;
        Self {
            addr,
            shutdown,
            handle,
        }
    }

    /// Stops gracefully (as on SIGTERM) and waits for the drain.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.handle.await.unwrap().unwrap();
    }
}
