"""Two `ClusterHub`s in one process on a real NATS server: the routing layer without gateways. A fake
daemon (the relay-hub tests' own) holds its link on hub B; chats run on hub A."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from nats.aio.msg import Msg

from lattice.errors import BackendUnavailable, LatticeError, PermissionDenied
from lattice.server.relay.cluster import PRESENCE, ClusterHub, redacted
from lattice.server.relay.hub import LinkClosed
from lattice.v1 import chat_pb2, relay_pb2
from tests.cluster.processes import NatsServer, start_nats
from tests.gateway_process import free_port
from tests.personal_runtimes.test_relay_hub import DAEMON_KEY, GATEWAY_KEY, FakeDaemon

LATTICE_ID = "lat_a"
WAIT_SECONDS = 20.0


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = start_nats(tmp_path_factory.mktemp("nats"))
    yield server
    server.stop()


@pytest.fixture
async def hubs(nats_server: NatsServer) -> AsyncIterator[tuple[ClusterHub, ClusterHub]]:
    # Heartbeats of 10 s: nothing here waits on one.
    a, b = (ClusterHub(GATEWAY_KEY, 10.0, nats_server.url) for _ in range(2))
    await a.start()
    await b.start()
    yield a, b
    await a.stop()
    await b.stop()


async def until(condition: Callable[[], bool], what: str) -> None:
    """Polls `condition` on the event loop; fails after a generous timeout, never hangs."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        await asyncio.sleep(0.01)


async def held_on(b: ClusterHub, a: ClusterHub) -> FakeDaemon:
    """The daemon's stream on `b`, once `a` has heard of it."""
    daemon = FakeDaemon(b, b.attach(LATTICE_ID, "acct_demo", bytes(DAEMON_KEY.public_key)))
    await until(lambda: a.reachable(LATTICE_ID), "presence to reach the other hub")
    return daemon


async def collect(hub: ClusterHub, prompt: str) -> list[relay_pb2.WorkEvent]:
    return [event async for event in hub.run(LATTICE_ID, chat_pb2.ChatRequest(model=prompt))]


def finish() -> relay_pb2.WorkEvent:
    return relay_pb2.WorkEvent(finish=relay_pb2.WorkFinish())


async def test_work_crosses_replicas_and_answers_stream_back_in_order(hubs: tuple[ClusterHub, ClusterHub]) -> None:
    a, b = hubs
    daemon = await held_on(b, a)
    assert a.in_flight(LATTICE_ID) == 0 and a.last_seen(LATTICE_ID) is not None
    run = asyncio.create_task(collect(a, "hello"))
    payload = await daemon.next_work()
    assert payload.request.model == "hello"  # sealed by A to the daemon's key, opened by the daemon
    for word in ("one", "two", "three", "four", "five"):
        daemon.answer(payload.work_id, relay_pb2.WorkEvent(delta=word))
    daemon.answer(payload.work_id, finish())
    events = await asyncio.wait_for(run, WAIT_SECONDS)
    assert [e.delta for e in events[:-1]] == ["one", "two", "three", "four", "five"]
    assert events[-1].WhichOneof("event") == "finish"
    await until(lambda: b.in_flight(LATTICE_ID) == 0, "the holder to forget the finished work")
    assert daemon.cancelled == []


async def test_answers_sealed_to_the_gateway_key_open_on_the_other_replica(
    hubs: tuple[ClusterHub, ClusterHub],
) -> None:
    a, b = hubs  # replicas sharing relay.key, as the cluster docs ask
    daemon = await held_on(b, a)
    daemon.legacy = True
    run = asyncio.create_task(collect(a, "old daemon"))
    payload = await daemon.next_work()
    daemon.answer(payload.work_id, relay_pb2.WorkEvent(delta="hi"))
    daemon.answer(payload.work_id, finish())
    events = await asyncio.wait_for(run, WAIT_SECONDS)
    assert events[0].delta == "hi" and events[-1].WhichOneof("event") == "finish"


async def test_leaving_early_cancels_the_work_on_the_daemon(hubs: tuple[ClusterHub, ClusterHub]) -> None:
    a, b = hubs
    daemon = await held_on(b, a)
    events = a.run(LATTICE_ID, chat_pb2.ChatRequest(model="long"))
    first = asyncio.ensure_future(anext(events))
    payload = await daemon.next_work()
    daemon.answer(payload.work_id, relay_pb2.WorkEvent(delta="partial"))
    assert (await asyncio.wait_for(first, WAIT_SECONDS)).delta == "partial"
    await events.aclose()  # the app went away, or its deadline passed
    message = await asyncio.wait_for(daemon.link.outbox.get(), WAIT_SECONDS)
    assert not isinstance(message, LinkClosed) and message.cancel.work_id == payload.work_id


async def test_work_for_a_replica_that_died_is_cancelled_on_the_daemon(nats_server: NatsServer) -> None:
    # Heartbeats of 0.2 s: the holder beats each chat's inbox every 0.1 s.
    a, b = (ClusterHub(GATEWAY_KEY, 0.2, nats_server.url) for _ in range(2))
    await a.start()
    await b.start()
    try:
        daemon = await held_on(b, a)
        run = asyncio.create_task(collect(a, "orphaned"))
        payload = await daemon.next_work()
        assert a._nc is not None
        await a._nc.close()  # A dies mid-chat: no release will come
        message = await asyncio.wait_for(daemon.link.outbox.get(), WAIT_SECONDS)
        while not isinstance(message, LinkClosed) and message.WhichOneof("message") == "heartbeat":
            message = await asyncio.wait_for(daemon.link.outbox.get(), WAIT_SECONDS)
        assert not isinstance(message, LinkClosed) and message.cancel.work_id == payload.work_id
        run.cancel()
    finally:
        await a.stop()
        await b.stop()


