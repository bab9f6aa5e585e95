"""Full garbage collections under load, with the startup heap frozen (`gc_freeze`, the default) and without.

    .venv/bin/python -m bench.gc_pauses                      # ~2 min: 300 req/s streamed, 20 s per cell, 2 repetitions
    .venv/bin/python -m bench.gc_pauses --rate 500 --seconds 30 --repeats 3

Two `lattice serve` processes, alike but for LATTICE_GC_FREEZE, in front of one `bench.fast_upstream`, take
turns (in alternating order) under the same open-loop load through the shim. Per cell: the full collections
the gateway counted in its `/metrics` (`lattice_gc_full_collection_seconds`: how many, their mean, the
bucket of the longest), and the requests' p50 / p99 / max latency, where a long collection shows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.common import fmt, load_average, machine, machine_line, median, running, table, write_results
from bench.gateway_overhead import HttpTarget, run_cell, warm_up
from bench.peers import lattice_config, start_fast_upstream, start_lattice

FREEZE = {"frozen": "true", "unfrozen": "false"}


@dataclass(frozen=True)
class Collections:
    """A gateway's `lattice_gc_full_collection_seconds` at one scrape of its /metrics."""

    buckets: dict[float, float]  # cumulative counts by upper bound; inf: all of them
    seconds: float

    @classmethod
    async def scrape(cls, http_url: str) -> Collections:
        async with aiohttp.ClientSession() as session, session.get(f"{http_url}/metrics") as response:
            text = await response.text()
        buckets, seconds = {}, 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "lattice_gc_full_collection_seconds_bucket":
                    buckets[float(sample.labels["le"])] = sample.value
                elif sample.name == "lattice_gc_full_collection_seconds_sum":
                    seconds = sample.value
        return cls(buckets, seconds)

    def since(self, before: Collections) -> tuple[float, float, float]:
        """(count, seconds, the upper bound of the bucket the longest one fell in) of the collections since
        `before`."""
        count = self.buckets[float("inf")] - before.buckets[float("inf")]
        longest = next(b for b in sorted(self.buckets) if self.buckets[b] - before.buckets[b] >= count)
        return count, self.seconds - before.seconds, longest


def summary_row(name: str, rows: list[dict[str, Any]]) -> list[str]:
    """One gateway's cells: its full collections, their mean pause over all of them, the longest one's
    bucket, and the median p99 and the worst latency of its cells."""
    collections = sum(r["full_collections"] for r in rows)
    milliseconds = sum(r["pause_ms_total"] for r in rows)
    longest = max((r["longest_pause_at_most_ms"] for r in rows if r["full_collections"]), default=float("nan"))
    return [
        name,
        fmt(collections, 0),
        fmt(milliseconds / collections if collections else float("nan")),
        fmt(longest),
        fmt(median([r["p99_ms"] for r in rows])),
        fmt(max(r["max_ms"] for r in rows)),
        fmt(median([r["cpu_ms_per_request"] for r in rows])),
    ]


async def run(args: argparse.Namespace) -> int:
    print(
        f"gc pauses: {args.rate:g} req/s streamed through the shim, {args.seconds:g} s per cell,"
        f" {args.repeats} repetitions"
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lattice-bench-") as log_dir, running([]) as processes:
        upstream, upstream_root = start_fast_upstream(log_dir)
        processes.append(upstream)
        config = os.path.join(log_dir, "lattice.toml")
        lattice_config(config, f"{upstream_root}/v1")
        gateways = {}
        for name, freeze in FREEZE.items():
            gateway, process = start_lattice(log_dir, config, name, LATTICE_GC_FREEZE=freeze)
            processes.append(process)
            gateways[name] = gateway
        targets = {
            name: HttpTarget(name, f"{g.http_url}/v1", g.process.pid, args.timeout, {}, True)
            for name, g in gateways.items()
        }
        for target in targets.values():
            await warm_up(target, args.timeout)
        info = machine({})
        print(machine_line(info))
        for repetition in range(args.repeats):
            order = list(FREEZE) if repetition % 2 == 0 else list(reversed(FREEZE))
            for name in order:
                before = await Collections.scrape(gateways[name].http_url)
                cell = await run_cell(targets[name], args.rate, args.seconds, args.timeout, repetition, 256)
                count, seconds, longest = (await Collections.scrape(gateways[name].http_url)).since(before)
                row: dict[str, Any] = {
                    "target": name,
                    "repetition": repetition,
                    "full_collections": count,
                    "pause_ms_total": seconds * 1000,
                    "longest_pause_at_most_ms": longest * 1000 if count else float("nan"),
                    "p50_ms": cell.p50_ms,
                    "p99_ms": cell.p99_ms,
                    "max_ms": cell.max_ms,
                    "errors": cell.errors,
                    "cpu_ms_per_request": cell.cpu_ms_per_request,
                }
                rows.append(row)
                print(
                    f"  rep {repetition + 1}/{args.repeats} {name:<9} full collections {count:.0f}"
                    f" ({fmt(seconds * 1000 / count if count else float('nan'))} ms each)"
                    f"  p50 {fmt(cell.p50_ms)}  p99 {fmt(cell.p99_ms)}"
                    f"  max {fmt(cell.max_ms)} ms  errors {cell.errors}  load {load_average()}",
                    flush=True,
                )
        for target in targets.values():
            await target.aclose()
    summary = [summary_row(name, [r for r in rows if r["target"] == name]) for name in FREEZE]
    headers = ["gateway", "full GCs", "mean pause ms", "longest ≤ ms", "p99 ms (median)", "max ms", "CPU ms/req"]
    text = table(headers, summary)
    print()
    print(text)
    path = write_results(
        "gc_pauses", {"benchmark": "gc_pauses", "machine": info, "settings": vars(args), "cells": rows, "report": text}
    )
    print(f"\nwritten to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300.0, help="offered load, req/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load per cell")
    parser.add_argument("--repeats", type=int, default=2, help="repetitions (each runs both gateways)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before one request counts as failed")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
