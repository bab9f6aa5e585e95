"""Where the daemon runs work: a local OpenAI-compatible provider (Ollama, LM Studio, llama.cpp,
mlx_lm.server) when one is configured, else the embedded MLX model. Either is one of the gateway's
own backends, so the daemon streams, stops and reports errors exactly as the gateway does."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING

from lattice.config import ModelProfile, Settings, Upstream
from lattice.errors import BackendUnavailable
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.chat import ChatRequest, GenerationEvent

if TYPE_CHECKING:
    from lattice.server.backends.mlx.worker import MlxWorker

PROVIDER_NAME = "local-provider"


class Executor:
    def __init__(self, settings: Settings, *, provider_url: str = "", provider_model: str = "") -> None:
        self._settings = settings
        self._limits = GenerationLimits(max_tokens_ceiling=settings.max_tokens_ceiling)
        self._provider_url = provider_url
        self._provider_model = provider_model
        self._provider_models: list[str] = []
        self._backend: Backend | None = None
        self._profile: ModelProfile | None = None
        self._worker: MlxWorker | None = None

    @property
    def description(self) -> str:
        if self._provider_url:
            return f"local provider {self._provider_url} ({self._provider_model or 'its first model'})"
        return f"embedded MLX model {self._settings.default_model}"

    async def start(self) -> None:
        if self._provider_url:
            from lattice.server.backends.upstream.openai import OpenAIUpstream

            upstream = Upstream(
                name=PROVIDER_NAME,
                base_url=self._provider_url,
                models=(self._provider_model,) if self._provider_model else (),
            )
            # As many connections as the gateway lets work items run here at once (the same setting).
            self._backend = OpenAIUpstream(
                upstream, self._on_models, max_connections=self._settings.relay_max_in_flight
            )
        else:
            from lattice.server.backends.mlx.worker import MlxWorker

            self._worker = MlxWorker()
            self._backend, self._profile = _embedded_mlx(self._settings, self._worker)
        await self._backend.start()

    def _on_models(self, ids: list[str]) -> None:
        self._provider_models = ids

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.close()
        if self._worker is not None:
            self._worker.stop()

    def _model(self) -> ModelProfile:
        if self._profile is not None:
            return self._profile
        model_id = self._provider_model or next(iter(self._provider_models), "")
        if not model_id:
            raise BackendUnavailable(
                f"the local provider {self._provider_url} lists no models; set --provider-model",
                reason="BACKEND_UNAVAILABLE",
            )
        return ModelProfile(id=model_id, backend="openai", upstream=PROVIDER_NAME)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[GenerationEvent, None]:
        if self._backend is None:
            raise BackendUnavailable("the daemon's backend has not started", reason="BACKEND_UNAVAILABLE")
        async with aclosing(self._backend.stream(self._model(), request, self._limits)) as events:
            async for event in events:
                yield event


def _embedded_mlx(settings: Settings, worker: MlxWorker) -> tuple[Backend, ModelProfile]:
    # MLX loads only when the daemon runs the embedded model.
    from lattice.server.backends.mlx.backend import MlxBackend
    from lattice.server.backends.residency import Residency

    profile = next(p for p in settings.models if p.id == settings.default_model)
    backend = MlxBackend(
        profile,
        cache_dir=settings.home / "models",
        weights=settings.mlx_weights,
        worker=worker,
        max_batch=settings.mlx_max_batch,
        residency=Residency(1),
        pinned=True,
    )
    return backend, profile
