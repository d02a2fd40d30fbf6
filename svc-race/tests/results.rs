//! Race results on registrations: svc-run's `RaceResultLinked` and `RunDeleted`, published
//! through a svc-run outbox and delivered by the platform's bus (the embedded log) to svc-race's
//! consumer group, show on the registrations svc-race answers; on PostgreSQL and on SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::future::Future;
use std::time::Duration;

use prost::{Message, Name};
use runmesh_platform::events::{self, EventBus, LogOptions};
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::race::v1 as proto;
use runmesh_proto::runmesh::run::v1 as run_proto;
use sea_orm::DatabaseConnection;
use support::*;
use tokio_util::sync::CancellationToken;

on_both_backends!(linked_results_show_on_registrations_once_and_go_with_the_run);

const WAIT: Duration = Duration::from_secs(20);

/// svc-run's outbox, read by svc-race's consumer group over the embedded log.
struct RunPublisher {
    db: DatabaseConnection,
    bus: EventBus,
    _sqlite: Option<runmesh_platform::testkit::TestSqlite>,
}

impl RunPublisher {
    async fn start(backend: Backend, harness: &Harness, shutdown: &CancellationToken) -> Self {
        let (url, sqlite) = database(backend).await;
        let db = runmesh_platform::db::connect(&url).await.unwrap();
        // Any migrator holding the platform's event tables will do for an outbox.
        runmesh_svc_race::migrate(&db).await.unwrap();
        let bus = EventBus::embedded(LogOptions {
            poll_interval: Duration::from_millis(50),
            ..LogOptions::default()
        });
        bus.spawn_relay("svc-run", db.clone(), shutdown.clone());
        let topics = runmesh_svc_race::events::consumed_topics();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        bus.spawn_consumer(
            runmesh_svc_race::events::GROUP,
            &topics,
            harness.db.clone(),
            runmesh_svc_race::events::consumer(),
            shutdown.clone(),
        );
        Self {
            db,
            bus,
            _sqlite: sqlite,
        }
    }

    /// Writes `envelope` to svc-run's outbox (again, for a redelivery).
    async fn send(&self, envelope: &Envelope) {
        events::enqueue(&self.db, &events::topic("run"), envelope)
            .await
            .unwrap();
        self.bus.wake_relays();
    }

    async fn publish<E: Message + Name>(&self, aggregate_id: &str, event: &E) -> Envelope {
        let envelope = events::new_envelope("svc-run", aggregate_id, event);
        self.send(&envelope).await;
        envelope
    }
}

fn linked(
    registration: &proto::Registration,
    run_id: &str,
    elapsed: Option<prost_types::Duration>,
) -> run_proto::RaceResultLinked {
    run_proto::RaceResultLinked {
        owner_id: registration.user_id.clone(),
        registration_id: registration.registration_id.clone(),
        race_id: registration.race_id.clone(),
        run_id: run_id.to_owned(),
        elapsed_time: elapsed,
        manual: false,
    }
}

fn elapsed(seconds: i64, nanos: i32) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds, nanos })
}

/// The envelope's time as the database keeps it (microseconds).
fn committed_at(envelope: &Envelope) -> Option<prost_types::Timestamp> {
    envelope.occurred_at.map(|at| prost_types::Timestamp {
        seconds: at.seconds,
        nanos: at.nanos / 1_000 * 1_000,
    })
}

async fn my_registration(harness: &Harness, user_id: &str) -> proto::Registration {
    let mut registrations = harness
        .client()
        .list_my_registrations(
            harness.as_runner(proto::ListMyRegistrationsRequest::default(), user_id),
        )
        .await
        .unwrap()
        .into_inner()
        .registrations;
    assert_eq!(registrations.len(), 1, "{registrations:?}");
    registrations.remove(0)
}

/// Polls `check` until it answers `Some`, failing after [`WAIT`] with `what`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `user_id`'s registration shows a result with `run_id` (none when empty).
async fn result_becomes(
    harness: &Harness,
    user_id: &str,
    run_id: &str,
) -> Option<proto::RegistrationResult> {
    eventually(&format!("{user_id}'s result is {run_id:?}"), || async {
        let registration = my_registration(harness, user_id).await;
        let shown = registration
            .result
            .as_ref()
            .map_or("", |r| r.run_id.as_str());
        (shown == run_id).then_some(registration.result)
    })
    .await
}

