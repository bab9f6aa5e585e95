"""2. Dispatch: app sent the chat -> the daemon has its work item, both transports whole in this process."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import itertools
import logging
import pathlib
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from nacl.public import PrivateKey
from pydantic import SecretStr

from bench.common import fmt, load_average, percentile
from bench.fast_upstream import ANSWER, MODEL_ID
from bench.gateway_overhead import BadAnswer
from bench.longpoll_relay import LongPollDaemon, LongPollGateway, uvicorn_server
from bench.relay.targets import QUESTION, WARMUP_REQUESTS, GrpcChatTarget, JsonChatTarget, error_kind
from lattice.config import ModelProfile, Settings, Upstream
from lattice.daemon.config import DaemonConfig
from lattice.daemon.executor import Executor
from lattice.daemon.relay_client import RelayClient
from lattice.daemon.state import StateFile
from lattice.observability.logs import configure_logging
from lattice.server.app import build_components, create_server
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.relay import PERSONAL_PREFIX
from lattice.server.store import open_store
from lattice.v1 import chat_pb2, relay_pb2
from lattice.wire.sealing import open_sealed
from tests.gateway_process import free_port


@dataclass
class Stamps:
    """One chat through a harness, as time.monotonic(): the app sent it, the gateway handed it to its relay,
    the daemon had the work item, the app had the whole answer."""

    sent: float
    handed: float
    received: float
    ended: float


class ProbeRelayClient(RelayClient):
    """Lattice's daemon-side relay client, noting when each work item's task starts (after the stream read,
    before unsealing). Which chat an item is for is worked out afterwards, from its sealed payload."""

    def __init__(self, config: DaemonConfig, executor: Executor, state: StateFile) -> None:
        super().__init__(config, executor, state, max_backoff_seconds=1)
        self._probe_key = PrivateKey(base64.b64decode(config.private_key))
        self._lattice_id = config.lattice_id
        self.receipts: list[tuple[float, relay_pb2.WorkItem]] = []

    async def _run_work(self, item: relay_pb2.WorkItem, outbox: asyncio.Queue[relay_pb2.ConnectRequest]) -> None:
        self.receipts.append((time.monotonic(), item))
        await super()._run_work(item, outbox)

    def take_receipts(self) -> dict[str, float]:
        """Prompt → when its work item arrived, for the items received since the last call."""
        found = {}
        for received, item in self.receipts:
            payload = open_sealed(
                item.sealed_payload,
                self._probe_key,
                relay_pb2.WorkPayload,
                lattice_id=self._lattice_id,
                work_id=item.work_id,
            )
            found[payload.request.messages[-1].content[0].text] = received
        self.receipts.clear()
        return found


class Harness(Protocol):
    name: str

    async def chats(self, prompts: list[str]) -> list[Stamps]:
        """The prompts sent at once (one: one at a time); the answer must be ANSWER."""
        ...

    async def aclose(self) -> None: ...


class BidiHarness:
    """Lattice's gRPC server as `lattice serve` assembles it (lattice/server/app.py: store, auth, resolver,
    admission, ChatService, RelayService), an app calling StreamChat on it, and the daemon's RelayClient
    and Executor, all in this process."""

    name = "bidi stream (Lattice)"

    def __init__(self, work: pathlib.Path, provider_url: str, limit: float) -> None:
        self._work = work
        self._provider_url = provider_url
        self._limit = limit
        self._cleanups: list[Callable[[], Awaitable[Any]]] = []
        self._handed: dict[str, float] = {}

    async def start(self) -> None:
        # The gateway logs every call as `lattice serve` does (JSON), into a file rather than this terminal.
        root = logging.getLogger()
        before = (list(root.handlers), root.level)
        configure_logging("info", "json")
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        log_file = (self._work / "harness-gateway.log").open("w")
        handler.setStream(log_file)

        async def restore_logging() -> None:
            root.removeHandler(handler)
            for old in before[0]:
                root.addHandler(old)
            root.setLevel(before[1])
            log_file.close()

        self._cleanups.append(restore_logging)
        key = "sk-harness-" + secrets.token_hex(16)  # the static admin key: every scope, `admin_account`
        settings = Settings(
            home=self._work / "harness-gateway",
            database_url=f"sqlite:///{self._work / 'harness.db'}",
            grpc_port=0,
            api_key=SecretStr(key),
            default_model=MODEL_ID,
            models=(ModelProfile(id=MODEL_ID, backend="openai", upstream="fast", roles=("chat",)),),
            upstreams=(Upstream(name="fast", base_url=self._provider_url, models=(MODEL_ID,), refresh_seconds=300),),
            max_concurrent_per_model=8192,
            max_concurrent_total=8192,
            queue_size=8192,
            relay_max_in_flight=8192,
            max_streams_per_key=100_000,
            rate_limit_per_minute=0,
            rate_limit_burst=100_000,
        )
        store = await open_store(settings.database_url, settings.home)
        self._cleanups.append(store.close)
        worker = MlxWorker()
        self._cleanups.append(lambda: asyncio.to_thread(worker.stop))
        components = build_components(settings, store, worker)
        gateway, personal = components.gateway, components.personal
        components.usage.start()
        self._cleanups.insert(0, components.usage.close)  # metered as `lattice serve` does, before the store closes
        server, port, _ = create_server(settings, components)
        personal.relay_endpoint = f"127.0.0.1:{port}"
        await server.start()
        self._cleanups.insert(0, lambda: server.stop(1))
        await gateway.start()
        self._cleanups.insert(0, gateway.close)
        hub = personal.hub
        original = hub.run

        def handed(lattice_id: str, request: chat_pb2.ChatRequest) -> AsyncGenerator[relay_pb2.WorkEvent, None]:
            self._handed[request.messages[-1].content[0].text] = time.monotonic()
            return original(lattice_id, request)

        hub.run = handed  # type: ignore[method-assign]  # notes the time, then the hub's own run

        records = personal.records
        record = await records.create(settings.admin_account, "harness", "local-model")
        token, _ = await records.mint_bootstrap_token(settings.admin_account, record.lattice_id)
        daemon_key = PrivateKey.generate()
        paired = await records.redeem(token, bytes(daemon_key.public_key))
        config = DaemonConfig(
            gateway="",
            relay_endpoint=personal.relay_endpoint,
            lattice_id=record.lattice_id,
            account_id=settings.admin_account,
            display_name="harness",
            execution_backend="local-model",
            daemon_credential=paired.daemon_credential,
            private_key=base64.b64encode(bytes(daemon_key)).decode(),
            gateway_public_key=base64.b64encode(hub.public_key).decode(),
            heartbeat_seconds=round(settings.relay_heartbeat_seconds),
            provider_url=self._provider_url,
            provider_model=MODEL_ID,
        )
        executor = Executor(Settings(), provider_url=self._provider_url, provider_model=MODEL_ID)
        await executor.start()
        self._cleanups.insert(0, executor.close)
        ctl_home = self._work / "harness-ctl"
        ctl_home.mkdir(parents=True, exist_ok=True)
        self.client = ProbeRelayClient(config, executor, StateFile(ctl_home))
        task = asyncio.create_task(self.client.run_forever())
        self._cleanups.insert(0, lambda: _cancel(task))
        deadline = time.monotonic() + 30
        while not hub.reachable(record.lattice_id):
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError(f"the harness daemon did not connect: {task}")
            await asyncio.sleep(0.05)
        app = GrpcChatTarget(
            "harness", personal.relay_endpoint, PERSONAL_PREFIX + record.lattice_id, key, [], self._limit
        )
        self._cleanups.insert(0, app.aclose)
        self._app = app

    async def _one(self, prompt: str) -> tuple[str, float, float]:
        sent = time.monotonic()
        answer = await asyncio.wait_for(self._app.call(prompt), self._limit)
        if answer != ANSWER:
            raise BadAnswer(f"wrong answer {answer!r}")
        return prompt, sent, time.monotonic()

    async def chats(self, prompts: list[str]) -> list[Stamps]:
        done = await asyncio.gather(*(self._one(p) for p in prompts))
        received = self.client.take_receipts()
        return [Stamps(sent, self._handed.pop(p), received[p], ended) for p, sent, ended in done]

    async def aclose(self) -> None:
        for cleanup in self._cleanups:
            with contextlib.suppress(Exception):
                await cleanup()


class LongPollHarness:
    """bench/longpoll_relay.py's gateway (uvicorn) and daemon, and an app POSTing to it, in this process."""

    name = "HTTP long polling (baseline)"

    def __init__(self, provider_url: str, limit: float) -> None:
        self._provider_url = provider_url
        self._limit = limit
        self._cleanups: list[Callable[[], Awaitable[Any]]] = []
        self._handed: dict[str, float] = {}

    async def start(self) -> None:
        self.gateway = LongPollGateway()
        original = self.gateway.submit

        async def handed(body: dict[str, Any]) -> tuple[str, dict[str, Any], float]:
            self._handed[body["messages"][-1]["content"]] = time.monotonic()
            return await original(body)

        self.gateway.submit = handed  # type: ignore[method-assign]  # notes the time, then the gateway's own
        port = free_port()
        server = uvicorn_server(self.gateway.app, "127.0.0.1", port)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                raise RuntimeError(f"the long-poll gateway did not start: {serving}")
            await asyncio.sleep(0.02)

        async def stop_server() -> None:
            server.should_exit = True
            await asyncio.wait_for(serving, 10)

        self._cleanups.append(stop_server)
        url = f"http://127.0.0.1:{port}"
        self.daemon = LongPollDaemon(url, self._provider_url)
        polling = asyncio.create_task(self.daemon.run())
        self._cleanups.insert(0, self.daemon.aclose)
        self._cleanups.insert(0, lambda: _cancel(polling))
        deadline = time.monotonic() + 30
        while not (self.gateway.status()["paired"] and self.gateway.status()["polls_waiting"]):
            if polling.done() or time.monotonic() > deadline:
                raise RuntimeError(f"the long-poll daemon did not start polling: {polling}")
            await asyncio.sleep(0.02)
        self._app = JsonChatTarget("harness", url, MODEL_ID, [], self._limit, {})
        self._cleanups.insert(0, self._app.aclose)

    async def _one(self, prompt: str) -> Stamps:
        sent = time.monotonic()
        answer = await asyncio.wait_for(self._app.call(prompt), self._limit)
        ended = time.monotonic()
        if answer != ANSWER:
            raise BadAnswer(f"wrong answer {answer!r}")
        return Stamps(sent, self._handed.pop(prompt), self._app.picked.pop(prompt), ended)

    async def chats(self, prompts: list[str]) -> list[Stamps]:
        return list(await asyncio.gather(*(self._one(p) for p in prompts)))

    async def aclose(self) -> None:
        for cleanup in self._cleanups:
            with contextlib.suppress(Exception):
                await cleanup()


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


