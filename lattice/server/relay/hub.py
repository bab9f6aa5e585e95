"""Connected daemons and the work in flight on each one's stream.

One `RuntimeLink` per connected daemon: an outbox the servicer drains onto the stream, and a queue per
work item that the daemon's answers are sorted into by work id. Nothing here knows gRPC; the relay
servicer moves messages between a link and its stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from nacl.public import PrivateKey, SealedBox
from nacl.secret import SecretBox

from lattice.errors import BackendFailed, LatticeError, RuntimeUnreachable
from lattice.observability import logs, metrics, tracing
from lattice.timestamps import now_timestamp
from lattice.v1 import chat_pb2, relay_pb2
from lattice.wire.sealing import new_answer_key, open_box, seal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkClosed:
    error: LatticeError


class RuntimeLink:
    """One daemon's stream, as the domain sees it."""

    def __init__(self, lattice_id: str, account_id: str, public_key: bytes) -> None:
        self.lattice_id = lattice_id
        self.account_id = account_id
        self.public_key = public_key
        self.outbox: asyncio.Queue[relay_pb2.ConnectResponse | LinkClosed] = asyncio.Queue()
        self.work: dict[str, asyncio.Queue[relay_pb2.WorkEvent | LinkClosed]] = {}
        self.answer_boxes: dict[str, SecretBox] = {}
        """Each work item's answer key, as a box that opens what the daemon sends back."""
        self.last_seen = time.monotonic()
        self.closed: LinkClosed | None = None

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def send(self, message: relay_pb2.ConnectResponse) -> None:
        if self.closed is None:
            self.outbox.put_nowait(message)

    def close(self, error: LatticeError) -> None:
        """Fails every work item in flight with `error` and tells the stream's writer to stop."""
        if self.closed is not None:
            return
        self.closed = LinkClosed(error)
        for queue in self.work.values():
            queue.put_nowait(self.closed)
        self.outbox.put_nowait(self.closed)


def work_payload(
    lattice_id: str, work_id: str, request: chat_pb2.ChatRequest, span: tracing.Span, answer_key: bytes
) -> relay_pb2.WorkPayload:
    """What the daemon is sent for one chat (sealed to its key by the caller)."""
    return relay_pb2.WorkPayload(
        lattice_id=lattice_id,
        work_id=work_id,
        request=request,
        request_id=logs.current_request_id() or "",
        trace_context=tracing.carrier(span),
        answer_key=answer_key,
    )


