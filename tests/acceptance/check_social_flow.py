#!/usr/bin/env python3
"""Walks svc-social's crews through the edge's one port as a foreign client would (issue 14's
"Done when"), with svc-run's crew boards (issue 13) beside it.

1. Owner O creates a PUBLIC crew (REST), an APPROVAL crew and a PRIVATE crew (gRPC).
2. A joins the public crew; B asks to join the approval crew and O approves; C redeems an invite
   to the private crew; D, outside the private crew, gets NOT_FOUND for it and its board.
3. A posts on the public crew's board (REST); O comments (gRPC); D, signed in but not a member,
   reads the public board; a member without a role cannot pin (PERMISSION_DENIED).
4. O schedules a group run for 2 in the public crew (C and D join it first); O watches it live
   (WatchMeetup, server streaming); A and C RSVP going, D is WAITLISTED at position 1; A drops out
   and D is promoted, which the watch shows.
5. A records a public run and a private one: the crew feed shows the public run only; O gives
   kudos once (a second kudos changes nothing).
6. The crew's board in svc-run (GetLeaderboard, scope CREW) lists A with the public run's distance.
7. Bad input: an empty crew name is INVALID_ARGUMENT naming `name`.

    python check_social_flow.py --addr 127.0.0.1:8080
"""

import argparse
import datetime
import sys
import threading
import time

import grpc

from mesh import Mesh
from reflected import CallFailed, Mismatch, expect

CREW = "runmesh.social.v1.CrewService"
RUN = "runmesh.run.v1.RunService"
RANKING = "runmesh.run.v1.RankingService"
WAIT_SECONDS = 60


def timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def wait_for(label: str, probe, seconds: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Mismatch(f"{label}: not within {seconds}s")
        time.sleep(0.2)


def enum_name(message, field: str) -> str:
    descriptor = message.DESCRIPTOR.fields_by_name[field]
    return descriptor.enum_type.values_by_number[getattr(message, field)].name


def run_flow(mesh: Mesh) -> None:
    _, o = mesh.sign_up("crew-owner", "Crew Owner")
    a_id, a = mesh.sign_up("crew-a", "Runner A")
    _, b = mesh.sign_up("crew-b", "Runner B")
    c_id, c = mesh.sign_up("crew-c", "Runner C")
    d_id, d = mesh.sign_up("crew-d", "Runner D")

    print("1. crews")
    status, body = mesh.rest("POST", "/v1/crews", o, {"name": "Hangang Dawn Runners", "region": "Seoul",
                                                       "description": "Weekday 6am loops.",
                                                       "visibility": "CREW_VISIBILITY_PUBLIC"})
    expect(status == 200, f"POST /v1/crews answered {status}: {body}")
    public = body["crew"]["crewId"]
    approval = mesh.call(CREW, "CreateCrew", {"name": "Namsan Hill Club", "region": "Seoul",
                                              "visibility": "CREW_VISIBILITY_APPROVAL"}, o).crew.crew_id
    private = mesh.call(CREW, "CreateCrew", {"name": "Secret Track Session", "region": "Busan",
                                             "visibility": "CREW_VISIBILITY_PRIVATE"}, o).crew.crew_id
    print(f"  public {public}, approval {approval}, private {private}")

    print("2. joining three ways")
    joined = mesh.call(CREW, "JoinCrew", {"crew_id": public}, a)
    expect(enum_name(joined, "membership") == "MEMBERSHIP_STATE_MEMBER", f"A joining: {joined}")
    asked = mesh.call(CREW, "JoinCrew", {"crew_id": approval, "message": "I run Namsan weekly"}, b)
    expect(enum_name(asked, "membership") == "MEMBERSHIP_STATE_REQUESTED", f"B asking: {asked}")
    requests = mesh.call(CREW, "ListJoinRequests", {"crew_id": approval}, o).requests
    expect(len(requests) == 1, f"{len(requests)} join requests, want 1")
    mesh.call(CREW, "DecideJoinRequest", {"crew_id": approval, "user_id": requests[0].user_id, "approve": True}, o)
    invite = mesh.call(CREW, "CreateInvite", {"crew_id": private, "valid_hours": 24, "max_uses": 1}, o).invite
    redeemed = mesh.call(CREW, "JoinCrew", {"crew_id": private, "invite_code": invite.code}, c)
    expect(enum_name(redeemed, "membership") == "MEMBERSHIP_STATE_MEMBER", f"C redeeming: {redeemed}")
    members = mesh.call(CREW, "ListMembers", {"crew_id": approval}, o).members
    expect(len(members) == 2, f"the approval crew has {len(members)} members, want 2 (O and B)")
    hidden = mesh.refused(CREW, "GetCrew", {"crew_id": private}, d)
    expect(hidden.code == grpc.StatusCode.NOT_FOUND, f"D reading the private crew: {hidden.describe()}")
    hidden = mesh.refused(CREW, "ListPosts", {"crew_id": private}, d)
    expect(hidden.code == grpc.StatusCode.NOT_FOUND, f"D reading the private board: {hidden.describe()}")
    print("  A joined, B approved, C by invite; the private crew is NOT_FOUND to D")

    print("3. the board")
    status, body = mesh.rest("POST", f"/v1/crews/{public}/posts", a, {
        "category": "POST_CATEGORY_RECRUITING", "title": "Sub-50 10K group?",
        "body": "Anyone for **4:50/km** on Thursday? <script>alert(1)</script>"})
    expect(status == 200, f"POST posts answered {status}: {body}")
    post_id = body["post"]["postId"]
    expect("<script>" in body["post"]["body"], "the Markdown body was not stored as written")
    mesh.call(CREW, "CreateComment", {"post_id": post_id, "body": "Count me in."}, o)
    posts = mesh.call(CREW, "ListPosts", {"crew_id": public}, d).posts
    expect([p.post_id for p in posts] == [post_id], f"D reads {len(posts)} posts on the public board")
    expect(posts[0].comment_count == 1, f"comment_count {posts[0].comment_count}, want 1")
    denied = mesh.refused(CREW, "PinPost", {"post_id": post_id, "pinned": True}, a)
    expect(denied.code == grpc.StatusCode.PERMISSION_DENIED, f"A pinning: {denied.describe()}")
    print("  posted, commented, read by a non-member; pinning needs a role")

    print("4. a group run past its capacity")
    for token in (c, d):
        mesh.call(CREW, "JoinCrew", {"crew_id": public}, token)
    now = datetime.datetime.now(datetime.timezone.utc)
    meetup = mesh.call(CREW, "CreateMeetup", {"crew_id": public, "meetup": {
        "title": "Thursday tempo", "starts_at": timestamp(now + datetime.timedelta(days=2)),
        "time_zone": "Asia/Seoul", "meeting_point": {"name": "Yeouinaru Station exit 2",
                                                     "location": {"latitude": 37.527, "longitude": 126.932}},
        "planned_distance_meters": 10000, "pace_groups": ["4:50", "5:30"], "capacity": 2,
        "rsvp_deadline": timestamp(now + datetime.timedelta(days=1)), "members_only": True,
        "recurrence": "RECURRENCE_NONE"}}, o).meetup
    seen: list = []
    first = threading.Event()
    watch = mesh.stream(CREW, "WatchMeetup", {"meetup_id": meetup.meetup_id}, o, timeout=120)

    def watching():
        try:
            for update in watch:
                seen.append(update)
                first.set()
        except grpc.RpcError:
            first.set()

    threading.Thread(target=watching, daemon=True).start()
    expect(first.wait(30), "WatchMeetup sent nothing within 30s")
    answers = {}
    for label, token in (("A", a), ("C", c), ("D", d)):
        answer = mesh.call(CREW, "RsvpMeetup", {"meetup_id": meetup.meetup_id, "status": "RSVP_STATUS_GOING"}, token)
        answers[label] = answer
        print(f"  {label}: {enum_name(answer, 'status')} {answer.waitlist_position or ''}")
    expect(enum_name(answers["A"], "status") == "RSVP_STATUS_GOING", "A is not GOING")
    expect(enum_name(answers["C"], "status") == "RSVP_STATUS_GOING", "C is not GOING")
    expect(enum_name(answers["D"], "status") == "RSVP_STATUS_WAITLISTED" and answers["D"].waitlist_position == 1,
           f"D: {answers['D']}")
    mesh.call(CREW, "RsvpMeetup", {"meetup_id": meetup.meetup_id, "status": "RSVP_STATUS_NOT_GOING"}, a)
    detail = mesh.call(CREW, "GetMeetup", {"meetup_id": meetup.meetup_id}, o)
    going = {attendee.user_id for attendee in detail.going}
    expect(going == {c_id, d_id}, f"going after A dropped out: {going}, want C and D")
    expect(len(detail.waitlist) == 0, f"{len(detail.waitlist)} still waitlisted")
    wait_for("the watch showing D promoted", lambda: any(
        {attendee.user_id for attendee in update.going} == {c_id, d_id} for update in seen), seconds=30)
    watch.cancel()
    print(f"  D promoted; the watch saw {len(seen)} updates")

    print("5. the crew feed")
    start = now - datetime.timedelta(hours=3)
    shared = mesh.call(RUN, "CreateRun", {"run": {
        "sport": "SPORT_RUN", "title": "Crew loop", "start_time": timestamp(start), "time_zone": "Asia/Seoul",
        "elapsed_time": "3000s", "distance_meters": 10_250, "visibility": "VISIBILITY_PUBLIC"}}, a).run
    mesh.call(RUN, "CreateRun", {"run": {
        "sport": "SPORT_RUN", "title": "Secret recovery jog", "start_time": timestamp(start - datetime.timedelta(
            hours=20)), "time_zone": "Asia/Seoul", "elapsed_time": "1500s", "distance_meters": 4_000,
        "visibility": "VISIBILITY_PRIVATE"}}, a)
    feed = wait_for("A's public run in the crew feed", lambda: [
        run for run in mesh.call(CREW, "GetCrewFeed", {"crew_id": public}, o).runs if run.owner_id == a_id])
    titles = [run.title for run in feed]
    expect(titles == ["Crew loop"], f"the feed shows A's runs {titles}, want only the public one")
    expect(mesh.call(CREW, "GiveKudos", {"run_id": shared.run_id}, o).kudos_count == 1, "kudos count")
    expect(mesh.call(CREW, "GiveKudos", {"run_id": shared.run_id}, o).kudos_count == 1, "kudos twice")
    print("  the public run only; one kudos")

    print("6. the crew's board in svc-run")

    def on_board():
        board = mesh.call(RANKING, "GetLeaderboard", {"board": {
            "period": "BOARD_PERIOD_ALL_TIME", "metric": "BOARD_METRIC_DISTANCE", "scope": "BOARD_SCOPE_CREW",
            "crew_id": public}, "page_size": 10}, o)
        return [entry for entry in board.entries if entry.runner_id == a_id]

    entry = wait_for("A on the crew's board", on_board)[0]
    expect(abs(entry.value - 10_250) < 1, f"A's value on the crew board is {entry.value}, want 10250")
    print(f"  A ranks {entry.rank} with {entry.value:.0f}")

    print("7. bad input")
    refused = mesh.refused(CREW, "CreateCrew", {"name": " ", "visibility": "CREW_VISIBILITY_PUBLIC"}, o)
    expect(refused.code == grpc.StatusCode.INVALID_ARGUMENT and "name" in refused.violated_fields,
           f"an empty name: {refused.describe()}")
    print(f"  {refused.describe()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", required=True, help="the edge's address, host:port")
    args = parser.parse_args()
    try:
        with grpc.insecure_channel(args.addr) as channel:
            run_flow(Mesh(channel, args.addr))
    except (Mismatch, CallFailed) as failure:
        print(f"FAIL: {failure}")
        return 1
    print("crews: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
