//! Every RPC's authorization with a crew's owner, an admin, a member, a non-member and a banned
//! runner (a public crew, where non-members may read), and what a private crew hides from
//! non-members.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::future::Future;

use runmesh_proto::runmesh::run::v1 as run_proto;
use runmesh_proto::runmesh::social::v1 as proto;
use support::{Backend, Harness, assert_status, meetup_spec};
use tonic::{Code, Status};

const OWNER: &str = "owner";
const ADMIN: &str = "admin";
const MEMBER: &str = "member";
const STRANGER: &str = "stranger";
const BANNED: &str = "banned";

#[derive(Debug, Clone, Copy)]
enum Expect {
    Ok,
    Denied(&'static str),
    NotFound(&'static str),
    Failed(&'static str),
    Exists(&'static str),
}
use Expect::{Denied, Exists, Failed, NotFound, Ok as Allowed};

const ROLE: Expect = Denied("CREW_ROLE_REQUIRED");
const NOT_MEMBER: Expect = Denied("NOT_A_MEMBER");
const IS_BANNED: Expect = Denied("BANNED");

async fn expect<F, Fut>(rpc: &str, call: F, cases: &[(&str, Expect)])
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), Status>>,
{
    for (user, expected) in cases {
        let result = call((*user).to_owned()).await;
        let context = format!("{rpc} as {user}: {result:?}");
        match expected {
            Allowed => assert!(result.is_ok(), "{context}"),
            Denied(reason) => {
                assert_status(&result.expect_err(&context), Code::PermissionDenied, reason)
            }
            NotFound(reason) => assert_status(&result.expect_err(&context), Code::NotFound, reason),
            Failed(reason) => {
                assert_status(
                    &result.expect_err(&context),
                    Code::FailedPrecondition,
                    reason,
                );
            }
            Exists(reason) => {
                assert_status(&result.expect_err(&context), Code::AlreadyExists, reason)
            }
        }
    }
}

/// Everyone may do it.
fn everyone() -> Vec<(&'static str, Expect)> {
    [OWNER, ADMIN, MEMBER, STRANGER, BANNED]
        .into_iter()
        .map(|user| (user, Allowed))
        .collect()
}

/// Members may, outsiders are not members, the banned are banned.
fn members() -> Vec<(&'static str, Expect)> {
    vec![
        (STRANGER, NOT_MEMBER),
        (BANNED, IS_BANNED),
        (MEMBER, Allowed),
        (ADMIN, Allowed),
        (OWNER, Allowed),
    ]
}

/// OWNER and ADMIN only.
fn managers() -> Vec<(&'static str, Expect)> {
    vec![
        (STRANGER, ROLE),
        (BANNED, IS_BANNED),
        (MEMBER, ROLE),
        (ADMIN, Allowed),
        (OWNER, Allowed),
    ]
}

/// A public crew with its five kinds of runner.
async fn crew(h: &Harness) -> String {
    let crew = h
        .crew(OWNER, "Han River Runners", proto::CrewVisibility::Public)
        .await;
    for user in [ADMIN, MEMBER, BANNED, "extra-1", "extra-2", "leaver"] {
        h.join(&crew.crew_id, user).await.unwrap();
    }
    h.set_role(&crew.crew_id, OWNER, ADMIN, proto::CrewRole::Admin)
        .await;
    h.ban(&crew.crew_id, OWNER, BANNED).await;
    crew.crew_id
}

on_both_backends!(
    every_rpc_checks_the_callers_standing,
    a_private_crew_is_invisible_to_non_members,
);

async fn every_rpc_checks_the_callers_standing(backend: Backend) {
    let h = Harness::start(backend).await;
    let crew_id = crew(&h).await;
    let c = || h.client();

    // Crews and membership.
    expect(
        "GetCrew",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::GetCrewRequest {
                        crew_id: crew_id.clone(),
                    },
                    &u,
                ),
            );
            async move { client.get_crew(req).await.map(drop) }
        },
        &everyone(),
    )
    .await;
    expect(
        "UpdateCrew",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::UpdateCrewRequest {
                        crew_id: crew_id.clone(),
                        description: Some(format!("by {u}")),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.update_crew(req).await.map(drop) }
        },
        &managers(),
    )
    .await;
    expect(
        "ListMembers",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::ListMembersRequest {
                        crew_id: crew_id.clone(),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.list_members(req).await.map(drop) }
        },
        &everyone(),
    )
    .await;
    expect(
        "ListJoinRequests",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::ListJoinRequestsRequest {
                        crew_id: crew_id.clone(),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.list_join_requests(req).await.map(drop) }
        },
        &managers(),
    )
    .await;
    let mut decide = managers();
    decide[3].1 = NotFound("MEMBER_NOT_FOUND");
    decide[4].1 = NotFound("MEMBER_NOT_FOUND");
    expect(
        "DecideJoinRequest",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::DecideJoinRequestRequest {
                        crew_id: crew_id.clone(),
                        user_id: "nobody-asked".to_owned(),
                        approve: true,
                    },
                    &u,
                ),
            );
            async move { client.decide_join_request(req).await.map(drop) }
        },
        &decide,
    )
    .await;
    expect(
        "CreateInvite",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::CreateInviteRequest {
                        crew_id: crew_id.clone(),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.create_invite(req).await.map(drop) }
        },
        &managers(),
    )
    .await;
    expect(
        "SetMemberRole",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::SetMemberRoleRequest {
                        crew_id: crew_id.clone(),
                        user_id: MEMBER.to_owned(),
                        role: proto::CrewRole::Member.into(),
                    },
                    &u,
                ),
            );
            async move { client.set_member_role(req).await.map(drop) }
        },
        &[
            (STRANGER, ROLE),
            (BANNED, IS_BANNED),
            (MEMBER, ROLE),
            (ADMIN, ROLE),
            (OWNER, Allowed),
        ],
    )
    .await;
    let remove = |target: &'static str| {
        let crew_id = crew_id.clone();
        let h = &h;
        move |u: String| {
            let (mut client, req) = (
                h.client(),
                h.as_runner(
                    proto::RemoveMemberRequest {
                        crew_id: crew_id.clone(),
                        user_id: target.to_owned(),
                        ban: false,
                    },
                    &u,
                ),
            );
            async move { client.remove_member(req).await.map(drop) }
        }
    };
    expect(
        "RemoveMember",
        remove("extra-1"),
        &[
            (STRANGER, ROLE),
            (BANNED, IS_BANNED),
            (MEMBER, ROLE),
            (ADMIN, Allowed),
        ],
    )
    .await;
    expect("RemoveMember (an admin)", remove(ADMIN), &[(ADMIN, ROLE)]).await;
    expect(
        "RemoveMember (the owner)",
        remove(OWNER),
        &[(ADMIN, ROLE), (OWNER, ROLE)],
    )
    .await;
    expect("RemoveMember", remove("extra-2"), &[(OWNER, Allowed)]).await;
    expect(
        "JoinCrew",
        |u| {
            let h = &h;
            let crew_id = crew_id.clone();
            async move { h.join(&crew_id, &u).await.map(drop) }
        },
        &[
            (BANNED, IS_BANNED),
            (MEMBER, Exists("ALREADY_MEMBER")),
            (ADMIN, Exists("ALREADY_MEMBER")),
            (OWNER, Exists("ALREADY_MEMBER")),
            ("newcomer", Allowed),
        ],
    )
    .await;
    expect(
        "LeaveCrew",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::LeaveCrewRequest {
                        crew_id: crew_id.clone(),
                    },
                    &u,
                ),
            );
            async move { client.leave_crew(req).await.map(drop) }
        },
        &[
            (STRANGER, NOT_MEMBER),
            (BANNED, IS_BANNED),
            (OWNER, Failed("OWNER_MUST_TRANSFER")),
            ("leaver", Allowed),
        ],
    )
    .await;
    for u in [OWNER, ADMIN, MEMBER, STRANGER, BANNED] {
        let mine = c()
            .list_my_crews(h.as_runner(proto::ListMyCrewsRequest::default(), u))
            .await
            .unwrap()
            .into_inner()
            .crews;
        let expected = usize::from(matches!(u, OWNER | ADMIN | MEMBER));
        assert_eq!(mine.len(), expected, "ListMyCrews as {u}");
        let listed = c()
            .list_crews(h.as_runner(proto::ListCrewsRequest::default(), u))
            .await
            .unwrap()
            .into_inner()
            .crews;
        assert_eq!(listed.len(), 1, "ListCrews as {u}");
    }

    // The board.
    expect(
        "CreatePost",
        |u| {
            let h = &h;
            let crew_id = crew_id.clone();
            async move { h.post(&crew_id, &u, "Hello").await.map(drop) }
        },
        &members(),
    )
    .await;
    let post = h.post(&crew_id, MEMBER, "Members' post").await.unwrap();
    let notice = |u: String| {
        let (mut client, req) = (
            c(),
            h.as_runner(
                proto::CreatePostRequest {
                    crew_id: crew_id.clone(),
                    category: proto::PostCategory::Notice.into(),
                    title: "Notice".to_owned(),
                    body: "Race day".to_owned(),
                },
                &u,
            ),
        );
        async move { client.create_post(req).await.map(drop) }
    };
    expect(
        "CreatePost (notice)",
        notice,
        &[(MEMBER, ROLE), (ADMIN, Allowed), (OWNER, Allowed)],
    )
    .await;
    expect(
        "ListPosts",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::ListPostsRequest {
                        crew_id: crew_id.clone(),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.list_posts(req).await.map(drop) }
        },
        &everyone(),
    )
    .await;
    expect(
        "GetPost",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::GetPostRequest {
                        post_id: post.post_id.clone(),
                    },
                    &u,
                ),
            );
            async move { client.get_post(req).await.map(drop) }
        },
        &everyone(),
    )
    .await;
    expect(
        "UpdatePost",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::UpdatePostRequest {
                        post_id: post.post_id.clone(),
                        body: Some(format!("edited by {u}")),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.update_post(req).await.map(drop) }
        },
        &[
            (STRANGER, NOT_MEMBER),
            (BANNED, IS_BANNED),
            ("newcomer", ROLE),
            (MEMBER, Allowed),
            (ADMIN, Allowed),
            (OWNER, Allowed),
        ],
    )
    .await;
    expect(
        "PinPost",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::PinPostRequest {
                        post_id: post.post_id.clone(),
                        pinned: true,
                    },
                    &u,
                ),
            );
            async move { client.pin_post(req).await.map(drop) }
        },
        &managers(),
    )
    .await;
    expect(
        "CreateComment",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::CreateCommentRequest {
                        post_id: post.post_id.clone(),
                        parent_comment_id: String::new(),
                        body: "Count me in".to_owned(),
                    },
                    &u,
                ),
            );
            async move { client.create_comment(req).await.map(drop) }
        },
        &members(),
    )
    .await;
    expect(
        "ListComments",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::ListCommentsRequest {
                        post_id: post.post_id.clone(),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.list_comments(req).await.map(drop) }
        },
        &everyone(),
    )
    .await;
    let target = || {
        Some(proto::ContentRef {
            target: Some(proto::content_ref::Target::PostId(post.post_id.clone())),
        })
    };
    expect(
        "React",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::ReactRequest {
                        target: target(),
                        kind: proto::ReactionKind::Fire.into(),
                        remove: false,
                    },
                    &u,
                ),
            );
            async move { client.react(req).await.map(drop) }
        },
        &members(),
    )
    .await;
    // Two reports: below the threshold of three, the post stays visible.
    expect(
        "Report",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::ReportRequest {
                        target: target(),
                        reason: "spam".to_owned(),
                    },
                    &u,
                ),
            );
            async move { client.report(req).await.map(drop) }
        },
        &[(STRANGER, Allowed), (BANNED, Allowed)],
    )
    .await;
    expect(
        "ListReports",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::ListReportsRequest {
                        crew_id: crew_id.clone(),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.list_reports(req).await.map(drop) }
        },
        &managers(),
    )
    .await;
    expect(
        "DecideReport",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::DecideReportRequest {
                        crew_id: crew_id.clone(),
                        target: target(),
                        decision: proto::ReportDecision::Restore.into(),
                    },
                    &u,
                ),
            );
            async move { client.decide_report(req).await.map(drop) }
        },
        &managers(),
    )
    .await;
    let doomed = [
        h.post(&crew_id, MEMBER, "one").await.unwrap().post_id,
        h.post(&crew_id, MEMBER, "two").await.unwrap().post_id,
        h.post(&crew_id, MEMBER, "three").await.unwrap().post_id,
    ];
    let delete = |post_id: String| {
        let h = &h;
        move |u: String| {
            let (mut client, req) = (
                h.client(),
                h.as_runner(
                    proto::DeletePostRequest {
                        post_id: post_id.clone(),
                    },
                    &u,
                ),
            );
            async move { client.delete_post(req).await.map(drop) }
        }
    };
    expect(
        "DeletePost",
        delete(doomed[0].clone()),
        &[
            (STRANGER, NOT_MEMBER),
            (BANNED, IS_BANNED),
            ("newcomer", ROLE),
            (MEMBER, Allowed),
        ],
    )
    .await;
    expect("DeletePost", delete(doomed[1].clone()), &[(ADMIN, Allowed)]).await;
    expect("DeletePost", delete(doomed[2].clone()), &[(OWNER, Allowed)]).await;

    // Meetups.
    expect(
        "CreateMeetup",
        |u| {
            let h = &h;
            let crew_id = crew_id.clone();
            async move { h.meetup(&crew_id, &u, 10).await.map(drop) }
        },
        &managers(),
    )
    .await;
    let meetup = h.meetup(&crew_id, ADMIN, 10).await.unwrap();
    expect(
        "UpdateMeetup",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::UpdateMeetupRequest {
                        meetup_id: meetup.meetup_id.clone(),
                        capacity: Some(12),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.update_meetup(req).await.map(drop) }
        },
        &managers(),
    )
    .await;
    expect(
        "ListMeetups",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::ListMeetupsRequest {
                        crew_id: crew_id.clone(),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.list_meetups(req).await.map(drop) }
        },
        &everyone(),
    )
    .await;
    expect(
        "GetMeetup",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::GetMeetupRequest {
                        meetup_id: meetup.meetup_id.clone(),
                    },
                    &u,
                ),
            );
            async move { client.get_meetup(req).await.map(drop) }
        },
        &everyone(),
    )
    .await;
    expect(
        "WatchMeetup",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::WatchMeetupRequest {
                        meetup_id: meetup.meetup_id.clone(),
                    },
                    &u,
                ),
            );
            async move { client.watch_meetup(req).await.map(drop) }
        },
        &everyone(),
    )
    .await;
    expect(
        "RsvpMeetup (members only)",
        |u| {
            let h = &h;
            let meetup_id = meetup.meetup_id.clone();
            async move { h.rsvp(&meetup_id, &u, true).await.map(drop) }
        },
        &[
            (STRANGER, Denied("MEMBERS_ONLY")),
            (BANNED, IS_BANNED),
            (MEMBER, Allowed),
            (ADMIN, Allowed),
            (OWNER, Allowed),
        ],
    )
    .await;
    let open = c()
        .create_meetup(h.as_runner(
            proto::CreateMeetupRequest {
                crew_id: crew_id.clone(),
                meetup: Some(proto::Meetup {
                    members_only: false,
                    ..meetup_spec(5, chrono::Duration::days(3))
                }),
            },
            OWNER,
        ))
        .await
        .unwrap()
        .into_inner()
        .meetup
        .unwrap();
    expect(
        "RsvpMeetup (open to guests)",
        |u| {
            let h = &h;
            let meetup_id = open.meetup_id.clone();
            async move { h.rsvp(&meetup_id, &u, true).await.map(drop) }
        },
        &[(STRANGER, Allowed), (BANNED, IS_BANNED)],
    )
    .await;
    let cancel = |meetup_id: String| {
        let h = &h;
        move |u: String| {
            let (mut client, req) = (
                h.client(),
                h.as_runner(
                    proto::CancelMeetupRequest {
                        meetup_id: meetup_id.clone(),
                        reason: "rain".to_owned(),
                    },
                    &u,
                ),
            );
            async move { client.cancel_meetup(req).await.map(drop) }
        }
    };
    expect(
        "CancelMeetup",
        cancel(meetup.meetup_id.clone()),
        &[
            (STRANGER, ROLE),
            (BANNED, IS_BANNED),
            (MEMBER, ROLE),
            (ADMIN, Allowed),
        ],
    )
    .await;
    expect(
        "CancelMeetup",
        cancel(open.meetup_id.clone()),
        &[(OWNER, Allowed)],
    )
    .await;

    // The feed: a member's run shared with crews.
    h.deliver(
        "svc-run",
        "run-crews",
        &run_proto::RunRecorded {
            run: Some(run_proto::Run {
                run_id: "run-crews".to_owned(),
                owner_id: MEMBER.to_owned(),
                title: "Tempo".to_owned(),
                visibility: run_proto::Visibility::Crews.into(),
                start_time: support::at(chrono::Duration::hours(-1)),
                distance_meters: 8_000.0,
                ..Default::default()
            }),
        },
    )
    .await;
    for rpc in ["GetCrewFeed", "GetCrewTotals"] {
        expect(
            rpc,
            |u| {
                let (mut client, crew_id) = (c(), crew_id.clone());
                let h = &h;
                async move {
                    if rpc == "GetCrewFeed" {
                        client
                            .get_crew_feed(h.as_runner(
                                proto::GetCrewFeedRequest {
                                    crew_id,
                                    ..Default::default()
                                },
                                &u,
                            ))
                            .await
                            .map(drop)
                    } else {
                        client
                            .get_crew_totals(h.as_runner(
                                proto::GetCrewTotalsRequest {
                                    crew_id,
                                    ..Default::default()
                                },
                                &u,
                            ))
                            .await
                            .map(drop)
                    }
                }
            },
            &everyone(),
        )
        .await;
    }
    let run_rpcs = [
        (STRANGER, NotFound("RUN_NOT_FOUND")),
        (BANNED, NotFound("RUN_NOT_FOUND")),
        (MEMBER, Allowed),
        (ADMIN, Allowed),
        (OWNER, Allowed),
    ];
    expect(
        "GiveKudos",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::GiveKudosRequest {
                        run_id: "run-crews".to_owned(),
                    },
                    &u,
                ),
            );
            async move { client.give_kudos(req).await.map(drop) }
        },
        &run_rpcs,
    )
    .await;
    expect(
        "CommentOnRun",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::CommentOnRunRequest {
                        run_id: "run-crews".to_owned(),
                        body: "Nice".to_owned(),
                    },
                    &u,
                ),
            );
            async move { client.comment_on_run(req).await.map(drop) }
        },
        &run_rpcs,
    )
    .await;
    expect(
        "ListRunComments",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::ListRunCommentsRequest {
                        run_id: "run-crews".to_owned(),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.list_run_comments(req).await.map(drop) }
        },
        &run_rpcs,
    )
    .await;

    // Archiving is the owner's alone, and ends writing.
    expect(
        "ArchiveCrew",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::ArchiveCrewRequest {
                        crew_id: crew_id.clone(),
                    },
                    &u,
                ),
            );
            async move { client.archive_crew(req).await.map(drop) }
        },
        &[
            (STRANGER, ROLE),
            (BANNED, IS_BANNED),
            (MEMBER, ROLE),
            (ADMIN, ROLE),
            (OWNER, Allowed),
        ],
    )
    .await;
    let status = h.post(&crew_id, MEMBER, "After").await.unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "CREW_ARCHIVED");
}

