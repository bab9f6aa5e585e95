"""The relay across gateway replicas, through NATS (`broker_url`): a chat for a runtime whose daemon
holds its stream on another replica is routed there.

- Work: the replica holding a runtime's stream subscribes to `lattice.relay.work.<latticeId>` (one
  queue group, so a work item reaches one holder even while a reconnect briefly leaves two). The
  replica a chat lands on seals the work item to the daemon's key itself and publishes it with a
  reply inbox; the holder answers `accepted`, passes the daemon's sealed answers on in order, beats
  while the work runs, and `closed` (with the reason) when the stream goes. No subscriber means NATS
  answers "no responders" at once: the runtime is offline. The holder never sees a chat in clear:
  the answer key travels inside the sealed payload.
- The chat's replica sends `release` to the holder when the chat ends, early (a cancel, a deadline:
  the holder cancels the work on the daemon) or not (the holder forgets it). A chat's replica that
  died sends nothing: the holder's next beat to its inbox comes back "no responders", and the work is
  cancelled on the daemon then.
- Presence: each holder announces its runtimes on `lattice.relay.presence` when a stream opens or
  ends and every half heartbeat; each replica keeps what it heard, for three heartbeats, so runtime
  status reads the same everywhere. A replica (re)joining asks everyone to announce again.
- Closing: `lattice.relay.close.<latticeId>` ends the runtime's stream wherever it is held (a
  revocation, a re-pairing, or the daemon having reconnected to another replica).

Messages are protobuf (`WorkItem`, `WorkUpdate`) or empty, with their kind in NATS headers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import urllib.parse
import uuid
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import nats
from google.protobuf.message import DecodeError
from nacl.public import PrivateKey
from nacl.secret import SecretBox
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from lattice.errors import BackendUnavailable, LatticeError, PermissionDenied, RuntimeUnreachable
from lattice.observability import tracing
from lattice.server.relay.hub import LinkClosed, RelayHub, RuntimeLink, work_payload
from lattice.v1 import chat_pb2, relay_pb2
from lattice.wire.sealing import new_answer_key, seal

log = logging.getLogger(__name__)

PREFIX = "lattice.relay"
PRESENCE = f"{PREFIX}.presence"
PRESENCE_SYNC = f"{PREFIX}.presence.sync"
KIND = "Lattice-Kind"
REPLICA = "Lattice-Replica"
REASON = "Lattice-Reason"
FINISHED = "Lattice-Finished"
NO_RESPONDERS = "503"
BROKER_DOWN = "the cluster's broker (NATS) is not reachable from this replica"
CONNECT_TIMEOUT_SECONDS = 5.0
RECONNECT_WAIT_SECONDS = 0.5
# Errors whose reason says the runtime itself was refused, not just unreachable.
_REFUSALS = ("RUNTIME_REVOKED", "RUNTIME_REPAIRED")


def _work_subject(lattice_id: str) -> str:
    return f"{PREFIX}.work.{lattice_id}"


def _close_subject(lattice_id: str) -> str:
    return f"{PREFIX}.close.{lattice_id}"


def _release_subject(replica: str) -> str:
    return f"{PREFIX}.replica.{replica}.release"


def redacted(url: str) -> str:
    """The broker's URL without the credentials it may carry, for logs and errors."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def error_from(lattice_id: str, reason: str, message: str) -> LatticeError:
    """The error another replica reported, as this one raises it."""
    if reason in _REFUSALS:
        return PermissionDenied(message, reason=reason)
    if not reason or reason == "RUNTIME_UNREACHABLE":
        return RuntimeUnreachable(lattice_id, message.rsplit(": ", 1)[-1] if message else "its stream ended")
    return BackendUnavailable(message, reason=reason)


@dataclass
class Presence:
    """A runtime connected to some replica, as last announced."""

    replica: str
    public_key: bytes
    in_flight: int
    since: float
    """When (the holder's wall clock) the stream was attached: of two replicas claiming it, the later."""
    heard: float = field(default_factory=time.monotonic)


