"""A request without `max_tokens` runs to its model's `default_max_tokens` (never past the ceiling), and
ends with finish reason `length` there, not an error; `/v1/models` says what the cap is."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from lattice.config import DEFAULT_MODEL_ID, SMALL_MODEL_DEFAULT_MAX_TOKENS, Escalation, ModelProfile, Settings
from lattice.server.backends.base import GenerationLimits
from lattice.server.chat import (
    ChatRequest,
    Delta,
    Finish,
    FinishReason,
    Message,
    Role,
    TextPart,
    Usage,
)
from lattice.server.gateway import Gateway
from lattice.server.profiles import traits_for
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.resolver import Resolver
from tests.fake_backend import FakeBackend, Step
from tests.gateway_process import GatewayProcess, start_gateway

CEILING = 100


def rambling(model: ModelProfile, request: ChatRequest, limits: GenerationLimits) -> list[Step]:
    """One token after another until the limit the gateway gave, as the real backends do."""
    budget = request.max_tokens or limits.max_tokens_ceiling
    return [*(Delta("la ") for _ in range(budget)), Finish(FinishReason.LENGTH, Usage(1, budget))]


def gateway(default_max_tokens: int | None) -> Gateway:
    backend = FakeBackend(rambling)
    profile = ModelProfile(id="small", default_max_tokens=default_max_tokens)
    registry = ModelRegistry([RegisteredModel(profile, backend)])
    resolver = Resolver(registry, default_model="small", roles={}, escalation=Escalation())
    return Gateway(resolver, GenerationLimits(max_tokens_ceiling=CEILING))


def chat(max_tokens: int | None = None) -> ChatRequest:
    return ChatRequest("", (Message(Role.USER, (TextPart("Tell me a long story."),)),), max_tokens=max_tokens)


@pytest.mark.parametrize(
    ("default_max_tokens", "max_tokens", "generated"),
    [
        (8, None, 8),  # the model's default cap
        (8, 50, 50),  # the request's own max_tokens wins, up to the ceiling
        (None, None, CEILING),  # no default: the ceiling
        (1000, None, CEILING),  # a default above the ceiling is held to it
    ],
)
async def test_an_answer_without_max_tokens_runs_to_the_models_default_cap(
    default_max_tokens: int | None, max_tokens: int | None, generated: int
) -> None:
    gw = gateway(default_max_tokens)
    completion = await gw.complete(chat(max_tokens))
    assert completion.finish.reason is FinishReason.LENGTH
    assert completion.finish.usage.completion_tokens == generated
    assert gw.generation_cap(ModelProfile(id="x", default_max_tokens=default_max_tokens)) == min(
        default_max_tokens or CEILING, CEILING
    )


def test_the_default_model_and_its_family_have_a_small_cap() -> None:
    (default,) = [m for m in Settings().models if m.id == DEFAULT_MODEL_ID]
    assert default.default_max_tokens == SMALL_MODEL_DEFAULT_MAX_TOKENS == 256
    assert traits_for("mlx-community/SmolLM2-360M-Instruct", ()).default_max_tokens == SMALL_MODEL_DEFAULT_MAX_TOKENS


@pytest.mark.slow
def test_the_model_list_states_each_models_default_cap(gateway: GatewayProcess) -> None:
    models = httpx.get(f"{gateway.http_url}/v1/models", timeout=30).json()["data"]
    (default,) = [m for m in models if m["id"] == DEFAULT_MODEL_ID]
    assert default["lattice"] == {"context_window": 8192, "default_max_tokens": SMALL_MODEL_DEFAULT_MAX_TOKENS}


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The default model with a default cap of 8 tokens: any answer but the shortest runs into it."""
    model = {"id": DEFAULT_MODEL_ID, "aliases": ["smollm2"], "default_max_tokens": 8}
    process = start_gateway(tmp_path_factory.mktemp("capped"), LATTICE_MODELS=json.dumps([model]))
    yield process
    process.stop()


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_without_max_tokens_ends_at_the_cap_with_finish_length(capped: GatewayProcess, stream: bool) -> None:
    listed = httpx.get(f"{capped.http_url}/v1/models", timeout=30).json()["data"]
    assert [m["lattice"]["default_max_tokens"] for m in listed] == [8]
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "Count from 1 to 100, one number per line."}
    ]
    client = OpenAI(base_url=f"{capped.http_url}/v1", api_key="unused")
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="", messages=messages, temperature=0, stream=True, stream_options={"include_usage": True}
            )
        )
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        usage = chunks[-1].usage
    else:
        reply = client.chat.completions.create(model="", messages=messages, temperature=0)
        finish, usage = [reply.choices[0].finish_reason], reply.usage
    assert finish == ["length"]
    assert usage is not None and usage.completion_tokens == 8
