"""Domain checks, without a channel or a model."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from lattice.config import ModelProfile
from lattice.errors import InvalidArgument, ModelNotFound, NoModelSatisfies
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.chat import ChatRequest, GenerationEvent, ImagePart, Message, Role, Sampling, TextPart
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.resolver import Resolver, Verdict
from lattice.server.validation import validate_chat_request


class NeverRuns(Backend):
    name = "none"

    async def stream(self, request: ChatRequest, limits: GenerationLimits) -> AsyncGenerator[GenerationEvent, None]:
        raise AssertionError("resolution must not run anything")
        yield  # pragma: no cover


HI = (Message(Role.USER, (TextPart("hi"),)),)


def resolver(*profiles: ModelProfile, default: str = "small") -> Resolver:
    registry = ModelRegistry([RegisteredModel(p, NeverRuns()) for p in profiles])
    return Resolver(registry, default)


SMALL = ModelProfile(id="small", aliases=("tiny",))
SEEING = ModelProfile(id="seeing", capabilities=("chat", "vision", "tools", "json_mode"))


@pytest.mark.parametrize("expression", ["", "auto", "default", " AUTO "])
def test_default_expressions_pick_the_default(expression: str) -> None:
    resolution = resolver(SMALL, SEEING).resolve(expression)
    assert resolution.model == "small"
    assert resolution.candidates[0].verdict is Verdict.CHOSEN


@pytest.mark.parametrize("expression", ["small", "tiny", "TINY"])
def test_ids_and_aliases(expression: str) -> None:
    assert resolver(SMALL).resolve(expression).model == "small"


def test_unknown_model_names_what_exists() -> None:
    with pytest.raises(ModelNotFound, match="available: small, seeing"):
        resolver(SMALL, SEEING).resolve("gpt-17")


def test_personal_runtimes_are_not_found_until_enabled() -> None:
    with pytest.raises(ModelNotFound, match="personal runtime"):
        resolver(SMALL).resolve("lattice:personal:lat_abc")


@pytest.mark.parametrize(
    ("request_", "missing"),
    [
        (ChatRequest("small", (Message(Role.USER, (ImagePart("data:image/png;base64,AA"),)),)), "vision"),
        (ChatRequest("small", HI, tools=("get_weather",)), "tools"),
        (ChatRequest("small", HI, wants_json=True), "json_mode"),
    ],
)
def test_hard_constraints_are_never_dropped(request_: ChatRequest, missing: str) -> None:
    with pytest.raises(NoModelSatisfies) as caught:
        resolver(SMALL, SEEING).resolve("small", request_)
    assert caught.value.metadata["missing"] == missing
    assert resolver(SMALL, SEEING).resolve("seeing", request_).model == "seeing"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ChatRequest("", ()), "messages"),
        (ChatRequest("", HI, max_tokens=0), "max_tokens"),
        (ChatRequest("", HI, max_tokens=101), "max_tokens"),
        (ChatRequest("", HI, sampling=Sampling(temperature=-0.1)), "temperature"),
        (ChatRequest("", HI, sampling=Sampling(temperature=2.01)), "temperature"),
        (ChatRequest("", HI, sampling=Sampling(top_p=0)), "top_p"),
        (ChatRequest("", HI, sampling=Sampling(top_p=1.5)), "top_p"),
        (ChatRequest("", HI, stop=("a", "b", "c", "d", "e")), "stop"),
        (ChatRequest("", HI, stop=("",)), "stop"),
        (ChatRequest("", (Message(Role.TOOL, (TextPart("42"),)),)), "messages[0].tool_call_id"),
    ],
)
def test_invalid_requests_name_the_field(request_: ChatRequest, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_chat_request(request_, max_tokens_ceiling=100)
    assert caught.value.field == field
    assert caught.value.metadata == {"field": field}


def test_a_valid_request_passes() -> None:
    validate_chat_request(
        ChatRequest("", HI, max_tokens=100, sampling=Sampling(0.0, 1.0, 3), stop=("\n",)),
        max_tokens_ceiling=100,
    )