class RelayHub:
    """The relay of this one process: daemons connected here serve chats that arrive here.
    `lattice.server.relay.cluster.ClusterHub` extends it across replicas."""

    def __init__(self, key: PrivateKey, heartbeat_seconds: float) -> None:
        self.key = key
        self.heartbeat_seconds = heartbeat_seconds
        self._links: dict[str, RuntimeLink] = {}

    @property
    def public_key(self) -> bytes:
        return bytes(self.key.public_key)

    def reachable(self, lattice_id: str) -> bool:
        return lattice_id in self._links

    def absence(self, lattice_id: str) -> str:
        """Why a paired runtime is not `reachable`, for its refusal."""
        return "its daemon is not connected"

    def in_flight(self, lattice_id: str) -> int:
        link = self._links.get(lattice_id)
        return len(link.work) if link else 0

    def last_seen(self, lattice_id: str) -> float | None:
        """When (`time.monotonic()`) the connected daemon was last heard from; None when not connected."""
        link = self._links.get(lattice_id)
        return link.last_seen if link else None

    def attach(self, lattice_id: str, account_id: str, public_key: bytes) -> RuntimeLink:
        """The daemon's new stream; an older one for the same runtime (a reconnect the gateway has not
        noticed yet) is closed."""
        previous = self._links.get(lattice_id)
        if previous is not None:
            previous.close(RuntimeUnreachable(lattice_id, "the daemon reconnected"))
        link = RuntimeLink(lattice_id, account_id, public_key)
        self._links[lattice_id] = link
        metrics.relay_streams(len(self._links))
        metrics.relay_work_in_flight(lattice_id, 0)
        log.info("personal runtime %s connected", lattice_id)
        return link

    def detach(self, link: RuntimeLink, error: LatticeError) -> None:
        link.close(error)
        if self._links.get(link.lattice_id) is link:
            del self._links[link.lattice_id]
            metrics.relay_streams(len(self._links))
            metrics.relay_runtime_gone(link.lattice_id)
            log.info("personal runtime %s disconnected: %s", link.lattice_id, error.message)

    def _count_work(self, link: RuntimeLink) -> None:
        if self._links.get(link.lattice_id) is link:  # a link already replaced or gone reports nothing
            metrics.relay_work_in_flight(link.lattice_id, len(link.work))

    def close_runtime(self, lattice_id: str, error: LatticeError) -> None:
        """Ends the runtime's stream now (it was revoked, say), failing its work with `error`."""
        link = self._links.get(lattice_id)
        if link is not None:
            self.detach(link, error)

    def close_all(self, why: str) -> None:
        """Ends every relay stream (the gateway is stopping): daemons reconnect to the next one."""
        for link in list(self._links.values()):
            self.detach(link, RuntimeUnreachable(link.lattice_id, why))

    def receive(self, link: RuntimeLink, update: relay_pb2.WorkUpdate) -> None:
        """Sorts one answer from the daemon into its work item's queue."""
        link.touch()
        queue = link.work.get(update.work_id)
        if queue is None:
            return  # the work item was cancelled or failed already: a late answer is dropped
        queue.put_nowait(self.open_update(link.lattice_id, update, link.answer_boxes.get(update.work_id)))

    def open_update(self, lattice_id: str, update: relay_pb2.WorkUpdate, box: SecretBox | None) -> relay_pb2.WorkEvent:
        """The event inside one of the daemon's answers, opened with its work item's answer key."""
        ids = {"lattice_id": lattice_id, "work_id": update.work_id}
        try:
            return open_box(update.sealed_event, box or SealedBox(self.key), relay_pb2.WorkEvent, **ids)
        except BackendFailed:
            if box is None:
                raise
            # A daemon that predates answer keys seals its answers to the gateway's key instead.
            return open_box(update.sealed_event, SealedBox(self.key), relay_pb2.WorkEvent, **ids)

    async def run(self, lattice_id: str, request: chat_pb2.ChatRequest) -> AsyncGenerator[relay_pb2.WorkEvent, None]:
        """Sends `request` to the runtime's daemon and yields its events until the finish or failure.
        Closing the generator early sends a cancel down the stream."""
        link = self._links.get(lattice_id)
        if link is None:
            raise RuntimeUnreachable(lattice_id, "its daemon is not connected")
        work_id = uuid.uuid4().hex
        queue: asyncio.Queue[relay_pb2.WorkEvent | LinkClosed] = asyncio.Queue()
        link.work[work_id] = queue
        answer_key = new_answer_key()
        link.answer_boxes[work_id] = SecretBox(answer_key)
        self._count_work(link)
        span = tracing.start("lattice.relay.work", {"lattice.runtime": lattice_id, "lattice.work_id": work_id})
        payload = work_payload(lattice_id, work_id, request, span, answer_key)
        done = False
        try:
            link.send(
                relay_pb2.ConnectResponse(
                    work=relay_pb2.WorkItem(work_id=work_id, sealed_payload=seal(payload, link.public_key))
                )
            )
            while True:
                item = await queue.get()
                if isinstance(item, LinkClosed):
                    done = True
                    span.fail(item.error)
                    raise item.error
                if item.WhichOneof("event") in ("finish", "failure"):
                    done = True
                    if item.WhichOneof("event") == "failure":
                        span.set("lattice.failure", item.failure.reason)
                yield item
                if done:
                    return
        finally:
            link.work.pop(work_id, None)
            link.answer_boxes.pop(work_id, None)
            self._count_work(link)
            span.end()
            if not done:
                link.send(relay_pb2.ConnectResponse(cancel=relay_pb2.WorkCancel(work_id=work_id, reason="cancelled")))

    async def start(self) -> None:
        """Nothing to connect to for one process; a cluster's hub joins its broker here."""

    async def stop(self) -> None:
        self.close_all("the gateway is shutting down")

    async def keep_alive(self, link: RuntimeLink) -> None:
        """Sends heartbeats and ends the link when the daemon has been silent for two periods."""
        while link.closed is None:
            await asyncio.sleep(self.heartbeat_seconds / 2)
            if time.monotonic() - link.last_seen > 2 * self.heartbeat_seconds:
                metrics.relay_heartbeats_missed(link.lattice_id)
                self.detach(link, RuntimeUnreachable(link.lattice_id, "missed heartbeats"))
                return
            link.send(relay_pb2.ConnectResponse(heartbeat=relay_pb2.RelayHeartbeat(send_time=now_timestamp())))