async fn linked_results_show_on_registrations_once_and_go_with_the_run(backend: Backend) {
    let harness = Harness::start(backend).await;
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let run = RunPublisher::start(backend, &harness, &shutdown).await;
    let race = harness
        .published_race(
            "organizer-1",
            open_race("Han River Half", vec![category("Half", 21_097, 10, 0)]),
        )
        .await;
    let ada = harness.register(&race, 0, "ada", "k1").await.unwrap();
    let bo = harness.register(&race, 0, "bo", "k2").await.unwrap();
    assert_eq!(ada.result, None, "no result before svc-run links one");

    // Linked automatically: the run, its time and when svc-run linked it.
    let first = run
        .publish("ada", &linked(&ada, "run-x", elapsed(5_430, 500_000_000)))
        .await;
    let result = result_becomes(&harness, "ada", "run-x").await.unwrap();
    assert_eq!(result.elapsed_time, elapsed(5_430, 500_000_000));
    assert_eq!(result.linked_at, committed_at(&first));

    // The runner picks another run: it replaces the first.
    let second = run
        .publish("ada", &linked(&ada, "run-y", elapsed(5_401, 0)))
        .await;
    let result = result_becomes(&harness, "ada", "run-y").await.unwrap();
    assert_eq!(result.elapsed_time, elapsed(5_401, 0));
    assert_eq!(result.linked_at, committed_at(&second));
    // The organizer's listing shows it too.
    let listed = harness
        .client()
        .list_registrations(harness.as_user(
            proto::ListRegistrationsRequest {
                race_id: race.race_id.clone(),
                ..Default::default()
            },
            "organizer-1",
            &["runner", "organizer"],
        ))
        .await
        .unwrap()
        .into_inner()
        .registrations;
    let shown: Vec<(&str, Option<&str>)> = listed
        .iter()
        .map(|r| {
            (
                r.user_id.as_str(),
                r.result.as_ref().map(|result| result.run_id.as_str()),
            )
        })
        .collect();
    assert_eq!(shown, [("ada", Some("run-y")), ("bo", None)]);

    // The first link delivered again changes nothing; neither do events about registrations
    // svc-race does not know, nor other run events. Bo's link, sent after them all, shows they
    // were consumed (the log is read in order) without stalling the consumer.
    run.send(&first).await;
    let mut stranger = linked(&ada, "run-z", elapsed(1, 0));
    stranger.registration_id = uuid::Uuid::now_v7().to_string();
    run.publish("ada", &stranger).await;
    let mut not_ours = linked(&ada, "run-z", elapsed(1, 0));
    not_ours.owner_id = "mallory".to_owned();
    run.publish("mallory", &not_ours).await;
    let mut malformed = linked(&ada, "run-z", elapsed(1, 0));
    malformed.registration_id = "reg-1".to_owned();
    run.publish("ada", &malformed).await;
    run.publish("run-w", &run_proto::RunRecorded::default())
        .await;
    run.publish("bo", &linked(&bo, "run-b", elapsed(6_000, 0)))
        .await;
    result_becomes(&harness, "bo", "run-b").await;
    let unchanged = my_registration(&harness, "ada").await.result.unwrap();
    assert_eq!(unchanged.run_id, "run-y");
    assert_eq!(unchanged.linked_at, committed_at(&second));

    // Unlinked: the result is gone.
    run.publish("ada", &linked(&ada, "", None)).await;
    assert_eq!(result_becomes(&harness, "ada", "").await, None);

    // A deleted run takes its link with it (an erased account's runs send no unlink).
    run.publish(
        "run-b",
        &run_proto::RunDeleted {
            run_id: "run-b".to_owned(),
            owner_id: "bo".to_owned(),
            deleted_at: None,
        },
    )
    .await;
    assert_eq!(result_becomes(&harness, "bo", "").await, None);
}
