"""Turns a `model` expression and a request's needs into one model, and says why.

This first cut understands exact ids, aliases and the default (empty, `auto`,
`default`); every answer still carries the full `Resolution`, and hard
constraints from the request (images need vision, tools need tool use, JSON
mode needs json_mode) are checked, never dropped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lattice.errors import ModelNotFound, NoModelSatisfies
from lattice.server.chat import ChatRequest
from lattice.server.registry import ModelRegistry, RegisteredModel

DEFAULT_EXPRESSIONS = frozenset({"", "auto", "default"})
PERSONAL_RUNTIME_PREFIX = "lattice:personal:"


class Verdict(enum.Enum):
    CHOSEN = "chosen"
    OUTRANKED = "outranked"
    MISSING_CAPABILITY = "missing_capability"
    CONTEXT_TOO_SMALL = "context_too_small"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Candidate:
    model: str
    verdict: Verdict
    detail: str


@dataclass(frozen=True)
class Resolution:
    expression: str
    chosen: RegisteredModel
    candidates: tuple[Candidate, ...]

    @property
    def model(self) -> str:
        return self.chosen.profile.id

    @property
    def backend(self) -> str:
        return self.chosen.backend.name


class Resolver:
    def __init__(self, registry: ModelRegistry, default_model: str) -> None:
        self._registry = registry
        self._default = default_model

    def resolve(self, expression: str, request: ChatRequest | None = None) -> Resolution:
        expression = expression.strip()
        name = self._default if expression.lower() in DEFAULT_EXPRESSIONS else expression
        if name.startswith(PERSONAL_RUNTIME_PREFIX):
            raise ModelNotFound(
                f"model {expression!r} names a personal runtime; personal runtimes are not enabled on this gateway",
                metadata={"model": expression},
            )
        model = self._registry.lookup(name)
        if model is None:
            raise ModelNotFound(
                f"model {expression!r} not found; available: {', '.join(self._registry.ids())}",
                metadata={"model": expression},
            )
        missing = _missing_capabilities(model, request) if request else []
        if missing:
            detail = f"lacks {', '.join(missing)}"
            raise NoModelSatisfies(
                f"no model satisfies the request: {model.profile.id!r} {detail}, which the request needs",
                metadata={"model": model.profile.id, "missing": ",".join(missing)},
            )
        chosen = Candidate(model.profile.id, Verdict.CHOSEN, _why_chosen(expression, name))
        return Resolution(expression, model, (chosen,))


def _missing_capabilities(model: RegisteredModel, request: ChatRequest) -> list[str]:
    needs = []
    if request.has_image:
        needs.append("vision")
    if request.tools:
        needs.append("tools")
    if request.wants_json:
        needs.append("json_mode")
    return [n for n in needs if n not in model.profile.capabilities]


def _why_chosen(expression: str, name: str) -> str:
    if expression.lower() in DEFAULT_EXPRESSIONS:
        return f"the configured default ({name})"
    return "exact id or alias"
