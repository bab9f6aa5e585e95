"""Embeddings and text completions without a network: the request checks, resolution by the new
capabilities, `Gateway.embed` (fallback, metering, admission), and the OpenAI JSON of a raw prompt."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from lattice.config import Escalation, ModelProfile
from lattice.errors import BackendUnavailable, InvalidArgument, NoModelSatisfies
from lattice.server.activity import Activity
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.backends.upstream.openai_wire import StreamState, completion_body
from lattice.server.chat import ChatRequest, Delta, FinishReason, GenerationEvent, Sampling
from lattice.server.embeddings import MAX_INPUTS, Embeddings, EmbedRequest, validate_embed_request
from lattice.server.gateway import Gateway
from lattice.server.limits import RequestLimits
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.resolver import Resolver, Verdict


class Embedder(Backend):
    """Embeds each input as (its length,), or fails as an unreachable upstream does."""

    name = "embedder"

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.calls = 0

    async def stream(
        self, model: ModelProfile, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        raise AssertionError("no chat here")
        yield  # pragma: no cover - makes this an async generator

    async def embed(self, model: ModelProfile, request: EmbedRequest) -> Embeddings:
        self.calls += 1
        if self.down:
            raise BackendUnavailable(f"{model.id} is down")
        return Embeddings(tuple((float(len(i)),) for i in request.inputs), sum(len(i) for i in request.inputs))


def gateway(*models: tuple[str, tuple[str, ...], Backend], max_prompt_chars: int = 1000) -> tuple[Gateway, Activity]:
    """A gateway on `models` (id, capabilities, backend), and the activity feed it tells each request that ends."""
    registry = ModelRegistry(
        [RegisteredModel(ModelProfile(id=name, capabilities=caps), backend) for name, caps, backend in models]  # type: ignore[arg-type]
    )
    resolver = Resolver(registry, default_model=models[0][0], roles={}, escalation=Escalation())
    limits = RequestLimits(max_prompt_chars=max_prompt_chars)
    activity = Activity()
    gw = Gateway(
        resolver, GenerationLimits(max_tokens_ceiling=100), request_limits=limits, on_finished=[activity.record]
    )
    return gw, activity


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (EmbedRequest("m", ()), "input"),
        (EmbedRequest("m", ("a",) * (MAX_INPUTS + 1)), "input"),
        (EmbedRequest("m", ("a", "")), "input"),
        (EmbedRequest("m", ((1, -2),)), "input"),
        (EmbedRequest("m", ((),)), "input"),
        (EmbedRequest("m", ("a",), dimensions=0), "dimensions"),
        (EmbedRequest("m", ("a",), priority=11), "priority"),
        (EmbedRequest("m" * 300, ("a",)), "model"),
    ],
)
def test_bad_embedding_requests_name_the_field(request_: EmbedRequest, field: str) -> None:
    with pytest.raises(InvalidArgument) as refusal:
        validate_embed_request(request_)
    assert refusal.value.field == field


async def test_embed_resolves_to_a_model_that_embeds_and_falls_back_when_it_is_down() -> None:
    down, up = Embedder(down=True), Embedder()
    gw, activity = gateway(
        ("chat", ("chat",), Embedder()), ("first", ("embeddings",), down), ("second", ("embeddings",), up)
    )
    resolution, embeddings = await gw.embed(EmbedRequest("*", ("ab", (1, 2, 3))))
    assert resolution.model == "second"
    assert embeddings.vectors == ((2.0,), (3.0,))
    verdicts = {c.model: c.verdict for c in resolution.candidates}
    assert verdicts == {"chat": Verdict.MISSING_CAPABILITY, "first": Verdict.FAILED, "second": Verdict.CHOSEN}
    assert (down.calls, up.calls) == (1, 1)
    (record,) = activity.recent(None, 10)
    assert (record.model, record.outcome, record.prompt_tokens, record.completion_tokens) == ("second", "ok", 5, 0)


async def test_embed_on_a_chat_only_model_is_no_model_satisfies_naming_embeddings() -> None:
    gw, activity = gateway(("chat", ("chat",), Embedder()))
    with pytest.raises(NoModelSatisfies) as refusal:
        await gw.embed(EmbedRequest("chat", ("hello",)))
    assert refusal.value.metadata["missing"] == "embeddings"
    (record,) = activity.recent(None, 10)
    assert record.outcome == "no_model_satisfies"


async def test_embed_inputs_count_against_the_prompt_limit() -> None:
    gw, _ = gateway(("e", ("embeddings",), Embedder()), max_prompt_chars=5)
    with pytest.raises(InvalidArgument) as refusal:
        await gw.embed(EmbedRequest("e", ("abc", "def")))
    assert (refusal.value.field, refusal.value.reason) == ("input", "PROMPT_TOO_LARGE")


async def test_a_raw_prompt_needs_the_completions_capability() -> None:
    gw, _ = gateway(("chat", ("chat",), Embedder()))
    with pytest.raises(NoModelSatisfies) as refusal:
        await gw.complete(ChatRequest("chat", (), prompt="Once upon a time", max_tokens=4))
    assert refusal.value.metadata["missing"] == "completions"
    with pytest.raises(NoModelSatisfies):
        await gw.complete(ChatRequest("lattice:personal:lat_x", (), prompt="Once", max_tokens=4))
    with pytest.raises(InvalidArgument) as empty:
        await gw.complete(ChatRequest("chat", (), prompt="", max_tokens=4))
    assert empty.value.field == "prompt"


def test_a_raw_prompt_as_openais_legacy_body_and_its_chunks() -> None:
    request = ChatRequest("m", (), prompt="Once", max_tokens=4, sampling=Sampling(0.0, 1.0, 7), stop=("\n",))
    body = completion_body("up", request)
    assert body == {
        "model": "up",
        "prompt": "Once",
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 4,
        "seed": 7,
        "stop": ["\n"],
    }
    state = StreamState()
    assert state.read_chunk({"choices": [{"text": " upon", "index": 0, "finish_reason": None}]}) == Delta(" upon")
    usage = {"prompt_tokens": 1, "completion_tokens": 4}
    assert state.read_chunk({"choices": [{"text": "", "finish_reason": "length"}], "usage": usage}) is None
    assert state.finish_reason is FinishReason.LENGTH
    assert state.final_usage(0).completion_tokens == 4
    assert request.estimated_prompt_tokens == 1 and request.prompt_characters == 4
