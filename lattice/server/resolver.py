"""Turns a `model` expression and a request's needs into an ordered choice of models, and says why.

Hard constraints (what the expression's capability terms and the request itself
need: a chat → chat, a raw prompt → completions, images → vision, tools → tools, JSON → json_mode,
logprobs → logprobs, a prompt that must fit)
are never dropped: when no candidate meets them the caller gets
`NoModelSatisfies` naming what was missing, not a silently wrong model.
Preferences (the latency tier) only reorder candidates.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from lattice.config import Escalation
from lattice.errors import ContextLengthExceeded, LatticeError, ModelNotFound, NoModelSatisfies
from lattice.server.chat import ChatRequest, LatencyTier
from lattice.server.expressions import (
    Alternative,
    AnyModel,
    Default,
    Exact,
    PersonalRuntime,
    Role,
    Selector,
    Wildcard,
    parse_expression,
)
from lattice.server.registry import ModelRegistry, RegisteredModel


class Verdict(enum.Enum):
    CHOSEN = "chosen"
    OUTRANKED = "outranked"
    MISSING_CAPABILITY = "missing_capability"
    CONTEXT_TOO_SMALL = "context_too_small"
    UNAVAILABLE = "unavailable"
    FAILED = "failed"


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
    fallbacks: tuple[RegisteredModel, ...] = ()
    """Further models that satisfy every hard constraint, in order: tried if `chosen` fails early."""
    escalated: bool = False

    @property
    def model(self) -> str:
        return self.chosen.id

    @property
    def backend(self) -> str:
        return self.chosen.backend.name

    def fall_back(self, error: LatticeError) -> Resolution | None:
        """The resolution after `chosen` failed before its first token; None when nothing is left."""
        if not self.fallbacks:
            return None
        failed, nxt = self.chosen.id, self.fallbacks[0]
        candidates = tuple(
            replace(c, verdict=Verdict.FAILED, detail=f"failed before the first token: {error.message}")
            if c.model == failed
            else replace(c, verdict=Verdict.CHOSEN, detail=f"{c.detail}; next after {failed} failed")
            if c.model == nxt.id
            else c
            for c in self.candidates
        )
        return replace(self, chosen=nxt, candidates=candidates, fallbacks=self.fallbacks[1:])


@dataclass
class _Search:
    """What one resolution has seen so far, and what the request needs (worked out once)."""

    needs: set[str]
    prompt_tokens: int
    candidates: list[Candidate] = field(default_factory=list)
    viable: list[RegisteredModel] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)
    matched: bool = False

    def seen(self, model: RegisteredModel) -> bool:
        return any(c.model == model.id for c in self.candidates)


class Resolver:
    def __init__(
        self,
        registry: ModelRegistry,
        *,
        default_model: str,
        roles: dict[str, tuple[str, ...]],
        escalation: Escalation,
    ) -> None:
        self._registry = registry
        self._default = default_model
        self._roles = {name.lower(): ids for name, ids in roles.items()}
        self._escalation = escalation

    @property
    def registry(self) -> ModelRegistry:
        """The models it resolves among."""
        return self._registry

    def resolve(
        self, expression: str, request: ChatRequest | None = None, *, needs: frozenset[str] = frozenset()
    ) -> Resolution:
        """`needs`: capabilities wanted beyond what `request` shows (`embeddings` for an embedding request)."""
        try:
            return self._resolve(expression, request, needs)
        except (ModelNotFound, NoModelSatisfies) as refusal:
            target = self._escalation.target
            if target is None or not (self._escalation.automatic or (request and request.allow_escalation)):
                raise
            try:
                escalated = self._resolve(target, request, needs)
            except (ModelNotFound, NoModelSatisfies):
                raise refusal from None
            note = Candidate(escalated.model, Verdict.CHOSEN, f"escalated to {target!r}: {refusal.message}")
            return replace(
                escalated,
                expression=expression,
                candidates=(note, *escalated.candidates[1:]),
                escalated=True,
            )

    def _resolve(self, expression: str, request: ChatRequest | None, needs: frozenset[str]) -> Resolution:
        search = _Search(needs=_needs(request) | needs, prompt_tokens=request.estimated_prompt_tokens if request else 0)
        for alternative in parse_expression(expression):
            matches = self._matches(alternative.selector)
            search.matched |= bool(matches)
            for model in _prefer_tier(matches, request.latency_tier if request else None):
                if not search.seen(model):
                    self._consider(search, model, alternative)
        if search.viable:
            return Resolution(expression, search.viable[0], tuple(search.candidates), tuple(search.viable[1:]))
        if not search.matched:
            raise ModelNotFound(
                f"no model matches {expression!r}; available: {', '.join(self._registry.ids()) or 'none'}",
                metadata={"model": expression},
            )
        if search.candidates and all(c.verdict is Verdict.CONTEXT_TOO_SMALL for c in search.candidates):
            # Only the length is wrong: say so the way OpenAI clients expect, so they can trim and retry.
            raise ContextLengthExceeded(
                f"the prompt (~{search.prompt_tokens} tokens) does not fit any model matching "
                f"{expression!r} ({'; '.join(f'{c.model}: {c.detail}' for c in search.candidates)})",
                field="prompt" if request is not None and request.prompt is not None else "messages",
            )
        reasons = "; ".join(f"{c.model}: {c.detail}" for c in search.candidates)
        raise NoModelSatisfies(
            f"no model satisfies the request for {expression!r} ({reasons})",
            metadata={"model": expression, "missing": ",".join(sorted(search.missing))},
        )

    def _matches(self, selector: Selector) -> list[RegisteredModel]:
        match selector:
            case Default():
                if self._default:
                    return self._matches(Exact(self._default))
                return sorted(self._registry, key=lambda m: m.profile.cost_per_million_tokens)
            case Exact(name):
                found = self._registry.lookup(name)
                return [found] if found else []
            case Role(name):
                ranked = [m for i in self._roles.get(name, ()) if (m := self._registry.lookup(i))]
                return ranked + [m for m in self._registry if name in m.profile.roles and m not in ranked]
            case Wildcard(pattern):
                return [m for m in self._registry if fnmatch.fnmatchcase(m.id.lower(), pattern.lower())]
            case PersonalRuntime(lattice_id):
                # The gateway resolves a whole `lattice:personal:<id>` itself (it needs the caller);
                # here it can only be part of a longer expression.
                raise ModelNotFound(
                    f"personal runtime {lattice_id!r}: name it alone as the model, not in a list or with other terms",
                    metadata={"model": f"lattice:personal:{lattice_id}"},
                )
            case AnyModel():
                return list(self._registry)
        raise AssertionError(f"unknown selector {selector!r}")

    def _consider(self, search: _Search, model: RegisteredModel, alternative: Alternative) -> None:
        profile = model.profile
        missing = sorted((alternative.capabilities | search.needs) - set(profile.capabilities))
        estimate = search.prompt_tokens
        if missing:
            search.missing.update(missing)
            search.candidates.append(Candidate(model.id, Verdict.MISSING_CAPABILITY, f"lacks {', '.join(missing)}"))
        elif estimate >= profile.context_window:
            search.missing.add("context_window")
            detail = f"context window {profile.context_window} < ~{estimate} prompt tokens"
            search.candidates.append(Candidate(model.id, Verdict.CONTEXT_TOO_SMALL, detail))
        elif not model.available:
            search.candidates.append(Candidate(model.id, Verdict.UNAVAILABLE, "backend not reachable or not loaded"))
        else:
            verdict = Verdict.OUTRANKED if search.viable else Verdict.CHOSEN
            if isinstance(alternative.selector, Default):
                detail = "the configured default" if self._default else "the cheapest model that fits"
            else:
                detail = f"matches {alternative.text!r}"
            search.candidates.append(Candidate(model.id, verdict, detail))
            search.viable.append(model)


def _needs(request: ChatRequest | None) -> set[str]:
    if request is None:
        return set()
    needs = set()
    if request.has_image:
        needs.add("vision")
    if request.uses_tools:
        needs.add("tools")
    if request.logprobs:
        needs.add("logprobs")
    if request.wants_json:
        needs.add("json_mode")
    # A wildcard, a role or the cheapest default may match an embedding model too (`*qwen3*`), which has no chat.
    needs.add("completions" if request.prompt is not None else "chat")
    return needs


def _prefer_tier(models: Iterable[RegisteredModel], tier: LatencyTier | None) -> list[RegisteredModel]:
    if tier is None:
        return list(models)
    return sorted(models, key=lambda m: m.profile.latency_tier != tier.value)  # stable: keeps the ranking
