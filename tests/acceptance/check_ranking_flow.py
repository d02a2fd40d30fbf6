#!/usr/bin/env python3
"""Walks svc-run's rankings, badges, goals and challenges through the edge's one port as a foreign
client would (issue 13's "Done when"). Needs the admin that check_race_flow.py's phase `register`
wrote to --state (global challenges are an admin's).

1. Three runners record runs this week (public), one of them a private run too.
2. The weekly and monthly distance boards (gRPC, and REST `GET /v1/leaderboards`) rank them by
   distance with the board time zone stated; the private run does not count; each runner's own
   rank (GetMyRank) agrees; the caller's neighbours are listed.
3. The first run earned `first run` style badges (ListMyAchievements), progress toward the next
   lifetime tier is reported (GetAchievementProgress).
4. A goal (20 km this week) shows progress and the pace/rate needed.
5. The admin creates a global challenge (10 km this week); runner B joins, records another run,
   and the challenge is completed (GetChallengeProgress) with its badge awarded.
6. Race results: the organizer opens a 10K that starts later today; runner C registers
   (CONFIRMED), then records a 10.1 km run earlier the same day: the run is linked as C's result
   (on the run and in GetRaceResults), and C earns the finisher badge.
7. Bad input: an unknown period is INVALID_ARGUMENT naming the field; a challenge ending before
   it starts is INVALID_ARGUMENT.

    python check_ranking_flow.py --addr 127.0.0.1:8080 --state race.json
"""

import argparse
import datetime
import json
import pathlib
import secrets
import sys
import time

import grpc

from mesh import Mesh
from reflected import CallFailed, Mismatch, expect

USER = "runmesh.user.v1.UserService"
RUN = "runmesh.run.v1.RunService"
RANKING = "runmesh.run.v1.RankingService"
RACE = "runmesh.race.v1.RaceService"
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


def board(period: str, scope: str = "BOARD_SCOPE_EVERYONE") -> dict:
    return {"period": period, "metric": "BOARD_METRIC_DISTANCE", "scope": scope}


