//! The whole path from a domain event to a Slack request and an inbox entry, against the
//! Slack-compatible test server: the right text once, no duplicate on redelivery or restart,
//! 429 honoured, an outage survived, a refused token stops delivery, a refused member id is
//! marked, quiet hours defer and release, and one message per second per DM channel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use runmesh_proto::runmesh::notify::v1 as proto;
use runmesh_proto::runmesh::race::v1 as race_proto;
use runmesh_proto::runmesh::run::v1 as run_proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use support::{Answer, Backend, Harness, eventually};

const RACE: &str = "0194f1a2-0000-7000-8000-000000000001";
const CATEGORY: &str = "0194f1a2-0000-7000-8000-0000000000c1";
const WAIT: Duration = Duration::from_secs(15);

fn record(owner: &str, seconds: i64) -> run_proto::PersonalRecordSet {
    run_proto::PersonalRecordSet {
        owner_id: owner.to_owned(),
        distance: run_proto::EffortDistance::EffortDistance10k.into(),
        elapsed_time: Some(prost_types::Duration { seconds, nanos: 0 }),
        run_id: format!("run-{owner}-{seconds}"),
        ..Default::default()
    }
}

async fn registration_confirmed_reaches_slack_and_the_inbox_once(backend: Backend) {
    let h = Harness::start(backend).await;
    h.runner("alice", "UALICE").await;
    h.race(RACE, "Seoul Marathon", CATEGORY).await;
    let envelope = h.confirmed(RACE, CATEGORY, "alice", 1042).await;

    eventually("the Slack post", WAIT, || async {
        h.slack.delivered().len() == 1
    })
    .await;
    let post = &h.slack.delivered()[0];
    assert_eq!(post.target, "DUALICE");
    // Korean by default: the profile carries no language.
    assert!(
        post.text.starts_with("Seoul Marathon 참가 확정"),
        "{}",
        post.text
    );
    assert!(post.text.contains("배번은 1042번"), "{}", post.text);
    assert!(post.text.contains("https://runmesh.example/races/"));
    assert_eq!(post.blocks[0]["type"], "header");
    let opens: Vec<_> = h
        .slack
        .log()
        .into_iter()
        .filter(|l| l.method == "conversations.open")
        .collect();
    assert_eq!(opens.len(), 1);
    assert!(opens[0].form, "conversations.open goes as a form");
    assert_eq!(opens[0].target, "UALICE");

    let inbox = h.list("alice").await;
    assert_eq!(inbox.unread_count, 1);
    let n = &inbox.notifications[0];
    assert_eq!(n.kind, "registration_confirmed");
    assert_eq!(n.category(), proto::NotificationCategory::Registration);
    assert_eq!(n.event_id, envelope.id);
    eventually("the delivery log says sent", WAIT, || async {
        h.slack_statuses("alice").await == [proto::DeliveryStatus::Sent]
    })
    .await;

    // The same event delivered again (a redelivery), then a later one as a marker.
    h.publish_envelope("race", &envelope).await;
    h.publish("run", "alice", &record("alice", 2_900)).await;
    eventually("the marker's post", WAIT, || async {
        h.slack.delivered().len() == 2
    })
    .await;
    assert_eq!(h.list("alice").await.notifications.len(), 2);
    // Neither the same event again nor the restart posts anything twice.
    let mut h = h;
    h.restart().await;
    h.publish("run", "alice", &record("alice", 2_800)).await;
    eventually("the post after restart", WAIT, || async {
        h.slack.delivered().len() == 3
    })
    .await;
    let texts: Vec<String> = h.slack.delivered().iter().map(|p| p.text.clone()).collect();
    assert_eq!(
        texts.iter().filter(|t| t.contains("1042")).count(),
        1,
        "{texts:?}"
    );
    // The DM channel was opened once and remembered.
    assert_eq!(
        h.slack
            .log()
            .iter()
            .filter(|l| l.method == "conversations.open")
            .count(),
        1
    );
}

