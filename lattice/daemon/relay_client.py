"""The daemon's end of the relay: one outbound stream, kept open with heartbeats, re-dialled with
jittered exponential backoff, many work items at a time on it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncIterator

import grpc
import structlog
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from nacl.public import PrivateKey

from lattice import __version__
from lattice.daemon.config import DaemonConfig
from lattice.daemon.executor import Executor
from lattice.daemon.state import StateFile
from lattice.errors import LatticeError
from lattice.observability import logs, tracing
from lattice.server.chat import Finish
from lattice.timestamps import now_timestamp
from lattice.v1 import relay_pb2, relay_pb2_grpc
from lattice.wire.convert import chat_request_from_proto
from lattice.wire.names import AUTHORIZATION_METADATA_KEY
from lattice.wire.relay import work_event, work_failure
from lattice.wire.sealing import lock, open_sealed, seal

log = logging.getLogger("lattice.daemon")
work_log = structlog.get_logger("lattice.daemon.work")

# HTTP/2 pings keep NATs and proxies from dropping an idle relay; the gateway allows one per 10 s.
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)
# The gateway refused the daemon itself: dialling again would be refused again.
FATAL_CODES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


# The runtime itself is gone for this daemon: its credential can never work again.
CREDENTIAL_ENDED = ("RUNTIME_REVOKED", "RUNTIME_REPAIRED")


class Refused(Exception):
    """The gateway will not take this daemon (revoked runtime, unknown credential); `reason` is the
    gateway's ErrorInfo reason, when it gave one."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def credential_ended(self) -> bool:
        """The runtime was revoked or paired again: the stored credential is dead for good."""
        return self.reason in CREDENTIAL_ENDED


