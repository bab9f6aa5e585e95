"""The `google.rpc.Status` a Lattice error carries in `grpc-status-details-bin`, decoded without protobuf.

The gateway's errors are `google.rpc.Status{code, message, details: [Any(ErrorInfo), Any(RetryInfo)]}`.
The generated betterproto2 client does not include `google/rpc`, so the four messages needed are
declared here with the same runtime (field numbers from googleapis' status.proto and
error_details.proto), and grpclib decodes the trailer through `StatusDetailsCodec`.
"""

# betterproto2 declares fields as dataclass defaults, as its generated code does.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import betterproto2
from grpclib.const import Status
from grpclib.encoding.base import StatusDetailsCodecBase

_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


@dataclass(eq=False, repr=False)
class _Any(betterproto2.Message):
    type_url: str = betterproto2.field(1, betterproto2.TYPE_STRING)
    value: bytes = betterproto2.field(2, betterproto2.TYPE_BYTES)


@dataclass(eq=False, repr=False)
class _RpcStatus(betterproto2.Message):
    code: int = betterproto2.field(1, betterproto2.TYPE_INT32)
    message: str = betterproto2.field(2, betterproto2.TYPE_STRING)
    details: list[_Any] = betterproto2.field(3, betterproto2.TYPE_MESSAGE, repeated=True)


@dataclass(eq=False, repr=False)
class _ErrorInfo(betterproto2.Message):
    reason: str = betterproto2.field(1, betterproto2.TYPE_STRING)
    domain: str = betterproto2.field(2, betterproto2.TYPE_STRING)
    metadata: dict[str, str] = betterproto2.field(
        3, betterproto2.TYPE_MAP, map_meta=betterproto2.map_meta(betterproto2.TYPE_STRING, betterproto2.TYPE_STRING)
    )


@dataclass(eq=False, repr=False)
class _Duration(betterproto2.Message):
    seconds: int = betterproto2.field(1, betterproto2.TYPE_INT64)
    nanos: int = betterproto2.field(2, betterproto2.TYPE_INT32)


@dataclass(eq=False, repr=False)
class _RetryInfo(betterproto2.Message):
    retry_delay: _Duration | None = betterproto2.field(1, betterproto2.TYPE_MESSAGE, optional=True)


@dataclass(frozen=True)
class ErrorDetails:
    """What the status details say: the ErrorInfo's reason, domain and metadata, and RetryInfo's delay."""

    reason: str | None = None
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    retry_delay: float | None = None
    """Seconds."""


def decode_status_details(data: bytes) -> ErrorDetails:
    """Reads a serialized `google.rpc.Status`; details it does not know are skipped."""
    status = _RpcStatus.parse(data)
    reason: str | None = None
    domain = ""
    metadata: dict[str, str] = {}
    retry_delay: float | None = None
    for detail in status.details:
        if detail.type_url == _ERROR_INFO:
            info = _ErrorInfo.parse(detail.value)
            reason, domain, metadata = info.reason or None, info.domain, dict(info.metadata)
        elif detail.type_url == _RETRY_INFO:
            delay = _RetryInfo.parse(detail.value).retry_delay
            if delay is not None:
                retry_delay = max(0.0, delay.seconds + delay.nanos / 1e9)
    return ErrorDetails(reason, domain, metadata, retry_delay)


class StatusDetailsCodec(StatusDetailsCodecBase):
    """grpclib's hook for `grpc-status-details-bin`: `GRPCError.details` becomes an `ErrorDetails`."""

    def encode(self, status: Status, message: str | None, details: Any) -> bytes:
        raise NotImplementedError("a client never sends status details")

    def decode(self, status: Status, message: str | None, data: bytes) -> ErrorDetails:
        try:
            return decode_status_details(data)
        except Exception:  # a malformed trailer must not hide the status code and message
            return ErrorDetails()
