#!/usr/bin/env python3
"""Checks a running runmesh gRPC server the way a foreign client sees it.

Uses only server reflection and the standard health service, never stubs generated from
runmesh's contracts:

- reflection v1 and v1alpha both answer and list the same services, among them
  grpc.health.v1.Health and every service expected (--expect, --expect-from-protos);
- every listed application service's descriptor resolves through reflection;
- health answers SERVING for the whole server ("") and for each listed application service.

Exits 0 when all of that holds, 1 otherwise, and prints what it saw either way.

    python check_up.py --addr 127.0.0.1:50051 --expect-from-protos proto/runmesh
"""

import argparse
import pathlib
import re
import sys
import types

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

REFLECTION_VERSIONS = ("v1", "v1alpha")
HEALTH_SERVICE = "grpc.health.v1.Health"
# Services of the gRPC machinery itself: listed by reflection but not application services,
# so health need not report them.
INFRASTRUCTURE_PREFIXES = ("grpc.health.", "grpc.reflection.")
RPC_TIMEOUT_SECONDS = 10


class ReflectionDatabase(ProtoReflectionDescriptorDatabase):
    """grpcio-reflection's client-side descriptor database, speaking either reflection version.

    The library only speaks v1alpha. The v1 and v1alpha messages are wire-identical, so the
    same message classes serve both; only the method path differs.
    """

    def __init__(self, channel: grpc.Channel, version: str):
        super().__init__(channel)
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        # The base class sends every request through `self._stub.ServerReflectionInfo`.
        self._stub = types.SimpleNamespace(
            ServerReflectionInfo=lambda requests: call(requests, timeout=RPC_TIMEOUT_SECONDS)
        )


def services_declared_in(proto_root: pathlib.Path) -> set[str]:
    """Fully qualified names of the services declared in the .proto files under proto_root."""
    package_re = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.MULTILINE)
    service_re = re.compile(r"^\s*service\s+(\w+)\s*\{", re.MULTILINE)
    declared = set()
    for path in sorted(proto_root.rglob("*.proto")):
        text = path.read_text(encoding="utf-8")
        package = package_re.search(text)
        prefix = f"{package.group(1)}." if package else ""
        declared.update(prefix + name for name in service_re.findall(text))
    return declared


def is_application_service(name: str) -> bool:
    return not name.startswith(INFRASTRUCTURE_PREFIXES)


def is_internal(name: str) -> bool:
    return name.endswith("InternalService")


def status_text(code: grpc.StatusCode) -> str:
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class Check:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"  FAIL {message}")


def check_reflection(channel: grpc.Channel, version: str, check: Check) -> set[str] | None:
    """Lists and resolves services through one reflection version; None if it did not answer."""
    print(f"reflection {version}:")
    database = ReflectionDatabase(channel, version)
    try:
        services = sorted(database.get_services())
    except grpc.RpcError as error:
        check.fail(f"reflection {version} did not answer: {status_text(error.code())} {error.details()}")
        return None
    pool = DescriptorPool(database)
    for name in services:
        try:
            service = pool.FindServiceByName(name)
        except (KeyError, TypeError, AssertionError, grpc.RpcError) as error:
            if is_application_service(name) or name == HEALTH_SERVICE:
                check.fail(f"reflection {version}: descriptor of {name} does not resolve ({error!r})")
            else:
                print(f"  {name} (descriptor not served)")
            continue
        methods = ", ".join(method.name for method in service.methods)
        print(f"  {name} [{service.file.name}]: {methods}")
    return set(services)


def check_health(channel: grpc.Channel, services: set[str], check: Check) -> None:
    print("health:")
    stub = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    for name in ["", *sorted(services)]:
        label = name or '"" (whole server)'
        required = name == "" or is_application_service(name)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=RPC_TIMEOUT_SECONDS)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            ok = response.status == serving
        except grpc.RpcError as error:
            status = status_text(error.code())
            ok = False
        if ok or not required:
            print(f"  {label}: {status}")
        else:
            check.fail(f"health of {label} is {status}, want SERVING")


def check_internal_hidden(channel: grpc.Channel, declared: set[str], check: Check) -> None:
    """Every internal service is unknown here: its health NOT_FOUND, any call UNIMPLEMENTED."""
    print("internal services:")
    stub = health_pb2_grpc.HealthStub(channel)
    for name in sorted(filter(is_internal, declared)):
        try:
            stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=RPC_TIMEOUT_SECONDS)
            check.fail(f"health of the internal service {name} answered")
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                check.fail(f"health of the internal service {name}: {status_text(error.code())}, want NOT_FOUND")
        call = channel.unary_unary(f"/{name}/Anything", request_serializer=None, response_deserializer=None)
        try:
            call(b"", timeout=RPC_TIMEOUT_SECONDS)
            check.fail(f"a call to the internal service {name} answered")
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                print(f"  {name}: UNIMPLEMENTED, as if it did not exist")
            else:
                check.fail(f"a call to the internal service {name}: {status_text(error.code())}, want UNIMPLEMENTED")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", required=True, help="gRPC address, host:port")
    parser.add_argument("--expect", action="append", default=[], metavar="SERVICE",
                        help="a fully qualified service that must be listed (repeatable)")
    parser.add_argument("--expect-from-protos", type=pathlib.Path, metavar="DIR",
                        help="expect every service declared in the .proto files under DIR")
    parser.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                        help="how long to wait for the server to accept connections")
    parser.add_argument("--public-only", action="store_true",
                        help="the server is the edge: expect no *InternalService, listed or healthy")
    args = parser.parse_args()

    expected = {HEALTH_SERVICE, *args.expect}
    if args.expect_from_protos:
        if not args.expect_from_protos.is_dir():
            parser.error(f"--expect-from-protos: {args.expect_from_protos} is not a directory")
        expected |= services_declared_in(args.expect_from_protos)
    if args.public_only:
        expected = {name for name in expected if not is_internal(name)}

    check = Check()
    with grpc.insecure_channel(args.addr) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=args.wait)
        except grpc.FutureTimeoutError:
            print(f"FAIL: no gRPC server answered on {args.addr} within {args.wait:g}s")
            return 1
        print(f"server {args.addr}")

        listed = {version: check_reflection(channel, version, check) for version in REFLECTION_VERSIONS}
        answered = {version: services for version, services in listed.items() if services is not None}
        for version, services in answered.items():
            for name in sorted(expected - services):
                check.fail(f"reflection {version} does not list {name}")
            if args.public_only:
                for name in sorted(filter(is_internal, services)):
                    check.fail(f"reflection {version} lists the internal service {name}")
        if len(answered) == 2 and answered["v1"] != answered["v1alpha"]:
            check.fail(f"v1 and v1alpha list different services: "
                       f"{sorted(answered['v1'] ^ answered['v1alpha'])}")

        check_health(channel, set().union(expected, *answered.values()), check)
        if args.public_only:
            check_internal_hidden(channel, services_declared_in(args.expect_from_protos)
                                  if args.expect_from_protos else set(), check)

    if check.failures:
        print(f"acceptance check FAILED ({len(check.failures)} problems):")
        for failure in check.failures:
            print(f"  - {failure}")
        return 1
    print("acceptance check OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
