#!/usr/bin/env python3
"""Watches a race through the edge's one port with each protocol a client may speak (issue 11):
native gRPC (grpcio, the schema from the edge's reflection), gRPC-web (binary, over HTTP/1.1) and
Connect (`application/connect+proto` server streaming, over HTTP/1.1). Each must deliver the
race's first `WatchRaceResponse`: the race id and the same availability GetRace reports.

    python check_watch.py --addr 127.0.0.1:8080 --state /tmp/race.json

--state is the file check_race_flow.py's phase `register` wrote (it holds the race id).
Exits 0 when every protocol streams the race, 1 otherwise.
"""

import argparse
import http.client
import json
import pathlib
import struct
import sys

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from reflected import RPC_TIMEOUT_SECONDS

RACE_SERVICE = "runmesh.race.v1.RaceService"
WATCH_PATH = f"/{RACE_SERVICE}/WatchRace"
GET_PATH = f"/{RACE_SERVICE}/GetRace"


def frame(flags: int, payload: bytes) -> bytes:
    """One length-prefixed message, as gRPC-web and Connect streaming both frame them."""
    return struct.pack(">BI", flags, len(payload)) + payload


def first_frame(response: http.client.HTTPResponse) -> tuple[int, bytes]:
    header = response.read(5)
    if len(header) < 5:
        raise ValueError(f"the stream ended after {len(header)} bytes")
    flags, length = struct.unpack(">BI", header)
    return flags, response.read(length)


def over_http1(addr: str, content_type: str, body: bytes, extra: dict[str, str]) -> tuple[int, bytes, dict]:
    """POSTs a streaming call and reads its first frame; (HTTP status, payload, headers)."""
    host, port = addr.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=RPC_TIMEOUT_SECONDS)
    try:
        connection.request("POST", WATCH_PATH, body=body,
                           headers={"content-type": content_type, **extra})
        response = connection.getresponse()
        headers = {key.lower(): value for key, value in response.getheaders()}
        if response.status != 200:
            return response.status, response.read(), headers
        flags, payload = first_frame(response)
        if flags & 0x80 or flags & 0x02:
            raise ValueError(f"the first frame is the end of the stream: {payload!r}")
        return response.status, payload, headers
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", required=True, help="the edge's address, host:port")
    parser.add_argument("--state", required=True, type=pathlib.Path, help="check_race_flow.py's state file")
    args = parser.parse_args()
    race_id = json.loads(args.state.read_text())["race_id"]

    failures = []
    with grpc.insecure_channel(args.addr) as channel:
        pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName(RACE_SERVICE)
        watch = service.methods_by_name["WatchRace"]
        get = service.methods_by_name["GetRace"]
        request_class = GetMessageClass(watch.input_type)
        response_class = GetMessageClass(watch.output_type)
        get_request_class = GetMessageClass(get.input_type)
        get_response_class = GetMessageClass(get.output_type)
        request = request_class(race_id=race_id)

        race = channel.unary_unary(GET_PATH, request_serializer=get_request_class.SerializeToString,
                                   response_deserializer=get_response_class.FromString)(
            get_request_class(race_id=race_id), timeout=RPC_TIMEOUT_SECONDS)
        want = [json_format.MessageToDict(item, preserving_proto_field_name=True) for item in race.availability]
        print(f"race {race_id}: availability {want}")

        def check(protocol: str, message) -> None:
            got = [json_format.MessageToDict(item, preserving_proto_field_name=True)
                   for item in message.availability]
            if message.race_id != race_id:
                failures.append(f"{protocol}: the first update is for race {message.race_id!r}")
            elif got != want:
                failures.append(f"{protocol}: availability {got}, want {want}")
            else:
                print(f"  {protocol}: first update OK ({len(got)} categories)")

        stream = channel.unary_stream(WATCH_PATH, request_serializer=request_class.SerializeToString,
                                      response_deserializer=response_class.FromString)(
            request, timeout=RPC_TIMEOUT_SECONDS)
        try:
            check("native gRPC", next(stream))
        except grpc.RpcError as error:
            failures.append(f"native gRPC: {error.code().name} {error.details()}")
        finally:
            stream.cancel()

    encoded = request.SerializeToString()
    for protocol, content_type, extra in (
        ("gRPC-web", "application/grpc-web+proto", {"x-grpc-web": "1"}),
        ("Connect", "application/connect+proto", {"connect-protocol-version": "1"}),
    ):
        try:
            status, payload, headers = over_http1(args.addr, content_type, frame(0, encoded), extra)
        except (OSError, ValueError) as error:
            failures.append(f"{protocol}: {error}")
            continue
        if status != 200:
            failures.append(f"{protocol}: HTTP {status} {headers.get('grpc-message', '')} {payload[:200]!r}")
            continue
        check(protocol, response_class.FromString(payload))

    if failures:
        print("watch check FAILED:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print("watch check OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
