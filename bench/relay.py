"""Personal-runtime relay: Lattice's bidirectional stream vs an HTTP long-polling daemon, same run.

    .venv/bin/python -m bench.relay                      # ~3-4 min on 2 cores
    .venv/bin/python -m bench.relay --requests 300 --concurrency 256 --phases round-trip concurrency

Everything runs on 127.0.0.1. The daemons' local provider is `bench.fast_upstream` (answers at once), so
what is measured is the relay. Three measurements:

round trip (real processes)   A chat sent one at a time (closed loop, `--requests` per target in
    `--rounds` rounds, the target order rotated each round), latency from send to the whole answer:
      direct         the provider itself (HTTP, streamed): the baseline
      lattice-proxy  Lattice's StreamChat on the provider as a plain [[upstreams]] model (no relay): reference
      relay-grpc     Lattice's StreamChat on `lattice:personal:<id>`: gateway -> relay stream -> a real
                     `lattice-daemon` (paired with `lattice-ctl relay connect --provider-url`) -> provider
      relay-shim     the same through the REST shim (`POST /v1/chat/completions`, not streamed)
      longpoll       bench/longpoll_relay.py: its gateway -> a daemon long-polling it -> provider
                     (`POST /v1/chat/completions`, not streamed)
    "added" is a target's p50 (p99) minus direct's.
dispatch (in-process harness)  App sent the chat -> the daemon has its work item ("dispatch"), and the
    part of that from the gateway handing the chat to its relay ("relay hop"), p50/p99, one chat at a
    time, then `--burst` at once. Each system runs whole in this one process and event loop, over real
    loopback sockets: Lattice's gRPC server as `lattice serve` assembles it (lattice/server/app.py: a store
    in a temporary SQLite, auth, resolver, admission, ChatService, RelayService; no shim), an app calling
    StreamChat with a key, and the daemon's own RelayClient and Executor dialling it; and
    bench/longpoll_relay.py's gateway (uvicorn), an app POSTing to it, and its daemon. The gateway's
    hand-off is noted by a wrapper around the hub's `run` (the long-poll gateway's `submit`), the
    daemon's receipt by a RelayClient subclass when the item's task starts (after the stream read, before
    unsealing; long polling: when the poll's answer has been read). Nothing in lattice/ changes. The
    long-poll gateway also reports its receipt -> the daemon's for the real processes (CLOCK_MONOTONIC
    is one clock for all processes of a machine): a cross-check of the harness.
concurrency (real processes)   `--concurrency` chats at once (256 and 512) on one daemon (relay-grpc,
    relay-shim, longpoll), the provider holding each for `--hold-ms` and echoing its prompt (so a crossed
    answer shows): every answer must be its own request's. Lost = no answer within the timeout. While
    they run, the gateway's own count of chats running on the runtime (`lattice_running_requests` on
    /metrics; the long-poll gateway's /healthz) and the provider's count of requests it holds are
    sampled: their peaks show how many work items one stream (one long-poll daemon) had in flight at
    once. The Lattice gateway's caps are raised for this (`max_concurrent_total`, `relay_max_in_flight`,
    queue, per-key limits).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import itertools
import json
import logging
import os
import pathlib
import re
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import httpx
from nacl.public import PrivateKey
from pydantic import SecretStr

from bench.common import (
    REPO,
    Process,
    cpu_seconds,
    fmt,
    load_average,
    machine,
    machine_line,
    percentile,
    running,
    spawn,
    table,
    wait_http,
    write_results,
)
from bench.fast_upstream import ANSWER, MODEL_ID
from bench.gateway_overhead import BadAnswer, settle
from bench.longpoll_relay import LongPollDaemon, LongPollGateway, uvicorn_server
from bench.peers import STARTUP_TIMEOUT, lattice_config, peer_env, start_fast_upstream
from lattice.config import ModelProfile, Settings, Upstream
from lattice.daemon.config import DaemonConfig
from lattice.daemon.executor import Executor
from lattice.daemon.relay_client import RelayClient
from lattice.daemon.state import StateFile
from lattice.observability.logs import configure_logging
from lattice.server.app import build_authenticator, build_gateway, build_personal_runtimes, create_server
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.relay import PERSONAL_PREFIX
from lattice.server.relay.sealing import open_sealed
from lattice.server.store import open_store
from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2, relay_pb2
from tests.gateway_process import GatewayProcess, free_port, start_gateway
from tests.personal_runtime_fixtures import Daemon, create_key, pair, runtime_status, wait_for

QUESTION = "What is the capital of France?"
TARGET_ORDER = ("direct", "lattice-proxy", "relay-grpc", "relay-shim", "longpoll")
PHASES = ("round-trip", "dispatch", "concurrency")
WARMUP_REQUESTS = 50
ACCOUNT = "acct_bench"
# The gateway's limits, raised so that nothing but the relay decides how many chats run at once.
GATEWAY_ENV = {
    "LATTICE_MAX_CONCURRENT_TOTAL": "8192",
    "LATTICE_RELAY_MAX_IN_FLIGHT": "8192",
    "LATTICE_QUEUE_SIZE": "8192",
    "LATTICE_MAX_STREAMS_PER_KEY": "100000",
    "LATTICE_RATE_LIMIT_PER_MINUTE": "0",
    "LATTICE_RATE_LIMIT_BURST": "100000",
}


def _sse_text(body: bytes) -> str:
    """The content of an OpenAI SSE stream; BadAnswer unless it ends with [DONE]."""
    text: list[str] = []
    done = False
    for line in body.decode().splitlines():
        if line == "data: [DONE]":
            done = True
        elif line.startswith("data: "):
            for choice in json.loads(line[6:]).get("choices") or ():
                text.append((choice.get("delta") or {}).get("content") or "")
    if not done:
        raise BadAnswer(f"incomplete stream: {body[-120:]!r}")
    return "".join(text)


# --- the apps' side: one chat, whatever the target -------------------------------------------------------


class Target(Protocol):
    name: str
    pids: list[int]  # the processes whose CPU time a request costs (gateway and daemon; the provider for direct)

    async def call(self, prompt: str) -> str:
        """One chat; returns the answer's text (raises on an error or an incomplete answer)."""
        ...

    async def aclose(self) -> None: ...