class RelayClient:
    def __init__(
        self, config: DaemonConfig, executor: Executor, state: StateFile, *, max_backoff_seconds: float = 30.0
    ) -> None:
        self._config = config
        self._executor = executor
        self._state = state
        self._key = PrivateKey(base64.b64decode(config.private_key))
        self._gateway_key = base64.b64decode(config.gateway_public_key)
        self._max_backoff = max_backoff_seconds
        self._in_flight: dict[str, asyncio.Task[None]] = {}

    async def run_forever(self) -> None:
        """Connects, serves until the stream breaks, waits, connects again; raises `Refused` when the
        gateway refuses the daemon itself."""
        failures = 0
        while True:
            self._state.update(relay="connecting", relay_endpoint=self._config.relay_endpoint)
            try:
                served = await self._serve_once()
            except grpc.aio.AioRpcError as error:
                if error.code() in FATAL_CODES:
                    self._state.update(relay="refused", last_error=error.details())
                    raise Refused(f"{error.code().name}: {error.details()}", _reason(error)) from None
                served, reason = False, f"{error.code().name}: {error.details()}"
            else:
                reason = "the gateway closed the relay"
            failures = 0 if served else failures + 1
            # Full jitter keeps a fleet of daemons from reconnecting in lockstep after a gateway restart.
            delay = random.uniform(0.5, 1.0) * min(self._max_backoff, 0.5 * 2**failures)
            self._state.update(relay="backoff", last_error=reason, retry_in_seconds=round(delay, 2))
            log.warning("relay down (%s); reconnecting in %.1f s", reason, delay)
            await asyncio.sleep(delay)

    async def _serve_once(self) -> bool:
        """One connection, until it ends. True if it got as far as the gateway's welcome."""
        outbox: asyncio.Queue[relay_pb2.ConnectRequest] = asyncio.Queue()
        hello = relay_pb2.ConnectRequest(
            hello=relay_pb2.RelayHello(lattice_id=self._config.lattice_id, daemon_version=__version__)
        )

        async def requests() -> AsyncIterator[relay_pb2.ConnectRequest]:
            yield hello
            while True:
                yield await outbox.get()

        metadata = ((AUTHORIZATION_METADATA_KEY, f"Bearer {self._config.daemon_credential}"),)
        async with grpc.aio.insecure_channel(self._config.relay_endpoint, options=CHANNEL_OPTIONS) as channel:
            call = relay_pb2_grpc.RelayServiceStub(channel).Connect(requests(), metadata=metadata)
            welcome = await call.read()
            if not isinstance(welcome, relay_pb2.ConnectResponse) or welcome.WhichOneof("message") != "welcome":
                return False
            period = max(1, welcome.welcome.heartbeat_seconds or self._config.heartbeat_seconds)
            self._state.update(relay="connected", last_error="", heartbeat_seconds=period, in_flight=0)
            log.info("relay connected to %s as %s", self._config.relay_endpoint, self._config.lattice_id)
            last_heard = time.monotonic()

            async def heartbeats() -> None:
                while True:
                    await asyncio.sleep(period)
                    if time.monotonic() - last_heard > 2 * period:
                        log.warning("no word from the gateway for %d s: dropping the relay", 2 * period)
                        call.cancel()
                        return
                    stamp = now_timestamp()
                    outbox.put_nowait(relay_pb2.ConnectRequest(heartbeat=relay_pb2.RelayHeartbeat(send_time=stamp)))
                    self._state.update(last_heartbeat=stamp.ToJsonString(), in_flight=len(self._in_flight))

            beating = asyncio.create_task(heartbeats())
            try:
                while (message := await call.read()) is not grpc.aio.EOF:
                    assert isinstance(message, relay_pb2.ConnectResponse)
                    last_heard = time.monotonic()
                    kind = message.WhichOneof("message")
                    if kind == "work":
                        work_id = message.work.work_id
                        task = asyncio.create_task(self._run_work(message.work, outbox))
                        self._in_flight[work_id] = task
                        task.add_done_callback(functools.partial(self._forget, work_id))
                    elif kind == "cancel":
                        cancelled = self._in_flight.pop(message.cancel.work_id, None)
                        if cancelled is not None:
                            cancelled.cancel()
            except asyncio.CancelledError:
                if beating.done():  # our own watchdog cancelled the call
                    return True
                raise
            finally:
                beating.cancel()
                # The stream is gone, and with it whoever waited for these answers: stop the work now, and
                # wait for it to stop, so no work outlives its stream (or the daemon, when it exits next).
                running = [*self._in_flight.values(), beating]
                self._in_flight.clear()
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
        return True

    def _forget(self, work_id: str, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(work_id, None)

    async def _run_work(self, item: relay_pb2.WorkItem, outbox: asyncio.Queue[relay_pb2.ConnectRequest]) -> None:
        lattice_id, work_id = self._config.lattice_id, item.work_id

        answer_key = b""

        def send(event: relay_pb2.WorkEvent) -> None:
            event.lattice_id, event.work_id = lattice_id, work_id
            sealed = lock(event, answer_key) if answer_key else seal(event, self._gateway_key)
            outbox.put_nowait(
                relay_pb2.ConnectRequest(update=relay_pb2.WorkUpdate(work_id=work_id, sealed_event=sealed))
            )

        try:
            payload = open_sealed(
                item.sealed_payload, self._key, relay_pb2.WorkPayload, lattice_id=lattice_id, work_id=work_id
            )
            answer_key = payload.answer_key
        except LatticeError as error:
            log.warning("work %s refused: %s", work_id, error.message)
            send(work_failure(error))
            return
        # The gateway's request id on every line about this work, and its trace continued here.
        request_id = logs.request_id_or_new(payload.request_id or None)
        traced = {"lattice.runtime": lattice_id, "lattice.work_id": work_id}
        started, outcome = time.monotonic(), "cancelled"
        with (
            logs.bound_request_id(request_id, work_id=work_id),
            tracing.continued("lattice.daemon.work", payload.trace_context, traced) as span,
        ):
            try:
                request = chat_request_from_proto(payload.request)
                async with contextlib.aclosing(self._executor.stream(request)) as events:
                    async for event in events:
                        message = work_event(event)
                        if message is not None:
                            send(message)
                        if isinstance(event, Finish):
                            outcome = "ok"
            except LatticeError as error:
                outcome = error.reason.lower()
                span.fail(error)
                send(work_failure(error))
            except Exception as error:  # the daemon must answer every work item, whatever broke
                outcome = "backend_failed"
                span.fail(error)
                log.exception("work %s failed", work_id)
                send(work_failure(error))
            finally:
                # Never the prompt or the answer: what ran, how it ended, how long it took.
                work_log.info("work", outcome=outcome, duration_ms=round((time.monotonic() - started) * 1000))


def _reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason in the gateway's status details, or "" when there is none."""
    with contextlib.suppress(Exception):  # a status without details, or details we cannot read
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        for detail in status.details if status else ():
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return str(info.reason)
    return ""
