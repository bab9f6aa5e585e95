"""Simulated daemons: runtimes paired through the store, and light relay clients that answer at once."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from nacl.public import PrivateKey

from lattice.server.store import open_store
from lattice.server.store.runtimes import RuntimeRecords
from lattice.v1 import relay_pb2, relay_pb2_grpc
from lattice.wire.names import AUTHORIZATION_METADATA_KEY
from lattice.wire.sealing import lock, open_sealed

# Each daemon its own TCP connection, as separate machines would have: grpc otherwise shares one
# subchannel between channels to the same address.
CHANNEL_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)
# Pairing and dialling this many at once: enough to be quick, few enough not to swamp the replicas.
AT_ONCE = 32


@dataclass(frozen=True)
class Runtime:
    lattice_id: str
    credential: str
    key: PrivateKey


async def pair_runtimes(database_url: str, home: pathlib.Path, account: str, count: int) -> list[Runtime]:
    """`count` runtimes of `account`, each created, given a bootstrap token and paired with its own key,
    through RuntimeRecords on the replicas' database (what `POST /v1/personal-runtimes`, `:mint` and
    `:redeem` run, without three HTTP round trips per runtime)."""
    store = await open_store(database_url, home)
    records = RuntimeRecords(store)
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(index: int) -> Runtime:
        async with gate:
            record = await records.create(account, f"simulated {index}", "local-model")
            token, _ = await records.mint_bootstrap_token(account, record.lattice_id)
            key = PrivateKey.generate()
            paired = await records.redeem(token, bytes(key.public_key))
            return Runtime(record.lattice_id, paired.daemon_credential, key)

    try:
        return list(await asyncio.gather(*(one(i) for i in range(count))))
    finally:
        await store.close()


class SimulatedDaemon:
    """One runtime's relay stream: hello, then each work item answered at once with the runtime's id."""

    def __init__(self, runtime: Runtime, endpoint: str) -> None:
        self.runtime = runtime
        self.endpoint = endpoint
        self.work_items = 0
        self.welcomed = asyncio.Event()
        self.ended: BaseException | None = None
        self._outbox: asyncio.Queue[relay_pb2.ConnectRequest] = asyncio.Queue()

    async def run(self) -> None:
        lattice_id = self.runtime.lattice_id
        hello = relay_pb2.ConnectRequest(hello=relay_pb2.RelayHello(lattice_id=lattice_id, daemon_version="bench"))

        async def requests() -> AsyncIterator[relay_pb2.ConnectRequest]:
            yield hello
            while True:
                yield await self._outbox.get()

        metadata = ((AUTHORIZATION_METADATA_KEY, f"Bearer {self.runtime.credential}"),)
        try:
            async with grpc.aio.insecure_channel(self.endpoint, options=CHANNEL_OPTIONS) as channel:
                call = relay_pb2_grpc.RelayServiceStub(channel).Connect(requests(), metadata=metadata)
                async for message in call:
                    kind = message.WhichOneof("message")
                    if kind == "welcome":
                        self.welcomed.set()
                    elif kind == "work":
                        self._answer(message.work)
                    elif kind == "heartbeat":  # the gateway's: answering it keeps the runtime reachable
                        self._outbox.put_nowait(relay_pb2.ConnectRequest(heartbeat=relay_pb2.RelayHeartbeat()))
        except BaseException as error:
            self.ended = error
            raise

    def _answer(self, item: relay_pb2.WorkItem) -> None:
        self.work_items += 1
        lattice_id, work_id = self.runtime.lattice_id, item.work_id
        payload = open_sealed(
            item.sealed_payload, self.runtime.key, relay_pb2.WorkPayload, lattice_id=lattice_id, work_id=work_id
        )
        for event in (relay_pb2.WorkEvent(delta=lattice_id), relay_pb2.WorkEvent(finish=relay_pb2.WorkFinish())):
            event.lattice_id, event.work_id = lattice_id, work_id
            update = relay_pb2.WorkUpdate(work_id=work_id, sealed_event=lock(event, payload.answer_key))
            self._outbox.put_nowait(relay_pb2.ConnectRequest(update=update))


async def connect_all(daemons: list[SimulatedDaemon], limit: float) -> list[asyncio.Task[None]]:
    """Starts every daemon's stream, `AT_ONCE` dialling at a time; returns once all are welcomed."""
    tasks: list[asyncio.Task[None]] = []
    for start in range(0, len(daemons), AT_ONCE):
        batch = daemons[start : start + AT_ONCE]
        tasks += [asyncio.create_task(d.run()) for d in batch]
        try:
            await asyncio.wait_for(asyncio.gather(*(d.welcomed.wait() for d in batch)), limit)
        except TimeoutError:
            failed = [d for d in batch if not d.welcomed.is_set()]
            raise RuntimeError(f"{len(failed)} daemons were not welcomed: {failed[0].ended!r}") from None
    return tasks
