"""The gateway's relay domain without a network: sealed payloads bound to their work item, work
dispatched to a link, answers sorted by work id, cancellation and link loss."""

from __future__ import annotations

import asyncio

import pytest
from nacl.public import PrivateKey

from lattice.errors import BackendFailed, BackendUnavailable
from lattice.server.relay.hub import LinkClosed, RelayHub, RuntimeLink
from lattice.v1 import chat_pb2, relay_pb2
from lattice.wire.sealing import lock, open_sealed, seal

GATEWAY_KEY = PrivateKey.generate()
DAEMON_KEY = PrivateKey.generate()


def test_a_sealed_payload_opens_only_for_its_own_work_item() -> None:
    payload = relay_pb2.WorkPayload(lattice_id="lat_a", work_id="w1", request=chat_pb2.ChatRequest(model="m"))
    sealed = seal(payload, bytes(DAEMON_KEY.public_key))
    assert b"lat_a" not in sealed  # ciphertext on the wire
    opened = open_sealed(sealed, DAEMON_KEY, relay_pb2.WorkPayload, lattice_id="lat_a", work_id="w1")
    assert opened.request.model == "m"
    with pytest.raises(BackendFailed, match="another work item"):
        open_sealed(sealed, DAEMON_KEY, relay_pb2.WorkPayload, lattice_id="lat_a", work_id="w2")
    with pytest.raises(BackendFailed, match="did not open"):
        open_sealed(sealed, GATEWAY_KEY, relay_pb2.WorkPayload, lattice_id="lat_a", work_id="w1")


class FakeDaemon:
    """Reads a link's outbox as the relay servicer would, and answers like a daemon."""

    def __init__(self, hub: RelayHub, link: RuntimeLink) -> None:
        self.hub, self.link = hub, link
        self.cancelled: list[str] = []
        self.answer_keys: dict[str, bytes] = {}
        self.legacy = False
        """Answer as a daemon from before answer keys: sealed to the gateway's public key."""

    async def next_work(self) -> relay_pb2.WorkPayload:
        while True:
            message = await self.link.outbox.get()
            assert not isinstance(message, LinkClosed)
            if message.WhichOneof("message") == "work":
                payload = open_sealed(
                    message.work.sealed_payload,
                    DAEMON_KEY,
                    relay_pb2.WorkPayload,
                    lattice_id=self.link.lattice_id,
                    work_id=message.work.work_id,
                )
                self.answer_keys[payload.work_id] = payload.answer_key
                return payload
            if message.WhichOneof("message") == "cancel":
                self.cancelled.append(message.cancel.work_id)

    def answer(self, work_id: str, event: relay_pb2.WorkEvent) -> None:
        event.lattice_id, event.work_id = self.link.lattice_id, work_id
        key = self.answer_keys[work_id]
        sealed = seal(event, bytes(GATEWAY_KEY.public_key)) if self.legacy else lock(event, key)
        update = relay_pb2.WorkUpdate(work_id=work_id, sealed_event=sealed)
        self.hub.receive(self.link, update)


def connected() -> tuple[RelayHub, FakeDaemon]:
    hub = RelayHub(GATEWAY_KEY, heartbeat_seconds=10)
    link = hub.attach("lat_a", "acct_demo", bytes(DAEMON_KEY.public_key))
    return hub, FakeDaemon(hub, link)


async def collect(hub: RelayHub, prompt: str) -> list[relay_pb2.WorkEvent]:
    return [e async for e in hub.run("lat_a", chat_pb2.ChatRequest(model=prompt))]


async def test_interleaved_work_items_each_get_their_own_answers() -> None:
    hub, daemon = connected()
    runs = [asyncio.create_task(collect(hub, f"prompt {i}")) for i in range(3)]
    payloads = [await daemon.next_work() for _ in range(3)]
    for round_ in range(2):
        for payload in reversed(payloads):
            daemon.answer(payload.work_id, relay_pb2.WorkEvent(delta=f"{payload.request.model}/{round_} "))
    for payload in payloads:
        daemon.answer(payload.work_id, relay_pb2.WorkEvent(finish=relay_pb2.WorkFinish()))
    results = await asyncio.gather(*runs)
    for i, events in enumerate(results):
        assert [e.delta for e in events[:-1]] == [f"prompt {i}/0 ", f"prompt {i}/1 "]
        assert events[-1].WhichOneof("event") == "finish"
    assert hub.in_flight("lat_a") == 0


async def test_leaving_early_sends_a_cancel_down_the_stream() -> None:
    hub, daemon = connected()
    events = hub.run("lat_a", chat_pb2.ChatRequest(model="long"))
    first = asyncio.ensure_future(anext(events))
    payload = await daemon.next_work()
    daemon.answer(payload.work_id, relay_pb2.WorkEvent(delta="partial"))
    assert (await first).delta == "partial"
    await events.aclose()  # the app went away
    message = await daemon.link.outbox.get()
    assert not isinstance(message, LinkClosed) and message.cancel.work_id == payload.work_id
    daemon.answer(payload.work_id, relay_pb2.WorkEvent(delta="late"))  # dropped, not an error


async def test_a_lost_link_fails_work_in_flight_at_once() -> None:
    hub, daemon = connected()
    run = asyncio.create_task(collect(hub, "anything"))
    await daemon.next_work()
    hub.detach(daemon.link, BackendUnavailable("gone", reason="RUNTIME_UNREACHABLE"))
    with pytest.raises(BackendUnavailable) as failure:
        await run
    assert failure.value.reason == "RUNTIME_UNREACHABLE"
    assert not hub.reachable("lat_a")
    with pytest.raises(BackendUnavailable, match="not connected"):
        await collect(hub, "after")


async def test_a_silent_daemon_is_dropped_after_two_heartbeat_periods() -> None:
    hub = RelayHub(GATEWAY_KEY, heartbeat_seconds=0.05)
    link = hub.attach("lat_a", "acct_demo", bytes(DAEMON_KEY.public_key))
    await asyncio.wait_for(hub.keep_alive(link), timeout=5)
    assert link.closed is not None and link.closed.error.reason == "RUNTIME_UNREACHABLE"
    assert not hub.reachable("lat_a")


async def test_answers_use_the_work_items_own_key_and_older_daemons_still_work() -> None:
    hub, daemon = connected()
    for legacy in (False, True):
        daemon.legacy = legacy
        run = asyncio.create_task(collect(hub, "hello"))
        payload = await daemon.next_work()
        assert len(payload.answer_key) == 32
        daemon.answer(payload.work_id, relay_pb2.WorkEvent(delta="hi"))
        daemon.answer(payload.work_id, relay_pb2.WorkEvent(finish=relay_pb2.WorkFinish()))
        assert [e.WhichOneof("event") for e in await run] == ["delta", "finish"]
    other = relay_pb2.WorkPayload(lattice_id="lat_a", work_id="w", answer_key=b"x" * 32)
    forged = lock(relay_pb2.WorkEvent(lattice_id="lat_a", work_id="w", delta="forged"), other.answer_key)
    run = asyncio.create_task(collect(hub, "guarded"))
    payload = await daemon.next_work()
    with pytest.raises(BackendFailed, match="did not open"):  # a box under another key is refused
        hub.receive(daemon.link, relay_pb2.WorkUpdate(work_id=payload.work_id, sealed_event=forged))
    run.cancel()
