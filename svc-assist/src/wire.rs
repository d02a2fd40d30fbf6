//! Every proto↔domain conversion, used by `grpc.rs` and `events.rs` alike.

use chrono::{DateTime, Utc};
use runmesh_proto::runmesh::notify::v1 as proto;
use runmesh_proto::runmesh::run::v1 as run_proto;

use crate::domain::{Category, Channel, DeliveryStatus, InboxState, QuietHours};
use crate::notify::inbox::{NotificationView, PreferencesView, SlackLink, Stats};
use crate::notify::workspace::SlackState;
use crate::store::delivery;

pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn category(category: Category) -> proto::NotificationCategory {
    match category {
        Category::RaceOpening => proto::NotificationCategory::RaceOpening,
        Category::Registration => proto::NotificationCategory::Registration,
        Category::Achievement => proto::NotificationCategory::Achievement,
        Category::CrewActivity => proto::NotificationCategory::CrewActivity,
        Category::Test => proto::NotificationCategory::Test,
    }
}

/// A configurable category from the wire; `Err` for unspecified, unknown or the test category.
pub fn parse_category(value: i32) -> Result<Category, String> {
    match proto::NotificationCategory::try_from(value) {
        Ok(proto::NotificationCategory::RaceOpening) => Ok(Category::RaceOpening),
        Ok(proto::NotificationCategory::Registration) => Ok(Category::Registration),
        Ok(proto::NotificationCategory::Achievement) => Ok(Category::Achievement),
        Ok(proto::NotificationCategory::CrewActivity) => Ok(Category::CrewActivity),
        _ => Err(format!(
            "{value} is not a notification category one can choose"
        )),
    }
}

pub fn channel(channel: Channel) -> proto::NotificationChannel {
    match channel {
        Channel::Inbox => proto::NotificationChannel::Inbox,
        Channel::Slack => proto::NotificationChannel::Slack,
    }
}

pub fn parse_channel(value: i32) -> Result<Channel, String> {
    match proto::NotificationChannel::try_from(value) {
        Ok(proto::NotificationChannel::Inbox) => Ok(Channel::Inbox),
        Ok(proto::NotificationChannel::Slack) => Ok(Channel::Slack),
        _ => Err(format!("{value} is not a notification channel")),
    }
}

pub fn delivery_status(status: DeliveryStatus) -> proto::DeliveryStatus {
    match status {
        DeliveryStatus::Pending => proto::DeliveryStatus::Pending,
        DeliveryStatus::Deferred => proto::DeliveryStatus::Deferred,
        DeliveryStatus::Digest => proto::DeliveryStatus::Digest,
        DeliveryStatus::Sending => proto::DeliveryStatus::Sending,
        DeliveryStatus::Sent => proto::DeliveryStatus::Sent,
        DeliveryStatus::Failed => proto::DeliveryStatus::Failed,
        DeliveryStatus::Ambiguous => proto::DeliveryStatus::Ambiguous,
        DeliveryStatus::Skipped => proto::DeliveryStatus::Skipped,
    }
}

fn state(code: &str) -> proto::NotificationState {
    match code.parse::<InboxState>() {
        Ok(InboxState::Unread) => proto::NotificationState::Unread,
        Ok(InboxState::Read) => proto::NotificationState::Read,
        Ok(InboxState::Archived) => proto::NotificationState::Archived,
        Err(_) => proto::NotificationState::Unspecified,
    }
}

fn delivery_message(row: &delivery::Model) -> proto::Delivery {
    let status = row
        .status
        .parse()
        .map_or(proto::DeliveryStatus::Unspecified, delivery_status);
    let due = matches!(
        status,
        proto::DeliveryStatus::Pending | proto::DeliveryStatus::Deferred
    );
    proto::Delivery {
        channel: row
            .channel
            .parse()
            .map_or(proto::NotificationChannel::Unspecified, channel)
            .into(),
        status: status.into(),
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        last_error: row.last_error.clone(),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        sent_at: row.sent_at.map(timestamp),
        next_attempt_at: due.then(|| timestamp(row.next_attempt_at)),
    }
}

