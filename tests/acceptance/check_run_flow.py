#!/usr/bin/env python3
"""Walks svc-run's run records through the edge's one port as a foreign client would (issue 12):
native gRPC with the schema from the edge's reflection, and REST/JSON with raw file bodies.

1. Two runners sign up.
2. Runner A imports a real watch FIT (gRPC client stream, in chunks), a real GPX (REST, the raw
   file as the body) and a real TCX.gz (gRPC): each answers its distance, moving time, km splits
   and (for the runs) best efforts; the Osaka Marathon FIT matches its device's distance.
3. The originals come back byte for byte (gRPC stream and REST with Content-Type and
   Content-Disposition).
4. Runner A's personal records list the marathon's efforts.
5. Runner B cannot see A's private run: NOT_FOUND over gRPC, 404 over REST.
6. A truncated FIT is INVALID_ARGUMENT CORRUPT_FILE and leaves nothing behind; the same FIT again
   is ALREADY_EXISTS DUPLICATE_RUN.
7. Runner C imports a Strava-style bulk export built from the same real files (activities.csv
   with Strava's repeated headers and dates, a manual activity, a broken file): uploaded over REST
   as the raw body, watched over gRPC until DONE (4 imported, 1 failed CORRUPT_FILE), its state
   read over REST, and the runs are there with the export's titles.

    python check_run_flow.py --addr 127.0.0.1:8080 --fixtures svc-run/tests/fixtures
"""

import argparse
import gzip
import http.client
import io
import ipaddress
import json
import pathlib
import secrets
import sys
import urllib.parse
import zipfile

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from reflected import CallFailed, Mismatch, ReflectedService, RPC_TIMEOUT_SECONDS, expect

RUN_SERVICE = "runmesh.run.v1.RunService"
USER_SERVICE = "runmesh.user.v1.UserService"
CHUNK = 256 * 1024
MARATHON_FIT = "18360138543_ACTIVITY_Osaka_Marathon_2025.fit"
GPX = "garmin-activity.gpx"
TCX_GZ = "20210119_run_garmin_fenix6.tcx.gz"


