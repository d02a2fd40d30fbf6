//! svc-assist's own metrics (`runmesh_assist_…`), beside autometrics' function metrics: what
//! became of notifications on each channel, Slack's refusals, whether Slack delivery is stopped
//! (alert `RunmeshSlackDeliveryStopped`), and the assistant's answers with their latency.
//! docs/operations.md lists them.

use std::sync::{LazyLock, Once};
use std::time::Duration;

use runmesh_platform::telemetry::prometheus_client::metrics::counter::Counter;
use runmesh_platform::telemetry::prometheus_client::metrics::family::Family;
use runmesh_platform::telemetry::prometheus_client::metrics::gauge::Gauge;
use runmesh_platform::telemetry::prometheus_client::metrics::histogram::Histogram;
use runmesh_platform::telemetry::prometheus_client::registry::Registry;

use crate::domain::Channel;

type Labels = Vec<(&'static str, &'static str)>;

/// Notifications by channel and outcome (`runmesh_assist_notifications_total`).
static NOTIFICATIONS: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
/// Slack's refusals and failed calls by error (`runmesh_assist_slack_errors_total`).
static SLACK_ERRORS: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
/// 1 while Slack delivery is stopped (the bot token was refused), else 0.
static SLACK_STOPPED: LazyLock<Gauge> = LazyLock::new(Gauge::default);
/// Assistant questions by outcome (`runmesh_assist_answers_total`).
static ANSWERS: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
/// From a question's arrival to its answer, by outcome (`runmesh_assist_answer_duration_seconds`).
static ANSWER_SECONDS: LazyLock<Family<Labels, Histogram>> = LazyLock::new(|| {
    Family::new_with_constructor(|| {
        Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0].into_iter())
    })
});

/// Adds svc-assist's metrics to what `/metrics` exports (once per process).
pub fn register() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| runmesh_platform::telemetry::register_metrics(register_into));
}

fn register_into(registry: &mut Registry) {
    registry.register(
        "runmesh_assist_notifications",
        "Notifications by channel (inbox, slack) and outcome (sent, deferred, suppressed, failed, ambiguous)",
        NOTIFICATIONS.clone(),
    );
    registry.register(
        "runmesh_assist_slack_errors",
        "Slack answers other than ok and calls that got no answer, by error (Slack's code, ratelimited, http_5xx, …)",
        SLACK_ERRORS.clone(),
    );
    registry.register(
        "runmesh_assist_slack_delivery_stopped",
        "1 while Slack delivery is stopped because Slack refused the bot token, else 0",
        SLACK_STOPPED.clone(),
    );
    registry.register(
        "runmesh_assist_answers",
        "Assistant questions by outcome (answered, unanswered, refused, failed)",
        ANSWERS.clone(),
    );
    registry.register(
        "runmesh_assist_answer_duration_seconds",
        "From an assistant question's arrival to its answer (or refusal), by outcome",
        ANSWER_SECONDS.clone(),
    );
}

/// svc-assist's series in the Prometheus text format, as `/metrics` adds them (for tests and
/// debugging; the values are the process's).
pub fn render() -> String {
    runmesh_platform::telemetry::render_metrics(register_into)
}

/// What became of a notification on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// In the inbox; on Slack, `ok: true`.
    Sent,
    /// Held for quiet hours or a digest when written (counted again when it goes).
    Deferred,
    /// Not sent on the channel: the runner's preference, no or a refused Slack member id, or
    /// the notification erased before it went.
    Suppressed,
    /// Slack refused it or the retries ran out.
    Failed,
    /// The request may have reached Slack but its answer was lost (never resent).
    Ambiguous,
}

impl Outcome {
    const fn code(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Deferred => "deferred",
            Self::Suppressed => "suppressed",
            Self::Failed => "failed",
            Self::Ambiguous => "ambiguous",
        }
    }
}

/// Counts `count` notifications on `channel` ending (for now) in `outcome`.
pub(crate) fn notifications(channel: Channel, outcome: Outcome, count: u64) {
    if count > 0 {
        NOTIFICATIONS
            .get_or_create(&vec![
                ("channel", channel.code()),
                ("outcome", outcome.code()),
            ])
            .inc_by(count);
    }
}

/// Counts one Slack error (a label from `domain::slack::error_label`).
pub(crate) fn slack_error(error: &'static str) {
    SLACK_ERRORS.get_or_create(&vec![("error", error)]).inc();
}

/// Reports whether Slack delivery is stopped.
pub(crate) fn slack_stopped(stopped: bool) {
    SLACK_STOPPED.set(i64::from(stopped));
}

/// How an assistant question ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Answered with what it needed (`AnswerEnd.answered`).
    Answered,
    /// Answered, saying what it could not find or reach (`AnswerEnd.answered` false).
    Unanswered,
    /// The question was refused: invalid, another runner's conversation, too many questions.
    Refused,
    /// A fault: the answer could not be stored or the call failed on the server's side.
    Failed,
}

/// Counts one question and how long it took.
pub(crate) fn answered(outcome: Answer, took: Duration) {
    let outcome = match outcome {
        Answer::Answered => "answered",
        Answer::Unanswered => "unanswered",
        Answer::Refused => "refused",
        Answer::Failed => "failed",
    };
    let labels = vec![("outcome", outcome)];
    ANSWERS.get_or_create(&labels).inc();
    ANSWER_SECONDS
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_exported_under_its_documented_name() {
        notifications(Channel::Slack, Outcome::Sent, 2);
        slack_error("invalid_auth");
        slack_stopped(true);
        answered(Answer::Refused, Duration::from_millis(3));
        let text = render();
        for series in [
            "# TYPE runmesh_assist_notifications counter",
            "runmesh_assist_notifications_total{channel=\"slack\",outcome=\"sent\"} ",
            "runmesh_assist_slack_errors_total{error=\"invalid_auth\"} ",
            "# TYPE runmesh_assist_slack_delivery_stopped gauge",
            "runmesh_assist_slack_delivery_stopped 1",
            "runmesh_assist_answers_total{outcome=\"refused\"} ",
            "# TYPE runmesh_assist_answer_duration_seconds histogram",
            "runmesh_assist_answer_duration_seconds_count{outcome=\"refused\"} ",
        ] {
            assert!(text.contains(series), "no {series} in:\n{text}");
        }
        slack_stopped(false);
        assert!(render().contains("runmesh_assist_slack_delivery_stopped 0"));
    }
}
