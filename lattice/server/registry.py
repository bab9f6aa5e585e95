"""The models this gateway serves: configured profiles, plus what each upstream lists."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lattice.config import ModelProfile
from lattice.server.backends.base import Backend


@dataclass(frozen=True)
class RegisteredModel:
    profile: ModelProfile
    backend: Backend

    @property
    def id(self) -> str:
        return self.profile.id

    @property
    def available(self) -> bool:
        return self.backend.available


class ModelRegistry:
    """Configured models first, in configuration order, then discovered ones per upstream.

    A configured id always wins over a discovered model of the same id.
    """

    def __init__(self, configured: list[RegisteredModel]) -> None:
        self._configured = list(configured)
        self._discovered: dict[str, list[RegisteredModel]] = {}
        self._models: list[RegisteredModel] = []
        self._index: dict[str, RegisteredModel] = {}
        self._reindex()

    def __iter__(self) -> Iterator[RegisteredModel]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def lookup(self, name: str) -> RegisteredModel | None:
        """By id or alias, ignoring case."""
        return self._index.get(name.lower())

    def ids(self) -> list[str]:
        return [m.id for m in self._models]

    @property
    def configured(self) -> list[RegisteredModel]:
        return list(self._configured)

    def set_configured(self, models: list[RegisteredModel]) -> None:
        self._configured = list(models)
        self._reindex()

    def set_discovered(self, upstream: str, models: list[RegisteredModel]) -> None:
        """Replaces what `upstream` is known to serve (after a refresh of its model list)."""
        self._discovered[upstream] = models
        self._reindex()

    def _reindex(self) -> None:
        seen: set[str] = set()
        models = []
        for model in (*self._configured, *(m for ms in self._discovered.values() for m in ms)):
            if model.id.lower() not in seen:
                seen.add(model.id.lower())
                models.append(model)
        index: dict[str, RegisteredModel] = {}
        for model in reversed(models):  # earlier entries win name clashes
            for name in (model.id, *model.profile.aliases):
                index[name.lower()] = model
        self._models, self._index = models, index
