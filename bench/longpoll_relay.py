"""An HTTP long-polling relay: the baseline `bench/relay/` compares Lattice's bidirectional stream with.

Benchmark code only, built the way one would without a stream: the daemon still dials out (no inbound
port), but over plain HTTP/1.1 requests instead of one gRPC stream.

Gateway (`LongPollGateway`, a Starlette app under uvicorn, on the standard asyncio loop like Lattice):
  POST /register          the daemon's X25519 public key (its pairing); answers the gateway's
  POST /v1/chat/completions
                          an app's chat, OpenAI-shaped, answered as one JSON completion (not streamed):
                          it becomes a work item, sealed to the daemon's key, and waits for its answer
  GET  /work?wait=S       the daemon's long poll: held open until work exists (or S seconds: 204), then
                          answers every pending item at once (up to --max-batch)
  POST /work/{id}         the daemon's answer to one item, sealed to the gateway's key
  GET  /healthz           up, paired, polls waiting, items in flight
Daemon (`LongPollDaemon`): one poll outstanding at a time (`--pollers` for more), re-issued as soon as one
returns; each item runs as its own task against the local OpenAI-compatible provider (streamed, as
Lattice's daemon calls it, with the same httpx pool limits), and its whole answer goes back in one POST.

Like Lattice's relay, payloads travel as libsodium sealed boxes bound to their work id, so the crypto is
comparable; unlike it, the answer reaches the app only when complete (one POST per item instead of one
stream message per delta: fewer messages, which favours this baseline), there is no cancellation, no
heartbeat and no authentication. The app's response carries `x-bench-received` / `x-bench-picked`:
time.monotonic() when the gateway got the chat and when the daemon got the item (CLOCK_MONOTONIC is one
clock for every process on a Linux machine, so the difference is the dispatch latency).

    python -m bench.longpoll_relay gateway --port 9100
    python -m bench.longpoll_relay daemon --gateway http://127.0.0.1:9100 --provider-url http://127.0.0.1:9000/v1
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
import time
from typing import Any

import httpx
import uvicorn
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.fast_upstream import MODEL_ID

log = logging.getLogger("bench.longpoll")
POLL_SECONDS = 25.0
MAX_BATCH = 1024
GATEWAY_CONNECTIONS = 64
"""The daemon's connections to the gateway (polls and answers); answers beyond them wait for one."""


def _seal(payload: dict[str, Any], recipient: bytes) -> str:
    return base64.b64encode(SealedBox(PublicKey(recipient)).encrypt(json.dumps(payload).encode())).decode()


def _open(sealed: str, key: PrivateKey, work_id: str) -> dict[str, Any]:
    """The sealed JSON, checked to belong to `work_id` (as Lattice binds a box to its envelope)."""
    payload: dict[str, Any] = json.loads(SealedBox(key).decrypt(base64.b64decode(sealed)))
    if payload.get("work_id") != work_id:
        raise ValueError(f"a sealed box is bound to another work item than {work_id}")
    return payload


