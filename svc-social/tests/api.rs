//! svc-social's behaviour through its gRPC API on both backends: membership and its events,
//! the board (order, pages, replies, reactions), moderation (auto-hide exactly once under
//! concurrent reports), rate limits, meetups (waitlist, promotions, deadline, cancellation,
//! watching, reminders once across replicas), the feed's privacy, and erasure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use futures::StreamExt;
use runmesh_proto::runmesh::run::v1 as run_proto;
use runmesh_proto::runmesh::social::v1 as proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use support::{Backend, Harness, assert_status, eventually, test_config, violated_fields};
use tonic::Code;
use tonic_types::StatusExt;

on_both_backends!(
    membership_by_every_path_publishes_its_events,
    the_board_keeps_pinned_posts_on_top_and_pages_newest_first,
    reports_hide_content_at_the_threshold_exactly_once,
    posting_too_fast_is_refused_with_retry_info,
    meetups_waitlist_and_promote_in_order,
    leaving_a_crew_gives_up_members_only_places,
    watching_a_meetup_streams_its_changes,
    reminders_fire_once_across_replicas,
    a_weekly_meetup_schedules_its_next_occurrence_once,
    the_feed_never_shows_more_than_each_run_allows,
    a_deleted_runner_is_erased_and_shown_as_a_deleted_member,
    bad_input_names_the_fields,
);

