"""Domain checks and the model-expression grammar, without a channel or a model."""

from __future__ import annotations

import pytest

from lattice.config import Escalation, ModelProfile
from lattice.errors import ContextLengthExceeded, InvalidArgument, ModelNotFound, NoModelSatisfies
from lattice.server.chat import (
    ChatRequest,
    ImagePart,
    LatencyTier,
    Message,
    ResponseFormat,
    Role,
    Sampling,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.resolver import Resolver, Verdict
from lattice.server.validation import validate_chat_request
from tests.fake_backend import FakeBackend

NEVER_RUNS = (AssertionError("resolution must not run anything"),)

HI = (Message(Role.USER, (TextPart("hi"),)),)
TOOL = Tool("get_weather", parameters={"type": "object"})

SMALL = ModelProfile(id="small", aliases=("tiny",), roles=("fast",), latency_tier="fast", context_window=2048)
CODER = ModelProfile(id="qwen-coder-7b", capabilities=("chat", "tools"), roles=("coder",), context_window=32768)
CODER2 = ModelProfile(id="deep-coder", capabilities=("chat",), roles=("coder",), cost_per_million_tokens=2)
SEEING = ModelProfile(
    id="claude-x",
    capabilities=("chat", "vision", "tools", "json_mode", "long_context"),
    roles=("reasoner",),
    context_window=200_000,
    latency_tier="slow",
    cost_per_million_tokens=15,
)
DOWN = ModelProfile(id="down-model", roles=("fast",))


def resolver(
    *profiles: ModelProfile,
    default: str = "small",
    roles: dict[str, tuple[str, ...]] | None = None,
    escalation: Escalation | None = None,
) -> Resolver:
    registry = ModelRegistry([RegisteredModel(p, FakeBackend(NEVER_RUNS, up=p.id != "down-model")) for p in profiles])
    return Resolver(registry, default_model=default, roles=roles or {}, escalation=escalation or Escalation())


ALL = (SMALL, CODER, CODER2, SEEING, DOWN)
IMAGE = ChatRequest("", (Message(Role.USER, (TextPart("what is this?"), ImagePart("data:image/png;base64,AA"))),))


@pytest.mark.parametrize(
    ("expression", "request_", "chosen"),
    [
        ("", None, "small"),
        ("auto", None, "small"),
        (" DEFAULT ", None, "small"),
        ("small", None, "small"),
        ("TINY", None, "small"),
        ("role:coder", None, "qwen-coder-7b"),
        ("role:CODER", None, "qwen-coder-7b"),
        ("role:fast", None, "small"),
        ("no-such-model,role:coder", None, "qwen-coder-7b"),
        ("down-model,small", None, "small"),
        ("*coder*", None, "qwen-coder-7b"),
        ("deep*", None, "deep-coder"),
        ("claude-?", None, "claude-x"),
        ("vision", None, "claude-x"),
        ("role:coder+tools", ChatRequest("", HI, tools=(TOOL,)), "qwen-coder-7b"),
        ("tools+long-context", None, "claude-x"),
        ("role:reasoner,small", None, "claude-x"),
        ("", IMAGE, None),  # the default cannot see: refused below
        ("small,vision", IMAGE, "claude-x"),  # a priority list skips what cannot serve
        ("role:coder", ChatRequest("", HI, tools=(TOOL,)), "qwen-coder-7b"),
        ("role:coder", ChatRequest("", HI, latency_tier=LatencyTier.FAST), "qwen-coder-7b"),
        ("*", ChatRequest("", HI, latency_tier=LatencyTier.SLOW), "claude-x"),
        ("*", ChatRequest("", HI, latency_tier=LatencyTier.FAST), "small"),
        ("small,claude-x", ChatRequest("", (Message(Role.USER, (TextPart("x" * 20000),)),)), "claude-x"),
        ("json", ChatRequest("", HI, response_format=ResponseFormat("json_object")), "claude-x"),
    ],
)
def test_grammar(expression: str, request_: ChatRequest | None, chosen: str | None) -> None:
    if chosen is None:
        with pytest.raises(NoModelSatisfies):
            resolver(*ALL).resolve(expression, request_)
        return
    resolution = resolver(*ALL).resolve(expression, request_)
    assert resolution.model == chosen
    assert [c.verdict for c in resolution.candidates if c.model == chosen] == [Verdict.CHOSEN]


def test_configured_role_ranking_comes_first() -> None:
    resolution = resolver(*ALL, roles={"coder": ("deep-coder",)}).resolve("role:coder")
    assert resolution.model == "deep-coder"
    assert [(c.model, c.verdict) for c in resolution.candidates] == [
        ("deep-coder", Verdict.CHOSEN),
        ("qwen-coder-7b", Verdict.OUTRANKED),
    ]
    assert [m.id for m in resolution.fallbacks] == ["qwen-coder-7b"]


def test_every_candidate_says_why_it_was_passed_over() -> None:
    resolution = resolver(*ALL).resolve("down-model,small,vision", IMAGE)
    verdicts = {c.model: (c.verdict, c.detail) for c in resolution.candidates}
    assert verdicts["down-model"][0] is Verdict.MISSING_CAPABILITY
    assert verdicts["small"] == (Verdict.MISSING_CAPABILITY, "lacks vision")
    assert verdicts["claude-x"][0] is Verdict.CHOSEN


def test_unavailable_models_are_skipped_with_a_reason() -> None:
    resolution = resolver(*ALL).resolve("role:fast", ChatRequest("", HI, latency_tier=LatencyTier.STANDARD))
    verdicts = {c.model: c.verdict for c in resolution.candidates}
    assert verdicts == {"down-model": Verdict.UNAVAILABLE, "small": Verdict.CHOSEN}


def test_a_prompt_too_long_for_every_candidate_is_context_length_exceeded() -> None:
    long = ChatRequest("", (Message(Role.USER, (TextPart("word " * 4000),)),))
    with pytest.raises(ContextLengthExceeded, match="context window 2048") as caught:
        resolver(*ALL).resolve("small", long)
    assert caught.value.field == "messages"
    with pytest.raises(NoModelSatisfies, match="lacks vision"):  # other reasons too: no model satisfies
        resolver(*ALL).resolve("small,deep-coder", ChatRequest("", (*long.messages, *IMAGE.messages)))


def test_unknown_model_names_what_exists() -> None:
    with pytest.raises(ModelNotFound, match="available: small, qwen-coder-7b"):
        resolver(*ALL).resolve("gpt-17")
    with pytest.raises(ModelNotFound):
        resolver(*ALL).resolve("role:poet")
    with pytest.raises(ModelNotFound):
        resolver(*ALL).resolve("*nothing*")


def test_personal_runtimes_are_resolved_only_on_their_own() -> None:
    """The gateway resolves a whole `lattice:personal:<id>` with the caller's account; the registry's
    resolver only ever sees one inside a longer expression."""
    with pytest.raises(ModelNotFound, match="name it alone"):
        resolver(*ALL).resolve("small,lattice:personal:lat_abc")


@pytest.mark.parametrize("expression", ["a,,b", "role:", "small+claude-x", "small + "])
def test_malformed_expressions(expression: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolver(*ALL).resolve(expression)
    assert caught.value.field == "model"


@pytest.mark.parametrize(
    ("request_", "missing"),
    [
        (IMAGE, "vision"),
        (ChatRequest("small", HI, tools=(TOOL,)), "tools"),
        (ChatRequest("small", HI, response_format=ResponseFormat("json_object")), "json_mode"),
    ],
)
def test_hard_constraints_are_never_dropped(request_: ChatRequest, missing: str) -> None:
    with pytest.raises(NoModelSatisfies) as caught:
        resolver(*ALL).resolve("small", request_)
    assert caught.value.metadata["missing"] == missing
    assert missing in caught.value.message


def test_escalation_is_off_by_default_and_opt_in() -> None:
    policy = Escalation(target="role:reasoner")
    with pytest.raises(NoModelSatisfies):
        resolver(*ALL, escalation=policy).resolve("small", IMAGE)
    allowed = ChatRequest(IMAGE.model, IMAGE.messages, allow_escalation=True)
    resolution = resolver(*ALL, escalation=policy).resolve("small", allowed)
    assert resolution.escalated
    assert resolution.model == "claude-x"
    assert "escalated to 'role:reasoner'" in resolution.candidates[0].detail
    automatic = resolver(*ALL, escalation=Escalation(target="claude-x", automatic=True)).resolve("small", IMAGE)
    assert automatic.escalated


def test_an_escalation_target_that_cannot_serve_either_keeps_the_original_refusal() -> None:
    policy = Escalation(target="deep-coder", automatic=True)
    with pytest.raises(NoModelSatisfies, match="small"):
        resolver(*ALL, escalation=policy).resolve("small", IMAGE)


def test_no_default_means_the_cheapest_model_that_fits() -> None:
    assert resolver(*ALL, default="").resolve("", IMAGE).model == "claude-x"
    assert resolver(*ALL, default="").resolve("").model == "small"


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
        (ChatRequest("", (Message(Role.USER),)), "messages[0].content"),
        (ChatRequest("", (*HI, Message(Role.ASSISTANT))), "messages[1].content"),
        (ChatRequest("", HI, tools=(Tool(""),)), "tools[0].function.name"),
        (ChatRequest("", HI, tools=(TOOL, TOOL)), "tools"),
        (ChatRequest("", HI, tools=(TOOL,), tool_choice=ToolChoice(function_name="other")), "tool_choice"),
    ],
)
def test_invalid_requests_name_the_field(request_: ChatRequest, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_chat_request(request_, max_tokens_ceiling=100)
    assert caught.value.field == field
    assert caught.value.metadata == {"field": field}


def test_a_valid_request_passes() -> None:
    validate_chat_request(
        ChatRequest("", HI, max_tokens=100, sampling=Sampling(0.0, 1.0, 3), stop=("\n",)), max_tokens_ceiling=100
    )


def test_an_assistant_message_may_hold_only_tool_calls() -> None:
    calls = (ToolCall("call_1", "get_weather", "{}"),)
    tool_answer = Message(Role.TOOL, (TextPart("sunny"),), tool_call_id="call_1")
    validate_chat_request(
        ChatRequest("", (*HI, Message(Role.ASSISTANT, tool_calls=calls), tool_answer)), max_tokens_ceiling=100
    )
