"""Real upstream model servers on loopback, for the proxied-backend tests."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

from lattice.server.backends.mlx.gguf_convert import default_gguf_path, prepare_mlx_model
from tests.gateway_process import TEST_HOME, free_port, lattice_env

STARTUP_TIMEOUT_SECONDS = 120.0


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: pathlib.Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def smollm2_mlx_dir() -> pathlib.Path:
    """The same converted SmolLM2 directory the gateway itself serves."""
    return prepare_mlx_model(default_gguf_path(), TEST_HOME / "models", "float32")


def start_mlx_lm_server(
    log_dir: pathlib.Path, *, with_hf_cache: bool = True, serial: bool = False, preload: str | None = None
) -> ServerProcess:
    """`mlx_lm.server` on the SmolLM2 MLX directory: a real OpenAI-compatible upstream.

    Its /v1/models scans the Hugging Face cache and fails when there is none; `with_hf_cache`
    gives it an empty one, as a machine that ever used the hub would have. `serial` turns its
    batching off, so that a request waits for the one before it to end. `preload` is a library
    for `LD_PRELOAD` (the BLAS that `lattice serve` preloads, for a comparison on equal terms).
    """
    port = free_port()
    log_path = log_dir / f"mlx_lm-server-{port}.log"
    command = [sys.executable, "-m", "mlx_lm.server", "--model", str(smollm2_mlx_dir())]
    if serial:
        command += ["--decode-concurrency", "1", "--prompt-concurrency", "1"]
    hf_cache = log_dir / "hf-cache"
    if with_hf_cache:
        hf_cache.mkdir(exist_ok=True)
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        env=lattice_env(HF_HUB_CACHE=str(hf_cache), **({"LD_PRELOAD": preload} if preload else {})),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = ServerProcess(process, port, log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlx_lm.server exited early:\n{log_path.read_text(errors='replace')}")
        try:
            httpx.get(f"{server.base_url}/models", timeout=2)
            return server  # any answer: it is listening
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop()
    raise TimeoutError(f"mlx_lm.server did not come up:\n{log_path.read_text(errors='replace')}")
