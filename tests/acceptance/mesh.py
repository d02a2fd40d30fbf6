"""A foreign client of the whole mesh for the acceptance checks: any public service and method,
with message classes built from the edge's server reflection alone (no generated stubs), unary
and server-streaming calls over native gRPC, and REST/JSON over HTTP/1.1 — through the one port."""

import http.client
import ipaddress
import json
import secrets
import urllib.parse

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from reflected import CallFailed, RPC_TIMEOUT_SECONDS, expect

PASSWORD = "Tempo run at dawn, 42!"


class Mesh:
    """Every public service behind one address."""

    def __init__(self, channel: grpc.Channel, addr: str):
        self.channel = channel
        self.addr = addr
        self.pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        # This run's own client address (benchmarking range), so limits kept per address in a
        # shared Redis never carry over between runs.
        self.forwarded_for = str(ipaddress.ip_network("198.18.0.0/15")[secrets.randbelow(2 ** 17 - 2) + 1])

    def _method(self, service: str, method: str):
        descriptor = self.pool.FindServiceByName(service).methods_by_name.get(method)
        expect(descriptor is not None, f"{service} as reflected has no method {method}")
        return descriptor

    def _metadata(self, token: str | None):
        metadata = [("x-forwarded-for", self.forwarded_for)]
        if token is not None:
            metadata.append(("authorization", f"Bearer {token}"))
        return metadata

    def call(self, service: str, method: str, request: dict, token: str | None = None) -> Message:
        """A unary call with `request` given as proto JSON (field names as in the .proto)."""
        descriptor = self._method(service, method)
        request_class = GetMessageClass(descriptor.input_type)
        response_class = GetMessageClass(descriptor.output_type)
        callable_ = self.channel.unary_unary(
            f"/{service}/{method}", request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString)
        try:
            return callable_(json_format.ParseDict(request, request_class()), metadata=self._metadata(token),
                             timeout=RPC_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            raise CallFailed(method, error) from None

    def refused(self, service: str, method: str, request: dict, token: str | None = None) -> CallFailed:
        """The error a call must end with; a Mismatch if it succeeds."""
        try:
            answer = self.call(service, method, request, token)
        except CallFailed as failure:
            return failure
        expect(False, f"{method} {request} succeeded, want an error: {answer}")
        raise AssertionError("unreachable")

    def stream(self, service: str, method: str, request: dict, token: str | None = None,
               timeout: float = 60):
        """A server-streaming call: an iterator of responses (cancel it with `.cancel()`)."""
        descriptor = self._method(service, method)
        request_class = GetMessageClass(descriptor.input_type)
        response_class = GetMessageClass(descriptor.output_type)
        callable_ = self.channel.unary_stream(
            f"/{service}/{method}", request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString)
        return callable_(json_format.ParseDict(request, request_class()), metadata=self._metadata(token),
                         timeout=timeout)

    def rest(self, method: str, path: str, token: str | None = None, body: dict | None = None,
             query: dict | None = None) -> tuple[int, dict]:
        """REST/JSON through the edge: (HTTP status, the JSON answer or {})."""
        host, port = self.addr.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=RPC_TIMEOUT_SECONDS)
        headers = {"x-forwarded-for": self.forwarded_for}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        if query:
            path += "?" + urllib.parse.urlencode(query)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            try:
                answer = json.loads(raw) if raw else {}
            except ValueError:
                answer = {"raw": raw[:300].decode(errors="replace")}
            return response.status, answer
        finally:
            connection.close()

    def sign_up(self, label: str, display_name: str | None = None) -> tuple[str, str]:
        """A new runner: (user id, access token)."""
        email = f"{label}-{secrets.token_hex(4)}@example.com"
        answer = self.call("runmesh.user.v1.UserService", "SignUp",
                           {"email": email, "password": PASSWORD, "display_name": display_name or label})
        return answer.user.id, answer.tokens.access_token
