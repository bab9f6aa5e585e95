"""`GET /v1/usage`: the caller's account's metered usage, the proto's JSON (as through Envoy)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from lattice.shim import proto_json
from lattice.v1 import usage_pb2

router = APIRouter(prefix="/v1", tags=["usage"])


@router.get("/usage")
async def list_usage(
    request: Request,
    startTime: str | None = Query(default=None, description="RFC 3339, inclusive; default 30 days before endTime."),
    endTime: str | None = Query(default=None, description="RFC 3339, exclusive; default now."),
    groupBy: list[str] = Query(  # noqa: B008
        default=[], description="`day`, `model`, `backend`, `runtime`, `key`: repeated, or comma-separated."
    ),
    pageSize: int = Query(default=0, ge=0, le=proto_json.INT32_MAX, description="At most 1000; 0 means 100."),
    pageToken: str = "",
) -> JSONResponse:
    fields: dict[str, object] = {"groupBy": groupBy, "pageSize": pageSize, "pageToken": pageToken}
    fields.update({k: v for k, v in (("startTime", startTime), ("endTime", endTime)) if v is not None})
    message = proto_json.parse(fields, usage_pb2.ListUsageRequest())
    return await proto_json.reply(request, lambda upstream, md: upstream.usage.ListUsage(message, metadata=md))