pub fn notification_message(view: &NotificationView) -> proto::Notification {
    let n = &view.notification;
    let fields: Vec<(String, String)> = serde_json::from_str(&n.fields).unwrap_or_default();
    let mut deliveries = Vec::with_capacity(view.deliveries.len() + 1);
    if n.in_inbox {
        deliveries.push(proto::Delivery {
            channel: proto::NotificationChannel::Inbox.into(),
            status: proto::DeliveryStatus::Sent.into(),
            attempts: 1,
            last_error: String::new(),
            created_at: Some(timestamp(n.created_at)),
            updated_at: Some(timestamp(n.created_at)),
            sent_at: Some(timestamp(n.created_at)),
            next_attempt_at: None,
        });
    }
    deliveries.extend(view.deliveries.iter().map(delivery_message));
    proto::Notification {
        notification_id: n.id.to_string(),
        category: n
            .category
            .parse()
            .map_or(proto::NotificationCategory::Unspecified, category)
            .into(),
        kind: n.kind.clone(),
        title: n.title.clone(),
        body: n.body.clone(),
        fields: fields
            .into_iter()
            .map(|(label, value)| proto::NotificationField { label, value })
            .collect(),
        link: n.link.clone(),
        state: state(&n.state).into(),
        created_at: Some(timestamp(n.created_at)),
        read_at: n.read_at.map(timestamp),
        deliveries,
        event_id: n.event_id.clone(),
    }
}

pub fn preferences_message(view: &PreferencesView) -> proto::NotificationPreferences {
    let (link_state, link_error) = match &view.slack {
        SlackLink::NotLinked => (proto::SlackLinkState::NotLinked, String::new()),
        SlackLink::Linked => (proto::SlackLinkState::Linked, String::new()),
        SlackLink::Invalid(error) => (proto::SlackLinkState::Invalid, error.clone()),
    };
    proto::NotificationPreferences {
        channels: view
            .channels
            .iter()
            .map(|(c, ch, enabled)| proto::ChannelPreference {
                category: category(*c).into(),
                channel: channel(*ch).into(),
                enabled: *enabled,
            })
            .collect(),
        quiet_hours: Some(proto::QuietHours {
            enabled: view.quiet_enabled,
            start: QuietHours::format(view.quiet.start_minute),
            end: QuietHours::format(view.quiet.end_minute),
        }),
        digest_categories: view.digest.iter().map(|c| category(*c).into()).collect(),
        language: view.language.code().to_owned(),
        slack_link_state: link_state.into(),
        slack_link_error: link_error,
        time_zone: view.time_zone.clone(),
    }
}

pub fn stats_message(stats: &Stats) -> proto::GetDeliveryStatsResponse {
    let (slack_state, slack_error) = match &stats.slack {
        SlackState::Disabled => (proto::SlackWorkspaceState::Disabled, String::new()),
        SlackState::Active => (proto::SlackWorkspaceState::Active, String::new()),
        SlackState::Stopped(reason) => (proto::SlackWorkspaceState::Stopped, reason.clone()),
    };
    proto::GetDeliveryStatsResponse {
        counts: stats
            .counts
            .iter()
            .map(|(ch, status, count)| proto::DeliveryCount {
                channel: channel(*ch).into(),
                status: delivery_status(*status).into(),
                count: *count,
            })
            .collect(),
        slack_state: slack_state.into(),
        slack_error,
        notifications: stats.notifications,
        backlog: stats.backlog,
    }
}

/// `5K`, `Half marathon`… as messages name a distance.
pub fn effort_distance_label(distance: run_proto::EffortDistance) -> String {
    use run_proto::EffortDistance as D;
    match distance {
        D::Unspecified => "",
        D::EffortDistance400m => "400 m",
        D::EffortDistance1k => "1 km",
        D::EffortDistance1Mile => "1 mile",
        D::EffortDistance5k => "5 km",
        D::EffortDistance10k => "10 km",
        D::EffortDistance15k => "15 km",
        D::HalfMarathon => "Half marathon",
        D::Marathon => "Marathon",
    }
    .to_owned()
}

