"""Profiles of the models an upstream lists, guessed from their ids, and what resolution makes of them:
an embedding model is one, whatever chat family its name also matches."""

from __future__ import annotations

import pathlib

import pytest

from lattice.config import Escalation, ModelProfile, ProfilePattern, Settings
from lattice.errors import NoModelSatisfies
from lattice.server.backends.engines import LocalModels
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.chat import ChatRequest, Message, Role, TextPart
from lattice.server.embeddings import EMBEDDINGS
from lattice.server.profiles import discovered_profile
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.resolver import Resolver, Verdict
from tests.fake_backend import FakeBackend

HI = ChatRequest("", (Message(Role.USER, (TextPart("hi"),)),))


def profile(model_id: str, *patterns: ProfilePattern) -> ModelProfile:
    """The profile an OpenAI-compatible upstream's model `model_id` is given."""
    return discovered_profile(model_id, backend="openai", upstream="u", owned_by="u", patterns=patterns)


def discovered(model_id: str, *patterns: ProfilePattern) -> tuple[str, ...]:
    return profile(model_id, *patterns).capabilities


@pytest.mark.parametrize(
    "model_id",
    [
        "qwen3-embedding-0.6b",  # also a `*qwen*`
        "Qwen/Qwen3-Embedding-8B",
        "qwen3-embedding:0.6b",  # Ollama's name and tag
        "/models/Qwen3-Embedding-0.6B-Q8_0.gguf",  # llama.cpp's server names its model by path
        "nomic-embed-text",
        "nomic-embed-text:latest",
        "text-embedding-3-small",
        "jina-embeddings-v3",
        "embeddinggemma-300m",
        "nvidia/llama-3.2-nv-embedqa-1b-v2",  # also a `*llama-3*`
    ],
)
def test_an_embedding_model_is_profiled_to_embed_and_not_to_chat(model_id: str) -> None:
    assert discovered(model_id) == ("embeddings",)


@pytest.mark.parametrize(
    ("model_id", "capabilities"),
    [
        ("qwen3-8b", ("chat", "tools", "long_context", "completions")),
        ("gpt-4o-mini", ("chat", "vision", "tools", "json_mode", "long_context", "completions")),
        # A server that names models by path may keep a chat model in a directory called "embeddings".
        ("/srv/embeddings/smollm2-135m-instruct", ("chat", "completions")),
    ],
)
def test_a_chat_model_stays_one(model_id: str, capabilities: tuple[str, ...]) -> None:
    assert discovered(model_id) == capabilities


def test_a_configured_pattern_still_comes_first() -> None:
    theirs = ProfilePattern(pattern="*qwen3-embedding*", capabilities=("chat",))
    assert discovered("qwen3-embedding-0.6b", theirs) == ("chat", "completions")


def resolver(*model_ids: str) -> Resolver:
    """Models as an upstream lists them (in this order), discovered and profiled by their ids."""
    return resolver_of(*(profile(model_id) for model_id in model_ids))


def resolver_of(*profiles: ModelProfile) -> Resolver:
    registry = ModelRegistry([RegisteredModel(p, FakeBackend()) for p in profiles])
    return Resolver(registry, default_model="", roles={}, escalation=Escalation())


# The embedding model first: a resolver that took the first match would pick it.
LISTED = ("qwen3-embedding-0.6b", "qwen3-8b", "nomic-embed-text")


@pytest.mark.parametrize("expression", ["role:chat", "*qwen3*", "*", ""])
def test_a_chat_never_resolves_to_an_embedding_model(expression: str) -> None:
    resolution = resolver(*LISTED).resolve(expression, HI)
    assert resolution.model == "qwen3-8b"
    assert all(m.id == "qwen3-8b" for m in (resolution.chosen, *resolution.fallbacks))


def test_a_chat_named_for_an_embedding_model_is_refused_naming_chat() -> None:
    with pytest.raises(NoModelSatisfies) as refusal:
        resolver(*LISTED).resolve("qwen3-embedding-0.6b", HI)
    assert refusal.value.metadata["missing"] == "chat"
    resolution = resolver(*LISTED).resolve("*qwen3*", HI)
    verdicts = {c.model: (c.verdict, c.detail) for c in resolution.candidates}
    assert verdicts["qwen3-embedding-0.6b"] == (Verdict.MISSING_CAPABILITY, "lacks chat")


@pytest.mark.parametrize(
    ("expression", "chosen"),
    [("embeddings", "qwen3-embedding-0.6b"), ("*qwen3*", "qwen3-embedding-0.6b"), ("nomic*", "nomic-embed-text")],
)
def test_embeddings_resolve_to_an_embedding_model(expression: str, chosen: str) -> None:
    assert resolver(*LISTED).resolve(expression, needs=EMBEDDINGS).model == chosen


def test_a_raw_prompt_resolves_to_the_chat_model_of_the_family() -> None:
    prompt = ChatRequest("", (), prompt="Once upon a time", max_tokens=4)
    assert resolver(*LISTED).resolve("*qwen3*", prompt).model == "qwen3-8b"


def test_the_embeddings_term_finds_llamacpp_models_and_discovered_embedders_alike(tmp_path: pathlib.Path) -> None:
    # One capability, declared by the llama.cpp engine for its models and guessed for an upstream's embedder.
    local = LocalModels(Settings(home=tmp_path), MlxWorker()).profile(ModelProfile(id="smollm2", engine="llamacpp"))
    resolution = resolver_of(local, profile("nomic-embed-text")).resolve("embeddings", needs=EMBEDDINGS)
    assert [m.id for m in (resolution.chosen, *resolution.fallbacks)] == ["smollm2", "nomic-embed-text"]
