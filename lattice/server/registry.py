"""The models this gateway serves: each profile with the backend that runs it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lattice.config import ModelProfile
from lattice.server.backends.base import Backend


@dataclass(frozen=True)
class RegisteredModel:
    profile: ModelProfile
    backend: Backend


class ModelRegistry:
    def __init__(self, models: list[RegisteredModel]) -> None:
        self._models = {m.profile.id: m for m in models}
        self._names: dict[str, str] = {}
        for model in models:
            for name in (model.profile.id, *model.profile.aliases):
                self._names[name.lower()] = model.profile.id

    def __iter__(self) -> Iterator[RegisteredModel]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def lookup(self, name: str) -> RegisteredModel | None:
        """By id or alias, ignoring case."""
        model_id = self._names.get(name.lower())
        return self._models[model_id] if model_id else None

    def ids(self) -> list[str]:
        return list(self._models)
