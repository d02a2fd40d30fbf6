//! svc-social's own metrics as Prometheus scrapes them from `/metrics` (docs/operations.md):
//! posts, comments and reports by outcome after each went through the gRPC API — posts created,
//! unreadable and over the rate limit; a comment and a reply; reports recorded, repeated, and the
//! one that reaches the threshold and hides the post. One test runs both backends in turn and
//! compares scrapes, so the process-wide counters add up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use runmesh_platform::testkit::{metric_value, scrape_metrics, serve_test_metrics};
use runmesh_proto::runmesh::social::v1 as proto;
use runmesh_svc_social::{SocialConfig, SocialService};
use support::{Backend, Harness, assert_status, test_config};
use tonic::Code;

fn posts(outcome: &str) -> String {
    format!(r#"runmesh_social_posts_total{{outcome="{outcome}"}}"#)
}

fn comments(kind: &str, outcome: &str) -> String {
    format!(r#"runmesh_social_comments_total{{kind="{kind}",outcome="{outcome}"}}"#)
}

fn reports(kind: &str, outcome: &str) -> String {
    format!(r#"runmesh_social_reports_total{{kind="{kind}",outcome="{outcome}"}}"#)
}

async fn comment(h: &Harness, post_id: &str, parent: &str, author: &str) -> proto::Comment {
    h.client()
        .create_comment(h.as_runner(
            proto::CreateCommentRequest {
                post_id: post_id.to_owned(),
                parent_comment_id: parent.to_owned(),
                body: "See you at the start".to_owned(),
            },
            author,
        ))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap()
}

async fn report(
    h: &Harness,
    target: proto::content_ref::Target,
    reporter: &str,
) -> Result<(), tonic::Status> {
    h.client()
        .report(h.as_runner(
            proto::ReportRequest {
                target: Some(proto::ContentRef {
                    target: Some(target),
                }),
                reason: "spam".to_owned(),
            },
            reporter,
        ))
        .await
        .map(drop)
}

async fn board_activity_shows_on_metrics(backend: Backend, metrics: SocketAddr) {
    let before = scrape_metrics(metrics).await;
    let delta =
        |after: &str, series: &str| metric_value(after, series) - metric_value(&before, series);
    // Two posts per window, and three distinct reporters hide content.
    let config = SocialConfig {
        post_limit: 2,
        rate_window: Duration::from_secs(60),
        report_threshold: 3,
        ..test_config()
    };
    let h = Harness::start_with(backend, config, None).await;
    let crew = h
        .crew("owner", "Metric Milers", proto::CrewVisibility::Public)
        .await;
    h.join(&crew.crew_id, "member").await.unwrap();

    // Posts: two created, one unreadable (empty title), one over the rate limit.
    let post = h
        .post(&crew.crew_id, "member", "Sunday long run")
        .await
        .unwrap();
    let untitled = h.post(&crew.crew_id, "member", "").await.unwrap_err();
    assert_status(&untitled, Code::InvalidArgument, "INVALID_ARGUMENT");
    h.post(&crew.crew_id, "member", "Tempo Tuesday")
        .await
        .unwrap();
    let limited = h
        .post(&crew.crew_id, "member", "One too many")
        .await
        .unwrap_err();
    assert_status(&limited, Code::ResourceExhausted, "RATE_LIMITED");

    // A comment and a reply to it.
    let top = comment(&h, &post.post_id, "", "owner").await;
    comment(&h, &post.post_id, &top.comment_id, "member").await;

    // Reports: the comment once; the post by r1 (twice: the second changes nothing), r2, and r3,
    // whose report reaches the threshold and hides it.
    use proto::content_ref::Target;
    report(&h, Target::CommentId(top.comment_id.clone()), "r1")
        .await
        .unwrap();
    for reporter in ["r1", "r1", "r2", "r3"] {
        report(&h, Target::PostId(post.post_id.clone()), reporter)
            .await
            .unwrap();
    }
    let after = scrape_metrics(metrics).await;
    for (series, expected) in [
        (posts("created"), 2.0),
        (posts("invalid"), 1.0),
        (posts("rate_limited"), 1.0),
        (posts("refused"), 0.0),
        (comments("comment", "created"), 1.0),
        (comments("reply", "created"), 1.0),
        (reports("comment", "recorded"), 1.0),
        (reports("post", "recorded"), 2.0),
        (reports("post", "repeated"), 1.0),
        (reports("post", "hidden"), 1.0),
    ] {
        assert_eq!(delta(&after, &series), expected, "{series} in:\n{after}");
    }
    assert_eq!(
        h.events::<proto::ContentHidden>().await.len(),
        1,
        "the hidden report is the one that hid the post"
    );
    for series in [
        "# TYPE runmesh_social_posts counter",
        "# TYPE runmesh_social_comments counter",
        "# TYPE runmesh_social_reports counter",
    ] {
        assert!(after.contains(series), "no {series} in:\n{after}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_activity_shows_on_metrics_on_both_backends() {
    // As a process starts svc-social: its metrics registered before telemetry starts.
    let _social = SocialService::new(SocialConfig::default());
    let (metrics, shutdown) = serve_test_metrics("runmesh-social").await;
    for backend in [Backend::Postgres, Backend::Embedded] {
        board_activity_shows_on_metrics(backend, metrics).await;
    }
    shutdown.cancel();
}