async fn killed_mid_request_is_ambiguous_and_never_resent(backend: Backend) {
    let slack = support::SlackServer::start().await;
    slack.script("chat.postMessage", [Answer::Slow(Duration::from_secs(8))]);
    let mut config = support::config(&slack);
    config.notify_slack_timeout = Duration::from_secs(4);
    config.notify_lease = Duration::from_secs(5);
    let mut h = Harness::start_with(backend, slack, config).await;
    h.runner("bob", "UBOB").await;
    h.publish("run", "bob", &record("bob", 3_000)).await;
    eventually("the request reached Slack", WAIT, || async {
        !h.slack.posts().is_empty()
    })
    .await;
    // Killed while Slack holds the request: the answer is lost with the process.
    h.kill_and_restart().await;
    eventually(
        "the lost send is settled",
        Duration::from_secs(30),
        || async { h.slack_statuses("bob").await == [proto::DeliveryStatus::Ambiguous] },
    )
    .await;
    // The worker runs on: the next notification goes out, the ambiguous one was not resent.
    h.publish("run", "bob", &record("bob", 2_950)).await;
    // (The killed request's connection died with the process: Slack never answered it.)
    eventually("the next post", WAIT, || async {
        h.slack.delivered().len() == 1
    })
    .await;
    assert_eq!(
        h.slack.posts().len(),
        2,
        "the ambiguous message was sent once"
    );
    let n = &h.list("bob").await.notifications[1];
    let slack = n
        .deliveries
        .iter()
        .find(|d| d.channel() == proto::NotificationChannel::Slack)
        .unwrap();
    assert_eq!(slack.attempts, 1);
    assert!(!slack.last_error.is_empty());
}

async fn a_lost_answer_is_ambiguous(backend: Backend) {
    let slack = support::SlackServer::start().await;
    slack.script("chat.postMessage", [Answer::Slow(Duration::from_secs(4))]);
    let mut config = support::config(&slack);
    config.notify_slack_timeout = Duration::from_millis(500);
    let h = Harness::start_with(backend, slack, config).await;
    h.runner("carol", "UCAROL").await;
    h.publish("run", "carol", &record("carol", 3_000)).await;
    eventually("ambiguous", WAIT, || async {
        h.slack_statuses("carol").await == [proto::DeliveryStatus::Ambiguous]
    })
    .await;
    h.publish("run", "carol", &record("carol", 2_990)).await;
    eventually("the next one is sent", WAIT, || async {
        h.slack_statuses("carol")
            .await
            .contains(&proto::DeliveryStatus::Sent)
    })
    .await;
    assert_eq!(h.slack.posts().len(), 2);
}

async fn rate_limit_is_honoured_to_the_second(backend: Backend) {
    let h = Harness::start(backend).await;
    h.slack.script("chat.postMessage", [Answer::RateLimited(2)]);
    h.runner("dan", "UDAN").await;
    h.publish("run", "dan", &record("dan", 3_000)).await;
    eventually("sent after the pause", WAIT, || async {
        h.slack.delivered().len() == 1
    })
    .await;
    let posts = h.slack.posts();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].status, 429);
    let waited = posts[1].received - posts[0].answered;
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
    assert!(
        waited < Duration::from_millis(3_500),
        "retried only after {waited:?}"
    );
}

async fn an_outage_ends_with_every_notification_delivered_once(backend: Backend) {
    let h = Harness::start(backend).await;
    // A ten-minute outage compressed to 2 s, retries 100-400 ms apart.
    h.slack.outage(Duration::from_secs(2));
    let runners: Vec<String> = (0..8).map(|i| format!("runner-{i}")).collect();
    for runner in &runners {
        h.runner(runner, &format!("U{}", runner.to_uppercase()))
            .await;
    }
    for runner in &runners {
        h.publish("run", runner, &record(runner, 3_000)).await;
    }
    eventually(
        "every runner got their message",
        Duration::from_secs(30),
        || async { h.slack.delivered().len() >= runners.len() },
    )
    .await;
    let delivered = h.slack.delivered();
    assert_eq!(delivered.len(), runners.len(), "each exactly once");
    let mut channels: Vec<&str> = delivered.iter().map(|p| p.target.as_str()).collect();
    channels.sort_unstable();
    channels.dedup();
    assert_eq!(channels.len(), runners.len());
    assert!(
        h.slack.posts().iter().any(|p| p.status == 503),
        "the outage was seen"
    );
    for runner in &runners {
        eventually("recorded as sent", WAIT, || async {
            h.slack_statuses(runner).await == [proto::DeliveryStatus::Sent]
        })
        .await;
    }
}

