#!/usr/bin/env python3
"""Walks svc-assist's notifications through the edge's one port as a foreign client would
(issue 15's "Done when"), against a Slack-compatible server on loopback (fake_slack.py) that the
services were pointed at with RUNMESH_SLACK_API_URL.

Needs the organizer that check_race_flow.py's phase `register` wrote to --state.

1. The organizer creates and publishes two races, registration open now.
2. Runner R (Slack member id set in the profile) watches the inbox over native gRPC
   (WatchNotifications, server streaming) and registers for race 1: exactly one inbox entry
   (category REGISTRATION), seen live on the stream, and exactly one Slack DM naming the race.
3. R records a first run: a badge, and a second inbox entry and Slack DM (ACHIEVEMENT).
4. R turns registration notifications off (inbox and Slack) and registers for race 2; runner S,
   whose preferences are the defaults, registers right after (race events are ordered per race):
   once S has S's entry, R has no new entry and no new Slack post.
5. The inbox reads the same over REST (GET /v1/notifications) and an unread count; marking all
   read leaves none unread.

    python check_notify_flow.py --addr 127.0.0.1:8080 --state race.json --slack http://127.0.0.1:9999
"""

import argparse
import datetime
import json
import pathlib
import secrets
import sys
import threading
import time
import urllib.request

import grpc

from mesh import Mesh
from reflected import CallFailed, Mismatch, expect

USER = "runmesh.user.v1.UserService"
RACE = "runmesh.race.v1.RaceService"
RUN = "runmesh.run.v1.RunService"
NOTIFY = "runmesh.notify.v1.NotificationService"
WAIT_SECONDS = 60


def timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def wait_for(label: str, probe, seconds: float = WAIT_SECONDS):
    """Polls `probe` until it returns something truthy; a Mismatch naming `label` otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Mismatch(f"{label}: not within {seconds}s")
        time.sleep(0.2)


class Slack:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def requests(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/_requests", timeout=10) as response:
            return json.load(response)

    def channel_of(self, member_id: str) -> str | None:
        return next((item["channel"] for item in self.requests()["opened"] if item["user"] == member_id), None)

    def posts_to(self, channel: str | None) -> list[dict]:
        return [post for post in self.requests()["posts"] if channel and post["channel"] == channel]


class Flow:
    def __init__(self, mesh: Mesh, slack: Slack, state: dict):
        self.mesh = mesh
        self.slack = slack
        self.state = state
        self.nonce = secrets.token_hex(3)

    def inbox(self, token: str) -> list:
        return list(self.mesh.call(NOTIFY, "ListNotifications", {"page_size": 50}, token).notifications)

    def category(self, notification) -> str:
        field = notification.DESCRIPTOR.fields_by_name["category"]
        return field.enum_type.values_by_number[notification.category].name

    def open_race(self, organizer_token: str, label: str) -> tuple[str, str, str]:
        now = datetime.datetime.now(datetime.timezone.utc)
        name = f"Notify {label} 10K {self.nonce}"
        race = self.mesh.call(RACE, "CreateRace", {"race": {
            "name": name, "description": "Made by check_notify_flow.py.", "region": "Seoul",
            "venue": "Olympic Park", "starts_at": timestamp(now + datetime.timedelta(days=20)),
            "registration_opens_at": timestamp(now - datetime.timedelta(minutes=1)),
            "registration_closes_at": timestamp(now + datetime.timedelta(hours=2)),
            "categories": [{"name": "10K", "distance_meters": 10_000, "capacity": 50, "waitlist_capacity": 5,
                            "fee": {"currency_code": "KRW", "amount_minor": 30000}}],
        }}, organizer_token).race
        self.mesh.call(RACE, "PublishRace", {"race_id": race.race_id}, organizer_token)
        return race.race_id, race.categories[0].category_id, name

    def register(self, token: str, race_id: str, category_id: str) -> None:
        self.mesh.call(RACE, "Register", {"race_id": race_id, "category_id": category_id,
                                          "idempotency_key": secrets.token_hex(8)}, token)

    def run(self) -> None:
        organizer = self.state["organizer"]
        organizer_token = self.mesh.call(USER, "SignIn", {"email": organizer["email"],
                                                          "password": organizer["password"]}).tokens.access_token
        print("1. the organizer opens two races")
        race1, category1, name1 = self.open_race(organizer_token, "one")
        race2, category2, _ = self.open_race(organizer_token, "two")
        print(f"  {race1}, {race2}")

        print("2. runner R registers with Slack linked and the inbox watched live")
        _, r_token = self.mesh.sign_up("notify-r", "Notify R")
        member_id = "U" + secrets.token_hex(5).upper()
        self.mesh.call(USER, "UpdateProfile", {"slack_member_id": member_id}, r_token)
        # The profile reaches svc-assist as an event: wait until its preferences show Slack linked.
        wait_for("R's Slack link in svc-assist's preferences", lambda: self.mesh.call(
            NOTIFY, "GetNotificationPreferences", {}, r_token).preferences.slack_link_state == 2)
        live: list = []
        subscribed = threading.Event()
        stream = self.mesh.stream(NOTIFY, "WatchNotifications", {}, r_token, timeout=300)

        def watch():
            try:
                for message in stream:
                    # The first message is the unread count as the stream subscribed.
                    subscribed.set()
                    if message.HasField("notification"):
                        live.append(message.notification)
            except grpc.RpcError:
                subscribed.set()

        threading.Thread(target=watch, daemon=True).start()
        expect(subscribed.wait(30), "WatchNotifications sent nothing within 30s")
        self.register(r_token, race1, category1)
        entries = wait_for("R's registration in the inbox", lambda: [
            n for n in self.inbox(r_token) if self.category(n) == "NOTIFICATION_CATEGORY_REGISTRATION"])
        expect(len(entries) == 1, f"{len(entries)} registration entries, want 1")
        print(f"  inbox: {entries[0].title!r}")
        channel = wait_for("R's Slack DM opened", lambda: self.slack.channel_of(member_id))
        posts = wait_for("a Slack post to R", lambda: self.slack.posts_to(channel))
        expect(len(posts) == 1, f"{len(posts)} Slack posts to R, want 1")
        expect(name1 in posts[0]["text"] or name1 in json.dumps(posts[0]["blocks"]),
               f"the Slack post does not name the race {name1!r}: {posts[0]['text']!r}")
        print(f"  Slack {channel}: {posts[0]['text'][:100]!r}")
        wait_for("the registration on R's live stream", lambda: any(
            n.notification_id == entries[0].notification_id for n in live), seconds=30)
        print("  seen live on WatchNotifications")

        print("3. R's first run earns a badge")
        start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
        self.mesh.call(RUN, "CreateRun", {"run": {
            "sport": "SPORT_RUN", "title": "First run", "start_time": timestamp(start), "time_zone": "Asia/Seoul",
            "elapsed_time": "1800s", "distance_meters": 5200, "visibility": "VISIBILITY_PUBLIC"}}, r_token)
        badges = wait_for("R's badge in the inbox", lambda: [
            n for n in self.inbox(r_token) if self.category(n) == "NOTIFICATION_CATEGORY_ACHIEVEMENT"])
        print(f"  inbox: {badges[0].title!r}")
        wait_for("a second Slack post to R", lambda: len(self.slack.posts_to(channel)) >= 2)

        print("4. R turns registration notifications off; S (defaults) registers after R")
        self.mesh.call(NOTIFY, "UpdateNotificationPreferences", {"channels": [
            {"category": "NOTIFICATION_CATEGORY_REGISTRATION", "channel": channel_name, "enabled": False}
            for channel_name in ("NOTIFICATION_CHANNEL_INBOX", "NOTIFICATION_CHANNEL_SLACK")]}, r_token)
        before = len(self.inbox(r_token))
        slack_before = len(self.slack.posts_to(channel))
        _, s_token = self.mesh.sign_up("notify-s", "Notify S")
        self.register(r_token, race2, category2)
        self.register(s_token, race2, category2)
        wait_for("S's registration in S's inbox", lambda: self.inbox(s_token))
        after = self.inbox(r_token)
        expect(len(after) == before, f"R has {len(after) - before} new entries with registration notifications off")
        expect(len(self.slack.posts_to(channel)) == slack_before, "R got a Slack post with them off")
        print(f"  R: still {before} entries and {slack_before} Slack posts")

        print("5. REST through the edge")
        status, body = self.mesh.rest("GET", "/v1/notifications", r_token)
        expect(status == 200, f"GET /v1/notifications answered {status}: {body}")
        expect(len(body.get("notifications", [])) == before, f"REST lists {len(body.get('notifications', []))}")
        expect(int(body.get("unreadCount", 0)) == before, f"REST unreadCount {body.get('unreadCount')}")
        status, body = self.mesh.rest("POST", "/v1/notifications:markRead", r_token, {"all": True})
        expect(status == 200 and int(body.get("unreadCount", 0)) == 0, f"markRead answered {status}: {body}")
        print(f"  {before} listed over REST, all marked read")
        stream.cancel()

        print("6. bad input")
        refused = self.mesh.refused(NOTIFY, "ArchiveNotification", {"notification_id": after[0].notification_id},
                                    s_token)
        expect(refused.code == grpc.StatusCode.NOT_FOUND, f"another runner's notification: {refused.describe()}")
        refused = self.mesh.refused(NOTIFY, "UpdateNotificationPreferences",
                                    {"quiet_hours": {"enabled": True, "start": "25:00", "end": "07:00"}}, r_token)
        expect(refused.code == grpc.StatusCode.INVALID_ARGUMENT, f"quiet hours 25:00: {refused.describe()}")
        print(f"  {refused.describe()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", required=True, help="the edge's address, host:port")
    parser.add_argument("--state", required=True, type=pathlib.Path, help="check_race_flow.py's state file")
    parser.add_argument("--slack", required=True, help="the fake Slack's base URL")
    args = parser.parse_args()
    try:
        with grpc.insecure_channel(args.addr) as channel:
            Flow(Mesh(channel, args.addr), Slack(args.slack), json.loads(args.state.read_text())).run()
    except (Mismatch, CallFailed) as failure:
        print(f"FAIL: {failure}")
        return 1
    print("notifications: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
