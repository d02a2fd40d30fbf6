#!/usr/bin/env python3
"""Walks svc-run's recaps through the edge's one port as a foreign client would (issue 17's
"Done when"): native gRPC with the schema from the edge's reflection, and REST/JSON and images.

1. Two runners sign up (A with a Korean name); A's profile time zone is Asia/Seoul, which svc-run
   learns from svc-user's events.
2. A imports the real files check_run_flow.py uses (the Osaka Marathon FIT and a Fenix 6 TCX.gz
   over gRPC, a Garmin GPX over REST) and records a few more runs of 2025 by hand around the
   marathon, so that the month and the year have something to show; B records two runs.
3. A's month (February 2025) and year (2025) recaps over REST and over gRPC are the same recap,
   and their totals are the runs' own figures (ListRuns in the runner's time zone; the longest
   run and the marathon's fastest effort as GetRun has them); the calendar and the buckets add
   up to the totals.
4. Their cards: card.png (portrait 1080x1920 and square 1080x1080, PNG magic and IHDR size) and
   card.svg (parses as XML, the runner's name in it) over REST with their content type and
   Content-Disposition, the same bytes as GetRecapCard over gRPC. With --save-cards DIR the
   images are written there to be looked at.
5. A creates a crew through CrewService and B joins: the crew's month recap (once svc-run's crew
   projection has both) totals both runners' runs, with its card; a crew A is not in and an
   unknown crew are NOT_FOUND CREW_NOT_FOUND (404 over REST).
6. Bad input as docs/recaps.md says: a malformed date and an unknown period are INVALID_ARGUMENT
   naming each field (HTTP 400 with the field over REST); a period that has not started is
   FAILED_PRECONDITION PERIOD_IN_FUTURE; a period without runs is an empty recap (zeros and a
   narrative), and its card says so.

    python check_recap_flow.py --addr 127.0.0.1:8080 --fixtures svc-run/tests/fixtures [--save-cards DIR]
"""

import argparse
import datetime
import http.client
import json
import pathlib
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ElementTree
from zoneinfo import ZoneInfo

import grpc
from google.protobuf import json_format
from google.protobuf.message_factory import GetMessageClass

from check_run_flow import GPX, MARATHON_FIT, TCX_GZ, Runs
from mesh import Mesh
from reflected import CallFailed, Mismatch, RPC_TIMEOUT_SECONDS, expect

RECAP = "runmesh.run.v1.RecapService"
RUN = "runmesh.run.v1.RunService"
USER = "runmesh.user.v1.UserService"
CREW = "runmesh.social.v1.CrewService"
TIME_ZONE = "Asia/Seoul"
RUNNING = ("SPORT_RUN", "SPORT_TRAIL_RUN", "SPORT_TREADMILL")
WAIT_SECONDS = 60
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"
NAME_A = "김하늘 Haneul"

# A's runs of 2025 by hand (local time in Seoul): (date, hour, km, minutes, elevation gain, title).
MANUAL_A = [
    ("2025-01-12", 7, 12.0, 66, 85, "일요일 장거리"),
    ("2025-02-02", 6, 10.0, 50, 40, "Easy ten"),
    ("2025-02-09", 6, 21.1, 110, 120, "Half marathon rehearsal"),
    ("2025-02-15", 7, 8.0, 45, 30, "한강 회복주"),
    ("2025-02-19", 19, 6.0, 33, 12, "Taper shakeout"),
    ("2025-03-02", 7, 5.0, 31, 10, "Recovery jog"),
    ("2025-04-13", 6, 16.0, 85, 150, "Namsan hills"),
    ("2025-06-01", 6, 10.0, 52, 45, "Early summer ten"),
    ("2025-09-21", 7, 18.0, 98, 110, "Autumn long run"),
    ("2025-11-02", 8, 42.2, 225, 210, "JTBC Seoul Marathon"),
]
MANUAL_B = [
    ("2025-02-09", 7, 10.0, 58, 30, "Crew Sunday ten"),
    ("2025-02-22", 8, 7.5, 44, 20, "Saturday easy"),
]


def timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def seconds(duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def wait_for(label: str, probe, seconds_: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds_
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Mismatch(f"{label}: not within {seconds_}s")
        time.sleep(0.3)


def get(mesh: Mesh, path: str, token: str, query: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    """A raw REST GET through the edge: (status, headers in lower case, body)."""
    host, port = mesh.addr.rsplit(":", 1)
    if query:
        path += "?" + urllib.parse.urlencode(query)
    connection = http.client.HTTPConnection(host, int(port), timeout=RPC_TIMEOUT_SECONDS)
    try:
        connection.request("GET", path, headers={"authorization": f"Bearer {token}",
                                                 "x-forwarded-for": mesh.forwarded_for})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def create_runs(mesh: Mesh, token: str, runs: list) -> None:
    zone = ZoneInfo(TIME_ZONE)
    for day, hour, km, minutes, gain, title in runs:
        start = datetime.datetime.fromisoformat(day).replace(hour=hour, tzinfo=zone)
        mesh.call(RUN, "CreateRun", {"run": {
            "sport": "SPORT_RUN", "title": title, "start_time": timestamp(start), "time_zone": TIME_ZONE,
            "elapsed_time": f"{minutes * 60}s", "distance_meters": km * 1000, "elevation_gain_meters": gain,
            "visibility": "VISIBILITY_PUBLIC"}}, token)


def list_runs(mesh: Mesh, token: str, start: datetime.datetime, end: datetime.datetime) -> list:
    runs, page = [], ""
    while True:
        answer = mesh.call(RUN, "ListRuns", {"from_time": timestamp(start), "to_time": timestamp(end),
                                             "page_size": 100, "page_token": page}, token)
        runs.extend(answer.runs)
        page = answer.next_page_token
        if not page:
            return runs


def sport_name(run) -> str:
    return run.DESCRIPTOR.fields_by_name["sport"].enum_type.values_by_number[run.sport].name


def expected_totals(mesh: Mesh, tokens: list[str], recap) -> dict:
    """The period's totals from the runs themselves, in the recap's time zone."""
    zone = ZoneInfo(recap.time_zone)
    start = datetime.datetime.fromisoformat(recap.from_date).replace(tzinfo=zone)
    end = datetime.datetime.fromisoformat(recap.to_date).replace(tzinfo=zone)
    runs = [run for token in tokens for run in list_runs(mesh, token, start, end) if sport_name(run) in RUNNING]
    return {
        "distance": sum(run.distance_meters for run in runs),
        "moving": sum(seconds(run.moving_time) for run in runs),
        "runs": len(runs),
        "elevation": sum(run.elevation_gain_meters for run in runs if run.HasField("elevation_gain_meters")),
        "days": len({run.start_time.ToDatetime(datetime.timezone.utc).astimezone(zone).date() for run in runs}),
        "ids": {run.run_id for run in runs},
    }


def check_totals(label: str, recap, expected: dict) -> None:
    totals = recap.totals
    got = (totals.distance_meters, seconds(totals.moving_time), totals.runs, totals.elevation_gain_meters,
           totals.active_days)
    want = (expected["distance"], expected["moving"], expected["runs"], expected["elevation"], expected["days"])
    print(f"  {label}: {got[0] / 1000:.2f} km, {got[1] / 3600:.2f} h, {got[2]} runs, {got[3]:.0f} m up, "
          f"{got[4]} active days (the runs say {want[0] / 1000:.2f} km, {want[1] / 3600:.2f} h, {want[2]} runs, "
          f"{want[3]:.0f} m, {want[4]} days)")
    expect(abs(got[0] - want[0]) < 0.5, f"{label}: distance {got[0]} m, the runs add up to {want[0]} m")
    expect(abs(got[1] - want[1]) < 1.0, f"{label}: moving time {got[1]} s, the runs add up to {want[1]} s")
    expect(got[2] == want[2], f"{label}: {got[2]} runs, ListRuns has {want[2]}")
    expect(abs(got[3] - want[3]) < 0.5, f"{label}: elevation {got[3]} m, the runs add up to {want[3]} m")
    expect(got[4] == want[4], f"{label}: {got[4]} active days, the runs were on {want[4]}")
    calendar = sum(day.distance_meters for day in recap.calendar)
    buckets = sum(bucket.distance_meters for bucket in recap.distance_by_bucket)
    weekdays = sum(bucket.distance_meters for bucket in recap.distance_by_weekday)
    hours = sum(bucket.runs for bucket in recap.runs_by_hour)
    expect(abs(calendar - got[0]) < 0.5, f"{label}: the calendar adds up to {calendar} m, not {got[0]}")
    expect(abs(buckets - got[0]) < 0.5, f"{label}: the buckets add up to {buckets} m, not {got[0]}")
    expect(abs(weekdays - got[0]) < 0.5, f"{label}: the weekdays add up to {weekdays} m, not {got[0]}")
    expect(hours == got[2], f"{label}: runs by hour add up to {hours}, not {got[2]}")
    expect(len(recap.distance_by_weekday) == 7 and len(recap.runs_by_hour) == 24,
           f"{label}: {len(recap.distance_by_weekday)} weekdays, {len(recap.runs_by_hour)} hours")
    expect(not recap.empty and len(recap.narrative) > 0, f"{label}: empty={recap.empty}, no narrative")


class Recaps:
    """RecapService over gRPC and REST, the two answers compared."""

    def __init__(self, mesh: Mesh):
        self.mesh = mesh
        method = mesh.pool.FindServiceByName(RECAP).methods_by_name["GetRecap"]
        self.recap_class = GetMessageClass(method.output_type.fields_by_name["recap"].message_type)

    @staticmethod
    def rest_path(period: str, date: str, crew_id: str | None = None, tail: str = "") -> str:
        base = f"/v1/crews/{crew_id}/recaps" if crew_id else "/v1/me/recaps"
        return f"{base}/{period}/{date}{tail}"

    def grpc(self, token: str, period: str, date: str, crew_id: str | None = None, **extra):
        request = {"period": period, "date": date, **extra}
        if crew_id:
            request["crew_id"] = crew_id
        return self.mesh.call(RECAP, "GetRecap", request, token).recap

    def both(self, label: str, token: str, period: str, date: str, crew_id: str | None = None):
        """The recap over REST and over gRPC, which must be the same message."""
        status, _, body = get(self.mesh, self.rest_path(period, date, crew_id), token)
        expect(status == 200, f"{label}: REST answered {status}: {body[:300]!r}")
        rest = json_format.ParseDict(json.loads(body)["recap"], self.recap_class())
        native = self.grpc(token, period, date, crew_id)
        if rest != native:
            raise Mismatch(f"{label}: REST and gRPC differ:\nREST {json_format.MessageToDict(rest)}\n"
                           f"gRPC {json_format.MessageToDict(native)}")
        print(f"  {label}: REST and gRPC agree ({native.period_key}, {native.from_date}..{native.to_date}, "
              f"{native.time_zone}, {len(native.calendar)} days)")
        return native


def png_size(data: bytes) -> tuple[int, int]:
    expect(data[:8] == PNG_MAGIC, f"not a PNG: starts {data[:8]!r}")
    expect(data[12:16] == b"IHDR", f"the PNG's first chunk is {data[12:16]!r}, not IHDR")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def check_cards(mesh: Mesh, recaps: Recaps, token: str, label: str, period: str, date: str,
                crew_id: str | None, name: str, save: pathlib.Path | None, english: bool = False) -> None:
    language = {"language": "en"} if english else {}
    stem = f"{label}{'-en' if english else ''}"
    for tail, query, content_type, size in (
            ("/card.png", {}, "image/png", (1080, 1920)),
            ("/card.png", {"size": "RECAP_CARD_SIZE_SQUARE"}, "image/png", (1080, 1080)),
            ("/card.svg", {}, "image/svg+xml", (1080, 1920))):
        path = recaps.rest_path(period, date, crew_id, tail)
        status, headers, body = get(mesh, path, token, {**query, **language})
        expect(status == 200, f"GET {path}: {status} {body[:300]!r}")
        expect(headers.get("content-type", "").split(";")[0] == content_type,
               f"GET {path}: content-type {headers.get('content-type')!r}, want {content_type}")
        expect(headers.get("content-length") == str(len(body)),
               f"GET {path}: content-length {headers.get('content-length')!r}, body {len(body)} bytes")
        disposition = headers.get("content-disposition", "")
        expect("recap-" in disposition and tail[-3:] in disposition,
               f"GET {path}: content-disposition {disposition!r}")
        square = "size" in query
        if content_type == "image/png":
            got = png_size(body)
            expect(got == size, f"GET {path}: the PNG is {got[0]}x{got[1]}, want {size[0]}x{size[1]}")
        else:
            root = ElementTree.fromstring(body)
            expect(root.tag == f"{SVG_NS}svg", f"GET {path}: the root element is {root.tag}")
            got = (int(root.get("width")), int(root.get("height")))
            expect(got == size, f"GET {path}: the SVG is {got}, want {size}")
            texts = "".join(root.itertext())
            expect(name in texts, f"GET {path}: the SVG has no {name!r} in its text")
        # The same image over native gRPC.
        request = {"period": period, "date": date,
                   "format": "RECAP_CARD_FORMAT_PNG" if content_type == "image/png" else "RECAP_CARD_FORMAT_SVG",
                   "size": "RECAP_CARD_SIZE_SQUARE" if square else "RECAP_CARD_SIZE_PORTRAIT", **language}
        if crew_id:
            request["crew_id"] = crew_id
        native = mesh.call(RECAP, "GetRecapCard", request, token)
        expect(native.card.content_type == content_type, f"GetRecapCard: content type {native.card.content_type}")
        expect(native.size_bytes == len(native.card.data), f"GetRecapCard: size_bytes {native.size_bytes}, "
               f"{len(native.card.data)} bytes")
        expect(native.card.data == body, f"GetRecapCard {request}: {len(native.card.data)} bytes differ from "
               f"REST's {len(body)}")
        name_on_disk = f"{stem}{'-square' if square else ''}.{tail[-3:]}"
        print(f"    {path}{'?size=SQUARE' if square else ''}: {content_type} {got[0]}x{got[1]}, {len(body)} B, "
              f"{disposition}; the same over gRPC")
        if save:
            (save / name_on_disk).write_bytes(body)


def refused(mesh: Mesh, request: dict, token: str) -> CallFailed:
    return mesh.refused(RECAP, "GetRecap", request, token)


def run_flow(mesh: Mesh, fixtures: pathlib.Path, save: pathlib.Path | None) -> None:
    a_id, a = mesh.sign_up("recap-a", NAME_A)
    b_id, b = mesh.sign_up("recap-b", "Runner B")
    for token in (a, b):
        mesh.call(USER, "UpdateProfile", {"time_zone": TIME_ZONE}, token)
    recaps = Recaps(mesh)
    # svc-run learns the profile (name, time zone) from svc-user's events.
    wait_for("A's profile in svc-run", lambda: (lambda r: r.time_zone == TIME_ZONE and r.display_name == NAME_A)(
        recaps.grpc(a, "month", "2025-02-10")))
    wait_for("B's profile in svc-run", lambda: recaps.grpc(b, "month", "2025-02-10").time_zone == TIME_ZONE)
    print(f"1. two runners signed up, {TIME_ZONE} known to svc-run")

    print("2. imports")
    runs = Runs(mesh.channel)
    marathon = runs.import_run(a, MARATHON_FIT, (fixtures / MARATHON_FIT).read_bytes()).run
    tcx = runs.import_run(a, TCX_GZ, (fixtures / TCX_GZ).read_bytes()).run
    query = urllib.parse.urlencode({"file_name": GPX, "title": "Park loop"})
    host, port = mesh.addr.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        connection.request("POST", f"/v1/runs:import?{query}", body=(fixtures / GPX).read_bytes(),
                           headers={"authorization": f"Bearer {a}", "content-type": "application/gpx+xml",
                                    "x-forwarded-for": mesh.forwarded_for})
        response = connection.getresponse()
        body = response.read()
        expect(response.status == 200, f"REST import answered {response.status}: {body[:300]!r}")
    finally:
        connection.close()
    for label, run in (("FIT", marathon), ("TCX.gz", tcx)):
        print(f"  {label}: {run.title!r} {run.distance_meters:.1f} m on {run.start_time.ToJsonString()}")
    create_runs(mesh, a, MANUAL_A)
    create_runs(mesh, b, MANUAL_B)
    print(f"  GPX over REST; {len(MANUAL_A)} runs of 2025 by hand for A, {len(MANUAL_B)} for B")
    marathon = mesh.call(RUN, "GetRun", {"run_id": marathon.run_id}, a).run

    print("3. A's month and year")
    month = recaps.both("month 2025-02", a, "month", "2025-02-10")
    expect((month.period, month.period_key, month.from_date, month.to_date) ==
           ("month", "2025-02", "2025-02-01", "2025-03-01"),
           f"the month is {month.period} {month.period_key} {month.from_date}..{month.to_date}")
    expect(month.owner_id == a_id and month.display_name == NAME_A and not month.in_progress,
           f"month: owner {month.owner_id}, name {month.display_name!r}, in_progress {month.in_progress}")
    expected = expected_totals(mesh, [a], month)
    expect(marathon.run_id in expected["ids"], "ListRuns does not put the marathon in February 2025")
    check_totals("month", month, expected)
    expect(month.longest_run.run_id == marathon.run_id, f"the month's longest run is {month.longest_run}")
    expect(abs(month.longest_run.distance_meters - marathon.distance_meters) < 0.01,
           f"the longest run's distance {month.longest_run.distance_meters}, GetRun {marathon.distance_meters}")
    efforts = {effort.distance: seconds(effort.elapsed_time) for effort in marathon.best_efforts}
    fastest = {effort.distance: effort for effort in month.fastest_efforts}
    full = max(efforts)  # the marathon effort
    expect(full in fastest and fastest[full].run_id == marathon.run_id
           and abs(seconds(fastest[full].elapsed_time) - efforts[full]) < 0.01,
           f"the month's fastest marathon effort {fastest.get(full)}, GetRun says {efforts[full]} s")
    print(f"  longest {month.longest_run.title!r} {month.longest_run.distance_meters:.1f} m; "
          f"{len(month.fastest_efforts)} fastest efforts, {len(month.personal_records)} PRs, "
          f"streak {month.longest_streak_days}, rank {month.rank.rank or '-'} of {month.rank.ranked_runners}")
    print(f"  narrative: {' '.join(month.narrative)}")

    year = recaps.both("year 2025", a, "year", "2025-07-01")
    expect((year.period_key, year.from_date, year.to_date) == ("2025", "2025-01-01", "2026-01-01"),
           f"the year is {year.period_key} {year.from_date}..{year.to_date}")
    check_totals("year", year, expect_year := expected_totals(mesh, [a], year))
    expect(expect_year["runs"] == len(MANUAL_A) + 1, f"2025 has {expect_year['runs']} runs, want "
           f"{len(MANUAL_A) + 1} (the marathon and the ones by hand)")
    expect(len(year.distance_by_bucket) == 12, f"the year has {len(year.distance_by_bucket)} month buckets")
    expect(len(year.calendar) == 365, f"the year's calendar has {len(year.calendar)} days")
    expect(year.longest_run.run_id == marathon.run_id, f"the year's longest run is {year.longest_run.title!r}, "
           "not the Osaka Marathon")
    print(f"  narrative: {' '.join(year.narrative)}")
    # The Fenix run of 2021-01-19 23:30 UTC is the 20th in Seoul.
    week = recaps.both("week of the Fenix run", a, "week", "2021-01-20")
    expect(week.totals.runs == 1 and week.longest_run.run_id == tcx.run_id,
           f"the week of 2021-01-20 has {week.totals.runs} runs, longest {week.longest_run.run_id}")
    day = [d for d in week.calendar if d.runs]
    expect([d.date for d in day] == ["2021-01-20"], f"the Fenix run is on {[d.date for d in day]} in Seoul")

    print("4. cards")
    check_cards(mesh, recaps, a, "month", "month", "2025-02-10", None, NAME_A, save)
    check_cards(mesh, recaps, a, "year", "year", "2025-07-01", None, NAME_A, save)
    check_cards(mesh, recaps, a, "month", "month", "2025-02-10", None, NAME_A, save, english=True)
    check_cards(mesh, recaps, a, "year", "year", "2025-07-01", None, NAME_A, save, english=True)

    print("5. a crew")
    crew_name = "Hangang Dawn Runners 한강 새벽"
    crew = mesh.call(CREW, "CreateCrew", {"name": crew_name, "region": "Seoul",
                                          "visibility": "CREW_VISIBILITY_PUBLIC"}, a).crew.crew_id
    mesh.call(CREW, "JoinCrew", {"crew_id": crew}, b)
    other = mesh.call(CREW, "CreateCrew", {"name": "B's own crew", "region": "Busan",
                                           "visibility": "CREW_VISIBILITY_PUBLIC"}, b).crew.crew_id

    def crew_recap(token: str, crew_id: str):
        """The crew's month, or None while svc-run's crew projection does not have the caller in it."""
        try:
            return recaps.grpc(token, "month", "2025-02-10", crew_id)
        except CallFailed as failed:
            if failed.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    wait_for("the crew in svc-run with both members", lambda: (lambda recap: recap is not None and {
        m.user_id for m in recap.most_active_members} == {a_id, b_id})(crew_recap(a, crew)))
    crew_month = recaps.both("crew month 2025-02", a, "month", "2025-02-10", crew)
    expect(crew_month.crew_id == crew and crew_month.display_name == crew_name and not crew_month.owner_id,
           f"crew recap: crew {crew_month.crew_id}, name {crew_month.display_name!r}, owner {crew_month.owner_id!r}")
    check_totals("crew month", crew_month, expected_totals(mesh, [a, b], crew_month))
    expect(not crew_month.group_runs_available, "group_runs_available is true")
    members = [(m.display_name, round(m.distance_meters), m.runs) for m in crew_month.most_active_members]
    print(f"  most active: {members}")
    expect(crew_month.most_active_members[0].user_id == a_id, "A ran the most in February but is not first")
    from_b = recaps.grpc(b, "month", "2025-02-10", crew)
    expect(from_b.totals == crew_month.totals, "B sees other totals for the same crew month")
    check_cards(mesh, recaps, a, "crew-month", "month", "2025-02-10", crew, "Hangang Dawn Runners", save)

    wait_for("B's own crew in svc-run", lambda: crew_recap(b, other))
    for label, crew_id in (("a crew A is not in", other), ("an unknown crew", "00000000-0000-0000-0000-000000000000")):
        failed = refused(mesh, {"period": "month", "date": "2025-02-10", "crew_id": crew_id}, a)
        expect(failed.code == grpc.StatusCode.NOT_FOUND and failed.reason == "CREW_NOT_FOUND",
               f"{label}: {failed.describe()}")
        status, _, body = get(mesh, recaps.rest_path("month", "2025-02-10", crew_id), a)
        expect(status == 404, f"{label} over REST: {status} {body[:200]!r}")
        status, _, body = get(mesh, recaps.rest_path("month", "2025-02-10", crew_id, "/card.png"), a)
        expect(status == 404, f"{label}'s card over REST: {status} {body[:200]!r}")
        print(f"  {label}: {failed.describe()}; 404 over REST")

    print("6. bad input and edge cases")
    for request, fields in (({"period": "month", "date": "2025-02-30"}, ["date"]),
                            ({"period": "month", "date": "Feb 2025"}, ["date"]),
                            ({"period": "fortnight", "date": "2025-02-10"}, ["period"]),
                            ({"period": "decade", "date": "yesterday"}, ["period", "date"])):
        failed = refused(mesh, request, a)
        expect(failed.code == grpc.StatusCode.INVALID_ARGUMENT and sorted(failed.violated_fields) == sorted(fields),
               f"{request}: {failed.describe()}, want INVALID_ARGUMENT naming {fields}")
        status, _, body = get(mesh, recaps.rest_path(request["period"], urllib.parse.quote(request["date"])), a)
        answer = json.loads(body) if body else {}
        named = {violation.get("field") for detail in answer.get("details", [])
                 for violation in detail.get("fieldViolations", [])}
        expect(status == 400 and named == set(fields), f"REST {request}: {status} {body[:300]!r}")
        print(f"  {request}: {failed.describe()}; REST 400 naming {sorted(named)}")
    failed = mesh.refused(RECAP, "GetRecapCard", {"period": "month", "date": "2025-02-10",
                                                  "format": "RECAP_CARD_FORMAT_SVG", "file_name": "card.png"}, a)
    expect(failed.code == grpc.StatusCode.INVALID_ARGUMENT and "format" in failed.violated_fields,
           f"a format that disagrees with the file name: {failed.describe()}")
    print(f"  SVG format with card.png: {failed.describe()}")

    future = (datetime.datetime.now(ZoneInfo(TIME_ZONE)).date().replace(day=1) + datetime.timedelta(days=45))
    for period, date in (("month", future.isoformat()), ("year", f"{future.year + 1}-03-01")):
        failed = refused(mesh, {"period": period, "date": date}, a)
        expect(failed.code == grpc.StatusCode.FAILED_PRECONDITION and failed.reason == "PERIOD_IN_FUTURE",
               f"{period} {date}: {failed.describe()}")
        status, _, body = get(mesh, recaps.rest_path(period, date), a)
        expect(status == 400 and b"PERIOD_IN_FUTURE" in body, f"REST {period} {date}: {status} {body[:300]!r}")
        print(f"  {period} {date}: {failed.describe()}; REST {status}")

    empty = recaps.both("an empty month (2024-08)", a, "month", "2024-08-15")
    expect(empty.empty and empty.totals.runs == 0 and empty.totals.distance_meters == 0
           and empty.totals.active_days == 0, f"August 2024: empty={empty.empty}, totals {empty.totals}")
    expect(len(empty.narrative) > 0 and len(empty.calendar) == 31,
           f"August 2024: narrative {list(empty.narrative)}, {len(empty.calendar)} days")
    print(f"  empty: {' '.join(empty.narrative)}")
    check_cards(mesh, recaps, a, "empty-month", "month", "2024-08-15", None, NAME_A, save)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", required=True, help="the edge's address, host:port")
    parser.add_argument("--fixtures", required=True, type=pathlib.Path, help="svc-run/tests/fixtures")
    parser.add_argument("--save-cards", type=pathlib.Path, help="a directory to write the fetched cards to")
    args = parser.parse_args()
    if args.save_cards:
        args.save_cards.mkdir(parents=True, exist_ok=True)
    try:
        with grpc.insecure_channel(args.addr) as channel:
            run_flow(Mesh(channel, args.addr), args.fixtures, args.save_cards)
    except (Mismatch, CallFailed) as failure:
        print(f"FAIL: {failure}")
        return 1
    print("recaps: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
