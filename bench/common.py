"""What the benchmarks share: percentiles, tables, the machine description, results files, processes, and the
throughput benchmarks' streamed generations (prompts, targets, N concurrent streams measured on each)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import importlib.metadata
import json
import math
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
from typing import Any, Protocol

import grpc
import httpx

from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2

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
        name: _version(name)
        for name in ("lattice-gateway", "grpcio", "httpx", "uvicorn", "fastapi", "mlx", "mlx-lm", "xllamacpp")
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
    """User + system CPU time so far of one process (all its threads) and of its live descendants: a
    gateway's worker processes count as the gateway."""
    if pid is None:
        return float("nan")
    try:
        fields = _stat_fields(pid)
    except OSError:
        return float("nan")
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(value for value in map(cpu_seconds, _children(pid)) if not math.isnan(value))  # gone since


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


# The throughput benchmarks' streams: prompts, targets, and measuring N concurrent streams on each.

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


OPENERS = (
    "Write a long, detailed essay about",
    "Explain in depth",
    "Give a thorough account of",
    "Describe step by step",
    "Write a lecture for students on",
    "Tell the full story of",
)


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
    """Lattice's gRPC StreamChat on its default model."""

    def __init__(self, address: str, limit: float, name: str = "lattice-grpc") -> None:
        self.name = name
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


class OpenAIServer:
    """Streamed /chat/completions of an OpenAI-compatible server (`mlx_lm.server`, Lattice's REST shim)."""

    def __init__(self, name: str, base_url: str, model: str, limit: float) -> None:
        self.name = name
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


def prompts_needed(levels: Sequence[int], single: int, repeats: int) -> int:
    """How many distinct prompts `measure` uses."""
    return repeats * sum(single if n == 1 else n for n in levels)


async def measure(
    servers: list[Server], levels: Sequence[int], single: int, max_tokens: int, repeats: int, first_prompt: int = 0
) -> tuple[list[Level], list[Stream]]:
    """Every level `repeats` times on every server. Prompts `first_prompt` onwards, none seen twice by a server
    (a later call on the same servers starts after `prompts_needed` of this one)."""
    summary: list[Level] = []
    streams: list[Stream] = []
    per_repetition = sum(single if n == 1 else n for n in levels)
    for repetition in range(repeats):
        next_prompt = first_prompt + repetition * per_repetition
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
                    f"  rep {repetition + 1}/{repeats} {n} stream(s) {server.name:<24} aggregate"
                    f" {fmt(level.aggregate_tps, 1):>6} tok/s  decode {fmt(level.decode_tps_p50, 1):>5} tok/s"
                    f"  TTFT p50 {fmt(level.ttft_p50_ms, 0):>6} ms  tokens {tokens}  wall {wall:.1f} s"
                    f"  load {load_average()}" + (f"  errors: {errors}" if errors else ""),
                    flush=True,
                )
            next_prompt += count
    return summary, streams


ByServer = dict[str, dict[str, dict[str, float]]]
"""server name -> concurrency (as a string) -> figure -> value."""


def by_server(levels: list[Level], names: Sequence[str], counts: Sequence[int]) -> ByServer:
    """Per server and concurrency, the medians over the repetitions."""
    table_rows: ByServer = {}
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
    return table_rows


def streams_table(rows_by_server: ByServer) -> str:
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
            f"{s['errors']:.0f}/{s['requests']:.0f}",
        ]
        for name, by_n in rows_by_server.items()
        for n, s in by_n.items()
    ]
    return table(headers, rows)


def stream_records(streams: list[Stream]) -> list[dict[str, Any]]:
    """The streams as a results file keeps them."""
    return [{**dataclasses.asdict(s), "ttft_ms": s.ttft_ms, "decode_tps": s.decode_tps} for s in streams]
