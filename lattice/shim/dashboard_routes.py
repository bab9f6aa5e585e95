"""The operations dashboard: `GET /dashboard` (a static page), its script, style and icon, and
`GET /v1/dashboard`, the snapshot it polls (OperationsService.GetDashboard, the proto's JSON).

The page holds no data: everything it shows comes from `/v1/dashboard`, which the gRPC server
authenticates like any call, with the key the page sends as `x-api-key` (typed into the page, or
passed as `/dashboard#key=…`: a URL fragment never reaches a server or a log). The shim decides
nothing. The page runs only the shipped files: its Content-Security-Policy allows scripts, styles,
images and fetches from this origin and nothing else (no inline script or style, no CDN).
"""

from __future__ import annotations

import functools
import importlib.resources

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from lattice.shim import proto_json
from lattice.v1 import operations_pb2

DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
"""The page's own policy (every other answer keeps the shim's, which allows nothing)."""
STATIC_FILES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
"""What `/dashboard/static/{name}` serves: these files of lattice/shim/static, nothing else."""

router = APIRouter(tags=["operations"])


@functools.cache
def _file(name: str) -> bytes:
    return importlib.resources.files("lattice.shim").joinpath("static", name).read_bytes()


@router.get(
    "/dashboard",
    response_class=Response,
    summary="The operations dashboard: a page that polls /v1/dashboard with the key given to it",
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
)
async def dashboard_page() -> Response:
    return Response(
        _file("dashboard.html"),
        media_type="text/html; charset=utf-8",
        headers={"content-security-policy": DASHBOARD_CSP},
    )


@router.get(
    "/dashboard/static/{name}",
    response_class=Response,
    summary="The dashboard's script, style sheet and icon",
    responses={
        200: {
            "content": {
                media.split(";")[0]: {"schema": {"type": "string"}} for media in sorted(set(STATIC_FILES.values()))
            }
        }
    },
)
async def dashboard_static(
    name: str = Path(description="`dashboard.js`, `dashboard.css` or `favicon.svg`."),
) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(404, f"no dashboard file {name!r}")
    return Response(_file(name), media_type=media_type)


@router.get("/v1/dashboard", summary="What the gateway is doing now, as the caller may see it")
async def get_dashboard(
    request: Request,
    recentLimit: int = Query(
        default=0, ge=0, le=proto_json.INT32_MAX, description="Latest requests shown; 0 means 50, at most 500."
    ),
) -> JSONResponse:
    message = operations_pb2.GetDashboardRequest(recent_limit=recentLimit)
    return await proto_json.reply(request, lambda upstream, md: upstream.operations.GetDashboard(message, metadata=md))