class Runs:
    """RunService through reflection, with the client-streaming and server-streaming calls."""

    def __init__(self, channel: grpc.Channel):
        pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        self.service = pool.FindServiceByName(RUN_SERVICE)
        self.channel = channel

    def classes(self, method: str):
        descriptor = self.service.methods_by_name[method]
        return GetMessageClass(descriptor.input_type), GetMessageClass(descriptor.output_type)

    def path(self, method: str) -> str:
        return f"/{RUN_SERVICE}/{method}"

    def import_run(self, token: str, file_name: str, data: bytes):
        request_class, response_class = self.classes("ImportRun")

        def messages():
            yield request_class(file_name=file_name, file={"content_type": "application/octet-stream"})
            for start in range(0, len(data), CHUNK):
                yield request_class(file={"data": data[start:start + CHUNK]})

        call = self.channel.stream_unary(self.path("ImportRun"), request_serializer=request_class.SerializeToString,
                                         response_deserializer=response_class.FromString)
        try:
            return call(messages(), metadata=[("authorization", f"Bearer {token}")], timeout=120)
        except grpc.RpcError as error:
            raise CallFailed("ImportRun", error) from None

    def unary(self, method: str, token: str, request: dict):
        request_class, response_class = self.classes(method)
        call = self.channel.unary_unary(self.path(method), request_serializer=request_class.SerializeToString,
                                        response_deserializer=response_class.FromString)
        try:
            return call(json_format.ParseDict(request, request_class()),
                        metadata=[("authorization", f"Bearer {token}")], timeout=RPC_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            raise CallFailed(method, error) from None

    def watch_import(self, token: str, import_id: str):
        """Every progress update of an archive import until it ends."""
        request_class, response_class = self.classes("WatchArchiveImport")
        call = self.channel.unary_stream(self.path("WatchArchiveImport"),
                                         request_serializer=request_class.SerializeToString,
                                         response_deserializer=response_class.FromString)
        return call(request_class(import_id=import_id), metadata=[("authorization", f"Bearer {token}")],
                    timeout=300)

    def download(self, token: str, run_id: str) -> tuple[str, bytes]:
        request_class, response_class = self.classes("DownloadOriginal")
        call = self.channel.unary_stream(self.path("DownloadOriginal"),
                                         request_serializer=request_class.SerializeToString,
                                         response_deserializer=response_class.FromString)
        name, data = "", b""
        for message in call(request_class(run_id=run_id), metadata=[("authorization", f"Bearer {token}")],
                            timeout=RPC_TIMEOUT_SECONDS):
            name = name or message.file_name
            data += message.body.data
        return name, data


def rest(addr: str, method: str, path: str, token: str, body: bytes | None = None,
         content_type: str | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = addr.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"authorization": f"Bearer {token}"}
    if content_type:
        headers["content-type"] = content_type
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


STRAVA_HEADER = ("Activity ID,Activity Date,Activity Name,Activity Type,Activity Description,Elapsed Time,"
                 "Distance,Max Heart Rate,Relative Effort,Commute,Activity Private Note,Activity Gear,Filename,"
                 "Athlete Weight,Bike Weight,Elapsed Time,Moving Time,Distance,Max Speed")


def strava_export(fixtures: pathlib.Path) -> bytes:
    """A bulk export as Strava makes it: activities.csv (header names repeated, Strava's dates)
    and activities/ with .fit.gz, .tcx.gz and .gpx files; one manual activity, one broken file."""
    marathon = (fixtures / MARATHON_FIT).read_bytes()
    gpx = (fixtures / GPX).read_bytes()
    files = {
        "activities/100.fit.gz": gzip.compress(marathon),
        "activities/200.tcx.gz": (fixtures / TCX_GZ).read_bytes(),
        "activities/300.gpx": gpx,
        "activities/400.gpx": gpx[: len(gpx) // 3],
    }
    rows = [
        '100,"Feb 23, 2025, 12:15:00 AM",Osaka Marathon,Run,Race day,8834,42.43,,,false,,Vaporfly,'
        'activities/100.fit.gz,,,8834.0,8834.0,42429.4,5.0',
        '200,"Jan 19, 2021, 7:00:00 PM",Fenix evening,Run,,1231,5.12,,,false,,,activities/200.tcx.gz,,,'
        '1231.0,1230.0,5124.8,4.0',
        '300,"Jun 1, 2024, 6:00:00 AM",Park loop,Run,,5498,12.82,,,false,,,activities/300.gpx,,,'
        '5498.0,5498.0,12821.0,4.0',
        '400,"Mar 4, 2024, 7:30:00 AM",Broken file,Run,,1800,5.0,,,false,,,activities/400.gpx,,,'
        '1800.0,1800.0,5000.0,4.0',
        '500,"Mar 3, 2024, 7:30:00 AM",Track session,Run,Intervals by hand,1800,5.00,,,false,,,,,,'
        '1800.0,1750.0,5000.0,5.0',
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("activities.csv", STRAVA_HEADER + "\n" + "\n".join(rows) + "\n")
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def check_analysis(label: str, run, sport_is_run: bool = True) -> None:
    print(f"  {label}: {run.distance_meters:.1f} m, elapsed {run.elapsed_time.seconds} s, "
          f"moving {run.moving_time.seconds} s, {len(run.splits_km)} km splits, "
          f"{len(run.best_efforts)} best efforts")
    expect(run.distance_meters > 0, f"{label}: no distance")
    expect(run.moving_time.seconds > 0, f"{label}: no moving time")
    expect(len(run.splits_km) > 0, f"{label}: no km splits")
    if sport_is_run:
        expect(len(run.best_efforts) > 0, f"{label}: no best efforts")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", required=True, help="the edge's address, host:port")
    parser.add_argument("--fixtures", required=True, type=pathlib.Path, help="svc-run/tests/fixtures")
    args = parser.parse_args()

    try:
        with grpc.insecure_channel(args.addr) as channel:
            # This run's own client address (benchmarking range), so limits kept per address in a
            # shared Redis never carry over between runs.
            client = str(ipaddress.ip_network("198.18.0.0/15")[secrets.randbelow(2 ** 17 - 2) + 1])
            users = ReflectedService(channel, USER_SERVICE, ("SignUp",), client)
            runs = Runs(channel)
            tokens = []
            for label in ("A", "B"):
                email = f"run-flow-{label.lower()}-{secrets.token_hex(4)}@example.com"
                answer = users.call("SignUp", {"email": email, "password": "Tempo run at dawn, 42!",
                                               "display_name": f"Runner {label}"})
                tokens.append(answer.tokens.access_token)
            a, b = tokens
            print("1. two runners signed up")

            print("2. imports")
            marathon = (args.fixtures / MARATHON_FIT).read_bytes()
            imported = runs.import_run(a, MARATHON_FIT, marathon).run
            check_analysis("FIT over gRPC", imported)
            expect(abs(imported.distance_meters - 42429.43) < 1.0,
                   f"the marathon's distance is {imported.distance_meters}, the device said 42429.43 m")
            tcx = (args.fixtures / TCX_GZ).read_bytes()
            tcx_run = runs.import_run(a, TCX_GZ, tcx).run
            check_analysis("TCX.gz over gRPC", tcx_run)

            gpx = (args.fixtures / GPX).read_bytes()
            query = urllib.parse.urlencode({"file_name": GPX, "title": "Park loop"})
            status, _, body = rest(args.addr, "POST", f"/v1/runs:import?{query}", a, gpx, "application/gpx+xml")
            expect(status == 200, f"REST import answered {status}: {body[:300]!r}")
            gpx_json = json.loads(body)["run"]
            # Canonical proto3 JSON: lowerCamelCase names.
            print(f"  GPX over REST: {gpx_json['distanceMeters']:.1f} m, title {gpx_json.get('title')!r}, "
                  f"{len(gpx_json.get('splitsKm', []))} km splits")
            expect(gpx_json.get("title") == "Park loop", "the REST import's title did not arrive")
            expect(len(gpx_json.get("splitsKm", [])) > 0, "GPX over REST: no km splits")

            print("3. originals")
            name, data = runs.download(a, imported.run_id)
            expect(data == marathon, f"gRPC download: {len(data)} bytes differ from the {len(marathon)} uploaded")
            expect(name == MARATHON_FIT, f"gRPC download named {name!r}")
            status, headers, data = rest(args.addr, "GET", f"/v1/runs/{gpx_json['runId']}/original", a)
            expect(status == 200 and data == gpx, f"REST download: HTTP {status}, {len(data)} bytes")
            expect(GPX in headers.get("content-disposition", ""),
                   f"REST download's content-disposition: {headers.get('content-disposition')!r}")
            print(f"  byte for byte over gRPC ({len(marathon)} B) and REST ({len(gpx)} B, "
                  f"{headers.get('content-type')}, {headers.get('content-disposition')})")

            print("4. personal records")
            records = runs.unary("ListPersonalRecords", a, {}).records
            expect(len(records) >= 5, f"only {len(records)} personal records")
            for record in records:
                print(f"  {record.distance}: {record.elapsed_time.seconds} s in {record.run_id}")

            print("5. privacy")
            try:
                runs.unary("GetRun", b, {"run_id": imported.run_id})
                raise Mismatch("runner B can read runner A's private run")
            except CallFailed as failed:
                expect(failed.code == grpc.StatusCode.NOT_FOUND, f"GetRun by B: {failed.describe()}")
            status, _, _ = rest(args.addr, "GET", f"/v1/runs/{imported.run_id}", b)
            expect(status == 404, f"REST GetRun by B answered {status}")
            print("  NOT_FOUND over gRPC, 404 over REST")

            print("6. bad files")
            before = len(runs.unary("ListRuns", a, {"page_size": 100}).runs)
            try:
                runs.import_run(a, "truncated.fit", marathon[: len(marathon) // 3])
                raise Mismatch("a truncated FIT was accepted")
            except CallFailed as failed:
                print(f"  truncated FIT: {failed.describe()}")
                expect(failed.code == grpc.StatusCode.INVALID_ARGUMENT and failed.reason == "CORRUPT_FILE",
                       "want INVALID_ARGUMENT CORRUPT_FILE")
            try:
                runs.import_run(a, "again.fit", marathon)
                raise Mismatch("the same FIT was imported twice")
            except CallFailed as failed:
                print(f"  the same FIT again: {failed.describe()}")
                expect(failed.code == grpc.StatusCode.ALREADY_EXISTS and failed.reason == "DUPLICATE_RUN",
                       "want ALREADY_EXISTS DUPLICATE_RUN")
            after = len(runs.unary("ListRuns", a, {"page_size": 100}).runs)
            expect(after == before, f"runs went from {before} to {after} after refused uploads")

            print("7. a Strava bulk export")
            email = f"run-flow-c-{secrets.token_hex(4)}@example.com"
            c = users.call("SignUp", {"email": email, "password": "Tempo run at dawn, 42!",
                                      "display_name": "Runner C"}).tokens.access_token
            status, _, body = rest(args.addr, "POST", "/v1/imports", c, strava_export(args.fixtures),
                                   "application/zip")
            expect(status == 200, f"REST StartArchiveImport answered {status}: {body[:300]!r}")
            import_id = json.loads(body)["archiveImport"]["importId"]
            last = None
            for update in runs.watch_import(c, import_id):
                last = update.archive_import
                print(f"  progress: seen {last.activities_seen}, imported {last.imported}, "
                      f"skipped {last.skipped}, failed {last.failed}, state {last.State.Name(last.state)}")
                if last.state in (last.STATE_DONE, last.STATE_FAILED):
                    break
            expect(last is not None and last.state == last.STATE_DONE, f"the import ended as {last}")
            expect((last.imported, last.skipped, last.failed) == (4, 0, 1),
                   f"imported/skipped/failed {last.imported}/{last.skipped}/{last.failed}, want 4/0/1")
            reasons = [problem.reason for problem in last.problems]
            expect(reasons == ["CORRUPT_FILE"], f"problems {reasons}, want [CORRUPT_FILE]")
            status, _, body = rest(args.addr, "GET", f"/v1/imports/{import_id}", c)
            state = json.loads(body).get("archiveImport", {}) if status == 200 else {}
            expect(state.get("state") == "STATE_DONE", f"REST GetArchiveImport: {status} {body[:200]!r}")
            titles = sorted(run.title for run in runs.unary("ListRuns", c, {"page_size": 100}).runs)
            print(f"  runs: {titles}")
            expect(titles == ["Fenix evening", "Osaka Marathon", "Park loop", "Track session"],
                   f"imported runs' titles {titles}")
    except (Mismatch, CallFailed) as failure:
        print(f"FAIL: {failure}")
        return 1
    print("\nrun flow check OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
