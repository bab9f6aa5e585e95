"""The one interface every backend implements: a cancellable async stream of generation events."""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from lattice.config import ModelProfile
from lattice.errors import NoModelSatisfies
from lattice.server.chat import ChatRequest, GenerationEvent
from lattice.server.embeddings import Embeddings, EmbedRequest
from lattice.server.prompt_budget import PromptBudget


@dataclass(frozen=True)
class GenerationLimits:
    """Bounds the gateway puts on every generation, whatever the request says."""

    max_tokens_ceiling: int
    """The most tokens to generate; also what a request without `max_tokens` runs to (the gateway lowers
    it to the model's `default_max_tokens` for such a request)."""
    prompt_budget: PromptBudget | None = None
    """In-process engines: report prompt throughput into `prompt_budget.rates`, and once a request is
    tokenized, `check` it and wrap its events in `bounded` (lattice/server/prompt_budget.py)."""


class Backend(abc.ABC):
    """Runs chats for the models it serves (one in-process model, or every model of an upstream).

    `stream` yields `Delta`s and ends with exactly one `Finish`. Closing the
    iterator early (the caller went away) must stop generation promptly and
    free whatever the request held. Errors are `lattice.errors.LatticeError`s;
    `BackendUnavailable` raised before the first event lets the gateway fall
    back to the next candidate.
    """

    name: str

    @property
    def available(self) -> bool:
        """False while the backend cannot serve (not loaded yet, upstream failing health checks)."""
        return True

    def state(self, model: ModelProfile) -> str:
        """What `model` is doing, for the dashboard: `ready` or `unavailable`; an in-process backend
        says `resident`, `loading` or `unloaded` instead."""
        return "ready" if self.available else "unavailable"

    async def start(self) -> None:  # noqa: B027 - optional hook; most backends need no warm-up
        """Loads or connects; called once before the first request."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Releases what `start` acquired."""

    @abc.abstractmethod
    def stream(
        self, model: ModelProfile, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Generates `model`'s answer to `request`."""

    async def embed(self, model: ModelProfile, request: EmbedRequest) -> Embeddings:
        """`model`'s vectors for `request`'s inputs. The resolver sends here only models with the `embeddings`
        capability; a backend that has none says so (the llama.cpp engine and OpenAI upstreams override)."""
        raise NoModelSatisfies(
            f"model {model.id!r} runs on the {self.name} backend, which does not embed",
            metadata={"model": model.id, "missing": "embeddings"},
        )
