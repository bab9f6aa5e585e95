"""The gateways the overhead benchmark compares against, started as they ship: LiteLLM's proxy and
Local Lattice (each from its own virtualenv under build/bench-venvs/), and Lattice's own config."""

from __future__ import annotations

import os
import pathlib
import secrets
import sys

from bench.common import (
    PEER_VENVS,
    REPO,
    Process,
    spawn,
    wait_http,
)
from bench.fast_upstream import MODEL_ID
from tests.gateway_process import GatewayProcess, free_port, start_gateway

STARTUP_TIMEOUT = 120.0


def peer_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LATTICE_", "LITELLM_", "OPENAI_"))}
    env.update(HF_HUB_OFFLINE="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", **extra)
    return env


def start_fast_upstream(log_dir: str, *options: str) -> tuple[Process, str]:
    """`bench.fast_upstream` on a free port (`options` as on its command line); returns it and its root URL."""
    return start_bench_server("fast-upstream", ["bench.fast_upstream", *options], pathlib.Path(log_dir), "/v1/models")


def start_bench_server(
    name: str, module_args: list[str], log_dir: pathlib.Path, ready_path: str
) -> tuple[Process, str]:
    """`python -m <module_args> --port N` on a free port, once `ready_path` answers; its process and root URL."""
    port = free_port()
    command = [sys.executable, "-m", *module_args, "--port", str(port)]
    server = spawn(name, command, log_dir, {**peer_env(), "PYTHONPATH": str(REPO)})
    root = f"http://127.0.0.1:{port}"
    try:
        wait_http(server, f"{root}{ready_path}", STARTUP_TIMEOUT)
    except BaseException:
        server.stop()
        raise
    return server, root


def start_lattice(log_dir: str, config: str, name: str = "lattice", **env: str) -> tuple[GatewayProcess, Process]:
    """`lattice serve` with the TOML file `config` (and `env`); returns it, and it as a Process to stop with
    the others."""
    gateway = start_gateway(pathlib.Path(log_dir), LATTICE_CONFIG=config, **env)
    return gateway, Process(name, gateway.process, gateway.log_path)


def lattice_config(
    path: str,
    upstream_url: str,
    *,
    max_concurrent_per_model: int = 1024,
    queue_size: int = 4096,
    queue_timeout_seconds: float = 30.0,
) -> None:
    """Lattice with the upstream as its only model. By default its caps are raised so admission never
    queues, and the per-caller limits (a rate limit, streams at once) are off: the benchmarks' clients
    are one caller (or two) sending far more than one agent would."""
    with open(path, "w") as f:
        f.write(
            f"""# Only the proxied model: no MLX model is loaded for this benchmark.
default_model = "{MODEL_ID}"
max_concurrent_per_model = {max_concurrent_per_model}
max_concurrent_total = 4096
queue_size = {queue_size}
queue_timeout_seconds = {queue_timeout_seconds}
rate_limit_per_minute = 0
max_streams_per_key = 100000

[[models]]
id = "{MODEL_ID}"
backend = "openai"
upstream = "fast"
roles = ["chat"]

[[upstreams]]
name = "fast"
base_url = "{upstream_url}"
models = ["{MODEL_ID}"]
refresh_seconds = 300
"""
        )


def start_litellm(log_dir: str, upstream_url: str) -> tuple[Process, int, str]:
    executable = PEER_VENVS / "litellm" / "bin" / "litellm"
    if not executable.exists():
        raise FileNotFoundError(f"{executable} is missing: run `make bench` (or see bench/README.md)")
    port = free_port()
    config = os.path.join(log_dir, "litellm.yaml")
    with open(config, "w") as f:
        f.write(
            f"""model_list:
  - model_name: {MODEL_ID}
    litellm_params:
      model: openai/{MODEL_ID}
      api_base: {upstream_url}
      api_key: unused
litellm_settings:
  telemetry: false
"""
        )
    # LiteLLM refuses to start without a master key; a random one, sent by the benchmark's client.
    key = "sk-bench-" + secrets.token_hex(16)
    env = peer_env(LITELLM_MASTER_KEY=key, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False")
    command = [str(executable), "--config", config, "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    process = spawn("litellm", command, pathlib.Path(log_dir), env)
    try:
        wait_http(process, f"http://127.0.0.1:{port}/health/liveliness", STARTUP_TIMEOUT)
    except BaseException:
        process.stop()
        raise
    return process, port, key


def start_local_lattice(log_dir: str, upstream_root: str) -> tuple[Process, int]:
    executable = PEER_VENVS / "local-lattice" / "bin" / "local-lattice-lmstudio"
    if not executable.exists():
        raise FileNotFoundError(f"{executable} is missing: run `make bench` (or see bench/README.md)")
    port = free_port()
    # Its defaults; PREFER_LOADED_MODELS is its default made explicit, and no extra placeholder model names.
    env = peer_env(
        LM_STUDIO_URL=upstream_root,
        HOST="127.0.0.1",
        PORT=str(port),
        PREFER_LOADED_MODELS="strict",
        EXTRA_PLACEHOLDER_MODELS="",
    )
    process = spawn("local-lattice", [str(executable)], pathlib.Path(log_dir), env)
    try:
        wait_http(process, f"http://127.0.0.1:{port}/healthz", STARTUP_TIMEOUT)
    except BaseException:
        process.stop()
        raise
    return process, port
