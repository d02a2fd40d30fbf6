//! svc-social's own metrics (`runmesh_social_…`), beside autometrics' function metrics: crew
//! board activity (posts, comments) and moderation load (reports, and the ones that hid content)
//! by outcome. docs/operations.md lists them.
//!
//! `created`, `recorded` and `hidden` are counted once the write committed; the refusals when
//! the call is answered.

use std::sync::{LazyLock, Once};

use runmesh_platform::telemetry::prometheus_client::metrics::counter::Counter;
use runmesh_platform::telemetry::prometheus_client::metrics::family::Family;
use runmesh_platform::telemetry::prometheus_client::registry::Registry;

use crate::board::{ReportOutcome, Target};
use crate::error::Error;

type Labels = Vec<(&'static str, &'static str)>;

/// `CreatePost` calls by outcome (`runmesh_social_posts_total`).
static POSTS: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
/// `CreateComment` calls by kind and outcome (`runmesh_social_comments_total`).
static COMMENTS: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
/// `Report` calls by the reported kind and outcome (`runmesh_social_reports_total`).
static REPORTS: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);

/// Adds svc-social's metrics to what `/metrics` exports (once per process).
pub fn register() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| runmesh_platform::telemetry::register_metrics(register_into));
}

fn register_into(registry: &mut Registry) {
    registry.register(
        "runmesh_social_posts",
        "CreatePost calls by outcome (created, invalid, rate_limited, refused, error)",
        POSTS.clone(),
    );
    registry.register(
        "runmesh_social_comments",
        "CreateComment calls by kind (comment, reply) and outcome (created, invalid, rate_limited, refused, error)",
        COMMENTS.clone(),
    );
    registry.register(
        "runmesh_social_reports",
        "Report calls by the reported kind (post, comment) and outcome (recorded, hidden, repeated, invalid, rate_limited, refused, error)",
        REPORTS.clone(),
    );
}

/// svc-social's series in the Prometheus text format, as `/metrics` adds them (for tests and
/// debugging; the values are the process's).
pub fn render() -> String {
    runmesh_platform::telemetry::render_metrics(register_into)
}

/// How a refused call is counted.
fn refusal(error: &Error) -> &'static str {
    match error {
        Error::InvalidInput(_) => "invalid",
        Error::RateLimited { .. } => "rate_limited",
        Error::Cache(_) | Error::Database(_) => "error",
        _ => "refused",
    }
}

/// Counts one `CreatePost`: `created` once the post is committed.
pub(crate) fn posted<T>(result: &Result<T, Error>) {
    post(match result {
        Ok(_) => "created",
        Err(error) => refusal(error),
    });
}

/// Counts a `CreatePost` refused before it reached the board (an unreadable request).
pub(crate) fn post_invalid() {
    post("invalid");
}

fn post(outcome: &'static str) {
    POSTS.get_or_create(&vec![("outcome", outcome)]).inc();
}

/// Counts one `CreateComment` (a reply when it names a parent comment): `created` once the
/// comment is committed.
pub(crate) fn commented<T>(reply: bool, result: &Result<T, Error>) {
    comment(
        reply,
        match result {
            Ok(_) => "created",
            Err(error) => refusal(error),
        },
    );
}

/// Counts a `CreateComment` refused before it reached the board (an unreadable request).
pub(crate) fn comment_invalid(reply: bool) {
    comment(reply, "invalid");
}

fn comment(reply: bool, outcome: &'static str) {
    let kind = if reply { "reply" } else { "comment" };
    COMMENTS
        .get_or_create(&vec![("kind", kind), ("outcome", outcome)])
        .inc();
}

/// Counts one `Report`: `recorded` and `hidden` once the report is committed.
pub(crate) fn reported(target: Target, result: &Result<ReportOutcome, Error>) {
    report(
        Some(target),
        match result {
            Ok(ReportOutcome::Recorded) => "recorded",
            Ok(ReportOutcome::Hidden) => "hidden",
            Ok(ReportOutcome::Repeated) => "repeated",
            Err(error) => refusal(error),
        },
    );
}

/// Counts a `Report` refused before it reached the board; `target` is `None` when the request
/// named none that could be read (kind `unknown`).
pub(crate) fn report_invalid(target: Option<Target>) {
    report(target, "invalid");
}

fn report(target: Option<Target>, outcome: &'static str) {
    let kind = match target {
        Some(Target::Post(_)) => "post",
        Some(Target::Comment(_)) => "comment",
        None => "unknown",
    };
    REPORTS
        .get_or_create(&vec![("kind", kind), ("outcome", outcome)])
        .inc();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use uuid::Uuid;

    use super::*;

    #[test]
    fn every_series_is_exported_under_its_documented_name() {
        posted(&Ok(()));
        posted::<()>(&Err(Error::RateLimited {
            what: "posting",
            retry_after: Duration::from_secs(1),
        }));
        commented(true, &Ok(()));
        commented::<()>(false, &Err(Error::NotAMember));
        reported(Target::Comment(Uuid::nil()), &Ok(ReportOutcome::Hidden));
        report_invalid(None);
        let text = render();
        for series in [
            "# TYPE runmesh_social_posts counter",
            "runmesh_social_posts_total{outcome=\"created\"} ",
            "runmesh_social_posts_total{outcome=\"rate_limited\"} ",
            "# TYPE runmesh_social_comments counter",
            "runmesh_social_comments_total{kind=\"reply\",outcome=\"created\"} ",
            "runmesh_social_comments_total{kind=\"comment\",outcome=\"refused\"} ",
            "# TYPE runmesh_social_reports counter",
            "runmesh_social_reports_total{kind=\"comment\",outcome=\"hidden\"} ",
            "runmesh_social_reports_total{kind=\"unknown\",outcome=\"invalid\"} ",
        ] {
            assert!(text.contains(series), "no {series} in:\n{text}");
        }
    }
}