async fn invalid_auth_stops_delivery_and_surfaces(backend: Backend) {
    let h = Harness::start(backend).await;
    h.slack
        .script("chat.postMessage", [Answer::Error("invalid_auth")]);
    h.runner("erin", "UERIN").await;
    h.publish("run", "erin", &record("erin", 3_000)).await;
    eventually("delivery stopped", WAIT, || async {
        h.stats().await.slack_state() == proto::SlackWorkspaceState::Stopped
    })
    .await;
    let stats = h.stats().await;
    assert_eq!(stats.slack_error, "invalid_auth");
    h.publish("run", "erin", &record("erin", 2_990)).await;
    eventually("the second notification is held", WAIT, || async {
        h.list("erin").await.notifications.len() == 2
    })
    .await;
    // Several worker rounds later, still one request: nothing is retried or sent.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(h.slack.posts().len(), 1);
    assert_eq!(
        h.slack_statuses("erin").await,
        [
            proto::DeliveryStatus::Pending,
            proto::DeliveryStatus::Pending
        ]
    );
    // Only admins see the stats.
    let err = h
        .client()
        .get_delivery_stats(h.as_user(proto::GetDeliveryStatsRequest {}, "erin"))
        .await
        .unwrap_err();
    support::assert_status(&err, tonic::Code::PermissionDenied, "ROLE_REQUIRED");
}

async fn a_refused_member_id_is_marked_and_visible(backend: Backend) {
    let h = Harness::start(backend).await;
    h.slack
        .script("conversations.open", [Answer::Error("user_not_found")]);
    h.runner("fay", "UGONE").await;
    h.publish("run", "fay", &record("fay", 3_000)).await;
    eventually("failed", WAIT, || async {
        h.slack_statuses("fay").await == [proto::DeliveryStatus::Failed]
    })
    .await;
    let prefs = h
        .client()
        .get_notification_preferences(h.as_user(proto::GetNotificationPreferencesRequest {}, "fay"))
        .await
        .unwrap()
        .into_inner()
        .preferences
        .unwrap();
    assert_eq!(prefs.slack_link_state(), proto::SlackLinkState::Invalid);
    assert_eq!(prefs.slack_link_error, "user_not_found");
    h.publish("run", "fay", &record("fay", 2_990)).await;
    eventually("skipped", WAIT, || async {
        h.slack_statuses("fay").await.first() == Some(&proto::DeliveryStatus::Skipped)
    })
    .await;
    assert!(h.slack.posts().is_empty());
    // A new member id in the profile makes Slack usable again.
    h.publish(
        "user",
        "fay",
        &user_proto::UserProfileUpdated {
            user: Some(support::user("fay", "UFAY")),
            changed_fields: vec!["slack_member_id".into()],
        },
    )
    .await;
    h.publish("run", "fay", &record("fay", 2_980)).await;
    eventually("sent to the new id", WAIT, || async {
        h.slack.delivered().len() == 1
    })
    .await;
    assert_eq!(h.slack.delivered()[0].target, "DUFAY");
}

