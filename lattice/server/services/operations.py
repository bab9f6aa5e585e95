"""OperationsService: the dashboard's snapshot (thin: domain → proto)."""

from __future__ import annotations

from typing import Any

import grpc

from lattice import __version__
from lattice.errors import InvalidArgument, Unauthenticated
from lattice.server.activity import Bucket, FinishedRequest
from lattice.server.operations import ModelView, Operations, RuntimeView
from lattice.server.services.auth import current_principal
from lattice.server.services.status import grpc_errors
from lattice.timestamps import now_timestamp, timestamp_at
from lattice.v1 import operations_pb2, operations_pb2_grpc
from lattice.wire.convert import model_to_proto

Context = grpc.aio.ServicerContext[Any, Any]


class OperationsServicer(operations_pb2_grpc.OperationsServiceServicer):
    def __init__(self, operations: Operations) -> None:
        self._operations = operations

    async def GetDashboard(
        self, request: operations_pb2.GetDashboardRequest, context: Context
    ) -> operations_pb2.GetDashboardResponse:
        async with grpc_errors(context):
            principal = current_principal()
            if principal is None:
                raise Unauthenticated("the dashboard needs a credential", reason="API_KEY_MISSING")
            if request.recent_limit < 0:
                raise InvalidArgument("recent_limit must not be negative", field="recent_limit")
            board = await self._operations.dashboard(principal, request.recent_limit)
            return operations_pb2.GetDashboardResponse(
                snapshot_time=now_timestamp(),
                scope=board.scope,
                account_id=board.account_id,
                version=__version__,
                models=[_model(m) for m in board.models],
                personal_runtimes=[_runtime(r) for r in board.runtimes],
                activity=[_bucket(b) for b in board.buckets],
                bucket_seconds=board.bucket_seconds,
                window_seconds=board.window_seconds,
                recent_requests=[_request(r) for r in board.recent],
            )
        raise AssertionError("grpc_errors aborts")


def _model(view: ModelView) -> operations_pb2.ModelState:
    return operations_pb2.ModelState(
        model=model_to_proto(view.model, default_max_tokens=view.default_max_tokens),
        state=view.state,
        running=view.running,
        queued=view.queued,
        max_concurrency=view.max_concurrency,
    )


def _runtime(view: RuntimeView) -> operations_pb2.RuntimeState:
    state = operations_pb2.RuntimeState(
        lattice_id=view.lattice_id,
        account_id=view.account_id,
        display_name=view.display_name,
        status=view.status,
        in_flight=view.in_flight,
    )
    if view.last_seen is not None:
        state.last_seen_time.CopyFrom(timestamp_at(view.last_seen))
    return state


def _bucket(bucket: Bucket) -> operations_pb2.ActivityBucket:
    return operations_pb2.ActivityBucket(
        start_time=timestamp_at(bucket.start),
        requests=bucket.requests,
        failed_requests=bucket.failed_requests,
        prompt_tokens=bucket.prompt_tokens,
        completion_tokens=bucket.completion_tokens,
        mean_duration_ms=bucket.mean_duration_ms,
        mean_first_token_ms=bucket.mean_first_token_ms,
    )


def _request(request: FinishedRequest) -> operations_pb2.RecentRequest:
    return operations_pb2.RecentRequest(
        end_time=timestamp_at(request.end_time),
        request_id=request.request_id,
        account_id=request.account_id,
        model=request.model,
        backend=request.backend,
        status=request.outcome,
        duration_ms=request.duration_ms,
        first_token_ms=request.first_token_ms or 0,
        prompt_tokens=request.prompt_tokens,
        completion_tokens=request.completion_tokens,
    )