def _http_client(timeout: float, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers=headers or {},
        timeout=timeout,
        limits=httpx.Limits(max_connections=2048, max_keepalive_connections=2048),
    )


class DirectTarget:
    """The provider itself, streamed, as the daemons call it."""

    def __init__(self, name: str, base_url: str, pids: list[int], timeout: float) -> None:
        self.name, self.pids = name, pids
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._client = _http_client(timeout)

    async def call(self, prompt: str) -> str:
        body = {"model": MODEL_ID, "messages": [{"role": "user", "content": prompt}], "stream": True, "max_tokens": 16}
        async with self._client.stream("POST", self._url, json=body) as response:
            raw = await response.aread()
        if response.status_code != 200:
            raise BadAnswer(f"HTTP {response.status_code}: {raw[:120]!r}")
        return _sse_text(raw)

    async def aclose(self) -> None:
        await self._client.aclose()


class JsonChatTarget:
    """`POST /v1/chat/completions`, not streamed: Lattice's shim, or the long-poll gateway."""

    def __init__(
        self, name: str, base_url: str, model: str, pids: list[int], timeout: float, headers: dict[str, str]
    ) -> None:
        self.name, self.pids = name, pids
        self._url = base_url.rstrip("/") + "/v1/chat/completions"
        self._model = model
        self._client = _http_client(timeout, headers)
        self.picked: dict[str, float] = {}
        """Prompt → when the daemon had its work item, when the gateway reports it (long-poll)."""
        self.dispatch: list[float] = []
        """Seconds from the gateway's receipt to the daemon's, when the gateway reports them (long-poll)."""

    async def call(self, prompt: str) -> str:
        body = {"model": self._model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 16}
        response = await self._client.post(self._url, json=body)
        if response.status_code != 200:
            raise BadAnswer(f"HTTP {response.status_code}: {response.text[:120]}")
        if "x-bench-picked" in response.headers:
            picked = float(response.headers["x-bench-picked"])
            self.picked[prompt] = picked
            self.dispatch.append(picked - float(response.headers["x-bench-received"]))
        return str(response.json()["choices"][0]["message"]["content"])

    async def aclose(self) -> None:
        await self._client.aclose()