/// A goal as messages name it, in English and Korean: `50 km a month`, `월 50 km`.
pub fn goal_labels(goal: &run_proto::Goal) -> (String, String) {
    use run_proto::{GoalMetric as M, GoalPeriod as P};
    let target = goal.target;
    let amount = match goal.metric() {
        M::Distance => format!("{} km", trim(target / 1000.0)),
        M::MovingTime => format!("{} h", trim(target / 3600.0)),
        M::RunCount => trim(target),
        M::ElevationGain => format!("{} m", trim(target)),
        M::Unspecified => trim(target),
    };
    let runs = matches!(goal.metric(), M::RunCount);
    let (en_period, ko_period) = match goal.period() {
        P::Week => ("a week", "주"),
        P::Month => ("a month", "월"),
        P::Year => ("a year", "연"),
        P::Unspecified => ("", ""),
    };
    let en = format!("{amount}{} {en_period}", if runs { " runs" } else { "" });
    let ko = format!("{ko_period} {amount}{}", if runs { "회" } else { "" });
    (en.trim().to_owned(), ko.trim().to_owned())
}

fn trim(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

/// A recap's distance as messages give it: `42.2 km`.
pub fn km_label(meters: f64) -> String {
    let meters = if meters.is_finite() {
        meters.max(0.0)
    } else {
        0.0
    };
    format!("{:.1} km", meters / 1000.0)
}

/// A moving time to the nearest minute as messages give it, in English and Korean: `3h 50m` and
/// `3시간 50분`, `45m` and `45분`, `2h` and `2시간`.
pub fn moving_time_labels(duration: Option<prost_types::Duration>) -> (String, String) {
    let minutes = (duration.map_or(0, |d| d.seconds.max(0)) + 30) / 60;
    let (h, m) = (minutes / 60, minutes % 60);
    match (h, m) {
        (0, m) => (format!("{m}m"), format!("{m}분")),
        (h, 0) => (format!("{h}h"), format!("{h}시간")),
        (h, m) => (format!("{h}h {m}m"), format!("{h}시간 {m}분")),
    }
}

/// `h:mm:ss` or `m:ss`.
pub fn duration_label(duration: Option<prost_types::Duration>) -> String {
    let seconds = duration.map_or(0, |d| d.seconds.max(0));
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_race_times() {
        let d = |s| {
            Some(prost_types::Duration {
                seconds: s,
                nanos: 0,
            })
        };
        assert_eq!(duration_label(d(3_000)), "50:00");
        assert_eq!(duration_label(d(12_345)), "3:25:45");
        assert_eq!(
            moving_time_labels(d(13_790)),
            ("3h 50m".to_owned(), "3시간 50분".to_owned())
        );
        assert_eq!(
            moving_time_labels(d(2_699)),
            ("45m".to_owned(), "45분".to_owned())
        );
        assert_eq!(
            moving_time_labels(d(7_210)),
            ("2h".to_owned(), "2시간".to_owned())
        );
        assert_eq!(moving_time_labels(None).0, "0m");
        assert_eq!(km_label(42_195.0), "42.2 km");
        assert_eq!(km_label(f64::NAN), "0.0 km");
        assert!(parse_category(proto::NotificationCategory::Test.into()).is_err());
        assert!(parse_category(99).is_err());
        assert!(parse_channel(0).is_err());
        let goal = run_proto::Goal {
            metric: run_proto::GoalMetric::Distance.into(),
            period: run_proto::GoalPeriod::Month.into(),
            target: 50_000.0,
            ..Default::default()
        };
        assert_eq!(
            goal_labels(&goal),
            ("50 km a month".to_owned(), "월 50 km".to_owned())
        );
    }
}
