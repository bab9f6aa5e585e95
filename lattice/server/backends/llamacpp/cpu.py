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
    """Every physical core; half of them when an MLX model shares the process, so the two engines'
    thread pools never ask for more cores than there are."""
    cores = physical_cores()
    return max(1, cores // 2) if mlx_also_runs else cores
