"""Domain error → google.rpc.Status (server) → OpenAI envelope + HTTP status (shim), end to end in memory."""

from __future__ import annotations

import grpc
import pytest

from lattice import errors
from lattice.server.services.status import to_rpc_status
from lattice.shim.errors import from_grpc
from lattice.wire.names import STATUS_DETAILS_METADATA_KEY


def as_received(error: errors.LatticeError) -> grpc.aio.AioRpcError:
    """What a gRPC client sees when the server aborts with `error`."""
    status = to_rpc_status(error)
    return grpc.aio.AioRpcError(
        grpc.StatusCode[error.code],
        grpc.aio.Metadata(),
        grpc.aio.Metadata((STATUS_DETAILS_METADATA_KEY, status.SerializeToString())),
        details=error.message,
    )


@pytest.mark.parametrize(
    ("error", "status", "type_", "code"),
    [
        (errors.InvalidArgument("bad", field="top_p"), 400, "invalid_request_error", "invalid_argument"),
        (
            errors.ContextLengthExceeded("long", field="messages"),
            400,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        (errors.NoModelSatisfies("no"), 400, "invalid_request_error", "no_model_satisfies"),
        (errors.ModelNotFound("gone"), 404, "invalid_request_error", "model_not_found"),
        (errors.Unauthenticated("who", reason="API_KEY_MISSING"), 401, "authentication_error", "api_key_missing"),
        (errors.BackendUnavailable("loading"), 503, "service_unavailable", "backend_unavailable"),
        (errors.BackendFailed("boom"), 500, "server_error", "backend_failed"),
    ],
)
def test_each_error_keeps_its_meaning(error: errors.LatticeError, status: int, type_: str, code: str) -> None:
    http = from_grpc(as_received(error))
    assert http.status == status
    assert http.body["error"]["type"] == type_
    assert http.body["error"]["code"] == code
    assert http.body["error"]["message"] == error.message
    assert http.headers == {}


def test_field_becomes_param() -> None:
    http = from_grpc(as_received(errors.InvalidArgument("bad", field="messages[0].role")))
    assert http.body["error"]["param"] == "messages[0].role"


def test_retry_info_becomes_retry_after() -> None:
    class Busy(errors.LatticeError):
        code = "RESOURCE_EXHAUSTED"
        default_reason = "QUEUE_FULL"

    http = from_grpc(as_received(Busy("queue full", retry_after_seconds=2.2)))
    assert http.status == 429
    assert http.headers == {"retry-after": "3"}  # rounded up: never invite an early retry
    assert http.body["error"]["code"] == "queue_full"


def test_a_status_without_details_still_maps() -> None:
    bare = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down")
    http = from_grpc(bare)
    assert http.status == 503
    assert http.body["error"] == {
        "message": "down",
        "type": "service_unavailable",
        "param": None,
        "code": "unavailable",
    }
