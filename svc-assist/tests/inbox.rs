//! The inbox and preferences through the gRPC API: pagination, unread counts, mark read / read
//! all / archive, another runner's notification, bad input naming the field, the live watch
//! stream, the test notification, and erasure on `UserDeleted`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use futures::StreamExt;
use runmesh_proto::runmesh::notify::v1 as proto;
use runmesh_proto::runmesh::run::v1 as run_proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use support::{Backend, Harness, assert_status, eventually, violated_fields};

const WAIT: Duration = Duration::from_secs(15);

fn record(owner: &str, seconds: i64) -> run_proto::PersonalRecordSet {
    run_proto::PersonalRecordSet {
        owner_id: owner.to_owned(),
        distance: run_proto::EffortDistance::EffortDistance5k.into(),
        elapsed_time: Some(prost_types::Duration { seconds, nanos: 0 }),
        run_id: format!("run-{seconds}"),
        ..Default::default()
    }
}

async fn the_inbox_pages_marks_and_archives(backend: Backend) {
    let h = Harness::start(backend).await;
    h.runner("mia", "").await;
    h.runner("noa", "").await;
    for i in 0..5 {
        h.publish("run", "mia", &record("mia", 1_500 - i)).await;
    }
    h.publish("run", "noa", &record("noa", 1_500)).await;
    eventually("five in mia's inbox", WAIT, || async {
        h.list("mia").await.unread_count == 5
    })
    .await;
    eventually("one in noa's", WAIT, || async {
        h.list("noa").await.unread_count == 1
    })
    .await;

    let mut client = h.client();
    let page = client
        .list_notifications(h.as_user(
            proto::ListNotificationsRequest {
                page_size: 2,
                ..Default::default()
            },
            "mia",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.notifications.len(), 2);
    assert!(!page.next_page_token.is_empty());
    // Newest first: the fastest record last published.
    assert!(
        page.notifications[0].body.contains("24:56"),
        "{}",
        page.notifications[0].body
    );
    let mut seen: Vec<String> = page
        .notifications
        .iter()
        .map(|n| n.notification_id.clone())
        .collect();
    let mut token = page.next_page_token;
    while !token.is_empty() {
        let page = client
            .list_notifications(h.as_user(
                proto::ListNotificationsRequest {
                    page_size: 2,
                    page_token: token,
                    ..Default::default()
                },
                "mia",
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.notifications.iter().map(|n| n.notification_id.clone()));
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 5);
    let mut distinct = seen.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5);

    // Mark two read.
    let marked = client
        .mark_notifications_read(h.as_user(
            proto::MarkNotificationsReadRequest {
                notification_ids: seen[..2].to_vec(),
                all: false,
            },
            "mia",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((marked.marked, marked.unread_count), (2, 3));
    let unread = client
        .list_notifications(h.as_user(
            proto::ListNotificationsRequest {
                unread_only: true,
                ..Default::default()
            },
            "mia",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unread.notifications.len(), 3);

    // Another runner's notification is NOT_FOUND, and nothing changes.
    let noa_id = h.list("noa").await.notifications[0].notification_id.clone();
    let err = client
        .mark_notifications_read(h.as_user(
            proto::MarkNotificationsReadRequest {
                notification_ids: vec![seen[2].clone(), noa_id.clone()],
                all: false,
            },
            "mia",
        ))
        .await
        .unwrap_err();
    assert_status(&err, tonic::Code::NotFound, "NOTIFICATION_NOT_FOUND");
    assert_eq!(h.list("mia").await.unread_count, 3);
    let err = client
        .archive_notification(h.as_user(
            proto::ArchiveNotificationRequest {
                notification_id: noa_id,
            },
            "mia",
        ))
        .await
        .unwrap_err();
    assert_status(&err, tonic::Code::NotFound, "NOTIFICATION_NOT_FOUND");

    // Archive one: gone from the inbox, listed with include_archived.
    let archived = client
        .archive_notification(h.as_user(
            proto::ArchiveNotificationRequest {
                notification_id: seen[0].clone(),
            },
            "mia",
        ))
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    assert_eq!(archived.state(), proto::NotificationState::Archived);
    assert_eq!(h.list("mia").await.notifications.len(), 4);
    let all = client
        .list_notifications(h.as_user(
            proto::ListNotificationsRequest {
                include_archived: true,
                ..Default::default()
            },
            "mia",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.notifications.len(), 5);

    // Read all.
    let marked = client
        .mark_notifications_read(h.as_user(
            proto::MarkNotificationsReadRequest {
                all: true,
                ..Default::default()
            },
            "mia",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((marked.marked, marked.unread_count), (3, 0));

    // Bad ids and tokens name their field; no token is UNAUTHENTICATED.
    let err = client
        .mark_notifications_read(h.as_user(
            proto::MarkNotificationsReadRequest {
                notification_ids: vec!["nope".into()],
                all: false,
            },
            "mia",
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["notification_ids[0]"]);
    let err = client
        .list_notifications(h.as_user(
            proto::ListNotificationsRequest {
                page_token: "@@".into(),
                page_size: 500,
                ..Default::default()
            },
            "mia",
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_size", "page_token"]);
    let err = client
        .list_notifications(tonic::Request::new(
            proto::ListNotificationsRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
}

async fn preferences_validate_and_round_trip(backend: Backend) {
    let h = Harness::start(backend).await;
    let mut client = h.client();
    let prefs = client
        .get_notification_preferences(
            h.as_user(proto::GetNotificationPreferencesRequest {}, "olga"),
        )
        .await
        .unwrap()
        .into_inner()
        .preferences
        .unwrap();
    assert_eq!(prefs.language, "ko");
    assert_eq!(prefs.channels.len(), 8);
    assert!(prefs.channels.iter().all(|c| c.enabled));
    assert_eq!(prefs.slack_link_state(), proto::SlackLinkState::NotLinked);

    let err = client
        .update_notification_preferences(h.as_user(
            proto::UpdateNotificationPreferencesRequest {
                channels: vec![
                    proto::ChannelPreference {
                        category: 42,
                        channel: proto::NotificationChannel::Slack.into(),
                        enabled: false,
                    },
                    proto::ChannelPreference {
                        category: proto::NotificationCategory::Achievement.into(),
                        channel: 9,
                        enabled: false,
                    },
                ],
                quiet_hours: Some(proto::QuietHours {
                    enabled: true,
                    start: "22:00".into(),
                    end: "7am".into(),
                }),
                language: "fr".into(),
                ..Default::default()
            },
            "olga",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        [
            "channels[0].category",
            "channels[1].channel",
            "quiet_hours.end",
            "language"
        ]
    );

    let updated = client
        .update_notification_preferences(h.as_user(
            proto::UpdateNotificationPreferencesRequest {
                channels: vec![proto::ChannelPreference {
                    category: proto::NotificationCategory::CrewActivity.into(),
                    channel: proto::NotificationChannel::Slack.into(),
                    enabled: false,
                }],
                quiet_hours: Some(proto::QuietHours {
                    enabled: true,
                    start: "22:30".into(),
                    end: "06:45".into(),
                }),
                digest_categories: vec![proto::NotificationCategory::CrewActivity.into()],
                update_digest_categories: true,
                language: "en".into(),
            },
            "olga",
        ))
        .await
        .unwrap()
        .into_inner()
        .preferences
        .unwrap();
    assert_eq!(updated.language, "en");
    let quiet = updated.quiet_hours.unwrap();
    assert_eq!(
        (quiet.enabled, quiet.start.as_str(), quiet.end.as_str()),
        (true, "22:30", "06:45")
    );
    assert_eq!(
        updated.digest_categories,
        [i32::from(proto::NotificationCategory::CrewActivity)]
    );
    let crew_slack = updated
        .channels
        .iter()
        .find(|c| {
            c.category() == proto::NotificationCategory::CrewActivity
                && c.channel() == proto::NotificationChannel::Slack
        })
        .unwrap();
    assert!(!crew_slack.enabled);
}

async fn a_foreign_client_watches_the_inbox_live(backend: Backend) {
    let h = Harness::start(backend).await;
    h.runner("pia", "UPIA").await;
    let mut stream = h
        .client()
        .watch_notifications(h.as_user(proto::WatchNotificationsRequest {}, "pia"))
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.notification.is_none());
    assert_eq!(first.unread_count, 0);
    h.publish("run", "pia", &record("pia", 1_400)).await;
    let update = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let n = update.notification.unwrap();
    assert_eq!(n.kind, "personal_record");
    assert_eq!(update.unread_count, 1);
    // The test notification arrives on the stream too and goes to Slack.
    let sent = h
        .client()
        .send_test_notification(h.as_user(proto::SendTestNotificationRequest {}, "pia"))
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    assert_eq!(sent.category(), proto::NotificationCategory::Test);
    let update = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        update.notification.unwrap().notification_id,
        sent.notification_id
    );
    eventually("the test DM", WAIT, || async {
        h.slack
            .delivered()
            .iter()
            .any(|p| p.text.starts_with("테스트 알림"))
    })
    .await;
}

async fn a_deleted_runner_is_erased(backend: Backend) {
    let h = Harness::start(backend).await;
    h.runner("quinn", "UQUINN").await;
    h.publish("run", "quinn", &record("quinn", 1_400)).await;
    eventually("notified", WAIT, || async {
        h.list("quinn").await.notifications.len() == 1
    })
    .await;
    h.publish(
        "user",
        "quinn",
        &user_proto::UserDeleted {
            user_id: "quinn".into(),
            deleted_at: None,
        },
    )
    .await;
    eventually("erased", WAIT, || async {
        h.list("quinn").await.notifications.is_empty()
    })
    .await;
    let prefs = h
        .client()
        .get_notification_preferences(
            h.as_user(proto::GetNotificationPreferencesRequest {}, "quinn"),
        )
        .await
        .unwrap()
        .into_inner()
        .preferences
        .unwrap();
    assert_eq!(prefs.slack_link_state(), proto::SlackLinkState::NotLinked);
}

on_both_backends!(
    the_inbox_pages_marks_and_archives,
    preferences_validate_and_round_trip,
    a_foreign_client_watches_the_inbox_live,
    a_deleted_runner_is_erased,
);