class GrpcChatTarget:
    """Lattice's StreamChat over grpc.aio, with the account's key."""

    def __init__(self, name: str, address: str, model: str, key: str, pids: list[int], timeout: float) -> None:
        self.name, self.pids = name, pids
        self._timeout = timeout
        self._model = model
        self._metadata = (("x-api-key", key),)
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = chat_pb2_grpc.ChatServiceStub(self._channel)

    async def call(self, prompt: str) -> str:
        message = common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text=prompt)])
        request = chat_pb2.ChatRequest(model=self._model, messages=[message], max_tokens=16, temperature=0)
        text: list[str] = []
        done = False
        async for reply in self._stub.StreamChat(request, timeout=self._timeout, metadata=self._metadata):
            if reply.HasField("delta"):
                text.append(reply.delta.content)
            elif reply.HasField("done"):
                done = True
        if not done:
            raise BadAnswer(f"stream ended without done: {''.join(text)!r}")
        return "".join(text)

    async def aclose(self) -> None:
        await self._channel.close()


def _error_kind(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, grpc.aio.AioRpcError):
        return f"gRPC {error.code().name}: {(error.details() or '')[:80]}"
    return f"{type(error).__name__}: {str(error)[:100]}"


# --- 1. round trip ---------------------------------------------------------------------------------------


@dataclass
class RoundTrip:
    target: str
    sent: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies_ms: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0

    def summary(self, direct: RoundTrip | None) -> dict[str, Any]:
        p50, p99 = percentile(self.latencies_ms, 50), percentile(self.latencies_ms, 99)
        base50 = percentile(direct.latencies_ms, 50) if direct else float("nan")
        base99 = percentile(direct.latencies_ms, 99) if direct else float("nan")
        return {
            "sent": self.sent,
            "ok": len(self.latencies_ms),
            "errors": dict(self.errors.most_common(5)),
            "p50_ms": p50,
            "p90_ms": percentile(self.latencies_ms, 90),
            "p99_ms": p99,
            "max_ms": max(self.latencies_ms, default=float("nan")),
            "added_p50_ms": p50 - base50,
            "added_p99_ms": p99 - base99,
            "cpu_ms_per_request": self.cpu_seconds * 1000 / self.sent if self.sent else float("nan"),
        }


async def warm_up(target: Target, limit: float) -> str | None:
    for _ in range(WARMUP_REQUESTS):
        try:
            answer = await asyncio.wait_for(target.call(QUESTION), limit)
        except Exception as error:
            return _error_kind(error)
        if answer != ANSWER:
            return f"wrong answer {answer!r}"
    return None


