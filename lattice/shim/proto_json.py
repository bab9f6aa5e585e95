"""Routes whose JSON *is* the proto's mapping (personal runtimes, usage): parse into the request
message, call the server with the caller's credentials, print the reply as Envoy's transcoder would."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from google.protobuf.message import Message

from lattice.shim import refusals
from lattice.shim.upstream import Upstream, call_metadata

Metadata = tuple[tuple[str, str], ...]
INT32_MAX = 2**31 - 1
"""The largest value a proto int32 query parameter takes: bounding it makes a larger one a 400, not a
failed conversion."""
M = TypeVar("M", bound=Message)


class InvalidBody(Exception):
    """JSON that pydantic accepted but the proto mapping does not (bad base64, a bad timestamp)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse(body: dict[str, Any], into: M) -> M:
    try:
        return json_format.ParseDict(body, into)
    except json_format.ParseError as error:
        raise InvalidBody(str(error)) from error


async def reply(request: Request, call: Callable[[Upstream, Metadata], Awaitable[Message]]) -> JSONResponse:
    response = await call(request.app.state.upstream, call_metadata(request))
    # Default values left out, as Envoy's transcoder prints them, so both surfaces answer alike.
    return JSONResponse(json_format.MessageToDict(response))


async def invalid_body(request: Request, exc: InvalidBody) -> JSONResponse:
    return await refusals.refuse(request, exc.message, code="invalid_argument")