def run_flow(mesh: Mesh, state: dict) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    # Runs an hour ago fall in this week and month unless the board's period turned over within
    # the hour; the boards state their window, which the check prints.

    def record(token: str, meters: int, title: str, visibility: str = "VISIBILITY_PUBLIC", minutes_ago: int = 60):
        return mesh.call(RUN, "CreateRun", {"run": {
            "sport": "SPORT_RUN", "title": title, "start_time": timestamp(now - datetime.timedelta(minutes=minutes_ago)),
            "time_zone": "Asia/Seoul", "elapsed_time": f"{meters * 3 // 10}s", "distance_meters": meters,
            "visibility": visibility}}, token).run

    print("1. three runners record runs")
    runners = {}
    for label, meters in (("A", 12_000), ("B", 8_000), ("C", 5_000)):
        user_id, token = mesh.sign_up(f"rank-{label.lower()}", f"Ranker {label}")
        runners[label] = {"id": user_id, "token": token, "meters": meters}
        record(token, meters, f"{label}'s run")
    record(runners["C"]["token"], 30_000, "C's private long run", "VISIBILITY_PRIVATE", minutes_ago=90)
    ids = {runner["id"]: label for label, runner in runners.items()}

    print("2. weekly and monthly boards")
    for period in ("BOARD_PERIOD_WEEK", "BOARD_PERIOD_MONTH"):
        def ours():
            answer = mesh.call(RANKING, "GetLeaderboard", {"board": board(period), "page_size": 100, "around": 1},
                               runners["B"]["token"])
            mine = [entry for entry in answer.entries if entry.runner_id in ids]
            return (answer, mine) if len(mine) == 3 else None

        answer, mine = wait_for(f"the three runners on the {period} board", ours)
        order = [ids[entry.runner_id] for entry in mine]
        values = [entry.value for entry in mine]
        expect(order == ["A", "B", "C"], f"{period}: order {order} ({values}), want A, B, C")
        expect(values == [12_000, 8_000, 5_000], f"{period}: values {values} (C's private run must not count)")
        expect(bool(answer.time_zone), f"{period}: the board does not state its time zone")
        expect(answer.me.runner_id == runners["B"]["id"] and answer.me.value == 8_000, f"{period}: me is {answer.me}")
        # Other checks' runners may sit between ours: the neighbours are whoever ranks next to B.
        ranks = [entry.rank for entry in answer.around_me]
        expect(answer.me.rank in ranks and ranks == list(range(ranks[0], ranks[0] + len(ranks))) and len(ranks) >= 2,
               f"{period}: the ranks around B ({answer.me.rank}) are {ranks}")
        mine_rank = mesh.call(RANKING, "GetMyRank", {"board": board(period)}, runners["B"]["token"]).me
        expect(mine_rank.rank == answer.me.rank, f"{period}: GetMyRank {mine_rank.rank} != {answer.me.rank}")
        print(f"  {period}: A, B, C at ranks {[entry.rank for entry in mine]} ({answer.time_zone}, "
              f"{answer.from_date}..{answer.to_date})")
    status, body = mesh.rest("GET", "/v1/leaderboards", runners["A"]["token"], query={
        "board.period": "BOARD_PERIOD_WEEK", "board.metric": "BOARD_METRIC_DISTANCE",
        "board.scope": "BOARD_SCOPE_EVERYONE", "pageSize": 100})
    expect(status == 200, f"GET /v1/leaderboards answered {status}: {body}")
    rest_ids = [entry["runnerId"] for entry in body.get("entries", []) if entry["runnerId"] in ids]
    expect([ids[i] for i in rest_ids] == ["A", "B", "C"], f"REST board order {rest_ids}")
    expect(body["me"]["runnerId"] == runners["A"]["id"], f"REST me: {body.get('me')}")
    print("  REST agrees")

    print("3. badges")
    earned = wait_for("A's badges", lambda: mesh.call(RANKING, "ListMyAchievements", {},
                                                      runners["A"]["token"]).achievements)
    names = sorted(achievement.badge_id for achievement in earned)
    expect(all(achievement.run_id for achievement in earned), "an achievement without the run that earned it")
    print(f"  A earned {names}")
    progress = mesh.call(RANKING, "GetAchievementProgress", {}, runners["A"]["token"]).progress
    expect(len(progress) > 0, "no achievement progress for A")
    definitions = mesh.call(RANKING, "ListBadges", {}, runners["A"]["token"]).badges
    expect(len(definitions) >= 10, f"{len(definitions)} badge definitions")
    expect(all(badge.name.ko and badge.name.en for badge in definitions), "a badge without Korean and English names")

    print("4. a goal")
    goal = mesh.call(RANKING, "SetGoal", {"goal": {"metric": "GOAL_METRIC_DISTANCE", "period": "GOAL_PERIOD_WEEK",
                                                   "target": 20_000}}, runners["A"]["token"]).goal
    progress = mesh.call(RANKING, "GetGoalProgress", {}, runners["A"]["token"]).progress
    mine = [item for item in progress if item.goal.goal_id == goal.goal_id]
    expect(len(mine) == 1 and abs(mine[0].current - 12_000) < 1 and not mine[0].met,
           f"goal progress {mine}")
    print(f"  12.0 of 20 km this week, {mine[0].days_left} days left")

    print("5. a challenge")
    admin = state["admin"]
    admin_token = mesh.call(USER, "SignIn", {"email": admin["email"], "password": admin["password"]}).tokens.access_token
    today = now.date()
    challenge = mesh.call(RANKING, "CreateChallenge", {"challenge": {
        "title": "Ten this week", "description": "10 km between two dates", "metric": "CHALLENGE_METRIC_DISTANCE",
        "target": 10_000, "start_date": (today - datetime.timedelta(days=1)).isoformat(),
        "end_date": (today + datetime.timedelta(days=6)).isoformat()}}, admin_token).challenge
    mesh.call(RANKING, "JoinChallenge", {"challenge_id": challenge.challenge_id}, runners["B"]["token"])
    record(runners["B"]["token"], 3_000, "B's top-up", minutes_ago=30)
    done = wait_for("B's challenge completed", lambda: (lambda p: p if p.completed else None)(mesh.call(
        RANKING, "GetChallengeProgress", {"challenge_id": challenge.challenge_id}, runners["B"]["token"])))
    expect(done.current >= 10_000, f"completed at {done.current}")
    if challenge.badge_id:
        wait_for("the challenge's badge", lambda: [a for a in mesh.call(
            RANKING, "ListMyAchievements", {}, runners["B"]["token"]).achievements if a.badge_id == challenge.badge_id])
    print(f"  B completed it with {done.current:.0f} m")

    print("6. a race result")
    race_result(mesh, state, runners["C"], now)

    print("7. bad input")
    refused = mesh.refused(RANKING, "GetLeaderboard", {"board": {"metric": "BOARD_METRIC_DISTANCE",
                                                                 "scope": "BOARD_SCOPE_EVERYONE"}},
                           runners["A"]["token"])
    expect(refused.code == grpc.StatusCode.INVALID_ARGUMENT and any("period" in f for f in refused.violated_fields),
           f"no period: {refused.describe()}")
    refused = mesh.refused(RANKING, "CreateChallenge", {"challenge": {
        "title": "Backwards", "metric": "CHALLENGE_METRIC_DISTANCE", "target": 1000,
        "start_date": today.isoformat(), "end_date": (today - datetime.timedelta(days=3)).isoformat()}}, admin_token)
    expect(refused.code == grpc.StatusCode.INVALID_ARGUMENT, f"end before start: {refused.describe()}")
    print(f"  {refused.describe()}")