async def round_trips(
    targets: list[Target], requests: int, rounds: int, limit: float, all_pids: list[int]
) -> dict[str, RoundTrip]:
    results = {t.name: RoundTrip(t.name) for t in targets}
    per_round = max(1, requests // rounds)
    for number in range(rounds):
        order = targets[number % len(targets) :] + targets[: number % len(targets)]
        for target in order:
            result = results[target.name]
            await settle(all_pids)
            before = sum(cpu_seconds(pid) for pid in target.pids)
            for _ in range(per_round):
                result.sent += 1
                began = time.monotonic()
                try:
                    answer = await asyncio.wait_for(target.call(QUESTION), limit)
                except Exception as error:
                    result.errors[_error_kind(error)] += 1
                    continue
                ended = time.monotonic()
                if answer != ANSWER:
                    result.errors[f"wrong answer: {answer[:60]!r}"] += 1
                    continue
                result.latencies_ms.append((ended - began) * 1000)
            result.cpu_seconds += sum(cpu_seconds(pid) for pid in target.pids) - before
        print(
            f"  round {number + 1}/{rounds}: "
            + ", ".join(f"{n} p50 {fmt(percentile(r.latencies_ms, 50))} ms" for n, r in results.items())
            + f"; load {load_average()}",
            flush=True,
        )
    return results


# --- 2. dispatch: both transports in this process -------------------------------------------------------


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
        personal = build_personal_runtimes(settings, store)
        worker = MlxWorker()
        self._cleanups.append(lambda: asyncio.to_thread(worker.stop))
        gateway = build_gateway(settings, worker, personal)
        server, port, _ = create_server(settings, gateway, build_authenticator(settings, store))
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
                        result.errors[_error_kind(error)] += 1
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
                    result.errors[f"burst: {_error_kind(error)}"] += 1
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


# --- 3. concurrency ---------------------------------------------------------------------------------------


_RUNNING = re.compile(r'^lattice_running_requests\{model="([^"]+)"\} ([0-9.e+]+)$', re.MULTILINE)


async def _peak(read: Callable[[], Awaitable[float]], stop: asyncio.Event, every: float = 0.1) -> float:
    """The highest value `read` gave until `stop` is set, sampled every `every` seconds."""
    highest = 0.0
    while not stop.is_set():
        with contextlib.suppress(Exception):
            highest = max(highest, await read())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    return highest


async def concurrency(
    target: Target,
    count: int,
    limit: float,
    provider_url: str,
    gateway_in_flight: Callable[[httpx.AsyncClient], Awaitable[float]],
) -> dict[str, Any]:
    """`count` chats at once; every answer must be its own prompt, echoed."""
    tag = os.urandom(3).hex()
    prompts = [f"work item {i} of {count} in burst {tag}" for i in range(count)]
    errors: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    wrong = 0
    async with httpx.AsyncClient(timeout=10) as probe:
        await probe.get(provider_url.removesuffix("/v1") + "/stats", params={"reset": 1})
        stop = asyncio.Event()

        async def provider_in_flight() -> float:
            return float((await probe.get(provider_url.removesuffix("/v1") + "/stats")).json()["in_flight"])

        async def at_gateway() -> float:
            return await gateway_in_flight(probe)

        samplers = [asyncio.create_task(_peak(provider_in_flight, stop)), asyncio.create_task(_peak(at_gateway, stop))]

        async def one(prompt: str) -> None:
            nonlocal wrong
            began = time.monotonic()
            try:
                answer = await asyncio.wait_for(target.call(prompt), limit)
            except Exception as error:
                errors[_error_kind(error)] += 1
                return
            if answer != prompt:
                wrong += 1
                return
            latencies.append((time.monotonic() - began) * 1000)

        cpu_before = sum(cpu_seconds(pid) for pid in target.pids)
        client_before = cpu_seconds(os.getpid())
        reported = len(target.dispatch) if isinstance(target, JsonChatTarget) else 0
        began = time.monotonic()
        await asyncio.gather(*(one(p) for p in prompts))
        wall = time.monotonic() - began
        cpu_used = sum(cpu_seconds(pid) for pid in target.pids) - cpu_before
        client_used = cpu_seconds(os.getpid()) - client_before
        dispatch = [d * 1000 for d in target.dispatch[reported:]] if isinstance(target, JsonChatTarget) else []
        stop.set()
        provider_peak, gateway_peak = await asyncio.gather(*samplers)
        provider_total = (await probe.get(provider_url.removesuffix("/v1") + "/stats")).json()
    return {
        "target": target.name,
        "concurrency": count,
        "ok": len(latencies),
        "wrong": wrong,
        "lost": errors.get("timeout", 0),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors.most_common(5)),
        "wall_s": wall,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        "provider_peak_in_flight": provider_peak,
        "gateway_peak_in_flight": gateway_peak,
        "provider_requests_total": provider_total.get("chat_requests"),
        "cpu_ms_per_request": cpu_used * 1000 / count,
        "client_cpu_ms_per_request": client_used * 1000 / count,
        "gateway_dispatch_p50_ms": percentile(dispatch, 50),
        "gateway_dispatch_p99_ms": percentile(dispatch, 99),
    }


