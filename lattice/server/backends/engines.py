"""Which in-process engine runs a local model, and the backend that runs it there.

`auto` is MLX on macOS with Apple Silicon (Metal) and llama.cpp everywhere else,
where it is several times faster on the CPU (bench/README.md). A model on
llama.cpp also gains what its grammar-constrained decoding gives: tools, JSON
output and log probabilities.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
import sys
from dataclasses import dataclass
from typing import Literal

from lattice.config import LOCAL_BACKENDS, Capability, ModelProfile, Settings
from lattice.server.backends.base import Backend
from lattice.server.backends.llamacpp.backend import LlamaCppBackend
from lattice.server.backends.llamacpp.cpu import default_threads
from lattice.server.backends.llamacpp.engine import EngineOptions
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.backends.residency import Residency

log = logging.getLogger(__name__)

ConcreteEngine = Literal["llamacpp", "mlx"]
LLAMACPP_CAPABILITIES: tuple[Capability, ...] = ("tools", "json_mode", "logprobs", "embeddings", "completions")


def on_apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def llamacpp_installed() -> bool:
    return importlib.util.find_spec("xllamacpp") is not None


def engine_of(profile: ModelProfile, settings: Settings) -> ConcreteEngine:
    """The profile's `engine`, else the engine its `backend` names, else the global `engine`; `auto` resolved."""
    wanted = profile.engine or (profile.backend if profile.backend in ("llamacpp", "mlx") else None) or settings.engine
    if wanted == "auto":
        wanted = "mlx" if on_apple_silicon() else "llamacpp"
    if wanted == "llamacpp" and not llamacpp_installed():
        return "mlx"
    return "mlx" if wanted == "mlx" else "llamacpp"


@dataclass
class LocalModels:
    """Builds the backends of in-process models; they share one residency (at most `mlx_max_resident` loaded)."""

    settings: Settings
    worker: MlxWorker

    def __post_init__(self) -> None:
        self.residency = Residency(self.settings.mlx_max_resident)
        local = [p for p in self.settings.models if p.backend in LOCAL_BACKENDS]
        self._mlx_also_runs = any(engine_of(p, self.settings) == "mlx" for p in local)
        if self._mlx_also_runs and not llamacpp_installed():
            log.warning("llama.cpp (xllamacpp) is not installed for this platform: the in-process models run on MLX")

    def profile(self, profile: ModelProfile) -> ModelProfile:
        """The profile as served: `backend` names the engine, and llama.cpp's capabilities are added."""
        engine = engine_of(profile, self.settings)
        capabilities = profile.capabilities
        if engine == "llamacpp":
            capabilities = (*capabilities, *(c for c in LLAMACPP_CAPABILITIES if c not in capabilities))
        return profile.model_copy(update={"backend": engine, "engine": engine, "capabilities": capabilities})

    def concurrency(self, profile: ModelProfile) -> int:
        """Requests a served profile runs at once: the sequences its engine decodes together."""
        default = self.settings.llamacpp_parallel if profile.backend == "llamacpp" else self.settings.mlx_max_batch
        return profile.max_concurrency or default

    def backend(self, profile: ModelProfile) -> Backend:
        """The backend of a served profile (`profile` first)."""
        pinned = profile.pinned or profile.id == self.settings.default_model
        if profile.backend == "llamacpp":
            options = EngineOptions(
                threads=self.settings.llamacpp_threads or default_threads(mlx_also_runs=self._mlx_also_runs),
                parallel=self.concurrency(profile),
                context_tokens=self.settings.llamacpp_context_tokens or 2 * profile.context_window,
                batch_tokens=self.settings.llamacpp_batch_tokens,
            )
            return LlamaCppBackend(profile, options=options, residency=self.residency, pinned=pinned)
        from lattice.server.backends.mlx.backend import MlxBackend  # imports MLX: only when a model uses it

        return MlxBackend(
            profile,
            cache_dir=self.settings.home / "models",
            weights=self.settings.mlx_weights,
            worker=self.worker,
            max_batch=self.concurrency(profile),
            residency=self.residency,
            pinned=pinned,
        )
