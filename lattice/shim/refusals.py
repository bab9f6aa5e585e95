"""The 400s the shim answers itself (a body it cannot translate), said only once the server has judged
the credential: an anonymous or wrong-key request gets the server's 401, whatever its body, as OpenAI
answers it.

The shim checks no credential: on the way to a 400 it asks the server, with the caller's credential,
for one model (ResolveService.ListModels, a page of one: no store, no model, no limit touched) and
answers the server's UNAUTHENTICATED if that is the server's answer. Any other answer (a key without
the inference scope, a server out of reach) leaves the body's 400 standing: scopes are the called
method's business, and the body is as wrong as it was. A request with a good body pays nothing: its
one call is the real one, and the server judges the credential there first.
"""

from __future__ import annotations

import grpc
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lattice.shim import errors, validation
from lattice.shim.upstream import UnforwardableHeader, Upstream, call_metadata
from lattice.v1 import resolve_pb2

OPEN_PATHS = frozenset({"/v1/personal-runtime-bootstrap-redemptions"})
"""Routes of methods that take no API key (the bootstrap token is the credential): no probe."""
PROBE_TIMEOUT_SECONDS = 5.0


class InvalidRequest(Exception):
    """A body the shim refuses: answered as 400 in OpenAI's envelope, after the credential check."""

    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid_argument") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


async def refuse(request: Request, message: str, *, param: str | None = None, code: str) -> JSONResponse:
    refused_credential = await _credential_refusal(request)
    if refused_credential is not None:
        return refused_credential
    return JSONResponse(errors.envelope(message, type_="invalid_request_error", code=code, param=param), 400)


async def invalid_request(request: Request, exc: InvalidRequest) -> JSONResponse:
    return await refuse(request, exc.message, param=exc.param, code=exc.code)


async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A body pydantic refused (or that is not JSON at all), as OpenAI refuses it."""
    errors_ = exc.errors()
    first = errors_[0] if errors_ else {}
    if first.get("type") == "json_invalid":
        message = f"the body is not valid JSON: {first.get('ctx', {}).get('error', 'parse error')}"
        return await refuse(request, message, code="invalid_argument")
    refusal = validation.refusal(errors_, exc.body)
    return await refuse(request, refusal.message, param=refusal.param, code=refusal.code)


async def _credential_refusal(request: Request) -> JSONResponse | None:
    upstream: Upstream | None = getattr(request.app.state, "upstream", None)
    route = request.scope.get("route")
    if upstream is None or getattr(route, "path", None) in OPEN_PATHS:
        return None
    try:
        metadata = call_metadata(request)
    except UnforwardableHeader as header:
        body = errors.envelope(str(header.detail), type_="invalid_request_error", code=header.code, param=header.param)
        return JSONResponse(body, 400)
    try:
        await upstream.resolve.ListModels(
            resolve_pb2.ListModelsRequest(page_size=1), metadata=metadata, timeout=PROBE_TIMEOUT_SECONDS
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            refusal = errors.from_grpc(error)
            return JSONResponse(refusal.body, refusal.status, headers=refusal.headers)
    return None
