"""What both benchmarks share: percentiles, tables, the machine description, results files, processes."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
# The peers run from their own virtualenvs (made by `make bench`): installing them into .venv
# would downgrade packages Lattice itself uses (huggingface_hub, rich, python-dateutil).
PEER_VENVS = REPO / "build" / "bench-venvs"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if v == v]  # drop NaN
    return statistics.median(clean) if clean else float("nan")


def fmt(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, padded so it also reads well in a terminal."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
    ]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join(lines)


def _read(path: str) -> str:
    try:
        return pathlib.Path(path).read_text()
    except OSError:
        return ""


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def venv_version(venv: pathlib.Path, distribution: str) -> str | None:
    """A distribution's version inside another virtualenv (the peers' own)."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip() or None


def load_average() -> str:
    return " ".join(_read("/proc/loadavg").split()[:3])


def machine(extra_versions: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The machine and software a result was measured on."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines() if "model name" in line), ""
    )
    mem_kb = next(
        (int(line.split()[1]) for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal")), 0
    )
    os_name = next(
        (
            line.split("=", 1)[1].strip('"')
            for line in _read("/etc/os-release").splitlines()
            if line.startswith("PRETTY_NAME")
        ),
        platform.platform(),
    )
    versions = {
        name: _version(name) for name in ("lattice-gateway", "grpcio", "httpx", "uvicorn", "fastapi", "mlx", "mlx-lm")
    }
    versions.update(extra_versions or {})
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "lattice"], capture_output=True, text=True
    )
    versions["lattice_commit"] = commit.stdout.strip() + (
        "+uncommitted lattice/ changes" if dirty.stdout.strip() else ""
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "os": f"{os_name} ({platform.release()})",
        "python": platform.python_version(),
        "versions": versions,
        "load_average_at_start": load_average(),
    }


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"{info['nproc']} CPUs ({info['cpu']}), {info['ram_gib']} GiB RAM, {info['os']}, Python {info['python']}, "
        f"Lattice {info['versions']['lattice_commit']}; "
        f"load average at start {info['load_average_at_start']}"
    )


def write_results(name: str, payload: dict[str, Any]) -> pathlib.Path:
    """bench/results/<name>-<UTC time>.json, and <name>-latest.json beside it."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    text = json.dumps(payload, indent=2, default=str) + "\n"
    path.write_text(text)
    (RESULTS / f"{name}-latest.json").write_text(text)
    return path


@dataclass
class Process:
    """A server this benchmark started, in its own process group, logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: pathlib.Path
    own_group: bool = False  # started in its own session: signals go to its whole process group

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.own_group:
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout=15)


def spawn(name: str, command: Sequence[str], log_dir: pathlib.Path, env: dict[str, str] | None = None) -> Process:
    log_path = log_dir / f"{name}.log"
    process = subprocess.Popen(
        list(command),
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=log_dir,
        start_new_session=True,  # its own process group: stop() ends its workers too
    )
    return Process(name, process, log_path, own_group=True)


def wait_http(process: Process, url: str, timeout: float) -> None:
    """Until `url` answers 200, the process dies, or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(f"{process.name} exited early:\n{process.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise TimeoutError(f"{process.name} did not answer {url} within {timeout:.0f}s:\n{process.log_tail()}")


@contextlib.contextmanager
def running(processes: list[Process]) -> Iterator[list[Process]]:
    """Stops every process in the list (including ones appended inside the block) on the way out."""
    try:
        yield processes
    finally:
        for process in reversed(processes):
            process.stop()


def python() -> str:
    return sys.executable


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of one process (all its threads) so far."""
    if pid is None:
        return float("nan")
    try:
        fields = _stat_fields(pid)
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces): state, ppid, ..."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int(_stat_fields(entry)[1]) == pid:
                    found.append(int(entry))
    return found


def pin(pid: int, cpus: set[int]) -> None:
    """Runs every thread of `pid` and of its descendants on `cpus` from now on (Linux only; a no-op elsewhere).
    Threads and processes they start later inherit it."""
    if not hasattr(os, "sched_setaffinity") or not os.path.isdir(f"/proc/{pid}/task"):
        return
    for thread in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):  # a thread that just ended
            os.sched_setaffinity(int(thread), cpus)
    for child in _children(pid):
        pin(child, cpus)
