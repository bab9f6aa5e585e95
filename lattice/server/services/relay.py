"""RelayService.Connect: moves messages between one daemon's stream and its link in the hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc

from lattice.errors import InvalidArgument, LatticeError, RuntimeNotPaired, RuntimeUnreachable
from lattice.server.relay.hub import LinkClosed, RelayHub, RuntimeLink
from lattice.server.services.auth import current_principal
from lattice.server.services.status import abort_with_error
from lattice.server.store.runtimes import RuntimeRecords
from lattice.v1 import relay_pb2, relay_pb2_grpc

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[relay_pb2.ConnectRequest, relay_pb2.ConnectResponse]
HELLO_TIMEOUT_SECONDS = 10.0


class RelayServicer(relay_pb2_grpc.RelayServiceServicer):
    def __init__(self, hub: RelayHub, records: RuntimeRecords) -> None:
        self._hub = hub
        self._records = records

    async def Connect(
        self, request_iterator: AsyncIterator[relay_pb2.ConnectRequest], context: Context
    ) -> AsyncIterator[relay_pb2.ConnectResponse]:
        principal = current_principal()
        assert principal is not None and principal.kind == "daemon"  # the interceptor lets only daemons in
        try:
            link = await self._open(principal.lattice_id, request_iterator)
        except LatticeError as error:
            await abort_with_error(context, error)
        yield relay_pb2.ConnectResponse(
            welcome=relay_pb2.RelayWelcome(
                lattice_id=link.lattice_id, heartbeat_seconds=round(self._hub.heartbeat_seconds)
            )
        )
        reader = asyncio.create_task(self._read(link, request_iterator))
        keeper = asyncio.create_task(self._hub.keep_alive(link))
        try:
            while True:
                message = await link.outbox.get()
                if isinstance(message, LinkClosed):
                    await abort_with_error(context, message.error)
                yield message
        finally:
            self._hub.detach(link, RuntimeUnreachable(link.lattice_id, "its relay stream ended"))
            for task in (reader, keeper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _open(self, lattice_id: str, requests: AsyncIterator[relay_pb2.ConnectRequest]) -> RuntimeLink:
        try:
            first = await asyncio.wait_for(anext(requests), HELLO_TIMEOUT_SECONDS)
        except (TimeoutError, StopAsyncIteration):
            raise InvalidArgument("the relay opens with a RelayHello", field="hello") from None
        if first.WhichOneof("message") != "hello" or first.hello.lattice_id != lattice_id:
            raise InvalidArgument(f"the relay opens with a RelayHello for {lattice_id}", field="hello.lattice_id")
        record = await self._records.by_id(lattice_id)
        if record is None or record.public_key is None:
            raise RuntimeNotPaired(f"personal runtime {lattice_id} is not paired")
        log.info("daemon %s connected (version %s)", lattice_id, first.hello.daemon_version or "unknown")
        return self._hub.attach(lattice_id, record.account_id, record.public_key)

    async def _read(self, link: RuntimeLink, requests: AsyncIterator[relay_pb2.ConnectRequest]) -> None:
        """Everything the daemon sends after its hello; the stream ending ends the link."""
        why = "its relay stream ended"
        try:
            async for request in requests:
                link.touch()
                if request.WhichOneof("message") == "update":
                    try:
                        self._hub.receive(link, request.update)
                    except LatticeError as error:
                        log.warning("dropped a relay update from %s: %s", link.lattice_id, error.message)
        except grpc.aio.AioRpcError as error:  # pragma: no cover - depends on how the peer went away
            why = f"its relay stream failed: {error.code().name}"
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a broken stream must end the link, whatever broke it
            why = f"its relay stream failed: {error}"
        self._hub.detach(link, RuntimeUnreachable(link.lattice_id, why))
