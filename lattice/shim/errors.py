"""gRPC status → OpenAI's error envelope `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from lattice.wire.names import STATUS_DETAILS_METADATA_KEY

# gRPC code → (HTTP status, OpenAI error type)
_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request_error"),
    grpc.StatusCode.FAILED_PRECONDITION: (400, "invalid_request_error"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_request_error"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "authentication_error"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_error"),
    grpc.StatusCode.NOT_FOUND: (404, "invalid_request_error"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "invalid_request_error"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limit_error"),
    grpc.StatusCode.CANCELLED: (499, "request_cancelled"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "server_error"),
    grpc.StatusCode.UNAVAILABLE: (503, "service_unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "timeout"),
}


@dataclass(frozen=True)
class HttpError:
    status: int
    body: dict[str, Any]
    retry_after_seconds: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"retry-after": str(self.retry_after_seconds)} if self.retry_after_seconds is not None else {}


def envelope(message: str, *, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def from_grpc(error: grpc.aio.AioRpcError) -> HttpError:
    status, type_ = _HTTP.get(error.code(), (500, "server_error"))
    info, retry = _details(error)
    code = info.reason.lower() if info else error.code().name.lower()
    param = info.metadata.get("field") if info else None
    retry_after = math.ceil(retry.retry_delay.ToTimedelta().total_seconds()) if retry else None
    return HttpError(status, envelope(error.details() or "", type_=type_, code=code, param=param), retry_after)


def _details(
    error: grpc.aio.AioRpcError,
) -> tuple[error_details_pb2.ErrorInfo | None, error_details_pb2.RetryInfo | None]:
    raw = next((v for k, v in (error.trailing_metadata() or ()) if k == STATUS_DETAILS_METADATA_KEY), None)
    if not isinstance(raw, bytes):
        return None, None
    info, retry = None, None
    for detail in status_pb2.Status.FromString(raw).details:
        if detail.TypeName() == error_details_pb2.ErrorInfo.DESCRIPTOR.full_name:
            info = error_details_pb2.ErrorInfo.FromString(detail.value)
        elif detail.TypeName() == error_details_pb2.RetryInfo.DESCRIPTOR.full_name:
            retry = error_details_pb2.RetryInfo.FromString(detail.value)
    return info, retry
