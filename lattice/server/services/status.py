"""Domain errors → gRPC status with `google.rpc.ErrorInfo` (and `RetryInfo` when a retry makes sense)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from lattice.errors import ERROR_DOMAIN, LatticeError
from lattice.wire.names import STATUS_DETAILS_METADATA_KEY

log = logging.getLogger(__name__)


def to_rpc_status(error: LatticeError) -> status_pb2.Status:
    details = [_pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata))]
    if error.retry_after_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after_seconds * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=code_pb2.Code.Value(error.code), message=error.message, details=details)


async def abort_with_error(context: grpc.aio.ServicerContext[Any, Any], error: LatticeError) -> NoReturn:
    status = to_rpc_status(error)
    await context.abort(
        grpc.StatusCode[error.code],
        error.message,
        trailing_metadata=((STATUS_DETAILS_METADATA_KEY, status.SerializeToString()),),
    )
    raise AssertionError("context.abort raises")


@asynccontextmanager
async def grpc_errors(context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
    """Maps what escapes a servicer: LatticeErrors to their status, anything else to a bare INTERNAL."""
    try:
        yield
    except LatticeError as error:
        await abort_with_error(context, error)
    except (grpc.aio.AbortError, GeneratorExit):
        raise
    except Exception:
        log.exception("unexpected error in a servicer")
        await abort_with_error(context, LatticeError("internal error; the gateway log has the details"))


def _pack(message: error_details_pb2.ErrorInfo | error_details_pb2.RetryInfo) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