async fn a_private_crew_is_invisible_to_non_members(backend: Backend) {
    let h = Harness::start(backend).await;
    let crew = h
        .crew(OWNER, "Secret Society", proto::CrewVisibility::Private)
        .await;
    let crew_id = crew.crew_id.clone();
    let post = h.post(&crew_id, OWNER, "Members only").await.unwrap();
    let meetup = h.meetup(&crew_id, OWNER, 5).await.unwrap();
    let c = || h.client();
    let hidden = [(STRANGER, NotFound("CREW_NOT_FOUND"))];
    expect(
        "GetCrew",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::GetCrewRequest {
                        crew_id: crew_id.clone(),
                    },
                    &u,
                ),
            );
            async move { client.get_crew(req).await.map(drop) }
        },
        &hidden,
    )
    .await;
    expect(
        "ListPosts",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::ListPostsRequest {
                        crew_id: crew_id.clone(),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.list_posts(req).await.map(drop) }
        },
        &hidden,
    )
    .await;
    expect(
        "GetCrewFeed",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::GetCrewFeedRequest {
                        crew_id: crew_id.clone(),
                        ..Default::default()
                    },
                    &u,
                ),
            );
            async move { client.get_crew_feed(req).await.map(drop) }
        },
        &hidden,
    )
    .await;
    expect(
        "JoinCrew without an invite",
        |u| {
            let h = &h;
            let crew_id = crew_id.clone();
            async move { h.join(&crew_id, &u).await.map(drop) }
        },
        &hidden,
    )
    .await;
    expect(
        "GetPost",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::GetPostRequest {
                        post_id: post.post_id.clone(),
                    },
                    &u,
                ),
            );
            async move { client.get_post(req).await.map(drop) }
        },
        &[(STRANGER, NotFound("POST_NOT_FOUND"))],
    )
    .await;
    expect(
        "GetMeetup",
        |u| {
            let (mut client, req) = (
                c(),
                h.as_runner(
                    proto::GetMeetupRequest {
                        meetup_id: meetup.meetup_id.clone(),
                    },
                    &u,
                ),
            );
            async move { client.get_meetup(req).await.map(drop) }
        },
        &[(STRANGER, NotFound("MEETUP_NOT_FOUND"))],
    )
    .await;
    let listed = c()
        .list_crews(h.as_runner(proto::ListCrewsRequest::default(), STRANGER))
        .await
        .unwrap()
        .into_inner()
        .crews;
    assert!(listed.is_empty(), "private crews are not listed");
    // An invite lets a runner in; a used-up invite does not.
    let invite = c()
        .create_invite(h.as_runner(
            proto::CreateInviteRequest {
                crew_id: crew_id.clone(),
                valid_hours: 1,
                max_uses: 1,
            },
            OWNER,
        ))
        .await
        .unwrap()
        .into_inner()
        .invite
        .unwrap();
    let joined = h
        .join_with(&crew_id, "invited", &invite.code)
        .await
        .unwrap();
    assert_eq!(joined.membership(), proto::MembershipState::Member);
    let status = h
        .join_with(&crew_id, "second", &invite.code)
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "CREW_NOT_FOUND");
    let unauthenticated = c()
        .get_crew(proto::GetCrewRequest {
            crew_id: crew_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
}