@dataclass
class Dispatch:
    transport: str
    one: list[Stamps] = field(default_factory=list)
    burst: list[Stamps] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)

    def summary(self) -> dict[str, Any]:
        def ms(stamps: list[Stamps], start: str, end: str) -> list[float]:
            return [(getattr(s, end) - getattr(s, start)) * 1000 for s in stamps]

        result: dict[str, Any] = {"samples": len(self.one), "burst_samples": len(self.burst)}
        for label, start, end in (
            ("dispatch", "sent", "received"),
            ("hop", "handed", "received"),
            ("round_trip", "sent", "ended"),
        ):
            values = ms(self.one, start, end)
            result[f"{label}_p50_ms"] = percentile(values, 50)
            result[f"{label}_p99_ms"] = percentile(values, 99)
            values = ms(self.burst, start, end)
            result[f"burst_{label}_p50_ms"] = percentile(values, 50)
            result[f"burst_{label}_p99_ms"] = percentile(values, 99)
            result[f"burst_{label}_max_ms"] = max(values, default=float("nan"))
        result["errors"] = dict(self.errors.most_common(5))
        return result


async def dispatches(
    work: pathlib.Path, provider_url: str, requests: int, rounds: int, burst: int, limit: float
) -> list[Dispatch]:
    bidi = BidiHarness(work, provider_url, limit)
    longpoll = LongPollHarness(provider_url, limit)
    harnesses: list[Harness] = [bidi, longpoll]
    results = [Dispatch(h.name) for h in harnesses]
    numbers = itertools.count()

    def prompt() -> str:
        return f"{QUESTION} [{next(numbers)}]"

    try:
        await bidi.start()
        await longpoll.start()
        for harness in harnesses:  # connections, first-call imports
            for _ in range(WARMUP_REQUESTS):
                await harness.chats([prompt()])
        per_round = max(1, requests // rounds)
        for number in range(rounds):
            for harness, result in list(zip(harnesses, results, strict=True))[:: 1 if number % 2 == 0 else -1]:
                for _ in range(per_round):
                    try:
                        result.one += await harness.chats([prompt()])
                    except Exception as error:
                        result.errors[error_kind(error)] += 1
            print(
                f"  round {number + 1}/{rounds}: "
                + ", ".join(f"{r.transport} dispatch p50 {fmt(r.summary()['dispatch_p50_ms'], 3)} ms" for r in results)
                + f"; load {load_average()}",
                flush=True,
            )
        if burst:
            for harness, result in zip(harnesses, results, strict=True):
                await asyncio.sleep(0.5)
                try:
                    result.burst = await harness.chats([prompt() for _ in range(burst)])
                except Exception as error:
                    result.errors[f"burst: {error_kind(error)}"] += 1
                summary = result.summary()
                print(
                    f"  burst of {burst}, {result.transport}: dispatch p50 {fmt(summary['burst_dispatch_p50_ms'])} ms,"
                    f" p99 {fmt(summary['burst_dispatch_p99_ms'])} ms",
                    flush=True,
                )
    finally:
        for harness in harnesses:
            await harness.aclose()
    return results
