"""One interceptor gives every RPC, of every service, its request id, its log line and its metrics.

The request id is the caller's `x-request-id` metadata (the shim always sends
one) or a new one. It is bound to every log line written while the call is
served, and sent back as `x-request-id` initial metadata, also on errors. The
call is counted and timed by service, method and status code when it ends.
It should be the first interceptor, so that refusals by the others (a missing
API key) are counted and carry the id too.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeAlias

import grpc
import structlog

from lattice.observability import logs, metrics, tracing
from lattice.server.services.handlers import Handler, rebuilt
from lattice.wire.names import REQUEST_ID_KEY

# Generic in the stubs only, so the aliases are strings.
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

# Probed every few seconds by load balancers and by the shim's /healthz: their lines would drown the rest.
QUIET_SERVICES = frozenset({"grpc.health.v1.Health"})

log = structlog.get_logger("lattice.rpc")


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        metadata = handler_call_details.invocation_metadata or ()
        request_id = logs.request_id_or_new(_text(metadata, REQUEST_ID_KEY))
        # grpc.aio runs the interceptors and the handler of one call in one fresh context, so what is bound
        # here reaches the servicer's log lines (and the other interceptors') and no other call's.
        structlog.contextvars.bind_contextvars(request_id=request_id)
        handler = await continuation(handler_call_details)
        if handler is None:
            metrics.rpc_unknown()
            return None
        service, _, method = handler_call_details.method.lstrip("/").partition("/")
        return _observed(handler, _Call(service, method, request_id))


class _Call:
    """What the wrapped handler needs to report one call."""

    def __init__(self, service: str, method: str, request_id: str) -> None:
        self.service = service
        self.method = method
        self.request_id = request_id
        self.started = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        metrics.rpc_started(self.service, self.method)
        tracing.tag_current("lattice.request_id", self.request_id)  # the RPC's span, found by request id

    def finish(self, code: str) -> None:
        """Reports the call on the loop's next turn: by then grpc has sent the status, so the
        caller does not wait for the log line."""
        seconds = time.perf_counter() - self.started
        asyncio.get_running_loop().call_soon(self._log, code, seconds)  # in this context: the request id

    def _log(self, code: str, seconds: float) -> None:
        metrics.rpc_finished(self.service, self.method, code, seconds)
        level = logging.DEBUG if self.service in QUIET_SERVICES else logging.INFO
        log.log(
            level,
            "rpc",
            rpc=f"{self.service}/{self.method}",
            code=code,
            duration_ms=round(seconds * 1000, 1),
        )


class _EchoingContext:
    """The servicer's context, adding `x-request-id` to the initial metadata however it is sent:
    by the servicer, with the first message, or with an error."""

    def __init__(self, context: Context, request_id: str) -> None:
        self._context = context
        self._request_id = request_id
        self._sent = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def send_initial_metadata(self, metadata: Sequence[tuple[str, str | bytes]]) -> None:
        if self._sent:
            raise grpc.aio.UsageError("initial metadata was already sent")  # as grpc would say
        self._sent = True
        await self._context.send_initial_metadata((*metadata, (REQUEST_ID_KEY, self._request_id)))

    async def ensure_sent(self) -> None:
        if not self._sent:
            with contextlib.suppress(grpc.aio.UsageError):  # grpc sent it already: too late to add the id
                await self.send_initial_metadata(())

    async def write(self, message: Any) -> None:
        await self.ensure_sent()
        await self._context.write(message)

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> Any:
        await self.ensure_sent()
        await self._context.abort(code, details, trailing_metadata)

    async def before_error(self, error: BaseException) -> None:
        """An unexpected exception ends the call as UNKNOWN: its headers still carry the id."""
        if isinstance(error, Exception) and not isinstance(error, grpc.aio.AbortError):
            with contextlib.suppress(Exception):
                await self.ensure_sent()

    def status(self, error: BaseException | None) -> str:
        """The code the call ends with, given what escaped the servicer (None: it returned)."""
        if isinstance(error, (asyncio.CancelledError, GeneratorExit)):  # the caller went away
            return grpc.StatusCode.CANCELLED.name
        code = self._context.code()
        if isinstance(code, grpc.StatusCode):
            return code.name
        if isinstance(code, int):  # grpc.aio reports the raw enum value in some versions
            return next((c.name for c in grpc.StatusCode if c.value[0] == code), str(code))
        if error is not None and not isinstance(error, grpc.aio.AbortError):
            return grpc.StatusCode.UNKNOWN.name  # what grpc answers for an exception that escapes
        return grpc.StatusCode.OK.name


def _observed(handler: Handler, call: _Call) -> Handler:
    return rebuilt(
        handler, lambda behavior, streaming: (_stream_response if streaming else _unary_response)(behavior, call)
    )


def _unary_response(behavior: Callable[..., Any], call: _Call) -> Callable[..., Awaitable[Any]]:
    async def observed(request: Any, context: Context) -> Any:
        echoing = _EchoingContext(context, call.request_id)
        call.start()
        error: BaseException | None = None
        try:
            response = await behavior(request, echoing)
            await echoing.ensure_sent()
            return response
        except BaseException as escaped:
            error = escaped
            await echoing.before_error(escaped)
            raise
        finally:
            call.finish(echoing.status(error))

    return observed


def _stream_response(behavior: Callable[..., Any], call: _Call) -> Callable[..., Any]:
    if not inspect.isasyncgenfunction(behavior):
        # A servicer that writes with context.write and returns: the echoing context covers its writes.
        return _unary_response(behavior, call)

    async def observed(request: Any, context: Context) -> AsyncIterator[Any]:
        echoing = _EchoingContext(context, call.request_id)
        call.start()
        error: BaseException | None = None
        try:
            # aclosing: when the caller goes away, the servicer's own cleanup (its slot, its stream) runs now.
            async with contextlib.aclosing(behavior(request, echoing)) as responses:
                async for response in responses:
                    await echoing.ensure_sent()
                    yield response
        except BaseException as escaped:
            error = escaped
            await echoing.before_error(escaped)
            raise
        finally:
            call.finish(echoing.status(error))

    return observed


def _text(metadata: Sequence[tuple[str, str | bytes]], key: str) -> str | None:
    return next((v for k, v in metadata if k == key and isinstance(v, str)), None)
