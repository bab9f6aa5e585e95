"""A gRPC channel to the servicers of this process, without sockets: what the embedded shim uses.

grpc-python has no in-process transport, and a loopback channel costs every REST request two HTTP/2
hops, their (de)serialization and their thread wake-ups. `InProcessServer` records what is
registered on the real server (the same servicers) and its interceptors; `InProcessChannel` offers
the `grpc.aio.Channel` interface the stubs use and runs each call as grpc.aio's server does:
the interceptor chain resolves the method's handler (`intercept_service(continuation, details)`,
so auth, limits, metrics, logs and traces apply exactly as on the wire), and the handler runs in
its own task with a fresh context, given a `ServicerContext` of ours. The client side sees what a
real channel shows: initial metadata, `grpc.aio.AioRpcError` with code, details and trailing
metadata, `asyncio.CancelledError` for a call it cancelled, DEADLINE_EXCEEDED past its timeout.

Messages are passed as objects, not bytes: they are the contract's own classes on both sides, and
neither side keeps or changes one after handing it over. Only unary-unary and unary-stream calls
are offered (all the shim makes); the relay's bidi stream stays on the wire.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import Any, NamedTuple, TypeAlias

import grpc

from lattice.observability import tracing

log = logging.getLogger(__name__)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
MetadataLike: TypeAlias = "Sequence[tuple[str, str | bytes]]"

PEER = "unix:in-process"
"""What `context.peer()` says: a `unix:` address, which tracing and `caller_identity` read as local."""

STREAM_BUFFER = 4096
"""Messages a streaming handler may run ahead of its reader, as HTTP/2's flow-control window lets it
(64 KiB and more: a whole answer's chunks). Less would hold a model's slot for a client that stopped
reading, where the wire lets generation finish and free it."""


class Metadatum(NamedTuple):
    """One metadata entry, as grpc.aio hands them to servicers: a pair with `.key` and `.value`."""

    key: str
    value: str | bytes


class HandlerCallDetails(NamedTuple):
    """What interceptors see of a call (grpc.HandlerCallDetails)."""

    method: str
    invocation_metadata: tuple[Metadatum, ...]


class InProcessServer:
    """The method handlers registered on a grpc.aio server, and its interceptors, reachable in-process.

    Pass `registrar(server)` where the servicers are added to the server: each registration reaches
    the server and is recorded here."""

    def __init__(self) -> None:
        self._methods: dict[str, Handler] = {}
        self._generic: list[grpc.GenericRpcHandler] = []
        self._interceptors: tuple[grpc.aio.ServerInterceptor, ...] = ()

    def registrar(self, server: grpc.aio.Server, interceptors: Sequence[grpc.aio.ServerInterceptor]) -> Any:
        """Stands in for `server` in the generated `add_…Servicer_to_server` functions (which call
        only its two registration methods: Any, since their signature asks for a server)."""
        self._interceptors = tuple(interceptors)
        return _Registrar(server, self)

    async def handler(self, details: HandlerCallDetails) -> Handler | None:
        """The method's handler, through the interceptors, first to last (as grpc.aio runs them)."""
        return await self._intercepted(0, details)

    async def _intercepted(self, index: int, details: HandlerCallDetails) -> Handler | None:
        if index == len(self._interceptors):
            return self._lookup(details)
        continuation = functools.partial(self._intercepted, index + 1)
        return await self._interceptors[index].intercept_service(continuation, details)  # type: ignore[arg-type]

    def _lookup(self, details: HandlerCallDetails) -> Handler | None:
        if (handler := self._methods.get(details.method)) is not None:
            return handler
        for generic in self._generic:
            if (handler := generic.service(details)) is not None:  # type: ignore[arg-type]  # a named tuple, not grpc's class
                return handler
        return None


class _Registrar:
    """The server's registration methods, recording what they register."""

    def __init__(self, server: grpc.aio.Server, recorder: InProcessServer) -> None:
        self._server = server
        self._recorder = recorder

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(handlers)
        self._recorder._generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        self._server.add_registered_method_handlers(service, handlers)
        self._recorder._methods.update({f"/{service}/{name}": h for name, h in handlers.items()})


class _Status(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


_OK = _Status(grpc.StatusCode.OK, "", ())


class ServicerContext:
    """The server side of one in-process call: what grpc.aio's ServicerContext offers servicers."""

    def __init__(self, call: _Call, metadata: tuple[Metadatum, ...], deadline: float | None) -> None:
        self._call = call
        self._metadata = metadata
        self._deadline = deadline
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._trailing: tuple[tuple[str, str | bytes], ...] = ()
        self._aborted = False
        self._callbacks: list[Callable[[ServicerContext], None]] = []

    # What the caller sent.
    def invocation_metadata(self) -> tuple[Metadatum, ...]:
        return self._metadata

    def peer(self) -> str:
        return PEER

    def peer_identities(self) -> None:
        return None

    def peer_identity_key(self) -> None:
        return None

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    # What the server sends.
    async def send_initial_metadata(self, metadata: MetadataLike) -> None:
        if self._call.initial_sent:
            raise grpc.aio.UsageError("initial metadata was already sent")  # what grpc.aio raises
        self._call.send_initial(tuple(metadata))

    async def write(self, message: Any) -> None:
        await self._call.put(message)

    async def read(self) -> Any:
        raise grpc.aio.UsageError("an in-process call has a single request")

    def set_trailing_metadata(self, metadata: MetadataLike) -> None:
        self._trailing = tuple(metadata)

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._trailing

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def set_details(self, details: str) -> None:
        self._details = details

    def details(self) -> str:
        return self._details

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: MetadataLike = ()) -> None:
        # As grpc.aio: once only; OK is no error code; the trailers given replace those set before.
        if self._aborted:
            raise grpc.aio.UsageError("Abort already called!")
        self._aborted = True
        if code == grpc.StatusCode.OK:
            log.error("abort() called with StatusCode.OK; returning UNKNOWN")
            code = grpc.StatusCode.UNKNOWN
        self._code, self._details = code, details or ""
        if trailing_metadata:
            self._trailing = tuple(trailing_metadata)
        raise grpc.aio.AbortError("Locally aborted.")

    def set_compression(self, _compression: grpc.Compression) -> None:
        pass  # nothing is compressed in-process

    def disable_next_message_compression(self) -> None:
        pass

    def cancelled(self) -> bool:
        return self._call.cancelled()

    def done(self) -> bool:
        return self._call.done()

    def add_done_callback(self, callback: Callable[[ServicerContext], None]) -> None:
        self._callbacks.append(callback)

    def status(self) -> _Status:
        """The status a handler that returned (or aborted) ends the call with."""
        code = self._code or grpc.StatusCode.OK
        if code == grpc.StatusCode.OK:
            return _Status(code, self._details, self._trailing)
        return _Status(code, self._details or code.value[1], self._trailing)

    def finished(self) -> None:
        for callback in self._callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("a done callback of an in-process call failed")


class _Call:
    """One call: the handler's task on the server side, and what the client awaits or reads."""

    def __init__(
        self,
        server: InProcessServer,
        method: str,
        request: Any,
        timeout: float | None,
        metadata: MetadataLike | None,
        streaming: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._method = method
        self._streaming = streaming
        self._span = tracing.start_client(method)
        sent = tuple(Metadatum(k, v) for k, v in (metadata or ()))
        sent += tuple(Metadatum(k, v) for k, v in tracing.carrier(self._span).items())
        deadline = None if timeout is None else time.monotonic() + timeout
        self._context = ServicerContext(self, sent, deadline)
        self._initial: asyncio.Future[tuple[tuple[str, str | bytes], ...]] = loop.create_future()
        self._status: asyncio.Future[_Status] = loop.create_future()
        # A deque and two futures, not an asyncio.Queue: one reader and one writer need no more, per call.
        self._messages: deque[Any] = deque()
        self._room: asyncio.Future[None] | None = None  # what a writer waiting for room in the buffer awaits
        self._ending: _Status | None = None  # set by cancel() or the deadline, before the task is stopped
        self._locally_cancelled = False
        self._wake: asyncio.Future[None] | None = None  # what a reader waiting for a message awaits
        # A fresh context, as grpc.aio gives each call: what interceptors bind stays with this call.
        self._task = loop.create_task(
            self._run(server, HandlerCallDetails(method, sent), request), context=contextvars.Context()
        )
        self._timer = None if timeout is None else loop.call_later(max(timeout, 0.0), self._expire)

    # The server side.
    @property
    def initial_sent(self) -> bool:
        return self._initial.done()

    def send_initial(self, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        if not self._initial.done():
            self._initial.set_result(metadata)

    async def put(self, message: Any) -> None:
        self.send_initial(())
        while len(self._messages) >= STREAM_BUFFER:
            self._room = asyncio.get_running_loop().create_future()
            await self._room
        self._messages.append(message)
        self._wake_reader()

    async def _run(self, server: InProcessServer, details: HandlerCallDetails, request: Any) -> None:
        try:
            status = await self._serve(server, details, request)
        except asyncio.CancelledError:
            status = self._ending or _Status(grpc.StatusCode.CANCELLED, "Locally cancelled by application!", ())
        except grpc.aio.AbortError:
            status = self._context.status()
        except Exception as error:
            log.exception("Unexpected [%s] raised by servicer method [%s]", type(error).__name__, self._method)
            status = _Status(grpc.StatusCode.UNKNOWN, f"Unexpected {type(error)}: {error}", ())
        self._finish(self._ending or status)

    async def _serve(self, server: InProcessServer, details: HandlerCallDetails, request: Any) -> _Status:
        handler = await server.handler(details)
        if handler is None:
            return _Status(grpc.StatusCode.UNIMPLEMENTED, "Method not found!", ())
        if self._streaming:
            if handler.unary_stream is None:
                return _Status(grpc.StatusCode.UNIMPLEMENTED, f"{self._method} does not stream its response", ())
            streamed: Any = handler.unary_stream  # called with our context, which grpc's types do not know
            responses = streamed(request, self._context)
            if hasattr(responses, "__aiter__"):
                async for response in responses:
                    await self.put(response)
            else:  # a handler that writes with context.write and returns
                await responses
        else:
            if handler.unary_unary is None:
                return _Status(grpc.StatusCode.UNIMPLEMENTED, f"{self._method} is not a unary call", ())
            unary: Any = handler.unary_unary
            response = await unary(request, self._context)
            if self._context.status().code == grpc.StatusCode.OK:
                await self.put(response)
        return self._context.status()

    def _finish(self, status: _Status) -> None:
        self.send_initial(())  # a call that failed before sending any: empty, as grpc's trailers-only answer
        if self._timer is not None:
            self._timer.cancel()
        if status.code != grpc.StatusCode.OK:
            self._span.fail(RuntimeError(f"{status.code.name}: {status.details}"))
        self._span.end()
        self._status.set_result(status)
        self._wake_reader()
        self._context.finished()

    def _expire(self) -> None:
        self._stop(_Status(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", ()))

    def _stop(self, status: _Status) -> bool:
        if self._status.done() or self._ending is not None:
            return False
        self._ending = status
        self._task.cancel()
        return True

    # The client side (grpc.aio.Call).
    def cancel(self) -> bool:
        stopped = self._stop(_Status(grpc.StatusCode.CANCELLED, "Locally cancelled by application!", ()))
        self._locally_cancelled = self._locally_cancelled or stopped
        return stopped

    def cancelled(self) -> bool:
        ending = self._ending or (self._status.result() if self._status.done() else None)
        return ending is not None and ending.code == grpc.StatusCode.CANCELLED

    def done(self) -> bool:
        return self._status.done()

    def time_remaining(self) -> float | None:
        return self._context.time_remaining()

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._status.add_done_callback(lambda _: callback(self))

    async def initial_metadata(self) -> grpc.aio.Metadata:
        return grpc.aio.Metadata(*await self._waiting(self._initial))

    async def trailing_metadata(self) -> grpc.aio.Metadata:
        return grpc.aio.Metadata(*(await self._waiting(self._status)).trailing_metadata)

    async def code(self) -> grpc.StatusCode:
        status: _Status = await self._waiting(self._status)
        return status.code

    async def details(self) -> str:
        status: _Status = await self._waiting(self._status)
        return status.details

    async def wait_for_connection(self) -> None:
        pass  # nothing to connect

    async def _waiting(self, future: asyncio.Future[Any]) -> Any:
        # shield: a caller that gives up waiting cancels the call (as grpc.aio does), not the future.
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self.cancel()
            raise

    async def _error(self) -> BaseException:
        status = self._status.result()
        if self._locally_cancelled:
            return asyncio.CancelledError()
        return grpc.aio.AioRpcError(
            status.code,
            grpc.aio.Metadata(*await self._initial),
            grpc.aio.Metadata(*status.trailing_metadata),
            status.details,
        )

    async def _next(self) -> Any:
        """The next message, EOF at a good end; raises at a bad one (once the messages before it are read)."""
        while not self._messages and not self._status.done():
            self._wake = asyncio.get_running_loop().create_future()
            try:
                await self._wake
            except asyncio.CancelledError:  # the reader gave up: the call ends, as grpc.aio's does
                self.cancel()
                raise
        if self._messages:
            if self._room is not None and not self._room.done():
                self._room.set_result(None)
            return self._messages.popleft()
        if self._status.result().code == grpc.StatusCode.OK and not self._locally_cancelled:
            return grpc.aio.EOF
        raise await self._error()

    def _wake_reader(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)


class UnaryUnaryCall(_Call):
    def __await__(self) -> Generator[Any, None, Any]:
        return self._response().__await__()

    async def _response(self) -> Any:
        message = await self._next()
        if message is grpc.aio.EOF:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.INTERNAL, grpc.aio.Metadata(), grpc.aio.Metadata(), "the handler sent no response"
            )
        return message


class UnaryStreamCall(_Call):
    async def read(self) -> Any:
        return await self._next()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while (message := await self._next()) is not grpc.aio.EOF:
            yield message


class _MultiCallable:
    def __init__(self, server: InProcessServer, method: str, call: type[_Call]) -> None:
        self._server = server
        self._method = method
        self._call = call

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: MetadataLike | None = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        return self._call(self._server, self._method, request, timeout, metadata, self._call is UnaryStreamCall)


class InProcessChannel(grpc.aio.Channel):
    """The stubs' channel to `server`, in this process."""

    def __init__(self, server: InProcessServer) -> None:
        self._server = server

    def unary_unary(self, method: str, *_args: Any, **_kwargs: Any) -> Any:
        return _MultiCallable(self._server, method, UnaryUnaryCall)

    def unary_stream(self, method: str, *_args: Any, **_kwargs: Any) -> Any:
        return _MultiCallable(self._server, method, UnaryStreamCall)

    def stream_unary(self, method: str, *_args: Any, **_kwargs: Any) -> Any:
        raise NotImplementedError("client-streaming calls are not offered in-process")

    def stream_stream(self, method: str, *_args: Any, **_kwargs: Any) -> Any:
        raise NotImplementedError("bidirectional calls are not offered in-process")

    async def __aenter__(self) -> InProcessChannel:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        pass  # the calls belong to the server, which stops them when it stops

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return grpc.ChannelConnectivity.READY

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await asyncio.Event().wait()  # an in-process channel never changes state

    async def channel_ready(self) -> None:
        pass