async def test_a_stream_lost_on_the_holder_fails_the_remote_chat_at_once(hubs: tuple[ClusterHub, ClusterHub]) -> None:
    a, b = hubs
    daemon = await held_on(b, a)
    run = asyncio.create_task(collect(a, "anything"))
    await daemon.next_work()
    b.detach(daemon.link, BackendUnavailable("gone", reason="RUNTIME_UNREACHABLE"))
    with pytest.raises(BackendUnavailable) as failure:
        await asyncio.wait_for(run, WAIT_SECONDS)
    assert failure.value.reason == "RUNTIME_UNREACHABLE"
    await until(lambda: not a.reachable(LATTICE_ID), "the runtime to be offline on the other hub")


async def test_no_holder_means_unreachable_at_once_not_after_a_timeout(hubs: tuple[ClusterHub, ClusterHub]) -> None:
    a, b = hubs
    await held_on(b, a)
    assert b._nc is not None
    # B leaves without a word (A still believes the runtime is there). Drained, not just closed: the
    # server has dropped B's subscriptions when this returns; a crash leaves a moment in which a work
    # item is still routed to B's dead socket, and then the chat fails after two silent heartbeats.
    await b._nc.drain()
    assert a.reachable(LATTICE_ID)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="not connected") as failure:
        await collect(a, "anyone?")
    assert failure.value.reason == "RUNTIME_UNREACHABLE"
    assert time.monotonic() - started < 10.0  # the heartbeat (10 s) was not what ended it


async def test_revoking_on_one_replica_closes_the_stream_on_the_other(hubs: tuple[ClusterHub, ClusterHub]) -> None:
    a, b = hubs
    daemon = await held_on(b, a)
    forgotten: list[str] = []
    b.on_refused = forgotten.append
    run = asyncio.create_task(collect(b, "local work on the holder"))
    await daemon.next_work()
    a.close_runtime(LATTICE_ID, PermissionDenied("personal runtime lat_a is revoked", reason="RUNTIME_REVOKED"))
    closed = await asyncio.wait_for(_closed(daemon), WAIT_SECONDS)
    assert closed.reason == "RUNTIME_REVOKED"
    with pytest.raises(PermissionDenied):
        await asyncio.wait_for(run, WAIT_SECONDS)
    assert forgotten == [LATTICE_ID]
    assert not a.reachable(LATTICE_ID) and not b.reachable(LATTICE_ID)


async def test_a_daemon_reconnecting_elsewhere_ends_its_old_stream(hubs: tuple[ClusterHub, ClusterHub]) -> None:
    a, b = hubs
    old = await held_on(b, a)
    a.attach(LATTICE_ID, "acct_demo", bytes(DAEMON_KEY.public_key))
    closed = await asyncio.wait_for(_closed(old), WAIT_SECONDS)
    assert "another replica" in closed.message
    await until(lambda: b.reachable(LATTICE_ID), "the new holder to be announced")


async def test_a_late_announcement_from_the_old_holder_does_not_hide_the_new_one(
    hubs: tuple[ClusterHub, ClusterHub],
) -> None:
    a, _ = hubs
    client = a._nc
    assert client is not None
    key = base64.b64encode(bytes(DAEMON_KEY.public_key)).decode()

    async def hear(replica: str, up: bool, since: float) -> None:
        body = {"latticeId": LATTICE_ID, "replica": replica, "up": up, "publicKey": key, "since": since}
        await a._on_presence(Msg(client, PRESENCE, data=json.dumps(body).encode()))

    await hear("new", True, 200.0)  # the daemon moved to replica "new"
    await hear("old", True, 100.0)  # "old" announced before it heard the daemon had gone
    await hear("old", False, 0.0)  # then let it go
    assert a.reachable(LATTICE_ID)
    await hear("new", False, 0.0)
    assert not a.reachable(LATTICE_ID)


async def _closed(daemon: FakeDaemon) -> LatticeError:
    while True:
        message = await daemon.link.outbox.get()
        if isinstance(message, LinkClosed):
            return message.error


def test_the_broker_must_be_reachable_to_start() -> None:
    hub = ClusterHub(GATEWAY_KEY, 10.0, f"nats://lattice:s3cret@127.0.0.1:{free_port()}")
    refusal = r"cannot reach the broker at nats://\*\*\*@127\.0\.0\.1:\d+: no answer"
    with pytest.raises(ConnectionError, match=refusal) as failed:
        asyncio.run(hub.start())
    assert "s3cret" not in str(failed.value)  # the URL's credentials are never repeated


def test_the_broker_url_is_logged_without_its_credentials() -> None:
    assert redacted("nats://user:pw@10.0.0.5:4222") == "nats://***@10.0.0.5:4222"
    assert redacted("nats://token@nats.internal") == "nats://***@nats.internal"
    assert redacted("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
