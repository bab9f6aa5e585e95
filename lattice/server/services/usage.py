"""UsageService: the caller's account's metered usage (thin: proto ⇄ domain)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc

from lattice.server.metering import UsageRecorder
from lattice.server.services.auth import current_account
from lattice.server.services.status import grpc_errors
from lattice.server.store.usage import DEFAULT_RANGE, UsageQuery, UsageSum
from lattice.v1 import usage_pb2, usage_pb2_grpc
from lattice.wire import convert

Context = grpc.aio.ServicerContext[Any, Any]


class UsageServicer(usage_pb2_grpc.UsageServiceServicer):
    def __init__(self, recorder: UsageRecorder) -> None:
        self._recorder = recorder

    async def ListUsage(self, request: usage_pb2.ListUsageRequest, context: Context) -> usage_pb2.ListUsageResponse:
        async with grpc_errors(context):
            principal = current_account("usage records")
            end = convert.moment(request.end_time) if request.HasField("end_time") else dt.datetime.now(dt.UTC)
            start = convert.moment(request.start_time) if request.HasField("start_time") else end - DEFAULT_RANGE
            await self._recorder.flush()  # what this gateway has metered so far is readable at once
            groups, token, total = await self._recorder.ledger.summarize(
                UsageQuery(
                    principal.account_id,
                    start,
                    end,
                    tuple(g.strip() for item in request.group_by for g in item.split(",") if g.strip()),
                    request.page_size,
                    request.page_token,
                )
            )
            return usage_pb2.ListUsageResponse(
                groups=[usage_group(g) for g in groups], next_page_token=token, total=usage_group(total)
            )
        raise AssertionError("grpc_errors aborts")


def usage_group(summed: UsageSum) -> usage_pb2.UsageGroup:
    keys = summed.keys
    return usage_pb2.UsageGroup(
        day=keys.get("day", ""),
        model=keys.get("model", ""),
        backend=keys.get("backend", ""),
        runtime_id=keys.get("runtime", ""),
        key_id=keys.get("key", ""),
        requests=summed.requests,
        failed_requests=summed.failed_requests,
        prompt_tokens=summed.prompt_tokens,
        completion_tokens=summed.completion_tokens,
        total_tokens=summed.total_tokens,
        duration_ms=summed.duration_ms,
    )