async fn quiet_hours_defer_and_release(backend: Backend) {
    use chrono::Timelike as _;
    let h = Harness::start(backend).await;
    h.runner("gus", "UGUS").await;
    h.race(RACE, "Seoul Marathon", CATEGORY).await;
    // Quiet now in Seoul, until two hours from now.
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Seoul);
    let hhmm = |t: chrono::DateTime<chrono_tz::Tz>| format!("{:02}:{:02}", t.hour(), t.minute());
    let start = hhmm(now - chrono::Duration::minutes(5));
    let end = hhmm(now + chrono::Duration::hours(2));
    eventually("the profile arrived", WAIT, || async {
        h.client()
            .get_notification_preferences(
                h.as_user(proto::GetNotificationPreferencesRequest {}, "gus"),
            )
            .await
            .unwrap()
            .into_inner()
            .preferences
            .unwrap()
            .slack_link_state()
            == proto::SlackLinkState::Linked
    })
    .await;
    h.client()
        .update_notification_preferences(h.as_user(
            proto::UpdateNotificationPreferencesRequest {
                quiet_hours: Some(proto::QuietHours {
                    enabled: true,
                    start,
                    end,
                }),
                language: "en".into(),
                ..Default::default()
            },
            "gus",
        ))
        .await
        .unwrap();
    h.publish("run", "gus", &record("gus", 3_000)).await;
    eventually("deferred", WAIT, || async {
        h.slack_statuses("gus").await == [proto::DeliveryStatus::Deferred]
    })
    .await;
    let n = h.list("gus").await.notifications.remove(0);
    assert_eq!(n.title, "New personal record: 10 km", "English as chosen");
    let slack = n
        .deliveries
        .iter()
        .find(|d| d.channel() == proto::NotificationChannel::Slack)
        .unwrap();
    let release = slack.next_attempt_at.unwrap().seconds;
    let expected = (now + chrono::Duration::hours(2)).timestamp();
    assert!(
        (release - expected).abs() <= 60,
        "released at the window's end"
    );
    // Urgent ones are not held: a waitlist place.
    h.publish(
        "race",
        RACE,
        &race_proto::WaitlistPromoted {
            registration: Some(race_proto::Registration {
                race_id: RACE.into(),
                category_id: CATEGORY.into(),
                user_id: "gus".into(),
                bib_number: Some(7),
                ..Default::default()
            }),
        },
    )
    .await;
    eventually("the urgent one went out", WAIT, || async {
        h.slack.delivered().len() == 1
    })
    .await;
    assert!(
        h.slack.delivered()[0]
            .text
            .starts_with("A place opened: Seoul Marathon")
    );
    // The window ends (its release time comes): the deferred one goes.
    use sea_orm::{ConnectionTrait as _, Statement};
    h.db.execute_raw(Statement::from_string(
        h.db.get_database_backend(),
        "UPDATE deliveries SET next_attempt_at = created_at WHERE status = 'deferred'",
    ))
    .await
    .unwrap();
    eventually("released", WAIT, || async {
        h.slack.delivered().len() == 2
    })
    .await;
    assert!(
        h.slack.delivered()[1]
            .text
            .starts_with("New personal record")
    );
}

async fn one_message_per_second_per_channel(backend: Backend) {
    let h = Harness::start(backend).await;
    h.runner("hana", "UHANA").await;
    h.runner("ivan", "UIVAN").await;
    for i in 0..4 {
        h.publish("run", "hana", &record("hana", 3_000 - i)).await;
    }
    h.publish("run", "ivan", &record("ivan", 3_000)).await;
    eventually("all five sent", WAIT, || async {
        h.slack.delivered().len() == 5
    })
    .await;
    let hana: Vec<_> = h
        .slack
        .posts()
        .into_iter()
        .filter(|p| p.target == "DUHANA")
        .collect();
    assert_eq!(hana.len(), 4);
    for pair in hana.windows(2) {
        let gap = pair[1].received - pair[0].received;
        assert!(
            gap >= Duration::from_millis(1_000),
            "two messages {gap:?} apart"
        );
    }
    // Another runner's channel is not held back by hana's.
    let ivan = h
        .slack
        .posts()
        .into_iter()
        .find(|p| p.target == "DUIVAN")
        .unwrap();
    assert!(ivan.received < hana[2].received);
}

async fn preferences_turn_slack_or_everything_off(backend: Backend) {
    let h = Harness::start(backend).await;
    h.runner("jin", "UJIN").await;
    h.race(RACE, "Seoul Marathon", CATEGORY).await;
    eventually("the profile arrived", WAIT, || async {
        h.client()
            .get_notification_preferences(
                h.as_user(proto::GetNotificationPreferencesRequest {}, "jin"),
            )
            .await
            .unwrap()
            .into_inner()
            .preferences
            .unwrap()
            .slack_link_state()
            == proto::SlackLinkState::Linked
    })
    .await;
    // Achievements: inbox only.
    h.client()
        .update_notification_preferences(h.as_user(
            proto::UpdateNotificationPreferencesRequest {
                channels: vec![proto::ChannelPreference {
                    category: proto::NotificationCategory::Achievement.into(),
                    channel: proto::NotificationChannel::Slack.into(),
                    enabled: false,
                }],
                ..Default::default()
            },
            "jin",
        ))
        .await
        .unwrap();
    h.publish("run", "jin", &record("jin", 3_000)).await;
    eventually("in the inbox", WAIT, || async {
        h.list("jin").await.notifications.len() == 1
    })
    .await;
    assert!(
        h.slack_statuses("jin").await.is_empty(),
        "no Slack delivery"
    );
    // Race results off in the svc-user profile: nothing at all.
    let mut profile = support::user("jin", "UJIN");
    profile
        .notification_preferences
        .as_mut()
        .unwrap()
        .registration_result = false;
    h.publish(
        "user",
        "jin",
        &user_proto::UserProfileUpdated {
            user: Some(profile),
            changed_fields: vec!["notification_preferences".into()],
        },
    )
    .await;
    h.confirmed(RACE, CATEGORY, "jin", 5).await;
    // A marker after it, to know the consumer passed it.
    h.publish(
        "user",
        "kim",
        &user_proto::UserRegistered {
            user: Some(support::user("kim", "")),
        },
    )
    .await;
    h.publish("run", "kim", &record("kim", 3_000)).await;
    eventually("the marker", WAIT, || async {
        h.list("kim").await.notifications.len() == 1
    })
    .await;
    assert_eq!(h.list("jin").await.notifications.len(), 1);
    assert!(h.slack.posts().is_empty());
    // kim has no Slack id: the delivery log says why.
    let kim = h.list("kim").await.notifications.remove(0);
    let slack = kim
        .deliveries
        .iter()
        .find(|d| d.channel() == proto::NotificationChannel::Slack)
        .unwrap();
    eventually("kim's skipped", WAIT, || async {
        h.slack_statuses("kim").await == [proto::DeliveryStatus::Skipped]
    })
    .await;
    let _ = slack;
}