@dataclass
class RemoteWork:
    """A work item held here for a chat on another replica: the daemon's answers go to `inbox`."""

    link: RuntimeLink
    inbox: str
    queue: asyncio.Queue[relay_pb2.WorkUpdate | LinkClosed] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


_BROKER_LOST = object()
"""Put into a waiting chat's queue when the broker connection drops: it fails at once."""


class ClusterHub(RelayHub):
    def __init__(self, key: PrivateKey, heartbeat_seconds: float, broker_url: str) -> None:
        super().__init__(key, heartbeat_seconds)
        self.broker_url = broker_url
        self.replica = uuid.uuid4().hex[:12]
        self._nc: Client | None = None
        self._presence: dict[str, Presence] = {}
        self._attached_at: dict[str, float] = {}
        self._subscriptions: dict[str, asyncio.Task[Subscription]] = {}
        self._remote: dict[str, RemoteWork] = {}
        self._waiting: dict[str, asyncio.Queue[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._announcer: asyncio.Task[None] | None = None
        self._stopping = False
        self.on_refused: Callable[[str], None] = lambda _lattice_id: None
        """Told the id of a runtime revoked or re-paired on another replica: what this replica cached
        about it is stale."""

    # -- the broker connection

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def start(self) -> None:
        connecting = nats.connect(
            self.broker_url,
            name=f"lattice-{self.replica}",
            connect_timeout=RECONNECT_WAIT_SECONDS * 4,
            reconnect_time_wait=RECONNECT_WAIT_SECONDS,
            max_reconnect_attempts=-1,  # a broker outage never needs a gateway restart
            allow_reconnect=True,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            error_cb=self._on_error,
        )
        try:
            # Unbounded reconnects make the first connect retry forever too: a replica started without
            # its broker says so instead of serving a relay that reaches no one.
            self._nc = await asyncio.wait_for(connecting, CONNECT_TIMEOUT_SECONDS)
        except Exception as error:
            why = str(error) or f"no answer within {CONNECT_TIMEOUT_SECONDS:.0f} s"
            raise ConnectionError(f"cannot reach the broker at {redacted(self.broker_url)}: {why}") from error
        await self._nc.subscribe(PRESENCE, cb=self._on_presence)
        await self._nc.subscribe(PRESENCE_SYNC, cb=self._on_presence_sync)
        await self._nc.subscribe(f"{PREFIX}.close.*", cb=self._on_close)
        await self._nc.subscribe(_release_subject(self.replica), cb=self._on_release)
        await self._nc.subscribe(f"{_release_subject(self.replica)}.gone.*", cb=self._on_caller_gone)
        await self._nc.publish(PRESENCE_SYNC, b"")
        self._announcer = asyncio.create_task(self._announce_periodically())
        log.info("cluster mode: replica %s on broker %s", self.replica, redacted(self.broker_url))

    async def stop(self) -> None:
        self._stopping = True
        await super().stop()
        if self._announcer is not None:
            self._announcer.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()

    async def _on_disconnected(self) -> None:
        if self._stopping:
            return  # our own drain at shutdown
        log.warning("cluster broker connection lost: personal runtimes on other replicas are unreachable")
        for queue in self._waiting.values():
            queue.put_nowait(_BROKER_LOST)
        # Their callers on other replicas failed the same way: the daemon stops working for no one.
        for work_id in list(self._remote):
            self._release(work_id, finished=False)

    async def _on_reconnected(self) -> None:
        log.info("cluster broker connection restored")
        await self._publish(PRESENCE_SYNC, b"")
        await self._announce_all()

    async def _on_error(self, error: Exception) -> None:
        log.debug("cluster broker: %s", error)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, subject: str, data: bytes, reply: str = "", **headers: str) -> None:
        """Best effort: with the broker gone, there is no one to tell (they learn it on their own)."""
        if not self.connected:
            return
        assert self._nc is not None
        try:
            await self._nc.publish(subject, data, reply=reply, headers=headers or None)
        except Exception as error:  # the connection dropped between the check and the write
            log.debug("cluster publish to %s failed: %s", subject, error)

    # -- presence

    def _peer(self, lattice_id: str) -> Presence | None:
        peer = self._presence.get(lattice_id)
        if peer is None or time.monotonic() - peer.heard > 3 * self.heartbeat_seconds:
            return None
        return peer

    def reachable(self, lattice_id: str) -> bool:
        if super().reachable(lattice_id):
            return True
        return self.connected and self._peer(lattice_id) is not None

    def absence(self, lattice_id: str) -> str:
        return super().absence(lattice_id) if self.connected else BROKER_DOWN

    def in_flight(self, lattice_id: str) -> int:
        if super().reachable(lattice_id):
            held = sum(1 for remote in self._remote.values() if remote.link.lattice_id == lattice_id)
            return super().in_flight(lattice_id) + held
        peer = self._peer(lattice_id) if self.connected else None
        return peer.in_flight if peer else 0

    def last_seen(self, lattice_id: str) -> float | None:
        local = super().last_seen(lattice_id)
        if local is not None:
            return local
        peer = self._peer(lattice_id) if self.connected else None
        return peer.heard if peer else None

    async def _announce(self, lattice_id: str) -> None:
        link = self._links.get(lattice_id)
        body: dict[str, Any] = {"latticeId": lattice_id, "replica": self.replica, "up": link is not None}
        if link is not None:
            body["publicKey"] = base64.b64encode(link.public_key).decode()
            body["inFlight"] = self.in_flight(lattice_id)
            body["since"] = self._attached_at.get(lattice_id, 0.0)
        await self._publish(PRESENCE, json.dumps(body).encode())

    async def _announce_all(self) -> None:
        for lattice_id in list(self._links):
            await self._announce(lattice_id)

    async def _announce_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds / 2)
            await self._announce_all()
            for work_id, remote in list(self._remote.items()):
                # The chat waiting elsewhere learns we are alive; we learn whether it still is: a beat
                # to an inbox nobody listens on any more (its replica died) comes back "no responders".
                gone = f"{_release_subject(self.replica)}.gone.{work_id}"
                await self._publish(remote.inbox, b"", reply=gone, **{KIND: "beat"})

    async def _on_presence(self, msg: Msg) -> None:
        try:
            body = json.loads(msg.data)
            lattice_id, replica = str(body["latticeId"]), str(body["replica"])
            if replica == self.replica:
                return
            if body["up"]:
                since = float(body.get("since", 0.0))
                known = self._presence.get(lattice_id)
                if known is not None and known.replica != replica and known.since > since:
                    return  # an announcement from before the daemon moved, overtaken by the new holder's
                public_key = base64.b64decode(body["publicKey"])
                self._presence[lattice_id] = Presence(replica, public_key, int(body.get("inFlight", 0)), since)
            elif (gone := self._presence.get(lattice_id)) is not None and gone.replica == replica:
                del self._presence[lattice_id]
        except (ValueError, KeyError, TypeError) as error:
            log.warning("ignored a malformed presence message: %s", error)

    async def _on_presence_sync(self, _msg: Msg) -> None:
        await self._announce_all()

    # -- streams held here

    def attach(self, lattice_id: str, account_id: str, public_key: bytes) -> RuntimeLink:
        previous = self._links.get(lattice_id)
        link = super().attach(lattice_id, account_id, public_key)
        if previous is not None and previous.closed is not None:
            self._fail_remote(previous, previous.closed.error)
        self._presence.pop(lattice_id, None)
        self._attached_at[lattice_id] = time.time()
        if lattice_id not in self._subscriptions:
            self._subscriptions[lattice_id] = asyncio.get_running_loop().create_task(self._subscribe(lattice_id))
        # A stream this daemon left open on another replica is stale now: it ends there.
        why = "the daemon reconnected to another replica"
        self._spawn(self._publish(_close_subject(lattice_id), why.encode(), **{REPLICA: self.replica}))
        return link

    async def _subscribe(self, lattice_id: str) -> Subscription:
        assert self._nc is not None
        subscription = await self._nc.subscribe(_work_subject(lattice_id), queue="holders", cb=self._on_work)
        await self._announce(lattice_id)  # after the subscription: whoever hears it can route work here
        return subscription

    def detach(self, link: RuntimeLink, error: LatticeError) -> None:
        current = self._links.get(link.lattice_id) is link
        super().detach(link, error)
        self._fail_remote(link, error)
        if current:
            self._attached_at.pop(link.lattice_id, None)
            subscribing = self._subscriptions.pop(link.lattice_id, None)
            if subscribing is not None:
                self._spawn(self._unsubscribe(subscribing))
            self._spawn(self._announce(link.lattice_id))

    async def _unsubscribe(self, subscribing: asyncio.Task[Subscription]) -> None:
        with contextlib.suppress(Exception):
            await (await subscribing).unsubscribe()

    def _fail_remote(self, link: RuntimeLink, error: LatticeError) -> None:
        for remote in self._remote.values():
            if remote.link is link:
                remote.queue.put_nowait(LinkClosed(error))

    def close_runtime(self, lattice_id: str, error: LatticeError) -> None:
        super().close_runtime(lattice_id, error)
        self._presence.pop(lattice_id, None)
        message, headers = error.message.encode(), {REASON: error.reason, REPLICA: self.replica}
        self._spawn(self._publish(_close_subject(lattice_id), message, **headers))

    async def _on_close(self, msg: Msg) -> None:
        headers = msg.headers or {}
        if headers.get(REPLICA) == self.replica:
            return
        lattice_id = msg.subject.rsplit(".", 1)[-1]
        error = error_from(lattice_id, headers.get(REASON, ""), msg.data.decode(errors="replace"))
        if error.reason in _REFUSALS:
            self._presence.pop(lattice_id, None)
            self.on_refused(lattice_id)
        super().close_runtime(lattice_id, error)

    def receive(self, link: RuntimeLink, update: relay_pb2.WorkUpdate) -> None:
        remote = self._remote.get(update.work_id)
        if remote is None or remote.link is not link:
            super().receive(link, update)
            return
        link.touch()
        remote.queue.put_nowait(update)  # passed on sealed: only the chat's replica has the answer key

    async def _on_work(self, msg: Msg) -> None:
        lattice_id = msg.subject.rsplit(".", 1)[-1]
        if not msg.reply:
            return
        link = self._links.get(lattice_id)
        if link is None or link.closed is not None:
            await self._publish_error(msg.reply, RuntimeUnreachable(lattice_id, "its daemon is not connected"))
            return
        try:
            item = relay_pb2.WorkItem.FromString(msg.data)
        except DecodeError:
            log.warning("ignored a malformed work item for %s", lattice_id)
            return
        remote = RemoteWork(link, msg.reply)
        self._remote[item.work_id] = remote
        await self._publish(msg.reply, b"", **{KIND: "accepted", REPLICA: self.replica})
        link.send(relay_pb2.ConnectResponse(work=item))
        remote.task = asyncio.get_running_loop().create_task(self._forward(item.work_id, remote))

    async def _forward(self, work_id: str, remote: RemoteWork) -> None:
        """The daemon's answers to one work item, in the order it sent them, to the chat's replica."""
        try:
            while True:
                item = await remote.queue.get()
                if isinstance(item, LinkClosed):
                    await self._publish_error(remote.inbox, item.error)
                    return
                await self._publish(remote.inbox, item.SerializeToString(), **{KIND: "update"})
        finally:
            if self._remote.get(work_id) is remote:
                del self._remote[work_id]

    async def _publish_error(self, inbox: str, error: LatticeError) -> None:
        await self._publish(inbox, error.message.encode(), **{KIND: "closed", REASON: error.reason})

    async def _on_release(self, msg: Msg) -> None:
        self._release(msg.data.decode(errors="replace"), finished=(msg.headers or {}).get(FINISHED) == "1")

    async def _on_caller_gone(self, msg: Msg) -> None:
        if (msg.headers or {}).get("Status") == NO_RESPONDERS:
            work_id = msg.subject.rsplit(".", 1)[-1]
            log.info("the replica that sent work %s is gone: cancelling it on the daemon", work_id)
            self._release(work_id, finished=False)

    def _release(self, work_id: str, *, finished: bool) -> None:
        remote = self._remote.pop(work_id, None)
        if remote is None:
            return
        if remote.task is not None:
            remote.task.cancel()
        if not finished:
            cancel = relay_pb2.WorkCancel(work_id=work_id, reason="cancelled")
            remote.link.send(relay_pb2.ConnectResponse(cancel=cancel))

    # -- chats landing here for a runtime held elsewhere

    async def run(self, lattice_id: str, request: chat_pb2.ChatRequest) -> AsyncGenerator[relay_pb2.WorkEvent, None]:
        if super().reachable(lattice_id):
            events = super().run(lattice_id, request)
        else:
            events = self._run_remote(lattice_id, request)
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()

    async def _run_remote(
        self, lattice_id: str, request: chat_pb2.ChatRequest
    ) -> AsyncGenerator[relay_pb2.WorkEvent, None]:
        if not self.connected:
            raise RuntimeUnreachable(lattice_id, BROKER_DOWN)
        peer = self._peer(lattice_id)
        if peer is None:
            raise RuntimeUnreachable(lattice_id, "its daemon is not connected")
        assert self._nc is not None
        work_id, answer_key = uuid.uuid4().hex, new_answer_key()
        span = tracing.start("lattice.relay.work", {"lattice.runtime": lattice_id, "lattice.work_id": work_id})
        sealed = seal(work_payload(lattice_id, work_id, request, span, answer_key), peer.public_key)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._waiting[work_id] = queue

        async def deliver(msg: Msg) -> None:
            queue.put_nowait(msg)

        inbox = self._nc.new_inbox()
        subscription = await self._nc.subscribe(inbox, cb=deliver)
        holder: str | None = None
        done = False
        try:
            item = relay_pb2.WorkItem(work_id=work_id, sealed_payload=sealed)
            await self._nc.publish(_work_subject(lattice_id), item.SerializeToString(), reply=inbox)
            while not done:
                msg = await self._next(lattice_id, queue)
                headers = msg.headers or {}
                if headers.get("Status") == NO_RESPONDERS:
                    raise RuntimeUnreachable(lattice_id, "its daemon is not connected")
                kind = headers.get(KIND)
                if kind == "accepted":
                    holder = headers.get(REPLICA)
                elif kind == "closed":
                    raise error_from(lattice_id, headers.get(REASON, ""), msg.data.decode(errors="replace"))
                elif kind == "update":
                    update = relay_pb2.WorkUpdate.FromString(msg.data)
                    event = self.open_update(lattice_id, update, SecretBox(answer_key))
                    done = event.WhichOneof("event") in ("finish", "failure")
                    yield event
        except LatticeError as error:
            span.fail(error)
            raise
        finally:
            self._waiting.pop(work_id, None)
            span.end()
            if holder is not None:
                await self._publish(_release_subject(holder), work_id.encode(), **{FINISHED: "1" if done else "0"})
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _next(self, lattice_id: str, queue: asyncio.Queue[Any]) -> Msg:
        """The holder's next message; it beats every half heartbeat, so two silent heartbeats mean the
        replica (or the broker) is gone."""
        try:
            msg = await asyncio.wait_for(queue.get(), 2 * self.heartbeat_seconds)
        except TimeoutError:
            raise RuntimeUnreachable(lattice_id, "the replica holding its stream stopped answering") from None
        if msg is _BROKER_LOST:
            raise RuntimeUnreachable(lattice_id, BROKER_DOWN)
        assert isinstance(msg, Msg)
        return msg
