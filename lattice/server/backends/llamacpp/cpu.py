"""How many CPU threads llama.cpp gets by default."""

from __future__ import annotations

import os
import pathlib


def physical_cores() -> int:
    """Cores this process may run on, hyperthread siblings counted once (Linux topology; else all CPUs)."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in allowed:
        topology = pathlib.Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text(), (topology / "core_id").read_text()))
        except OSError:
            cores.add((str(cpu), ""))
    return max(1, len(cores))


def default_threads(*, mlx_also_runs: bool) -> int:
    """Every physical core but one, which the gateway's own event loop (and the shim) needs while tokens
    stream; half of those when an MLX model shares the process, so the two engines' thread pools never
    ask for more cores than there are. llama.cpp's threads spin while they wait for each other, so one
    busy core among them stalls them all: on a 2-core VM with one other busy process, 2 threads decoded
    ~40 tok/s against 1 thread's ~130 (bench/README.md)."""
    spare = max(1, physical_cores() - 1)
    return max(1, spare // 2) if mlx_also_runs else spare