async fn a_badge_reaches_slack_in_the_runners_language(backend: Backend) {
    let h = Harness::start(backend).await;
    h.runner("lee", "ULEE").await;
    let badge = |tier| run_proto::AchievementUnlocked {
        owner_id: "lee".into(),
        achievement: Some(run_proto::Achievement {
            badge_id: "first-10k".into(),
            tier,
            period: "lifetime".into(),
            points: 50,
            badge: Some(run_proto::Badge {
                badge_id: "first-10k".into(),
                name: Some(run_proto::LocalizedText {
                    en: "First 10K".into(),
                    ko: "첫 10K".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    h.publish("run", "lee", &badge(1)).await;
    eventually("the badge post", WAIT, || async {
        h.slack.delivered().len() == 1
    })
    .await;
    assert!(h.slack.delivered()[0].text.starts_with("배지 획득: 첫 10K"));
    h.publish(
        "run",
        "lee",
        &run_proto::ChallengeCompleted {
            owner_id: "lee".into(),
            challenge_id: "c1".into(),
            title: "December 100 km".into(),
            ..Default::default()
        },
    )
    .await;
    eventually("the challenge post", WAIT, || async {
        h.slack.delivered().len() == 2
    })
    .await;
    assert!(h.slack.delivered()[1].text.contains("December 100 km"));
}

fn recap(owner: &str, period: &str, date: &str) -> run_proto::RecapReady {
    run_proto::RecapReady {
        owner_id: owner.to_owned(),
        period: period.to_owned(),
        date: date.to_owned(),
        time_zone: "Asia/Seoul".to_owned(),
        distance_meters: 42_195.0,
        runs: 5,
        moving_time: Some(prost_types::Duration {
            seconds: 13_790,
            nanos: 0,
        }),
        active_days: 4,
    }
}

/// Waits until svc-assist has `user_id`'s profile (their Slack id is linked).
async fn profile_arrived(h: &Harness, user_id: &str) {
    eventually("the profile arrived", WAIT, || async {
        h.client()
            .get_notification_preferences(
                h.as_user(proto::GetNotificationPreferencesRequest {}, user_id),
            )
            .await
            .unwrap()
            .into_inner()
            .preferences
            .unwrap()
            .slack_link_state()
            == proto::SlackLinkState::Linked
    })
    .await;
}

async fn a_recap_reaches_slack_and_the_inbox_once(backend: Backend) {
    use chrono::Timelike as _;
    let h = Harness::start(backend).await;
    h.runner("ria", "URIA").await;
    let envelope = h
        .publish("run", "ria", &recap("ria", "week", "2025-01-06"))
        .await;
    eventually("the recap post", WAIT, || async {
        h.slack.delivered().len() == 1
    })
    .await;
    let post = &h.slack.delivered()[0];
    assert_eq!(post.target, "DURIA");
    // Korean by default, the headline figures first.
    assert!(
        post.text
            .starts_with("지난주 5회, 42.2 km, 3시간 50분 달렸어요 — 주간 리캡 보기"),
        "{}",
        post.text
    );
    assert!(
        post.text
            .contains("https://runmesh.example/v1/me/recaps/week/2025-01-06"),
        "{}",
        post.text
    );
    let blocks = serde_json::to_string(&post.blocks).unwrap();
    assert!(
        blocks.contains("https://runmesh.example/v1/me/recaps/week/2025-01-06/card.png"),
        "{blocks}"
    );
    let inbox = h.list("ria").await;
    assert_eq!(inbox.unread_count, 1);
    let n = &inbox.notifications[0];
    assert_eq!(n.kind, "recap_ready");
    assert_eq!(n.category(), proto::NotificationCategory::Achievement);
    assert_eq!(n.event_id, envelope.id);
    assert_eq!(
        n.link,
        "https://runmesh.example/v1/me/recaps/week/2025-01-06"
    );
    let card = n.fields.iter().find(|f| f.label == "리캡 카드").unwrap();
    assert_eq!(
        card.value,
        "https://runmesh.example/v1/me/recaps/week/2025-01-06/card.png"
    );
    assert!(
        n.fields
            .iter()
            .any(|f| f.label == "달린 날" && f.value == "4")
    );
    eventually("the delivery log says sent", WAIT, || async {
        h.slack_statuses("ria").await == [proto::DeliveryStatus::Sent]
    })
    .await;

    // Redelivered, then a marker: still one recap in the inbox and on Slack.
    h.publish_envelope("run", &envelope).await;
    h.publish("run", "ria", &record("ria", 2_900)).await;
    eventually("the marker's post", WAIT, || async {
        h.slack.delivered().len() == 2
    })
    .await;
    let kinds: Vec<String> = h
        .list("ria")
        .await
        .notifications
        .iter()
        .map(|n| n.kind.clone())
        .collect();
    assert_eq!(kinds, ["personal_record", "recap_ready"]);
    assert_eq!(
        h.slack
            .delivered()
            .iter()
            .filter(|p| p.text.contains("리캡"))
            .count(),
        1
    );

    // An English reader in quiet hours: the year's recap in English, linking to the English
    // recap, held until the window ends (not urgent).
    h.runner("tom", "UTOM").await;
    profile_arrived(&h, "tom").await;
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Seoul);
    let hhmm = |t: chrono::DateTime<chrono_tz::Tz>| format!("{:02}:{:02}", t.hour(), t.minute());
    h.client()
        .update_notification_preferences(h.as_user(
            proto::UpdateNotificationPreferencesRequest {
                quiet_hours: Some(proto::QuietHours {
                    enabled: true,
                    start: hhmm(now - chrono::Duration::minutes(5)),
                    end: hhmm(now + chrono::Duration::hours(2)),
                }),
                language: "en".into(),
                ..Default::default()
            },
            "tom",
        ))
        .await
        .unwrap();
    h.publish("run", "tom", &recap("tom", "year", "2025-01-01"))
        .await;
    eventually("deferred", WAIT, || async {
        h.slack_statuses("tom").await == [proto::DeliveryStatus::Deferred]
    })
    .await;
    let n = h.list("tom").await.notifications.remove(0);
    assert_eq!(
        n.title,
        "Your 2025: 5 runs, 42.2 km, 3h 50m — see your year in review"
    );
    assert_eq!(
        n.link,
        "https://runmesh.example/v1/me/recaps/year/2025-01-01?language=en"
    );
    let card = n.fields.iter().find(|f| f.label == "Recap card").unwrap();
    assert_eq!(
        card.value,
        "https://runmesh.example/v1/me/recaps/year/2025-01-01/card.png?language=en"
    );
    assert!(
        n.fields
            .iter()
            .any(|f| f.label == "Moving time" && f.value == "3h 50m")
    );

    // Achievements off in the svc-user profile: no recap at all (the preference that governs it).
    let mut profile = support::user("uma", "UUMA");
    profile
        .notification_preferences
        .as_mut()
        .unwrap()
        .achievement = false;
    h.publish(
        "user",
        "uma",
        &user_proto::UserRegistered {
            user: Some(profile),
        },
    )
    .await;
    h.publish("run", "uma", &recap("uma", "week", "2025-01-06"))
        .await;
    h.runner("vic", "").await;
    h.publish("run", "vic", &recap("vic", "week", "2025-01-06"))
        .await;
    eventually("the marker", WAIT, || async {
        h.list("vic").await.notifications.len() == 1
    })
    .await;
    assert!(h.list("uma").await.notifications.is_empty());
    assert_eq!(h.slack.delivered().len(), 2, "nothing more reached Slack");
}

async fn crew_activity_reaches_the_crew(backend: Backend) {
    use runmesh_proto::runmesh::social::v1 as social;
    let h = Harness::start(backend).await;
    for runner in ["owner", "rin", "sol"] {
        h.runner(runner, &format!("U{}", runner.to_uppercase()))
            .await;
    }
    h.publish(
        "social",
        "crew-1",
        &social::CrewCreated {
            crew: Some(social::CrewSummary {
                crew_id: "crew-1".into(),
                name: "Han River RC".into(),
                ..Default::default()
            }),
            owner_id: "owner".into(),
            created_at: None,
        },
    )
    .await;
    for runner in ["owner", "rin", "sol"] {
        h.publish(
            "social",
            "crew-1",
            &social::CrewMemberJoined {
                crew_id: "crew-1".into(),
                user_id: runner.into(),
                ..Default::default()
            },
        )
        .await;
    }
    h.publish(
        "social",
        "crew-1",
        &social::CrewMemberLeft {
            crew_id: "crew-1".into(),
            user_id: "sol".into(),
            ..Default::default()
        },
    )
    .await;
    let meetup = social::MeetupSummary {
        meetup_id: "m1".into(),
        crew_id: "crew-1".into(),
        title: "Sunday long run".into(),
        starts_at: Some(prost_types::Timestamp {
            seconds: 1_800_000_000,
            nanos: 0,
        }),
        time_zone: "Asia/Seoul".into(),
        meeting_point_name: "Yeouido".into(),
        capacity: 10,
    };
    h.publish(
        "social",
        "crew-1",
        &social::MeetupScheduled {
            meetup: Some(meetup.clone()),
            created_by: "owner".into(),
        },
    )
    .await;
    eventually("rin heard of the meetup", WAIT, || async {
        h.slack.delivered().len() == 1
    })
    .await;
    let post = &h.slack.delivered()[0];
    assert_eq!(
        post.target, "DURIN",
        "only the members, not the organiser or one who left"
    );
    assert!(post.text.contains("Han River RC"), "{}", post.text);
    assert!(
        post.text.contains("2027-01-15 17:00 KST"),
        "the runner's local time: {}",
        post.text
    );
    // A reply to rin's comment on owner's post: each hears once, the author not at all.
    h.publish(
        "social",
        "crew-1",
        &social::CommentCreated {
            crew_id: "crew-1".into(),
            target_kind: social::CommentTargetKind::Post.into(),
            target_id: "p1".into(),
            comment_id: "c2".into(),
            author_id: "sol".into(),
            target_owner_id: "owner".into(),
            parent_author_id: "rin".into(),
            created_at: None,
        },
    )
    .await;
    eventually("two comment notices", WAIT, || async {
        h.slack.delivered().len() == 3
    })
    .await;
    assert_eq!(h.list("rin").await.notifications[0].title, "새 답글");
    assert_eq!(h.list("owner").await.notifications[0].title, "새 댓글");
    // A promotion names the meetup from what was projected.
    h.publish(
        "social",
        "crew-1",
        &social::MeetupPromoted {
            meetup_id: "m1".into(),
            crew_id: "crew-1".into(),
            user_id: "owner".into(),
            promoted_at: None,
        },
    )
    .await;
    eventually("promoted", WAIT, || async {
        h.list("owner").await.notifications.len() == 2
    })
    .await;
    assert_eq!(
        h.list("owner").await.notifications[0].title,
        "모임런 참가 확정: Sunday long run"
    );
}

on_both_backends!(
    a_recap_reaches_slack_and_the_inbox_once,
    crew_activity_reaches_the_crew,
    a_badge_reaches_slack_in_the_runners_language,
    registration_confirmed_reaches_slack_and_the_inbox_once,
    killed_mid_request_is_ambiguous_and_never_resent,
    a_lost_answer_is_ambiguous,
    rate_limit_is_honoured_to_the_second,
    an_outage_ends_with_every_notification_delivered_once,
    invalid_auth_stops_delivery_and_surfaces,
    a_refused_member_id_is_marked_and_visible,
    quiet_hours_defer_and_release,
    one_message_per_second_per_channel,
    preferences_turn_slack_or_everything_off,
);
