//! `RecapReady` notices on PostgreSQL and on SQLite, with the instant passed in (no sleeps):
//! Monday 07:59 vs 08:00 in Seoul, New York and the default zone (UTC), runners without running
//! activities get nothing, a second round or a second replica (also at the same time) adds
//! nothing, a time zone change does not bring a second notice, the year's from December 15
//! 08:00 and not on the 14th, the event's figures are `GetRecap`'s totals, the batch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use runmesh_platform::events::{EnvelopeExt, new_envelope};
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use runmesh_svc_run::{RunConfig, RunModule};
use sea_orm::TransactionTrait;

use support::{ALICE, BOB, Backend, Harness, seconds, timestamp};

const CAROL: &str = "runner-carol";
/// No profile: the default time zone (UTC).
const DAVE: &str = "runner-dave";

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

async fn set_zone(h: &Harness, user: &str, tz: &str) {
    let event = user_proto::UserProfileUpdated {
        user: Some(user_proto::User {
            id: user.to_owned(),
            display_name: user.to_owned(),
            time_zone: tz.to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let handler = RunModule::user_events_handler();
    let txn = h.db.begin().await.unwrap();
    handler
        .handle(&txn, &new_envelope("svc-user", user, &event))
        .await
        .unwrap();
    txn.commit().await.unwrap();
}

async fn run(h: &Harness, user: &str, sport: proto::Sport, start: DateTime<Utc>, km: f64) {
    h.create(
        user,
        proto::Run {
            sport: sport.into(),
            title: "Morning run".to_owned(),
            start_time: Some(timestamp(start)),
            time_zone: "UTC".to_owned(),
            elapsed_time: Some(seconds((km * 330.0) as i64)),
            distance_meters: km * 1_000.0,
            visibility: proto::Visibility::Public.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

/// The `RecapReady` events in the outbox, oldest first.
async fn notices(h: &Harness) -> Vec<proto::RecapReady> {
    h.outbox()
        .await
        .iter()
        .filter(|envelope| envelope.is::<proto::RecapReady>())
        .map(|envelope| {
            assert_eq!(
                envelope.aggregate_id,
                envelope.unpack::<proto::RecapReady>().unwrap().owner_id
            );
            envelope.unpack::<proto::RecapReady>().unwrap()
        })
        .collect()
}

async fn round(module: &RunModule, now: DateTime<Utc>) -> usize {
    module
        .recap_notices
        .publish_due(now)
        .await
        .unwrap()
        .published
}

async fn get(h: &Harness, user: &str, period: &str, date: &str) -> proto::Recap {
    h.recap()
        .get_recap(h.as_runner(
            proto::GetRecapRequest {
                period: period.to_owned(),
                date: date.to_owned(),
                ..Default::default()
            },
            user,
        ))
        .await
        .unwrap()
        .into_inner()
        .recap
        .unwrap()
}

/// The event's figures are `GetRecap`'s totals for the same runner, period and date.
async fn assert_matches_get_recap(h: &Harness, notice: &proto::RecapReady) {
    let recap = get(h, &notice.owner_id, &notice.period, &notice.date).await;
    let totals = recap.totals.unwrap();
    assert_eq!(notice.distance_meters, totals.distance_meters, "{notice:?}");
    assert_eq!(notice.runs, totals.runs, "{notice:?}");
    assert_eq!(notice.moving_time, totals.moving_time, "{notice:?}");
    assert_eq!(notice.active_days, totals.active_days, "{notice:?}");
    assert_eq!(notice.time_zone, recap.time_zone, "{notice:?}");
    assert!(notice.runs > 0);
}

/// Week of Monday 2025-12-01: Alice (Seoul), Bob (New York), Dave (no profile) ran; Carol
/// (Seoul) only rode a bike.
async fn seed_week(h: &Harness) {
    set_zone(h, ALICE, "Asia/Seoul").await;
    set_zone(h, BOB, "America/New_York").await;
    set_zone(h, CAROL, "Asia/Seoul").await;
    // Alice: the week before (not to be sent), two days of the week, and Monday 01:00 in Seoul
    // (Sunday 16:00 UTC), which is the next week for her.
    run(h, ALICE, proto::Sport::Run, utc(2025, 11, 26, 3, 0), 5.0).await;
    run(h, ALICE, proto::Sport::Run, utc(2025, 12, 3, 3, 0), 10.0).await;
    run(
        h,
        ALICE,
        proto::Sport::TrailRun,
        utc(2025, 12, 4, 3, 0),
        7.5,
    )
    .await;
    run(
        h,
        ALICE,
        proto::Sport::Treadmill,
        utc(2025, 12, 4, 10, 0),
        4.2,
    )
    .await;
    run(h, ALICE, proto::Sport::Run, utc(2025, 12, 7, 16, 0), 21.1).await;
    // Bob: Wednesday, and Sunday 21:00 in New York (Monday 02:00 UTC), still his week.
    run(h, BOB, proto::Sport::Run, utc(2025, 12, 3, 15, 0), 8.0).await;
    run(h, BOB, proto::Sport::Run, utc(2025, 12, 8, 2, 0), 12.0).await;
    run(h, CAROL, proto::Sport::Ride, utc(2025, 12, 3, 1, 0), 40.0).await;
    run(h, DAVE, proto::Sport::Run, utc(2025, 12, 5, 12, 0), 6.0).await;
}

async fn weekly_notice_on_monday_morning_local_time_once(backend: Backend) {
    let h = Harness::start(backend).await;
    seed_week(&h).await;
    let replica = RunModule::assemble(h.db.clone(), None, h.cache.clone(), RunConfig::default());

    // Monday 07:59 in Seoul: nobody (Alice's week before is not sent late either).
    assert_eq!(round(&h.module, utc(2025, 12, 7, 22, 59)).await, 0);
    assert!(notices(&h).await.is_empty());

    // 08:00 in Seoul, both replicas at once: Alice once.
    let at = utc(2025, 12, 7, 23, 0);
    let (a, b) = tokio::join!(round(&h.module, at), round(&replica, at));
    assert_eq!(a + b, 1);
    let sent = notices(&h).await;
    assert_eq!(sent.len(), 1);
    let alice = &sent[0];
    assert_eq!(alice.owner_id, ALICE);
    assert_eq!(alice.period, "week");
    assert_eq!(alice.date, "2025-12-01");
    assert_eq!(alice.time_zone, "Asia/Seoul");
    assert_eq!(alice.runs, 3);
    assert!((alice.distance_meters - 21_700.0).abs() < 1e-6);
    assert_eq!(alice.active_days, 2);
    assert_matches_get_recap(&h, alice).await;

    // A second round, a second replica, later that day: nothing more.
    assert_eq!(round(&h.module, at).await, 0);
    assert_eq!(round(&replica, at + Duration::hours(3)).await, 0);

    // The default zone (UTC) for Dave: 07:59 no, 08:00 yes.
    assert_eq!(round(&h.module, utc(2025, 12, 8, 7, 59)).await, 0);
    assert_eq!(round(&replica, utc(2025, 12, 8, 8, 0)).await, 1);
    let sent = notices(&h).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[1].owner_id.as_str(), sent[1].time_zone.as_str()),
        (DAVE, "UTC")
    );
    assert_eq!(sent[1].date, "2025-12-01");
    assert_matches_get_recap(&h, &sent[1]).await;

    // New York (EST, UTC-5): 07:59 no, 08:00 yes, with his Sunday-night run in the week.
    assert_eq!(round(&h.module, utc(2025, 12, 8, 12, 59)).await, 0);
    assert_eq!(round(&h.module, utc(2025, 12, 8, 13, 0)).await, 1);
    let sent = notices(&h).await;
    assert_eq!(sent.len(), 3);
    let bob = &sent[2];
    assert_eq!(
        (bob.owner_id.as_str(), bob.date.as_str()),
        (BOB, "2025-12-01")
    );
    assert_eq!(bob.time_zone, "America/New_York");
    assert_eq!(bob.runs, 2);
    assert_matches_get_recap(&h, bob).await;

    // The rest of the week and a restart: nothing more; Carol (a ride only) never.
    let h = h.restart().await;
    assert_eq!(round(&h.module, utc(2025, 12, 10, 0, 0)).await, 0);
    assert_eq!(round(&h.module, utc(2025, 12, 14, 14, 59)).await, 0);
    // Next Monday in Seoul, also December 15: Alice ran (Monday 01:00 local) in the new week,
    // and her year is due.
    assert_eq!(round(&h.module, utc(2025, 12, 14, 23, 0)).await, 2);
    let sent = notices(&h).await;
    assert_eq!(sent.len(), 5);
    let week = sent
        .iter()
        .find(|notice| notice.period == "week" && notice.date == "2025-12-08");
    let week = week.unwrap();
    assert_eq!((week.owner_id.as_str(), week.runs), (ALICE, 1));
    assert_matches_get_recap(&h, week).await;
    let year = sent.iter().find(|notice| notice.period == "year").unwrap();
    assert_eq!(
        (year.owner_id.as_str(), year.date.as_str()),
        (ALICE, "2025-01-01")
    );
    assert!(sent.iter().all(|notice| notice.owner_id != CAROL));
}

async fn a_new_time_zone_brings_no_second_notice(backend: Backend) {
    let h = Harness::start(backend).await;
    seed_week(&h).await;
    assert_eq!(round(&h.module, utc(2025, 12, 7, 23, 0)).await, 1);

    // Alice moves to New York: there it is Sunday 18:00, the week before is due there (she ran
    // in it) but she was told about a later week already; Monday 08:00 in New York is the week
    // she was told about.
    set_zone(&h, ALICE, "America/New_York").await;
    assert_eq!(round(&h.module, utc(2025, 12, 7, 23, 30)).await, 0);
    // Bob (New York) and Dave (UTC) now, not Alice again.
    assert_eq!(round(&h.module, utc(2025, 12, 8, 13, 0)).await, 2);
    let sent = notices(&h).await;
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent.iter()
            .filter(|notice| notice.owner_id == ALICE)
            .count(),
        1
    );
}

async fn year_notice_from_december_fifteen(backend: Backend) {
    let h = Harness::start(backend).await;
    seed_week(&h).await;
    run(&h, ALICE, proto::Sport::Run, utc(2025, 3, 1, 0, 0), 15.0).await;
    run(&h, ALICE, proto::Sport::Run, utc(2025, 12, 10, 22, 0), 3.0).await;
    let years = |sent: Vec<proto::RecapReady>| -> Vec<proto::RecapReady> {
        sent.into_iter()
            .filter(|notice| notice.period == "year")
            .collect()
    };

    // December 14, then 07:59 on the 15th in Seoul: no year.
    round(&h.module, utc(2025, 12, 14, 12, 0)).await;
    round(&h.module, utc(2025, 12, 14, 22, 59)).await;
    assert!(years(notices(&h).await).is_empty());

    // 08:00 on the 15th in Seoul: Alice's year, once; Bob's (New York) later.
    round(&h.module, utc(2025, 12, 14, 23, 0)).await;
    round(&h.module, utc(2025, 12, 15, 1, 0)).await;
    let sent = years(notices(&h).await);
    assert_eq!(sent.len(), 1);
    let alice = &sent[0];
    assert_eq!(
        (
            alice.owner_id.as_str(),
            alice.date.as_str(),
            alice.time_zone.as_str()
        ),
        (ALICE, "2025-01-01", "Asia/Seoul")
    );
    assert_eq!(alice.runs, 7);
    assert_matches_get_recap(&h, alice).await;

    // Dave's (UTC) from 08:00 UTC, Bob's (New York) from 13:00 UTC.
    round(&h.module, utc(2025, 12, 15, 12, 59)).await;
    let sent = years(notices(&h).await);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].owner_id, DAVE);
    round(&h.module, utc(2025, 12, 15, 13, 0)).await;
    let sent = years(notices(&h).await);
    assert_eq!(sent.len(), 3, "Bob's and Dave's (UTC) too: {sent:?}");
    for notice in &sent {
        assert_eq!(notice.date, "2025-01-01");
        assert_matches_get_recap(&h, notice).await;
    }
    assert!(sent.iter().all(|notice| notice.owner_id != CAROL));

    // Rounds until the year ends add nothing; January sends no year.
    round(&h.module, utc(2025, 12, 31, 12, 0)).await;
    round(&h.module, utc(2026, 1, 5, 0, 0)).await;
    assert_eq!(years(notices(&h).await).len(), 3);
}

async fn a_round_is_bounded_by_its_batch(backend: Backend) {
    let config = RunConfig {
        recap_notice_batch: 1,
        ..RunConfig::default()
    };
    let h = Harness::start_with(backend, config).await;
    seed_week(&h).await;
    // Monday 13:00 UTC: Alice, Bob and Dave are all due, one per round.
    let at = utc(2025, 12, 8, 13, 0);
    for expected in 1..=3 {
        let done = h.module.recap_notices.publish_due(at).await.unwrap();
        assert_eq!((done.considered, done.published), (1, 1));
        assert_eq!(notices(&h).await.len(), expected);
    }
    let done = h.module.recap_notices.publish_due(at).await.unwrap();
    assert_eq!((done.considered, done.published), (0, 0));
    let mut owners: Vec<String> = notices(&h)
        .await
        .into_iter()
        .map(|notice| notice.owner_id)
        .collect();
    owners.sort();
    assert_eq!(owners, [ALICE, BOB, DAVE]);
}

on_both_backends!(
    weekly_notice_on_monday_morning_local_time_once,
    a_new_time_zone_brings_no_second_notice,
    year_notice_from_december_fifteen,
    a_round_is_bounded_by_its_batch,
);
