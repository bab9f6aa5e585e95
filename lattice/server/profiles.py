"""Profiles for models discovered at an upstream, matched by id pattern.

Configured `[[profile_patterns]]` come first; then an embedding model, named so
(`embed` in its name); then these built-in families. The first match wins, and an
id nothing matches gets plain chat traits.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from lattice.config import (
    SMALL_MODEL_DEFAULT_MAX_TOKENS,
    BackendKind,
    Capability,
    ModelProfile,
    ModelTraits,
    ProfilePattern,
)

_FULL: tuple[Capability, ...] = ("chat", "vision", "tools", "json_mode", "long_context")

BUILTIN_PATTERNS: tuple[ProfilePattern, ...] = (
    ProfilePattern(
        pattern="claude-*haiku*",
        context_window=200_000,
        capabilities=_FULL,
        roles=("fast", "coder"),
        latency_tier="fast",
        cost_per_million_tokens=3.0,
    ),
    ProfilePattern(
        pattern="claude-*",
        context_window=200_000,
        capabilities=_FULL,
        roles=("reasoner", "coder", "vision"),
        cost_per_million_tokens=15.0,
    ),
    ProfilePattern(
        pattern="gpt-4o*mini*",
        context_window=128_000,
        capabilities=_FULL,
        roles=("fast", "vision"),
        latency_tier="fast",
        cost_per_million_tokens=0.4,
    ),
    ProfilePattern(
        pattern="gpt-4*",
        context_window=128_000,
        capabilities=_FULL,
        roles=("reasoner", "coder", "vision"),
        cost_per_million_tokens=6.0,
    ),
    ProfilePattern(
        pattern="*coder*",
        context_window=32_768,
        capabilities=("chat", "tools", "long_context"),
        roles=("coder",),
    ),
    ProfilePattern(
        pattern="*smollm*",
        context_window=8192,
        capabilities=("chat",),
        roles=("fast", "chat"),
        latency_tier="fast",
        default_max_tokens=SMALL_MODEL_DEFAULT_MAX_TOKENS,
    ),
    ProfilePattern(
        pattern="*llava*",
        context_window=4096,
        capabilities=("chat", "vision"),
        roles=("vision",),
    ),
    ProfilePattern(
        pattern="*-vl*",
        context_window=32_768,
        capabilities=("chat", "vision"),
        roles=("vision",),
    ),
    ProfilePattern(
        pattern="*llama-3*",
        context_window=131_072,
        capabilities=("chat", "tools", "long_context"),
        roles=("chat",),
    ),
    ProfilePattern(
        pattern="*qwen*",
        context_window=32_768,
        capabilities=("chat", "tools", "long_context"),
        roles=("chat",),
    ),
)

EMBEDDING_TRAITS = ModelTraits(context_window=8192, capabilities=("embeddings",), roles=("embeddings",))
"""An embedding model's (`text-embedding-3-small`, `nomic-embed-text`, `qwen3-embedding-0.6b`, …): vectors, no
chat. The capability is the one the llama.cpp engine gives its models, so `model="embeddings"` finds either."""

LONG_CONTEXT_TOKENS = 32_768
"""A model counts as `long-context` from this window up."""


def traits_for(model_id: str, patterns: Sequence[ProfilePattern]) -> ModelTraits:
    # The embedding test comes before the families: `qwen3-embedding-0.6b` is a `*qwen*` that cannot chat.
    if (configured := _first_match(model_id, patterns)) is not None:
        return configured
    if names_an_embedding_model(model_id):
        return EMBEDDING_TRAITS
    return _first_match(model_id, BUILTIN_PATTERNS) or ModelTraits(context_window=4096)


def names_an_embedding_model(model_id: str) -> bool:
    """`embed` in the model's own name, which is what follows the last `/`: servers that list their models
    by path (mlx_lm.server, llama.cpp's) may keep a chat model in a directory called `embeddings`."""
    return "embed" in model_id.lower().rsplit("/", 1)[-1]


def _first_match(model_id: str, patterns: Sequence[ProfilePattern]) -> ModelTraits | None:
    lowered = model_id.lower()
    for pattern in patterns:
        if fnmatch.fnmatchcase(lowered, pattern.pattern.lower()):
            return ModelTraits.model_validate(pattern.model_dump(exclude={"pattern"}))
    return None


def discovered_profile(
    model_id: str, *, backend: BackendKind, upstream: str, owned_by: str, patterns: Sequence[ProfilePattern]
) -> ModelProfile:
    """The profile of a model an upstream lists, from the first pattern its id matches. A chat model of an
    OpenAI-compatible server also takes text completions (its `/completions`, which such servers serve)."""
    traits = traits_for(model_id, patterns)
    if backend == "openai" and "chat" in traits.capabilities and "completions" not in traits.capabilities:
        traits = traits.model_copy(update={"capabilities": (*traits.capabilities, "completions")})
    return ModelProfile(id=model_id, backend=backend, upstream=upstream, owned_by=owned_by, **traits.model_dump())
