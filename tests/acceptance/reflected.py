"""What the acceptance checks share: a gRPC client that learns a service's schema from server
reflection alone (no stubs generated from runmesh's contracts, no .proto files) and reads
errors through the rich error model (`grpc-status-details-bin`)."""

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2, status_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Password hashing is deliberately slow, and a debug build is slower still.
RPC_TIMEOUT_SECONDS = 30


class Mismatch(Exception):
    """The server did not answer as the contract says."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


class CallFailed(Exception):
    """A call that ended with a status other than OK, with its rich error details decoded."""

    def __init__(self, method: str, error: grpc.RpcError):
        self.method = method
        self.code: grpc.StatusCode = error.code()
        self.message: str = error.details() or ""
        self.error_info: error_details_pb2.ErrorInfo | None = None
        self.bad_request: error_details_pb2.BadRequest | None = None
        self.retry_info: error_details_pb2.RetryInfo | None = None
        for key, value in error.trailing_metadata() or ():
            if key == STATUS_DETAILS_KEY:
                self._read_details(value)
        super().__init__(f"{method}: {self.describe()}")

    def _read_details(self, encoded: bytes) -> None:
        status = status_pb2.Status.FromString(encoded)
        for detail in status.details:
            for attribute, message_type in (("error_info", error_details_pb2.ErrorInfo),
                                            ("bad_request", error_details_pb2.BadRequest),
                                            ("retry_info", error_details_pb2.RetryInfo)):
                if detail.Is(message_type.DESCRIPTOR):
                    unpacked = message_type()
                    detail.Unpack(unpacked)
                    setattr(self, attribute, unpacked)

    @property
    def reason(self) -> str | None:
        return self.error_info.reason if self.error_info else None

    @property
    def violated_fields(self) -> list[str]:
        if not self.bad_request:
            return []
        return [violation.field for violation in self.bad_request.field_violations]

    def describe(self) -> str:
        parts = [self.code.name, f"reason={self.reason}", repr(self.message)]
        if self.bad_request:
            parts.append("violations=" + ", ".join(
                f"{violation.field}: {violation.description}"
                for violation in self.bad_request.field_violations))
        if self.retry_info:
            parts.append(f"retry_after={self.retry_info.retry_delay.ToTimedelta()}")
        return " ".join(parts)


class ReflectedService:
    """Calls the methods of one service, with message classes built from server reflection."""

    def __init__(self, channel: grpc.Channel, service_name: str, methods: tuple[str, ...],
                 forwarded_for: str):
        database = ProtoReflectionDescriptorDatabase(channel)
        listed = database.get_services()
        expect(service_name in listed, f"reflection does not list {service_name}; it lists {sorted(listed)}")
        self._pool = DescriptorPool(database)
        self._service = self._pool.FindServiceByName(service_name)
        self._channel = channel
        self._forwarded_for = forwarded_for
        missing = set(methods) - {method.name for method in self._service.methods}
        expect(not missing, f"{service_name} as reflected lacks {sorted(missing)}")
        print(f"reflection: {service_name} [{self._service.file.name}]: "
              + ", ".join(method.name for method in self._service.methods))

    def call(self, method_name: str, request: dict, access_token: str | None = None) -> Message:
        """Sends `request` (the JSON mapping with proto field names) and returns the response."""
        method = self._service.methods_by_name[method_name]
        request_class = GetMessageClass(method.input_type)
        response_class = GetMessageClass(method.output_type)
        callable_ = self._channel.unary_unary(
            f"/{self._service.full_name}/{method.name}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        metadata = [("x-forwarded-for", self._forwarded_for)]
        if access_token is not None:
            metadata.append(("authorization", f"Bearer {access_token}"))
        message = json_format.ParseDict(request, request_class())
        try:
            return callable_(message, metadata=metadata, timeout=RPC_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            raise CallFailed(method_name, error) from None