async fn membership_by_every_path_publishes_its_events(backend: Backend) {
    let h = Harness::start(backend).await;
    let public = h
        .crew("owner", "Public Pacers", proto::CrewVisibility::Public)
        .await;
    assert_eq!(public.role(), proto::CrewRole::Owner);
    assert_eq!(public.member_count, 1);
    let joined = h.join(&public.crew_id, "runner-a").await.unwrap();
    assert_eq!(joined.membership(), proto::MembershipState::Member);
    assert_eq!(joined.crew.unwrap().member_count, 2);

    let approval = h
        .crew("owner", "Approval Crew", proto::CrewVisibility::Approval)
        .await;
    let requested = h.join(&approval.crew_id, "runner-b").await.unwrap();
    assert_eq!(requested.membership(), proto::MembershipState::Requested);
    let requests = h
        .client()
        .list_join_requests(h.as_runner(
            proto::ListJoinRequestsRequest {
                crew_id: approval.crew_id.clone(),
                ..Default::default()
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner()
        .requests;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].user_id, "runner-b");
    let decided = h
        .client()
        .decide_join_request(h.as_runner(
            proto::DecideJoinRequestRequest {
                crew_id: approval.crew_id.clone(),
                user_id: "runner-b".to_owned(),
                approve: true,
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decided.member.unwrap().role(), proto::CrewRole::Member);

    // Ownership moves by transfer only: the previous owner becomes an admin and may then leave.
    let member = h
        .client()
        .set_member_role(h.as_runner(
            proto::SetMemberRoleRequest {
                crew_id: public.crew_id.clone(),
                user_id: "runner-a".to_owned(),
                role: proto::CrewRole::Owner.into(),
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(member.role(), proto::CrewRole::Owner);
    let crew = h
        .client()
        .get_crew(h.as_runner(
            proto::GetCrewRequest {
                crew_id: public.crew_id.clone(),
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner()
        .crew
        .unwrap();
    assert_eq!(crew.owner_id, "runner-a");
    assert_eq!(crew.role(), proto::CrewRole::Admin);
    h.client()
        .leave_crew(h.as_runner(
            proto::LeaveCrewRequest {
                crew_id: public.crew_id.clone(),
            },
            "owner",
        ))
        .await
        .unwrap();
    let members = h
        .client()
        .list_members(h.as_runner(
            proto::ListMembersRequest {
                crew_id: public.crew_id.clone(),
                ..Default::default()
            },
            "runner-a",
        ))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(
        members
            .iter()
            .map(|m| m.user_id.as_str())
            .collect::<Vec<_>>(),
        ["runner-a"]
    );

    let joins: Vec<(String, String)> = h
        .events::<proto::CrewMemberJoined>()
        .await
        .into_iter()
        .map(|e| (e.crew_id, e.user_id))
        .collect();
    assert_eq!(
        joins,
        [
            (public.crew_id.clone(), "owner".to_owned()),
            (public.crew_id.clone(), "runner-a".to_owned()),
            (approval.crew_id.clone(), "owner".to_owned()),
            (approval.crew_id.clone(), "runner-b".to_owned()),
        ]
    );
    let left = h.events::<proto::CrewMemberLeft>().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].reason(), proto::CrewLeaveReason::Left);
    let roles = h.events::<proto::CrewMemberRoleChanged>().await;
    assert_eq!(roles.len(), 2);
    assert_eq!(h.events::<proto::CrewCreated>().await.len(), 2);
    assert_eq!(h.events::<proto::JoinRequestDecided>().await.len(), 1);
}

async fn the_board_keeps_pinned_posts_on_top_and_pages_newest_first(backend: Backend) {
    let h = Harness::start(backend).await;
    let crew = h
        .crew("owner", "Board Crew", proto::CrewVisibility::Public)
        .await;
    h.join(&crew.crew_id, "writer").await.unwrap();
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(
            h.post(&crew.crew_id, "writer", &format!("post {n}"))
                .await
                .unwrap()
                .post_id,
        );
    }
    let posted = h.post(&crew.crew_id, "writer", "raw").await.unwrap();
    assert_eq!(posted.body, "**Markdown** as written <b>not html</b>");
    ids.push(posted.post_id);
    h.client()
        .pin_post(h.as_runner(
            proto::PinPostRequest {
                post_id: ids[2].clone(),
                pinned: true,
            },
            "owner",
        ))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = h
            .client()
            .list_posts(h.as_runner(
                proto::ListPostsRequest {
                    crew_id: crew.crew_id.clone(),
                    page_size: 3,
                    page_token: token.clone(),
                    ..Default::default()
                },
                "stranger",
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.posts.into_iter().map(|p| p.post_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut expected = vec![ids[2].clone()];
    expected.extend(ids.iter().rev().filter(|id| **id != ids[2]).cloned());
    assert_eq!(seen, expected);

    // Comments with one level of replies, and reactions one per runner per kind.
    let top = h
        .client()
        .create_comment(h.as_runner(
            proto::CreateCommentRequest {
                post_id: ids[0].clone(),
                parent_comment_id: String::new(),
                body: "First".to_owned(),
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    let reply = h
        .client()
        .create_comment(h.as_runner(
            proto::CreateCommentRequest {
                post_id: ids[0].clone(),
                parent_comment_id: top.comment_id.clone(),
                body: "Reply".to_owned(),
            },
            "writer",
        ))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    let status = h
        .client()
        .create_comment(h.as_runner(
            proto::CreateCommentRequest {
                post_id: ids[0].clone(),
                parent_comment_id: reply.comment_id.clone(),
                body: "Too deep".to_owned(),
            },
            "owner",
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["parent_comment_id"]);
    let commented = h.events::<proto::CommentCreated>().await;
    assert_eq!(commented[1].parent_author_id, "owner");
    assert_eq!(commented[1].target_owner_id, "writer");
    let react = |user: &str, kind: proto::ReactionKind| {
        let mut client = h.client();
        let request = h.as_runner(
            proto::ReactRequest {
                target: Some(proto::ContentRef {
                    target: Some(proto::content_ref::Target::PostId(ids[0].clone())),
                }),
                kind: kind.into(),
                remove: false,
            },
            user,
        );
        async move { client.react(request).await.unwrap().into_inner().reactions }
    };
    let tasks: Vec<_> = (0..3)
        .flat_map(|_| {
            [
                react("owner", proto::ReactionKind::Like),
                react("writer", proto::ReactionKind::Like),
            ]
        })
        .collect();
    futures::future::join_all(tasks).await;
    let reactions = react("writer", proto::ReactionKind::Fire).await;
    assert_eq!(reactions.len(), 2);
    assert_eq!(
        (reactions[0].kind(), reactions[0].count, reactions[0].mine),
        (proto::ReactionKind::Like, 2, true)
    );
    assert_eq!(
        (reactions[1].kind(), reactions[1].count),
        (proto::ReactionKind::Fire, 1)
    );
    let post = h
        .client()
        .get_post(h.as_runner(
            proto::GetPostRequest {
                post_id: ids[0].clone(),
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(post.comment_count, 2);
    assert!(post.edited_at.is_none());
    let edited = h
        .client()
        .update_post(h.as_runner(
            proto::UpdatePostRequest {
                post_id: ids[0].clone(),
                title: Some("Edited".to_owned()),
                ..Default::default()
            },
            "writer",
        ))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(edited.title, "Edited");
    assert!(edited.edited_at.is_some());
}

async fn reports_hide_content_at_the_threshold_exactly_once(backend: Backend) {
    let h = Harness::start(backend).await;
    let crew = h
        .crew("owner", "Moderated", proto::CrewVisibility::Public)
        .await;
    h.join(&crew.crew_id, "author").await.unwrap();
    let post = h
        .post(&crew.crew_id, "author", "Buy my shoes")
        .await
        .unwrap();
    let target = Some(proto::ContentRef {
        target: Some(proto::content_ref::Target::PostId(post.post_id.clone())),
    });
    // Twelve distinct reporters at once (each twice): the threshold of three is crossed once.
    let reports = (0..24).map(|n| {
        let mut client = h.client();
        let request = h.as_runner(
            proto::ReportRequest {
                target: target.clone(),
                reason: format!("spam {n}"),
            },
            &format!("reporter-{}", n % 12),
        );
        async move { client.report(request).await }
    });
    // Once hidden, the post is gone for reporters: later reports find nothing to report.
    let mut reporters = std::collections::HashSet::new();
    for (n, result) in futures::future::join_all(reports)
        .await
        .into_iter()
        .enumerate()
    {
        match result {
            Ok(_) => {
                reporters.insert(n % 12);
            }
            Err(status) => assert_status(&status, Code::NotFound, "POST_NOT_FOUND"),
        }
    }
    assert!(reporters.len() >= 3);
    let hidden = h.events::<proto::ContentHidden>().await;
    assert_eq!(hidden.len(), 1, "hidden exactly once");
    assert_eq!(hidden[0].author_id, "author");
    assert!(hidden[0].report_count >= 3);

    // Hidden: gone for readers, shown to its author and the admins.
    let list = |user: &str| {
        let mut client = h.client();
        let request = h.as_runner(
            proto::ListPostsRequest {
                crew_id: crew.crew_id.clone(),
                ..Default::default()
            },
            user,
        );
        async move { client.list_posts(request).await.unwrap().into_inner().posts }
    };
    assert!(list("reader").await.is_empty());
    let mine = list("author").await;
    assert_eq!(mine[0].moderation(), proto::ModerationState::Hidden);
    assert_eq!(list("owner").await.len(), 1);
    let queue = h
        .client()
        .list_reports(h.as_runner(
            proto::ListReportsRequest {
                crew_id: crew.crew_id.clone(),
                ..Default::default()
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].report_count as usize, reporters.len());
    assert_eq!(queue[0].moderation(), proto::ModerationState::Hidden);

    // Restored: shown again, told to the author, and not hidden by more reports.
    h.client()
        .decide_report(h.as_runner(
            proto::DecideReportRequest {
                crew_id: crew.crew_id.clone(),
                target: target.clone(),
                decision: proto::ReportDecision::Restore.into(),
            },
            "owner",
        ))
        .await
        .unwrap();
    let reviewed = h.events::<proto::ContentReviewed>().await;
    assert_eq!(
        (reviewed[0].author_id.as_str(), reviewed[0].removed),
        ("author", false)
    );
    for n in 0..5 {
        h.client()
            .report(h.as_runner(
                proto::ReportRequest {
                    target: target.clone(),
                    reason: String::new(),
                },
                &format!("late-{n}"),
            ))
            .await
            .unwrap();
    }
    assert_eq!(list("reader").await.len(), 1);
    assert_eq!(h.events::<proto::ContentHidden>().await.len(), 1);
}

async fn posting_too_fast_is_refused_with_retry_info(backend: Backend) {
    let config = runmesh_svc_social::SocialConfig {
        post_limit: 2,
        rate_window: Duration::from_secs(60),
        ..test_config()
    };
    let h = Harness::start_with(backend, config, None).await;
    let crew = h.crew("owner", "Fast", proto::CrewVisibility::Public).await;
    h.post(&crew.crew_id, "owner", "1").await.unwrap();
    h.post(&crew.crew_id, "owner", "2").await.unwrap();
    let status = h.post(&crew.crew_id, "owner", "3").await.unwrap_err();
    assert_status(&status, Code::ResourceExhausted, "RATE_LIMITED");
    assert!(
        status
            .get_details_retry_info()
            .unwrap()
            .retry_delay
            .is_some()
    );
}

async fn meetups_waitlist_and_promote_in_order(backend: Backend) {
    let h = Harness::start(backend).await;
    let crew = h
        .crew("owner", "Meetup Crew", proto::CrewVisibility::Public)
        .await;
    for n in 0..5 {
        h.join(&crew.crew_id, &format!("r{n}")).await.unwrap();
    }
    let meetup = h.meetup(&crew.crew_id, "owner", 2).await.unwrap();
    let id = meetup.meetup_id.clone();
    let mut answers = Vec::new();
    for n in 0..5 {
        answers.push(h.rsvp(&id, &format!("r{n}"), true).await.unwrap());
    }
    let statuses: Vec<(proto::RsvpStatus, u32)> = answers
        .iter()
        .map(|a| (a.status(), a.waitlist_position))
        .collect();
    assert_eq!(
        statuses,
        [
            (proto::RsvpStatus::Going, 0),
            (proto::RsvpStatus::Going, 0),
            (proto::RsvpStatus::Waitlisted, 1),
            (proto::RsvpStatus::Waitlisted, 2),
            (proto::RsvpStatus::Waitlisted, 3),
        ]
    );
    // Answering again changes nothing (one RSVP per runner).
    let again = h.rsvp(&id, "r3", true).await.unwrap();
    assert_eq!(
        (again.status(), again.waitlist_position),
        (proto::RsvpStatus::Waitlisted, 2)
    );
    // A drop-out hands the place to the first in line; a raised capacity to the next.
    let out = h.rsvp(&id, "r0", false).await.unwrap();
    assert_eq!(out.status(), proto::RsvpStatus::NotGoing);
    let raised = h
        .client()
        .update_meetup(h.as_runner(
            proto::UpdateMeetupRequest {
                meetup_id: id.clone(),
                capacity: Some(3),
                ..Default::default()
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner()
        .meetup
        .unwrap();
    assert_eq!((raised.going_count, raised.waitlist_count), (3, 1));
    let promoted: Vec<String> = h
        .events::<proto::MeetupPromoted>()
        .await
        .into_iter()
        .map(|e| e.user_id)
        .collect();
    assert_eq!(promoted, ["r2", "r3"]);
    let status = h
        .client()
        .update_meetup(h.as_runner(
            proto::UpdateMeetupRequest {
                meetup_id: id.clone(),
                capacity: Some(1),
                ..Default::default()
            },
            "owner",
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "CAPACITY_BELOW_GOING");
    let got = h
        .client()
        .get_meetup(h.as_runner(
            proto::GetMeetupRequest {
                meetup_id: id.clone(),
            },
            "r4",
        ))
        .await
        .unwrap()
        .into_inner();
    let going: Vec<&str> = got.going.iter().map(|a| a.user_id.as_str()).collect();
    assert_eq!(going, ["r1", "r2", "r3"]);
    assert_eq!(got.waitlist[0].user_id, "r4");
    assert_eq!(got.meetup.unwrap().my_waitlist_position, 1);

    // Cancelled: everyone answering is told, and RSVPs are refused with a reason.
    h.client()
        .cancel_meetup(h.as_runner(
            proto::CancelMeetupRequest {
                meetup_id: id.clone(),
                reason: "Typhoon".to_owned(),
            },
            "owner",
        ))
        .await
        .unwrap();
    let cancelled = h.events::<proto::MeetupCancelled>().await;
    assert_eq!(cancelled[0].notified_user_ids, ["r1", "r2", "r3", "r4"]);
    let status = h.rsvp(&id, "r0", true).await.unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "MEETUP_CANCELLED");

    // Past the deadline RSVPs close.
    let closing = h
        .client()
        .create_meetup(h.as_runner(
            proto::CreateMeetupRequest {
                crew_id: crew.crew_id.clone(),
                meetup: Some(proto::Meetup {
                    rsvp_deadline: support::at(chrono::Duration::seconds(1)),
                    ..support::meetup_spec(5, chrono::Duration::hours(5))
                }),
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner()
        .meetup
        .unwrap();
    eventually("the deadline passes", Duration::from_secs(10), || {
        let h = &h;
        let id = closing.meetup_id.clone();
        async move {
            match h.rsvp(&id, "r1", true).await {
                Err(status) => {
                    assert_status(&status, Code::FailedPrecondition, "RSVP_CLOSED");
                    true
                }
                Ok(_) => false,
            }
        }
    })
    .await;
}

async fn leaving_a_crew_gives_up_members_only_places(backend: Backend) {
    let h = Harness::start(backend).await;
    let crew = h
        .crew("owner", "Leavers Crew", proto::CrewVisibility::Public)
        .await;
    for n in 0..4 {
        h.join(&crew.crew_id, &format!("r{n}")).await.unwrap();
    }
    let members_only = h.meetup(&crew.crew_id, "owner", 1).await.unwrap();
    let open = h
        .client()
        .create_meetup(h.as_runner(
            proto::CreateMeetupRequest {
                crew_id: crew.crew_id.clone(),
                meetup: Some(proto::Meetup {
                    members_only: false,
                    ..support::meetup_spec(1, chrono::Duration::days(2))
                }),
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner()
        .meetup
        .unwrap();
    for runner in ["r0", "r1", "r2"] {
        h.rsvp(&members_only.meetup_id, runner, true).await.unwrap();
    }
    h.rsvp(&open.meetup_id, "r0", true).await.unwrap();
    let attendees = |meetup_id: String| {
        let h = &h;
        async move {
            let got = h
                .client()
                .get_meetup(h.as_runner(proto::GetMeetupRequest { meetup_id }, "owner"))
                .await
                .unwrap()
                .into_inner();
            let ids = |list: &[proto::Attendee]| -> Vec<String> {
                list.iter().map(|a| a.user_id.clone()).collect()
            };
            (ids(&got.going), ids(&got.waitlist))
        }
    };

    // r0 leaves: their members-only place goes to the first in line; the open meetup keeps them.
    h.client()
        .leave_crew(h.as_runner(
            proto::LeaveCrewRequest {
                crew_id: crew.crew_id.clone(),
            },
            "r0",
        ))
        .await
        .unwrap();
    assert_eq!(
        attendees(members_only.meetup_id.clone()).await,
        (vec!["r1".to_owned()], vec!["r2".to_owned()])
    );
    assert_eq!(
        attendees(open.meetup_id.clone()).await,
        (vec!["r0".to_owned()], vec![])
    );
    let promoted: Vec<String> = h
        .events::<proto::MeetupPromoted>()
        .await
        .into_iter()
        .map(|e| e.user_id)
        .collect();
    assert_eq!(promoted, ["r1"]);

    // A removed member loses theirs too; the waitlist moves up.
    h.client()
        .remove_member(h.as_runner(
            proto::RemoveMemberRequest {
                crew_id: crew.crew_id.clone(),
                user_id: "r1".to_owned(),
                ban: false,
            },
            "owner",
        ))
        .await
        .unwrap();
    assert_eq!(
        attendees(members_only.meetup_id.clone()).await,
        (vec!["r2".to_owned()], vec![])
    );
    let status = h
        .rsvp(&members_only.meetup_id, "r0", true)
        .await
        .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "MEMBERS_ONLY");
}

async fn watching_a_meetup_streams_its_changes(backend: Backend) {
    let h = Harness::start(backend).await;
    let crew = h
        .crew("owner", "Watchers", proto::CrewVisibility::Public)
        .await;
    h.join(&crew.crew_id, "a").await.unwrap();
    h.join(&crew.crew_id, "b").await.unwrap();
    let meetup = h.meetup(&crew.crew_id, "owner", 1).await.unwrap();
    let replica = h.replica(test_config()).await;
    let mut stream = replica
        .client()
        .watch_meetup(replica.as_runner(
            proto::WatchMeetupRequest {
                meetup_id: meetup.meetup_id.clone(),
            },
            "stranger",
        ))
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!((first.going_count, first.capacity), (0, 1));
    // Changes made through the other instance reach this one's watchers.
    h.rsvp(&meetup.meetup_id, "a", true).await.unwrap();
    h.rsvp(&meetup.meetup_id, "b", true).await.unwrap();
    loop {
        let update = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an update arrives")
            .unwrap()
            .unwrap();
        if update.waitlist_count == 1 {
            assert_eq!(update.going[0].user_id, "a");
            assert_eq!(update.waitlist[0].user_id, "b");
            assert_eq!(update.waitlist[0].waitlist_position, 1);
            break;
        }
    }
}

async fn reminders_fire_once_across_replicas(backend: Backend) {
    let h = Harness::start(backend).await;
    let crew = h
        .crew("owner", "Early birds", proto::CrewVisibility::Public)
        .await;
    let soon = h
        .client()
        .create_meetup(h.as_runner(
            proto::CreateMeetupRequest {
                crew_id: crew.crew_id.clone(),
                meetup: Some(support::meetup_spec(5, chrono::Duration::minutes(90))),
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner()
        .meetup
        .unwrap();
    h.meetup(&crew.crew_id, "owner", 5).await.unwrap(); // two days away: not due
    h.rsvp(&soon.meetup_id, "owner", true).await.unwrap();
    let replica = h.replica(test_config()).await;
    let rounds = (0..4).map(|n| {
        let scheduler = if n % 2 == 0 {
            h.module.scheduler.clone()
        } else {
            replica.module.scheduler.clone()
        };
        async move { scheduler.tick().await.unwrap().0 }
    });
    let fired: usize = futures::future::join_all(rounds).await.into_iter().sum();
    assert_eq!(fired, 1);
    let reminders = h.events::<proto::MeetupReminderDue>().await;
    assert_eq!(reminders.len(), 1);
    assert_eq!(
        reminders[0].meetup.as_ref().unwrap().meetup_id,
        soon.meetup_id
    );
    assert_eq!(reminders[0].going_user_ids, ["owner"]);
}

fn run(
    run_id: &str,
    owner: &str,
    visibility: run_proto::Visibility,
    hours_ago: i64,
) -> run_proto::Run {
    run_proto::Run {
        run_id: run_id.to_owned(),
        owner_id: owner.to_owned(),
        title: format!("{run_id} title"),
        visibility: visibility.into(),
        start_time: support::at(chrono::Duration::hours(-hours_ago)),
        distance_meters: 5_000.0,
        moving_time: Some(prost_types::Duration {
            seconds: 1_500,
            nanos: 0,
        }),
        ..Default::default()
    }
}

async fn the_feed_never_shows_more_than_each_run_allows(backend: Backend) {
    let h = Harness::start(backend).await;
    let crew = h
        .crew("owner", "Feeders", proto::CrewVisibility::Public)
        .await;
    h.join(&crew.crew_id, "mate").await.unwrap();
    for (id, owner, visibility) in [
        ("crews-run", "mate", run_proto::Visibility::Crews),
        ("public-run", "mate", run_proto::Visibility::Public),
        ("private-run", "mate", run_proto::Visibility::Private),
        ("unknown-run", "mate", run_proto::Visibility::Unspecified),
        ("outsider-run", "outsider", run_proto::Visibility::Public),
        ("owners-run", "owner", run_proto::Visibility::Crews),
    ] {
        h.deliver(
            "svc-run",
            id,
            &run_proto::RunRecorded {
                run: Some(run(id, owner, visibility, 2)),
            },
        )
        .await;
    }
    let feed = |user: &str| {
        let mut client = h.client();
        let request = h.as_runner(
            proto::GetCrewFeedRequest {
                crew_id: crew.crew_id.clone(),
                ..Default::default()
            },
            user,
        );
        async move {
            let mut ids: Vec<String> = client
                .get_crew_feed(request)
                .await
                .unwrap()
                .into_inner()
                .runs
                .into_iter()
                .map(|r| r.run_id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(
        feed("owner").await,
        ["crews-run", "owners-run", "public-run"]
    );
    assert_eq!(feed("stranger").await, ["public-run"]);
    // Made private later: gone from the feed.
    h.deliver(
        "svc-run",
        "crews-run",
        &run_proto::RunUpdated {
            run: Some(run("crews-run", "mate", run_proto::Visibility::Private, 2)),
            changed_fields: vec!["visibility".to_owned()],
        },
    )
    .await;
    assert_eq!(feed("owner").await, ["owners-run", "public-run"]);
    let status = h
        .client()
        .give_kudos(h.as_runner(
            proto::GiveKudosRequest {
                run_id: "private-run".to_owned(),
            },
            "owner",
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "RUN_NOT_FOUND");
    // Kudos once per runner; comments counted.
    for _ in 0..3 {
        let count = h
            .client()
            .give_kudos(h.as_runner(
                proto::GiveKudosRequest {
                    run_id: "public-run".to_owned(),
                },
                "owner",
            ))
            .await
            .unwrap()
            .into_inner()
            .kudos_count;
        assert_eq!(count, 1);
    }
    h.client()
        .comment_on_run(h.as_runner(
            proto::CommentOnRunRequest {
                run_id: "public-run".to_owned(),
                body: "Strong!".to_owned(),
            },
            "owner",
        ))
        .await
        .unwrap();
    let commented = h.events::<proto::CommentCreated>().await;
    assert_eq!(commented[0].target_owner_id, "mate");
    let totals = h
        .client()
        .get_crew_totals(h.as_runner(
            proto::GetCrewTotalsRequest {
                crew_id: crew.crew_id.clone(),
                period: proto::TotalsPeriod::Month.into(),
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner();
    // Two hours ago may fall in the previous month at a month's first hours: then nothing.
    if totals.runs > 0 {
        assert_eq!(totals.runs, 2);
        assert_eq!(totals.active_members, 2);
        assert!((totals.distance_meters - 10_000.0).abs() < 1e-6);
    }
    h.deliver(
        "svc-run",
        "public-run",
        &run_proto::RunDeleted {
            run_id: "public-run".to_owned(),
            owner_id: "mate".to_owned(),
            deleted_at: None,
        },
    )
    .await;
    assert_eq!(feed("owner").await, ["owners-run"]);
}

async fn a_deleted_runner_is_erased_and_shown_as_a_deleted_member(backend: Backend) {
    let h = Harness::start(backend).await;
    h.deliver(
        "svc-user",
        "leaver",
        &user_proto::UserRegistered {
            user: Some(user_proto::User {
                id: "leaver".to_owned(),
                display_name: "Lee Runner".to_owned(),
                ..Default::default()
            }),
        },
    )
    .await;
    let crew = h
        .crew(
            "leaver",
            "Owned by the leaver",
            proto::CrewVisibility::Public,
        )
        .await;
    h.join(&crew.crew_id, "heir").await.unwrap();
    h.join(&crew.crew_id, "waiting").await.unwrap();
    let post = h
        .post(&crew.crew_id, "leaver", "My last post")
        .await
        .unwrap();
    assert_eq!(post.author.unwrap().display_name, "Lee Runner");
    let meetup = h.meetup(&crew.crew_id, "leaver", 1).await.unwrap();
    h.rsvp(&meetup.meetup_id, "leaver", true).await.unwrap();
    h.rsvp(&meetup.meetup_id, "waiting", true).await.unwrap();

    h.deliver(
        "svc-user",
        "leaver",
        &user_proto::UserDeleted {
            user_id: "leaver".to_owned(),
            ..Default::default()
        },
    )
    .await;
    let shown = h
        .client()
        .get_post(h.as_runner(
            proto::GetPostRequest {
                post_id: post.post_id.clone(),
            },
            "heir",
        ))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap()
        .author
        .unwrap();
    assert!(shown.deleted);
    assert!(shown.user_id.is_empty());
    assert_ne!(shown.display_name, "Lee Runner");
    let crew_now = h
        .client()
        .get_crew(h.as_runner(
            proto::GetCrewRequest {
                crew_id: crew.crew_id.clone(),
            },
            "heir",
        ))
        .await
        .unwrap()
        .into_inner()
        .crew
        .unwrap();
    assert_eq!(crew_now.owner_id, "heir");
    assert_eq!(crew_now.role(), proto::CrewRole::Owner);
    let got = h
        .client()
        .get_meetup(h.as_runner(
            proto::GetMeetupRequest {
                meetup_id: meetup.meetup_id.clone(),
            },
            "heir",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.going
            .iter()
            .map(|a| a.user_id.as_str())
            .collect::<Vec<_>>(),
        ["waiting"]
    );
    let left = h.events::<proto::CrewMemberLeft>().await;
    assert_eq!(left[0].reason(), proto::CrewLeaveReason::AccountDeleted);
}

async fn bad_input_names_the_fields(backend: Backend) {
    let h = Harness::start(backend).await;
    let status = h
        .client()
        .create_crew(h.as_runner(
            proto::CreateCrewRequest {
                name: "   ".to_owned(),
                region: "x".repeat(61),
                ..Default::default()
            },
            "owner",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["name", "region", "visibility"]);
    let crew = h
        .crew("owner", "Valid", proto::CrewVisibility::Public)
        .await;
    let status = h
        .client()
        .create_post(h.as_runner(
            proto::CreatePostRequest {
                crew_id: crew.crew_id.clone(),
                category: proto::PostCategory::Free.into(),
                title: "t".repeat(121),
                body: String::new(),
            },
            "owner",
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["title", "body"]);
    let status = h
        .client()
        .get_post(h.as_runner(
            proto::GetPostRequest {
                post_id: uuid::Uuid::now_v7().to_string(),
            },
            "owner",
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "POST_NOT_FOUND");
}

async fn a_weekly_meetup_schedules_its_next_occurrence_once(backend: Backend) {
    use runmesh_svc_social::store::meetup;
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};

    let h = Harness::start(backend).await;
    let crew = h
        .crew("owner", "Weekly", proto::CrewVisibility::Public)
        .await;
    let weekly = h
        .client()
        .create_meetup(h.as_runner(
            proto::CreateMeetupRequest {
                crew_id: crew.crew_id.clone(),
                meetup: Some(proto::Meetup {
                    recurrence: proto::Recurrence::Weekly.into(),
                    ..support::meetup_spec(5, chrono::Duration::days(1))
                }),
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner()
        .meetup
        .unwrap();
    // The occurrence has started (moved into the past behind the API's back).
    let id = uuid::Uuid::parse_str(&weekly.meetup_id).unwrap();
    let row = meetup::Entity::find_by_id(id)
        .one(&h.db)
        .await
        .unwrap()
        .unwrap();
    let started = row.starts_at - chrono::Duration::days(2);
    let mut active: meetup::ActiveModel = row.clone().into();
    active.starts_at = Set(started);
    active.rsvp_deadline = Set(started - chrono::Duration::hours(1));
    active.update(&h.db).await.unwrap();
    let replica = h.replica(test_config()).await;
    let scheduled: usize = futures::future::join_all([
        h.module.scheduler.tick(),
        replica.module.scheduler.tick(),
        h.module.scheduler.tick(),
    ])
    .await
    .into_iter()
    .map(|round| round.unwrap().1)
    .sum();
    assert_eq!(scheduled, 1);
    let events = h.events::<proto::MeetupScheduled>().await;
    assert_eq!(events.len(), 2);
    let next = events[1].meetup.as_ref().unwrap();
    assert_eq!(
        next.starts_at.as_ref().unwrap().seconds,
        (started + chrono::Duration::days(7)).timestamp()
    );
}
