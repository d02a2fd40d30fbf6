//! svc-assist's own metrics as Prometheus scrapes them from `/metrics` (docs/operations.md): what
//! became of notifications per channel, Slack's errors, and `runmesh_assist_slack_delivery_stopped`
//! (alert `RunmeshSlackDeliveryStopped`) going to 1 when Slack refuses the token. One test runs
//! both backends in turn and compares scrapes, so the process-wide counters add up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use runmesh_platform::testkit::{metric_value, scrape_metrics, serve_test_metrics};
use runmesh_proto::runmesh::notify::v1 as proto;
use runmesh_proto::runmesh::run::v1 as run_proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use support::{Answer, Backend, Harness, eventually};

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

const INBOX_SENT: &str = r#"runmesh_assist_notifications_total{channel="inbox",outcome="sent"}"#;
const INBOX_SUPPRESSED: &str =
    r#"runmesh_assist_notifications_total{channel="inbox",outcome="suppressed"}"#;
const SLACK_SENT: &str = r#"runmesh_assist_notifications_total{channel="slack",outcome="sent"}"#;
const SLACK_SUPPRESSED: &str =
    r#"runmesh_assist_notifications_total{channel="slack",outcome="suppressed"}"#;
const HTTP_5XX: &str = r#"runmesh_assist_slack_errors_total{error="http_5xx"}"#;
const INVALID_AUTH: &str = r#"runmesh_assist_slack_errors_total{error="invalid_auth"}"#;
const STOPPED: &str = "runmesh_assist_slack_delivery_stopped";

async fn notifications_and_slack_show_on_metrics(backend: Backend, metrics: SocketAddr) {
    let before = scrape_metrics(metrics).await;
    let delta =
        |after: &str, series: &str| metric_value(after, series) - metric_value(&before, series);
    let h = Harness::start(backend).await;
    // ada's first post meets a 5xx and is retried; bea has no Slack id; cal turned achievements
    // off in their profile.
    h.slack.script("chat.postMessage", [Answer::Status(503)]);
    h.runner("ada", "UADA").await;
    h.runner("bea", "").await;
    let mut cal = support::user("cal", "UCAL");
    cal.notification_preferences.as_mut().unwrap().achievement = false;
    h.publish(
        "user",
        "cal",
        &user_proto::UserRegistered { user: Some(cal) },
    )
    .await;
    for runner in ["ada", "bea", "cal"] {
        h.publish("run", runner, &record(runner, 3_000)).await;
    }
    eventually("ada's post went", WAIT, || async {
        h.slack_statuses("ada").await == [proto::DeliveryStatus::Sent]
    })
    .await;
    eventually("bea's skipped", WAIT, || async {
        h.slack_statuses("bea").await == [proto::DeliveryStatus::Skipped]
    })
    .await;
    let after = scrape_metrics(metrics).await;
    assert_eq!(delta(&after, INBOX_SENT), 2.0, "ada's and bea's:\n{after}");
    assert_eq!(delta(&after, INBOX_SUPPRESSED), 1.0, "cal's:\n{after}");
    assert_eq!(delta(&after, SLACK_SENT), 1.0, "ada's:\n{after}");
    assert_eq!(
        delta(&after, SLACK_SUPPRESSED),
        2.0,
        "bea's (no Slack id) and cal's (off):\n{after}"
    );
    assert_eq!(delta(&after, HTTP_5XX), 1.0, "{after}");
    assert_eq!(metric_value(&after, STOPPED), 0.0, "{after}");

    // Slack refuses the token: delivery stops, and the gauge the alert watches says so.
    h.slack
        .script("chat.postMessage", [Answer::Error("invalid_auth")]);
    h.publish("run", "ada", &record("ada", 2_990)).await;
    eventually("delivery stopped", WAIT, || async {
        h.stats().await.slack_state() == proto::SlackWorkspaceState::Stopped
    })
    .await;
    let stopped = scrape_metrics(metrics).await;
    assert_eq!(metric_value(&stopped, STOPPED), 1.0, "{stopped}");
    assert_eq!(delta(&stopped, INVALID_AUTH), 1.0, "{stopped}");
    assert_eq!(delta(&stopped, SLACK_SENT), 1.0, "nothing more was sent");
    for series in [
        "# TYPE runmesh_assist_notifications counter",
        "# TYPE runmesh_assist_slack_errors counter",
        "# TYPE runmesh_assist_slack_delivery_stopped gauge",
        "# TYPE runmesh_assist_answers counter",
        "# TYPE runmesh_assist_answer_duration_seconds histogram",
    ] {
        assert!(stopped.contains(series), "no {series} in:\n{stopped}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_and_slack_show_on_metrics_on_both_backends() {
    // As a process starts svc-assist: its metrics registered before telemetry starts.
    let _assist =
        runmesh_svc_assist::AssistService::new(runmesh_svc_assist::AssistConfig::default());
    let (metrics, shutdown) = serve_test_metrics("runmesh-assist").await;
    for backend in [Backend::Postgres, Backend::Embedded] {
        notifications_and_slack_show_on_metrics(backend, metrics).await;
    }
    shutdown.cancel();
}