# --- processes ------------------------------------------------------------------------------------------


def start_upstream(work: pathlib.Path, name: str, *options: str) -> tuple[Process, str]:
    """`bench.fast_upstream` (logging into its own directory `name`); returns it and its /v1 URL."""
    log_dir = work / name
    log_dir.mkdir()
    process, root = start_fast_upstream(str(log_dir), *options)
    return process, f"{root}/v1"


def start_longpoll_gateway(log_dir: pathlib.Path) -> tuple[Process, str]:
    port = free_port()
    command = [sys.executable, "-m", "bench.longpoll_relay", "gateway", "--port", str(port)]
    process = spawn("longpoll-gateway", command, log_dir, {**peer_env(), "PYTHONPATH": str(REPO)})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(process, f"{url}/healthz", STARTUP_TIMEOUT)
    except BaseException:
        process.stop()
        raise
    return process, url


def start_longpoll_daemon(log_dir: pathlib.Path, gateway_url: str, provider_url: str, name: str) -> Process:
    command = [
        *(sys.executable, "-m", "bench.longpoll_relay", "daemon"),
        *("--gateway", gateway_url, "--provider-url", provider_url),
    ]
    process = spawn(name, command, log_dir, {**peer_env(), "PYTHONPATH": str(REPO)})

    def polling() -> bool:
        if process.process.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{process.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            health = httpx.get(f"{gateway_url}/healthz", timeout=2).json()
            return bool(health["paired"] and health["polls_waiting"])
        return False

    wait_for(polling, f"{name} to poll", STARTUP_TIMEOUT)
    return process


@dataclass
class Lattice:
    gateway: GatewayProcess
    env: dict[str, str]
    key: str
    daemon: Daemon

    @property
    def model(self) -> str:
        return PERSONAL_PREFIX + self.daemon.lattice_id

    def start_daemon(self, provider_url: str) -> None:
        self.daemon.start("--provider-url", provider_url, "--provider-model", MODEL_ID)
        wait_for(
            lambda: runtime_status(self.gateway, self.key, self.daemon.lattice_id) == "reachable",
            "the runtime to be reachable",
        )

    async def running(self, client: httpx.AsyncClient) -> float:
        """The gateway's own count of chats holding a slot on this runtime."""
        text = (await client.get(f"{self.gateway.http_url}/metrics")).text
        return sum(float(v) for model, v in _RUNNING.findall(text) if model == self.model)


def start_lattice(work: pathlib.Path, provider_url: str) -> Lattice:
    """A gateway with its own home and database, a key from `lattice keys create`, a runtime and a bootstrap
    token over REST, and a daemon paired with `lattice-ctl relay connect` and started with `daemon start`."""
    config = work / "lattice.toml"
    lattice_config(str(config), provider_url)  # the provider is also an ordinary upstream: lattice-proxy
    env = {
        "LATTICE_HOME": str(work / "lattice-home"),
        "LATTICE_DATABASE_URL": f"sqlite:///{work / 'lattice.db'}",
        "LATTICE_CONFIG": str(config),
        **GATEWAY_ENV,
    }
    gateway = start_gateway(work, **env)
    try:
        key = create_key(env, ACCOUNT)
        daemon = pair(gateway, key, work / "ctl", "bench runtime", "--provider-url", provider_url)
        lattice = Lattice(gateway, env, key, daemon)
        lattice.start_daemon(provider_url)
    except BaseException:
        gateway.stop()
        raise
    return lattice


# --- the run --------------------------------------------------------------------------------------------


def report(
    trips: dict[str, dict[str, Any]],
    longpoll_dispatch: dict[str, float],
    dispatch: dict[str, dict[str, Any]],
    burst: int,
    levels: list[dict[str, Any]],
) -> str:
    parts: list[str] = []
    if trips:
        headers = ["target", "p50 ms", "p99 ms", "added p50", "added p99", "CPU ms/req", "errors"]
        rows = [
            [
                name,
                fmt(s["p50_ms"]),
                fmt(s["p99_ms"]),
                fmt(s["added_p50_ms"]),
                fmt(s["added_p99_ms"]),
                fmt(s["cpu_ms_per_request"]),
                f"{s['sent'] - s['ok']}/{s['sent']}",
            ]
            for name, s in trips.items()
        ]
        parts.append("### Round trip, one chat at a time (real processes)\n\n" + table(headers, rows))
        if "longpoll" in trips:
            ratios = [
                [
                    f"longpoll / {name}",
                    fmt(trips["longpoll"]["added_p50_ms"] / trips[name]["added_p50_ms"]),
                    fmt(trips["longpoll"]["added_p99_ms"] / trips[name]["added_p99_ms"]),
                ]
                for name in ("relay-grpc", "relay-shim")
                if name in trips
            ]
            if ratios:
                parts.append(
                    "Added latency, long polling over the bidirectional stream (> 1: the stream adds less):\n\n"
                    + table(["ratio", "added p50", "added p99"], ratios)
                )
    if dispatch:
        headers = ["transport", "dispatch p50", "dispatch p99", "relay hop p50", "relay hop p99"]
        if burst:
            headers += [f"burst of {burst}: dispatch p50", "p99", "max", "relay hop p50", "p99"]
        keys = ["dispatch_p50_ms", "dispatch_p99_ms", "hop_p50_ms", "hop_p99_ms"]
        if burst:
            keys += ["burst_dispatch_p50_ms", "burst_dispatch_p99_ms", "burst_dispatch_max_ms"]
            keys += ["burst_hop_p50_ms", "burst_hop_p99_ms"]
        rows = [[name, *(fmt(s[k], 3 if "burst" not in k else 1) for k in keys)] for name, s in dispatch.items()]
        if longpoll_dispatch:
            row = [
                "long polling, real processes",
                fmt(longpoll_dispatch["p50_ms"], 3),
                fmt(longpoll_dispatch["p99_ms"], 3),
            ]
            rows.append(row + ["-"] * (len(headers) - len(row)))
        values = list(dispatch.values())
        if len(values) == 2:
            bidi, poll = values
            rows.append(["ratio long polling / bidi", *(fmt(poll[k] / bidi[k]) for k in keys)])
        parts.append(
            "### Dispatch, ms (in-process harness): app sent the chat -> daemon has the work item; relay hop: "
            "gateway hands it to its relay -> daemon has it\n\n" + table(headers, rows)
        )
    if levels:
        headers = ["target", "at once", "ok", "wrong", "lost", "errors", "wall s", "p50 ms", "p99 ms"]
        headers += ["gateway peak", "provider peak", "CPU ms/req", "client CPU ms/req"]
        rows = [
            [
                s["target"],
                str(s["concurrency"]),
                str(s["ok"]),
                str(s["wrong"]),
                str(s["lost"]),
                str(s["errors"]),
                fmt(s["wall_s"]),
                fmt(s["p50_ms"], 0),
                fmt(s["p99_ms"], 0),
                fmt(s["gateway_peak_in_flight"], 0),
                fmt(s["provider_peak_in_flight"], 0),
                fmt(s["cpu_ms_per_request"]),
                fmt(s["client_cpu_ms_per_request"]),
            ]
            for s in levels
        ]
        parts.append("### Concurrent work items on one daemon (real processes)\n\n" + table(headers, rows))
    return "\n\n".join(parts)


async def run(args: argparse.Namespace) -> int:
    print(f"relay: phases {', '.join(args.phases)}; machine load {load_average()}", flush=True)
    trips: dict[str, dict[str, Any]] = {}
    longpoll_dispatch: dict[str, float] = {}
    dispatch: dict[str, dict[str, Any]] = {}
    levels: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="lattice-bench-relay-") as tmp, running([]) as processes:
        work = pathlib.Path(tmp)
        upstream, provider_url = start_upstream(work, "fast-upstream")
        processes.append(upstream)
        held, held_url = start_upstream(work, "held-upstream", "--delay-ms", f"{args.hold_ms:g}", "--echo")
        processes.append(held)

        lattice: Lattice | None = None
        if "round-trip" in args.phases or "concurrency" in args.phases:
            lattice = start_lattice(work, provider_url)
            processes.append(Process("lattice", lattice.gateway.process, lattice.gateway.log_path))
        try:
            info = machine({"pynacl": _version("pynacl"), "starlette": _version("starlette")})
            print(machine_line(info), flush=True)
            if lattice is not None and "round-trip" in args.phases:
                print("round trip:", flush=True)
                lp_gateway, lp_url = start_longpoll_gateway(work)
                processes.append(lp_gateway)
                lp_daemon = start_longpoll_daemon(work, lp_url, provider_url, "longpoll-daemon")
                processes.append(lp_daemon)
                gw, dm = lattice.gateway.process.pid, lattice.daemon.pid()
                lp = [lp_gateway.process.pid, lp_daemon.process.pid]
                every: list[Target] = [
                    DirectTarget("direct", provider_url, [upstream.process.pid], args.timeout),
                    GrpcChatTarget(
                        "lattice-proxy", lattice.gateway.grpc_target, MODEL_ID, lattice.key, [gw], args.timeout
                    ),
                    GrpcChatTarget(
                        "relay-grpc", lattice.gateway.grpc_target, lattice.model, lattice.key, [gw, dm], args.timeout
                    ),
                    JsonChatTarget(
                        "relay-shim",
                        lattice.gateway.http_url,
                        lattice.model,
                        [gw, dm],
                        args.timeout,
                        {"x-api-key": lattice.key},
                    ),
                    JsonChatTarget("longpoll", lp_url, MODEL_ID, lp, args.timeout, {}),
                ]
                targets = [t for t in every if t.name in args.targets]
                try:
                    for target in list(targets):
                        problem = await warm_up(target, args.timeout)
                        if problem:
                            skipped[target.name] = f"warm-up failed: {problem}"
                            targets.remove(target)
                    all_pids = [p.process.pid for p in processes] + [dm]
                    results = await round_trips(targets, args.requests, args.rounds, args.timeout, all_pids)
                    trips = {name: r.summary(results.get("direct")) for name, r in results.items()}
                    for target in targets:
                        if isinstance(target, JsonChatTarget) and target.dispatch:
                            samples = [d * 1000 for d in target.dispatch[WARMUP_REQUESTS:]]
                            longpoll_dispatch = {
                                "samples": len(samples),
                                "p50_ms": percentile(samples, 50),
                                "p99_ms": percentile(samples, 99),
                            }
                finally:
                    for target in every:
                        await target.aclose()
                    lp_daemon.stop()

            if "dispatch" in args.phases:
                print("dispatch (in-process harness):", flush=True)
                found = await dispatches(
                    work, provider_url, args.harness_requests, args.rounds, args.burst, args.timeout
                )
                dispatch = {d.transport: d.summary() for d in found}

            if lattice is not None and "concurrency" in args.phases:
                print(f"concurrency: provider holds each chat {args.hold_ms:g} ms", flush=True)
                lattice.daemon.stop()
                lattice.start_daemon(held_url)
                lp_gateway, lp_url = start_longpoll_gateway(work)
                processes.append(lp_gateway)
                lp_daemon = start_longpoll_daemon(work, lp_url, held_url, "longpoll-daemon-held")
                processes.append(lp_daemon)

                async def longpoll_in_flight(client: httpx.AsyncClient) -> float:
                    return float((await client.get(f"{lp_url}/healthz")).json()["in_flight"])

                limit = args.hold_ms / 1000 + args.timeout
                gw, dm = lattice.gateway.process.pid, lattice.daemon.pid()
                held_targets: list[tuple[Target, Callable[[httpx.AsyncClient], Awaitable[float]]]] = [
                    (
                        GrpcChatTarget(
                            "relay-grpc", lattice.gateway.grpc_target, lattice.model, lattice.key, [gw, dm], limit
                        ),
                        lattice.running,
                    ),
                    (
                        JsonChatTarget(
                            "relay-shim",
                            lattice.gateway.http_url,
                            lattice.model,
                            [gw, dm],
                            limit,
                            {"x-api-key": lattice.key},
                        ),
                        lattice.running,
                    ),
                    (
                        JsonChatTarget(
                            "longpoll", lp_url, MODEL_ID, [lp_gateway.process.pid, lp_daemon.process.pid], limit, {}
                        ),
                        longpoll_in_flight,
                    ),
                ]
                held_targets = [(t, f) for t, f in held_targets if t.name in args.targets]

                try:
                    for count in args.concurrency:
                        for target, in_flight in held_targets:
                            await settle([p.process.pid for p in processes] + [dm])
                            level = await concurrency(target, count, limit, held_url, in_flight)
                            levels.append(level)
                            print(
                                f"  {count} at once, {target.name}: ok {level['ok']}, wrong {level['wrong']}, "
                                f"errors {level['errors']} {level['error_kinds'] or ''}, "
                                f"wall {fmt(level['wall_s'])} s, "
                                f"gateway peak {level['gateway_peak_in_flight']:.0f}, "
                                f"provider peak {level['provider_peak_in_flight']:.0f}; load {load_average()}",
                                flush=True,
                            )
                finally:
                    for target, _ in held_targets:
                        await target.aclose()
            info["load_average_at_end"] = load_average()
        finally:
            if lattice is not None:
                lattice.daemon.stop()

    text = report(trips, longpoll_dispatch, dispatch, args.burst, levels)
    print()
    print(text)
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    path = write_results(
        "relay",
        {
            "benchmark": "relay",
            "machine": info,
            "settings": vars(args),
            "gateway_env": GATEWAY_ENV,
            "skipped": skipped,
            "round_trip": trips,
            "longpoll_dispatch_real_processes": longpoll_dispatch,
            "dispatch_harness": dispatch,
            "concurrency": levels,
            "report": text,
        },
    )
    print(f"\nwritten to {path.relative_to(REPO)}")
    return 0


def _version(distribution: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", nargs="+", default=list(PHASES), choices=PHASES, help="what to measure")
    parser.add_argument("--requests", type=int, default=600, help="round trips per target (after 50 warm-up)")
    parser.add_argument("--harness-requests", type=int, default=1000, help="dispatches per transport in the harness")
    parser.add_argument("--rounds", type=int, default=5, help="the requests are split in this many rounds")
    parser.add_argument(
        "--burst", type=int, default=256, help="harness: chats sent at once for burst dispatch (0: none)"
    )
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[256, 512], help="chats in flight at once on one daemon"
    )
    parser.add_argument("--hold-ms", type=float, default=2000.0, help="how long the provider holds each chat then")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a chat counts as lost")
    parser.add_argument("--targets", nargs="+", default=list(TARGET_ORDER), choices=TARGET_ORDER)
    args = parser.parse_args(argv)
    if "direct" not in args.targets:
        parser.error("the direct target is the baseline: keep it")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