class LongPollGateway:
    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self.key = PrivateKey.generate()
        self.daemon_key: bytes | None = None
        self._max_batch = max_batch
        self._pending: collections.deque[dict[str, str]] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._answers: dict[str, asyncio.Future[tuple[dict[str, Any], float]]] = {}
        self._ids = itertools.count()
        self.app = Starlette(
            routes=[
                Route("/register", self._register, methods=["POST"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/work", self._poll, methods=["GET"]),
                Route("/work/{work_id}", self._answer, methods=["POST"]),
                Route("/healthz", self._health, methods=["GET"]),
            ]
        )

    # --- what the app calls ---------------------------------------------------------------------------

    async def submit(self, body: dict[str, Any]) -> tuple[str, dict[str, Any], float]:
        """Queues one chat for the daemon and waits for its answer: (work id, the answer's payload, when
        the daemon picked the item up, as its time.monotonic())."""
        if self.daemon_key is None:
            raise RuntimeError("no daemon is paired")
        work_id = f"w{next(self._ids)}"
        answer: asyncio.Future[tuple[dict[str, Any], float]] = asyncio.get_running_loop().create_future()
        self._answers[work_id] = answer
        try:
            self._pending.append(
                {"id": work_id, "sealed": _seal({"work_id": work_id, "request": body}, self.daemon_key)}
            )
            self._wake_one()
            payload, picked = await answer
        finally:
            self._answers.pop(work_id, None)
        return work_id, payload, picked

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _chat(self, request: Request) -> Response:
        received = time.monotonic()
        body = json.loads(await request.body())
        work_id, payload, picked = await self.submit(body)
        if "error" in payload:
            return JSONResponse({"error": {"message": payload["error"]}}, status_code=502)
        completion = {
            "id": f"chatcmpl-{work_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(payload["deltas"])},
                    "finish_reason": payload["finish_reason"],
                }
            ],
            "usage": payload["usage"],
        }
        headers = {"x-bench-received": repr(received), "x-bench-picked": repr(picked)}
        return JSONResponse(completion, headers=headers)

    # --- what the daemon calls ------------------------------------------------------------------------

    async def _register(self, request: Request) -> Response:
        self.daemon_key = base64.b64decode((await request.json())["publicKey"])
        return JSONResponse({"gatewayPublicKey": base64.b64encode(bytes(self.key.public_key)).decode()})

    async def _poll(self, request: Request) -> Response:
        wait = min(float(request.query_params.get("wait", POLL_SECONDS)), 300.0)
        if not self._pending:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            # A daemon that went away must not be handed work: watch for its disconnect while waiting.
            gone = asyncio.ensure_future(_disconnected(request))
            try:
                await asyncio.wait((waiter, gone), timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if gone.done() and not gone.cancelled():
                if waiter.done():  # woken for work it will not take: pass the wake-up on
                    self._wake_one()
                return Response(status_code=204)
            if not waiter.done():
                return Response(status_code=204)  # nothing came: the daemon polls again
        items = [self._pending.popleft() for _ in range(min(len(self._pending), self._max_batch))]
        if not items:  # another poll took them
            return Response(status_code=204)
        return JSONResponse({"work": items})

    async def _answer(self, request: Request) -> Response:
        work_id = request.path_params["work_id"]
        body = await request.json()
        answer = self._answers.get(work_id)
        if answer is None or answer.done():
            return Response(status_code=404)  # the app went away
        try:
            payload = _open(body["sealed"], self.key, work_id)
        except (CryptoError, ValueError) as error:
            payload = {"error": f"the answer did not open: {error}"}
        answer.set_result((payload, float(body["picked"])))
        return Response(status_code=204)

    def status(self) -> dict[str, Any]:
        return {
            "paired": self.daemon_key is not None,
            "polls_waiting": len(self._waiters),
            "pending": len(self._pending),
            "in_flight": len(self._answers),
        }

    async def _health(self, _request: Request) -> Response:
        return JSONResponse(self.status())


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


class LongPollDaemon:
    def __init__(
        self,
        gateway_url: str,
        provider_url: str,
        provider_model: str = MODEL_ID,
        pollers: int = 1,
        gateway_connections: int = GATEWAY_CONNECTIONS,
    ) -> None:
        self.key = PrivateKey.generate()
        self._gateway_key = b""
        self._pollers = pollers
        self._model = provider_model
        self._gateway = httpx.AsyncClient(
            base_url=gateway_url.rstrip("/"),
            timeout=httpx.Timeout(POLL_SECONDS + 30, connect=5),
            limits=httpx.Limits(max_connections=gateway_connections, max_keepalive_connections=gateway_connections),
        )
        # The same pool as Lattice's daemon has for its provider (lattice/server/backends/upstream/openai.py).
        self._provider = httpx.AsyncClient(
            base_url=provider_url.rstrip("/") + "/",
            timeout=httpx.Timeout(600, connect=5),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=32),
        )
        self.receipts: dict[str, float] = {}
        """Work id → time.monotonic() when its poll answer was read (kept only with `record`)."""
        self.record = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        registered = await self._gateway.post(
            "/register", json={"publicKey": base64.b64encode(bytes(self.key.public_key)).decode()}
        )
        registered.raise_for_status()
        self._gateway_key = base64.b64decode(registered.json()["gatewayPublicKey"])
        await asyncio.gather(*(self._poll_forever() for _ in range(self._pollers)))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._gateway.aclose()
        await self._provider.aclose()

    async def _poll_forever(self) -> None:
        while True:
            try:
                response = await self._gateway.get("/work", params={"wait": POLL_SECONDS})
            except httpx.HTTPError as error:
                log.warning("poll failed (%s); polling again in 0.5 s", error)
                await asyncio.sleep(0.5)
                continue
            if response.status_code != 200:
                continue
            picked = time.monotonic()
            for item in response.json()["work"]:
                if self.record:
                    self.receipts[item["id"]] = picked
                task = asyncio.create_task(self._run(item["id"], item["sealed"], picked))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _run(self, work_id: str, sealed: str, picked: float) -> None:
        try:
            request = _open(sealed, self.key, work_id)["request"]
            answer = {"work_id": work_id, **await self._generate(request)}
        except Exception as error:  # every item gets an answer, whatever broke
            answer = {"work_id": work_id, "error": f"{type(error).__name__}: {error}"}
        body = {"sealed": _seal(answer, self._gateway_key), "picked": picked}
        with contextlib.suppress(httpx.HTTPError):
            await self._gateway.post(f"/work/{work_id}", json=body)

    async def _generate(self, request: dict[str, Any]) -> dict[str, Any]:
        body = {
            "model": self._model,
            "messages": request["messages"],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        for field in ("max_tokens", "temperature", "top_p", "stop"):
            if request.get(field) is not None:
                body[field] = request[field]
        deltas: list[str] = []
        finish_reason = "stop"
        usage: dict[str, int] = {}
        async with self._provider.stream("POST", "chat/completions", json=body) as response:
            if response.status_code != 200:
                raise RuntimeError(f"the provider answered {response.status_code}")
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or ():
                    if text := (choice.get("delta") or {}).get("content"):
                        deltas.append(text)
                    finish_reason = choice.get("finish_reason") or finish_reason
        return {"deltas": deltas, "finish_reason": finish_reason, "usage": usage}


def uvicorn_server(app: Starlette, host: str, port: int) -> uvicorn.Server:
    """The gateway's server: the running loop (the standard asyncio one, like Lattice's), no access log."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=75,
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


async def _gateway_main(args: argparse.Namespace) -> None:
    await uvicorn_server(LongPollGateway(args.max_batch).app, args.host, args.port).serve()


async def _daemon_main(args: argparse.Namespace) -> None:
    daemon = LongPollDaemon(
        args.gateway, args.provider_url, args.provider_model, args.pollers, args.gateway_connections
    )
    try:
        await daemon.run()
    finally:
        await daemon.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    roles = parser.add_subparsers(dest="role", required=True)
    gateway = roles.add_parser("gateway", help="the gateway side: chats in, long polls answered")
    gateway.add_argument("--host", default="127.0.0.1")
    gateway.add_argument("--port", type=int, required=True)
    gateway.add_argument("--max-batch", type=int, default=MAX_BATCH, help="most work items one poll answers")
    daemon = roles.add_parser("daemon", help="the daemon side: polls for work, runs it on a local provider")
    daemon.add_argument("--gateway", required=True, help="the gateway's URL, e.g. http://127.0.0.1:9100")
    daemon.add_argument(
        "--provider-url", required=True, help="an OpenAI-compatible server, e.g. http://127.0.0.1:9000/v1"
    )
    daemon.add_argument("--provider-model", default=MODEL_ID)
    daemon.add_argument("--pollers", type=int, default=1, help="long polls outstanding at once")
    daemon.add_argument(
        "--gateway-connections", type=int, default=GATEWAY_CONNECTIONS, help="connections to the gateway, at most"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_gateway_main(args) if args.role == "gateway" else _daemon_main(args))


if __name__ == "__main__":
    main()