def race_result(mesh: Mesh, state: dict, runner: dict, now: datetime.datetime) -> None:
    organizer = state["organizer"]
    organizer_token = mesh.call(USER, "SignIn", {"email": organizer["email"],
                                                 "password": organizer["password"]}).tokens.access_token
    race = mesh.call(RACE, "CreateRace", {"race": {
        "name": f"Result 10K {secrets.token_hex(3)}", "description": "Made by check_ranking_flow.py.",
        "region": "Seoul", "venue": "Sangam World Cup Park", "starts_at": timestamp(now + datetime.timedelta(minutes=20)),
        "registration_opens_at": timestamp(now - datetime.timedelta(minutes=1)),
        "registration_closes_at": timestamp(now + datetime.timedelta(minutes=10)),
        "categories": [{"name": "10K", "distance_meters": 10_000, "capacity": 100, "waitlist_capacity": 0,
                        "fee": {"currency_code": "KRW", "amount_minor": 20000}}]}}, organizer_token).race
    mesh.call(RACE, "PublishRace", {"race_id": race.race_id}, organizer_token)
    registration = mesh.call(RACE, "Register", {"race_id": race.race_id, "category_id": race.categories[0].category_id,
                                                "idempotency_key": secrets.token_hex(8)}, runner["token"]).registration
    # The race's date is taken in the run's time zone: a fixed-offset zone where it is about noon
    # now keeps the run (an hour ago) and the start (in 20 minutes) on one date whenever this runs.
    offset = (12 - now.hour) % 24
    offset = offset - 24 if offset > 12 else offset
    zone = "Etc/GMT" + ("" if offset == 0 else f"{-offset:+d}")
    run = mesh.call(RUN, "CreateRun", {"run": {
        "sport": "SPORT_RUN", "title": "Race day", "start_time": timestamp(now - datetime.timedelta(minutes=60)),
        "time_zone": zone, "elapsed_time": "2940s", "distance_meters": 10_100,
        "visibility": "VISIBILITY_PUBLIC"}}, runner["token"]).run
    linked = wait_for("the run linked as C's race result", lambda: (lambda r: r if r.HasField("race_result") and
                      r.race_result.race_id == race.race_id else None)(
        mesh.call(RUN, "GetRun", {"run_id": run.run_id}, runner["token"]).run))
    expect(linked.race_result.registration_id == registration.registration_id,
           f"linked to registration {linked.race_result.registration_id}, want {registration.registration_id}")
    results = mesh.call(RANKING, "GetRaceResults", {"race_id": race.race_id}, runner["token"])
    entries = [entry for category in results.categories for entry in category.results]
    expect([entry.run_id for entry in entries] == [run.run_id], f"race results {entries}")
    wait_for("C's finisher badge", lambda: [a for a in mesh.call(
        RANKING, "ListMyAchievements", {}, runner["token"]).achievements if a.badge_id == "race_finisher"])
    print(f"  {race.name}: C's run ({zone}) is the result, rank {entries[0].rank}; finisher badge earned")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", required=True, help="the edge's address, host:port")
    parser.add_argument("--state", required=True, type=pathlib.Path, help="check_race_flow.py's state file")
    args = parser.parse_args()
    try:
        with grpc.insecure_channel(args.addr) as channel:
            run_flow(Mesh(channel, args.addr), json.loads(args.state.read_text()))
    except (Mismatch, CallFailed) as failure:
        print(f"FAIL: {failure}")
        return 1
    print("rankings: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
