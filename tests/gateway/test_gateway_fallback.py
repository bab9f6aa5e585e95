"""Fallback before the first token, and no silent switch after it (in-process fake backends)."""

from __future__ import annotations

from contextlib import aclosing

import pytest

from lattice.config import Escalation, ModelProfile
from lattice.errors import BackendUnavailable, ResourceExhausted
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
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.resolver import Resolver, Verdict
from tests.fake_backend import FakeBackend, Step

HI = ChatRequest("first,second,third", (Message(Role.USER, (TextPart("hi"),)),))


def scripted(behaviour: str) -> FakeBackend:
    """Fails before its first event (`refuse`, `busy`), after it (`break`), or answers (`answer`)."""

    def script(model: ModelProfile, request: ChatRequest, limits: GenerationLimits) -> tuple[Step, ...]:
        hello, done = Delta(f"hello from {model.id}"), Finish(FinishReason.STOP, Usage(1, 1))
        return {
            "refuse": (BackendUnavailable(f"{model.id} is down"),),
            "busy": (ResourceExhausted(f"{model.id} is busy", retry_after_seconds=3),),
            "break": (hello, BackendUnavailable(f"{model.id} broke mid-stream")),
            "answer": (hello, done),
        }[behaviour]

    return FakeBackend(script)


def gateway(*behaviours: str) -> tuple[Gateway, list[FakeBackend]]:
    backends = [scripted(b) for b in behaviours]
    names = ["first", "second", "third"]
    registry = ModelRegistry([RegisteredModel(ModelProfile(id=n), b) for n, b in zip(names, backends, strict=False)])
    resolver = Resolver(registry, default_model="first", roles={}, escalation=Escalation())
    return Gateway(resolver, GenerationLimits(max_tokens_ceiling=100)), backends


async def test_falls_back_when_the_chosen_backend_fails_before_the_first_token() -> None:
    gw, backends = gateway("refuse", "busy", "answer")
    completion = await gw.complete(HI)
    assert completion.text == "hello from third"
    assert completion.resolution.model == "third"
    verdicts = [(c.model, c.verdict) for c in completion.resolution.candidates]
    assert verdicts == [("first", Verdict.FAILED), ("second", Verdict.FAILED), ("third", Verdict.CHOSEN)]
    assert "first is down" in completion.resolution.candidates[0].detail
    assert [b.calls for b in backends] == [1, 1, 1]
    assert all(b.closed for b in backends)


async def test_the_last_failure_is_reported_when_every_candidate_fails() -> None:
    gw, _ = gateway("refuse", "busy")
    with pytest.raises(ResourceExhausted) as caught:
        await gw.complete(HI)
    assert caught.value.retry_after_seconds == 3


async def test_no_silent_switch_after_the_first_token() -> None:
    gw, backends = gateway("break", "answer")
    chat = await gw.open_chat(HI)
    async with aclosing(chat):
        assert await anext(chat) == Delta("hello from first")
        with pytest.raises(BackendUnavailable, match="mid-stream"):
            await anext(chat)
    assert backends[1].calls == 0


async def test_closing_a_stream_before_reading_it_closes_the_backend() -> None:
    gw, backends = gateway("answer")
    chat = await gw.open_chat(ChatRequest("first", HI.messages))
    await chat.aclose()
    assert backends[0].closed
