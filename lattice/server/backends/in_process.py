"""What every in-process model shares, whichever engine runs it: residency (at most N loaded, LRU,
pinned models stay), single-flight loads, and the count of requests in flight that keeps a busy
model from being evicted."""

from __future__ import annotations

import abc
import asyncio
import pathlib
from collections.abc import AsyncGenerator
from typing import Generic, TypeVar

from lattice.config import ModelProfile
from lattice.errors import BackendUnavailable
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.backends.default_model import default_gguf_path
from lattice.server.backends.residency import Residency
from lattice.server.chat import ChatRequest, GenerationEvent
from lattice.server.embeddings import Embeddings, EmbedRequest

E = TypeVar("E")
"""The loaded model, as its engine holds it."""


class InProcessBackend(Backend, Generic[E]):
    def __init__(self, profile: ModelProfile, *, residency: Residency, pinned: bool) -> None:
        """A pinned model loads at start and is never evicted; others load on first use."""
        self._profile = profile
        self._residency = residency
        self._pinned = pinned
        self._engine: E | None = None
        self._loading = asyncio.Lock()  # single flight: concurrent requests for a cold model load it once
        self._in_flight = 0
        self.loads = 0
        """How many times the weights were loaded (for tests and metrics)."""

    @property
    def model_id(self) -> str:
        return self._profile.id

    @property
    def gguf(self) -> pathlib.Path:
        """The model's weights: its `gguf_path`, else the default model's file."""
        return self._profile.gguf_path or default_gguf_path()

    @property
    def pinned(self) -> bool:
        return self._pinned

    @property
    def busy(self) -> bool:
        return self._in_flight > 0

    @property
    def resident(self) -> bool:
        return self._engine is not None

    def state(self, model: ModelProfile) -> str:
        if self._engine is not None:
            return "resident"
        return "loading" if self._loading.locked() else "unloaded"

    async def start(self) -> None:
        if self.pinned:
            await self._loaded()

    async def unload(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await self._release(engine)

    async def stream(
        self, model: ModelProfile, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        self._in_flight += 1
        try:
            engine = await self._loaded()
            async for event in self._generate(engine, request, limits):
                yield event
        finally:
            self._in_flight -= 1

    async def embed(self, model: ModelProfile, request: EmbedRequest) -> Embeddings:
        self._in_flight += 1  # a busy model is not evicted, whatever it is doing
        try:
            return await self._embed(await self._loaded(), request)
        finally:
            self._in_flight -= 1

    async def _embed(self, engine: E, request: EmbedRequest) -> Embeddings:
        """The vectors of `request` on the loaded model; by default, this engine does not embed."""
        return await super().embed(self._profile, request)

    async def _loaded(self) -> E:
        async with self._loading:
            if self._engine is not None:
                self._residency.touch(self)
                return self._engine
            await self._residency.make_room_for(self.model_id)
            try:
                engine = await self._load()
            except Exception as error:
                raise BackendUnavailable(
                    f"model {self.model_id!r} failed to load: {type(error).__name__}: {error}",
                    reason="MODEL_LOAD_FAILED",
                ) from error
            self._engine = engine
            self.loads += 1
            self._residency.loaded(self)
            return engine

    @abc.abstractmethod
    async def _load(self) -> E:
        """Loads the weights (the caller turns a failure into `MODEL_LOAD_FAILED`)."""

    @abc.abstractmethod
    async def _release(self, engine: E) -> None:
        """Frees what `_load` took; no request is in flight."""

    @abc.abstractmethod
    def _generate(
        self, engine: E, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        """The answer to `request` on the loaded model."""
