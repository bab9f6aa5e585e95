"""Swarm orchestration with in-process fake agents whose timing the tests control (events, not
sleeps): first-success cancellation, the judge and its fallback, pipeline templates, debate
rounds, limits, failures; and agents admitted by a real Gateway, slots and all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import TypeVar

import pytest

from lattice.config import Escalation, ModelProfile
from lattice.errors import BackendUnavailable, InvalidArgument, ModelNotFound
from lattice.server.admission import Admission, AdmissionLimits
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.chat import (
    ChatRequest,
    Delta,
    Finish,
    FinishReason,
    GenerationEvent,
    Message,
    Role,
    Sampling,
    TextPart,
    Usage,
)
from lattice.server.gateway import Gateway
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.resolver import Resolver
from lattice.server.swarm import (
    Agent,
    AgentDelta,
    AgentEvent,
    AgentFinished,
    AgentStarted,
    Conclusion,
    DebateSpec,
    FanoutSpec,
    Opened,
    PipelineSpec,
    RequestedLimits,
    RoundStarted,
    Step,
    Strategy,
    Swarm,
    SwarmEvent,
    SwarmFailed,
    SwarmLimitExceeded,
    SwarmLimits,
    SwarmResult,
    Verdict,
    VerdictMethod,
    VoteSpec,
)
from lattice.server.swarm.gateway_agents import GatewayAgents
from lattice.server.swarm.judge import Unreadable, read_verdict

LIMITS = SwarmLimits(max_agents=4, max_rounds=3, max_total_tokens=10_000, agent_timeout_seconds=30)
QUESTION = "What is the capital of France?"


def user(text: str) -> Message:
    return Message(Role.USER, (TextPart(text),))


def base(**fields: object) -> ChatRequest:
    return ChatRequest("", (user(QUESTION),), max_tokens=50, **fields)  # type: ignore[arg-type]


Behaviour = Callable[[ChatRequest], AsyncGenerator[AgentEvent, None]]


@dataclass
class Fakes:
    """Agents by model name: each `run` records its request and plays the model's behaviour."""

    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    requests: list[ChatRequest] = field(default_factory=list)

    async def run(self, request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        self.requests.append(request)
        async with aclosing(self.behaviours[request.model](request)) as events:
            async for event in events:
                yield event

    def asked(self, model: str) -> list[ChatRequest]:
        return [r for r in self.requests if r.model == model]

    def swarm(self, limits: SwarmLimits = LIMITS) -> Swarm:
        return Swarm(self.run, limits, max_tokens_ceiling=100, judge_max_tokens=64)


def answers(*texts: str, model: str = "fake") -> Behaviour:
    """Yields the texts as deltas, then finishes; each call takes the next text (the last repeats)."""
    calls = iter(range(1_000_000))

    async def behaviour(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        text = texts[min(next(calls), len(texts) - 1)]
        yield Opened(model)
        for word in text.split(" "):
            yield Delta(word + " ")
        yield Finish(FinishReason.STOP, Usage(10, len(text.split(" "))))

    return behaviour


def echoes(transform: Callable[[str], str]) -> Behaviour:
    """Answers `transform(last user message)`."""

    async def behaviour(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        yield Opened("echo")
        yield Delta(transform(request.messages[-1].text))
        yield Finish(FinishReason.STOP, Usage(1, 1))

    return behaviour


def fails(error: Exception) -> Behaviour:
    async def behaviour(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        raise error
        yield Opened("never")  # an async generator all the same

    return behaviour


async def collect(events: AsyncGenerator[SwarmEvent, None]) -> list[SwarmEvent]:
    seen: list[SwarmEvent] = []
    await drain(events, seen)
    return seen


async def drain(events: AsyncGenerator[SwarmEvent, None], seen: list[SwarmEvent]) -> None:
    """Appends each event to `seen` as it comes, so a test still has them when the swarm fails."""
    async with aclosing(events):
        async for event in events:
            seen.append(event)


T = TypeVar("T")


def of_type(events: list[SwarmEvent], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


# --- first-success: the losers are cancelled at once and see it ---


async def test_first_success_wins_and_the_others_are_cancelled_mid_answer() -> None:
    both_started = asyncio.Barrier(3)
    observed: list[str] = []

    def slow(name: str) -> Behaviour:
        async def behaviour(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
            yield Opened(name)
            yield Delta("thinking ")
            try:
                await both_started.wait()
                await asyncio.Event().wait()  # never answers on its own
            except asyncio.CancelledError:
                observed.append(name)
                raise
            yield Finish(FinishReason.STOP, Usage())

        return behaviour

    async def fast(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        yield Opened("fast")
        await both_started.wait()  # the slow ones are mid-answer before this one finishes
        yield Delta("Paris")
        yield Finish(FinishReason.STOP, Usage(5, 1))

    fakes = Fakes({"slow-1": slow("slow-1"), "fast": fast, "slow-2": slow("slow-2")})
    agents = (Agent(model="slow-1"), Agent(model="fast"), Agent(model="slow-2"))
    events = await collect(fakes.swarm().vote(VoteSpec(base(), agents, strategy=Strategy.FIRST_SUCCESS)))

    assert sorted(observed) == ["slow-1", "slow-2"]
    finished = {e.agent: e for e in of_type(events, AgentFinished)}
    assert finished["agent-2"].succeeded and finished["agent-2"].text == "Paris"
    for loser in ("agent-1", "agent-3"):
        failure = finished[loser].failure
        assert failure is not None
        assert (failure.code, failure.message) == ("CANCELLED", "cancelled: agent-2 finished first")
        assert finished[loser].text == "thinking "
    [verdict] = of_type(events, Verdict)
    assert (verdict.winner, verdict.method) == ("agent-2", VerdictMethod.FIRST_SUCCESS)
    result = events[-1]
    assert isinstance(result, SwarmResult)
    assert (result.winner, result.text) == ("agent-2", "Paris")
    assert [a.agent for a in result.answers] == ["agent-1", "agent-2", "agent-3"]
    # The losers' cancellations are reported before the verdict: nothing of theirs runs after it.
    assert events.index(verdict) > max(events.index(finished[loser]) for loser in ("agent-1", "agent-3"))


async def test_first_success_skips_agents_that_fail() -> None:
    fakes = Fakes({"down": fails(BackendUnavailable("down is down")), "up": answers("Paris")})
    agents = (Agent(model="down"), Agent(model="up"))
    events = await collect(fakes.swarm().vote(VoteSpec(base(), agents, strategy=Strategy.FIRST_SUCCESS)))
    [verdict] = of_type(events, Verdict)
    assert verdict.winner == "agent-2"


# --- best-of-n: the judge, and what happens when it answers badly ---


async def test_the_judge_sees_labelled_candidates_and_its_json_picks_the_winner() -> None:
    judge = answers('Sure! ```json\n{"winner": "B", "scores": {"A": 3, "B": 9}, "reasoning": "B is right"}\n```')
    fakes = Fakes({"a": answers("Lyon"), "b": answers("Paris"), "judge-model": judge})
    spec = VoteSpec(base(), (Agent(model="a"), Agent(model="b")), judge="judge-model", criteria="correctness")
    events = await collect(fakes.swarm().vote(spec))

    [asked] = fakes.asked("judge-model")
    prompt = asked.messages[-1].text
    assert "[A]\nLyon" in prompt and "[B]\nParis" in prompt
    assert QUESTION in prompt and "correctness" in prompt and "JSON" in prompt
    assert asked.sampling.temperature == 0 and asked.max_tokens == 64
    [verdict] = of_type(events, Verdict)
    assert (verdict.winner, verdict.label, verdict.method) == ("agent-2", "B", VerdictMethod.JUDGE)
    assert [(s.label, s.score) for s in verdict.scores] == [("A", 3.0), ("B", 9.0)]
    assert verdict.reasoning == "B is right" and verdict.fallback_reason == ""
    judge_started = [e for e in of_type(events, AgentStarted) if e.agent == "judge"]
    assert judge_started and judge_started[0].prompt == prompt
    result = events[-1]
    assert isinstance(result, SwarmResult) and result.text.strip() == "Paris"


@pytest.mark.parametrize(
    ("judge_says", "why"),
    [
        ("They are all wonderful answers, well done everyone.", "names no candidate"),
        ('{"winner": "Z", "reasoning": "Z is best"}', "'Z', which is not one of A, B"),
        ("The winner is A. No wait, the winner is B.", "several winners"),
    ],
)
async def test_a_judge_that_answers_badly_falls_back_to_the_longest_answer_and_says_why(
    judge_says: str, why: str
) -> None:
    fakes = Fakes({"a": answers("Paris"), "b": answers("It is Paris, on the Seine"), "j": answers(judge_says)})
    events = await collect(fakes.swarm().vote(VoteSpec(base(), (Agent(model="a"), Agent(model="b")), judge="j")))
    [verdict] = of_type(events, Verdict)
    assert (verdict.winner, verdict.method) == ("agent-2", VerdictMethod.LONGEST)
    assert why in verdict.fallback_reason
    assert verdict.fallback_reason.endswith("the longest answer won instead")


async def test_a_judge_that_fails_falls_back_too() -> None:
    fakes = Fakes({"a": answers("Paris, France"), "b": answers("Paris"), "j": fails(BackendUnavailable("j is down"))})
    events = await collect(fakes.swarm().vote(VoteSpec(base(), (Agent(model="a"), Agent(model="b")), judge="j")))
    [verdict] = of_type(events, Verdict)
    assert verdict.winner == "agent-1"
    assert "the judge failed (j is down)" in verdict.fallback_reason


@pytest.mark.parametrize(
    ("judge_says", "winner"),
    [
        ('{"winner": "b"}', "B"),
        ('{"winner": "Candidate B", "scores": [2, 8]}', "B"),
        ('{"scores": {"A": 4, "B": 7, "C": 7}}', "B"),  # no winner: the best score, the earliest on a tie
        ("{'winner': 'C', }", "C"),  # not JSON, but readable
        ('Here you go: {"best": "[A]", "reason": "short"} hope that helps', "A"),
        ("The best answer is C.", "C"),
        ("B", "B"),
    ],
)
def test_the_judge_reader_is_tolerant(judge_says: str, winner: str) -> None:
    assert read_verdict(judge_says, ["A", "B", "C"]).label == winner


@pytest.mark.parametrize("judge_says", ["", "I think a good answer is hard to find.", '{"winner": 2}'])
def test_the_judge_reader_does_not_guess(judge_says: str) -> None:
    with pytest.raises(Unreadable):
        read_verdict(judge_says, ["A", "B"])


async def test_longest_and_fanout_need_no_judge() -> None:
    fakes = Fakes({"a": answers("Paris"), "b": answers("Paris, in France")})
    agents = (Agent(model="a"), Agent(model="b"))
    longest = await collect(fakes.swarm().vote(VoteSpec(base(), agents, strategy=Strategy.LONGEST)))
    [verdict] = of_type(longest, Verdict)
    assert (verdict.winner, verdict.method, verdict.fallback_reason) == ("agent-2", VerdictMethod.LONGEST, "")
    fanned = await collect(fakes.swarm().fanout(FanoutSpec(base(), agents)))
    assert not of_type(fanned, Verdict)
    result = fanned[-1]
    assert isinstance(result, SwarmResult) and result.winner == "" and result.text == ""
    assert [a.text.strip() for a in result.answers] == ["Paris", "Paris, in France"]
    assert fakes.asked("judge") == []


async def test_agents_stream_interleaved_and_get_their_own_seed_and_sampling() -> None:
    turn = asyncio.Condition()
    order = iter(["a", "b", "a", "b"])
    whose_turn = [next(order)]

    def taking_turns(name: str) -> Behaviour:
        async def behaviour(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
            yield Opened(name)
            for i in range(2):
                async with turn:
                    await turn.wait_for(lambda: whose_turn[0] == name)
                    whose_turn[0] = next(order, "")
                    turn.notify_all()
                yield Delta(f"{name}{i}")
            yield Finish(FinishReason.STOP, Usage(1, 2))

        return behaviour

    fakes = Fakes({"a": taking_turns("a"), "b": taking_turns("b")})
    agents = (Agent(model="a", system_prompt="You are terse."), Agent(model="b", temperature=0.2, seed=99))
    events = await collect(fakes.swarm().fanout(FanoutSpec(base(sampling=Sampling(0.7, 1.0, 7)), agents)))
    assert [(e.agent, e.text) for e in of_type(events, AgentDelta)] == [
        ("agent-1", "a0"),
        ("agent-2", "b0"),
        ("agent-1", "a1"),
        ("agent-2", "b1"),
    ]
    [a], [b] = fakes.asked("a"), fakes.asked("b")
    assert a.messages[0] == Message(Role.SYSTEM, (TextPart("You are terse."),)) and a.messages[1:] == base().messages
    assert (a.sampling.temperature, a.sampling.seed) == (0.7, 7)
    assert (b.sampling.temperature, b.sampling.seed) == (0.2, 99)
    result = events[-1]
    assert isinstance(result, SwarmResult) and result.usage == Usage(2, 4)


# --- failures: one agent alone, or all of them ---


async def test_one_failing_agent_does_not_fail_the_swarm() -> None:
    fakes = Fakes({"down": fails(BackendUnavailable("down is down")), "up": answers("Paris")})
    events = await collect(fakes.swarm().fanout(FanoutSpec(base(), (Agent(model="down"), Agent(model="up")))))
    result = events[-1]
    assert isinstance(result, SwarmResult)
    down, up = result.answers
    assert down.failure is not None and (down.failure.code, down.failure.reason) == (
        "UNAVAILABLE",
        "BACKEND_UNAVAILABLE",
    )
    assert up.succeeded


async def test_the_swarm_fails_when_every_agent_does_with_their_own_status() -> None:
    fakes = Fakes({"down": fails(BackendUnavailable("down is down", retry_after_seconds=3))})
    with pytest.raises(SwarmFailed) as caught:
        await collect(fakes.swarm().fanout(FanoutSpec(base(), (Agent(model="down"), Agent(model="down")))))
    assert caught.value.code == "UNAVAILABLE" and caught.value.reason == "BACKEND_UNAVAILABLE"
    assert caught.value.retry_after_seconds == 3
    assert "agent-1: down is down" in caught.value.message


async def test_an_agent_past_its_timeout_fails_alone() -> None:
    async def never(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        yield Opened("never")
        await asyncio.Event().wait()

    fakes = Fakes({"never": never, "up": answers("Paris")})
    spec = FanoutSpec(base(), (Agent(model="never"), Agent(model="up")), RequestedLimits(agent_timeout_seconds=0.05))
    events = await collect(fakes.swarm().fanout(spec))
    late = next(e for e in of_type(events, AgentFinished) if e.agent == "agent-1")
    assert late.failure is not None and (late.failure.code, late.failure.reason) == (
        "DEADLINE_EXCEEDED",
        "AGENT_TIMEOUT",
    )
    assert isinstance(events[-1], SwarmResult)


async def test_closing_the_stream_cancels_every_running_agent() -> None:
    cancelled: list[str] = []

    async def stays(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        yield Opened("stays")
        yield Delta("hello")
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.append(request.model)

    fakes = Fakes({"stays": stays})
    events = fakes.swarm().fanout(FanoutSpec(base(), (Agent(model="stays"), Agent(model="stays"))))
    seen = [await anext(events) for _ in range(4)]  # both started and said hello
    assert {type(e) for e in seen} == {AgentStarted, AgentDelta}
    await events.aclose()
    assert cancelled == ["stays", "stays"]


# --- pipeline ---


async def test_pipeline_templates_pass_the_input_the_previous_answer_and_named_steps() -> None:
    fakes = Fakes({"upper": echoes(str.upper), "same": echoes(lambda prompt: prompt)})
    steps = (
        Step("shout", "Make this loud: {{input}}", model="upper"),
        Step("quote", "Said: {{ previous }} | first: {{shout}} | asked: {{input}}", model="same"),
    )
    events = await collect(fakes.swarm().pipeline(PipelineSpec(base(), "hi {{input}}", steps)))

    shout = "MAKE THIS LOUD: HI {{INPUT}}"
    expected = f"Said: {shout} | first: {shout} | asked: hi {{{{input}}}}"
    assert fakes.asked("same")[0].messages[-1].text == expected  # answers and input are never expanded again
    started = of_type(events, AgentStarted)
    assert [(e.agent, e.prompt) for e in started] == [("shout", "Make this loud: hi {{input}}"), ("quote", expected)]
    result = events[-1]
    assert isinstance(result, SwarmResult)
    assert result.text == expected and [a.agent for a in result.answers] == ["shout", "quote"]


async def test_previous_in_the_first_step_is_the_input() -> None:
    fakes = Fakes({"same": echoes(lambda prompt: prompt)})
    events = await collect(fakes.swarm().pipeline(PipelineSpec(base(), "x", (Step("one", "<{{previous}}>", "same"),))))
    result = events[-1]
    assert isinstance(result, SwarmResult) and result.text == "<x>"


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ((Step("a", "{{input}}"), Step("b", "{{c}}"), Step("c", "{{input}}")), "steps[1].prompt"),  # a later step
        ((Step("a", "{{input}}"), Step("b", "{{nope}}")), "steps[1].prompt"),
        ((Step("a", "{{input}}"), Step("a", "{{input}}")), "steps[1].name"),
        ((Step("input", "{{input}}"),), "steps[0].name"),
        ((Step("has space", "{{input}}"),), "steps[0].name"),
        ((), "steps"),
    ],
)
async def test_pipeline_templates_are_checked_before_anything_runs(steps: tuple[Step, ...], field: str) -> None:
    fakes = Fakes({"": echoes(str.upper)})
    with pytest.raises(InvalidArgument) as caught:
        await collect(fakes.swarm().pipeline(PipelineSpec(base(), "x", steps)))
    assert caught.value.field == field
    assert fakes.requests == []


async def test_a_failing_step_stops_the_pipeline_and_the_error_names_it() -> None:
    fakes = Fakes({"ok": echoes(str.upper), "down": fails(BackendUnavailable("no route to host"))})
    steps = (
        Step("draft", "{{input}}", "ok"),
        Step("review", "{{previous}}", "down"),
        Step("final", "{{previous}}", "ok"),
    )
    seen: list[SwarmEvent] = []
    with pytest.raises(SwarmFailed) as caught:
        await drain(fakes.swarm().pipeline(PipelineSpec(base(), "x", steps)), seen)
    assert caught.value.message == "pipeline step 'review' failed: no route to host"
    assert caught.value.code == "UNAVAILABLE" and caught.value.metadata["step"] == "review"
    assert len(fakes.asked("ok")) == 1  # `final` never ran
    assert [e.agent for e in of_type(seen, AgentFinished)] == ["draft", "review"]


# --- debate ---


def debater(name: str) -> Behaviour:
    """Answers `<name> says <n>` on its n-th turn."""
    turns = iter(range(1, 100))

    async def behaviour(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        yield Opened(name)
        yield Delta(f"{name} says {next(turns)}")
        yield Finish(FinishReason.STOP, Usage(2, 3))

    return behaviour


async def test_each_debate_round_sees_the_others_last_answers() -> None:
    fakes = Fakes({n: debater(n) for n in ("x", "y", "z")} | {"j": answers('{"winner": "C"}')})
    agents = (Agent("xena", "x"), Agent("yuri", "y"), Agent("zoe", "z"))
    events = await collect(fakes.swarm().debate(DebateSpec(base(), agents, rounds=3, judge="j")))

    assert [(e.round, e.rounds) for e in of_type(events, RoundStarted)] == [(1, 3), (2, 3), (3, 3)]
    first, second, third = fakes.asked("x")
    assert first.messages == base().messages
    # Round 2: its own last answer as the assistant's turn, then the others' answers from round 1.
    assert second.messages[:-1] == (*base().messages, Message(Role.ASSISTANT, (TextPart("x says 1"),)))
    rebuttal = second.messages[-1].text
    assert "[yuri]\ny says 1" in rebuttal and "[zoe]\nz says 1" in rebuttal and "x says" not in rebuttal
    assert "[yuri]\ny says 2" in third.messages[-1].text and "y says 1" not in third.messages[-1].text
    assert [e.round for e in of_type(events, AgentFinished) if e.agent == "xena"] == [1, 2, 3]
    [verdict] = of_type(events, Verdict)
    assert (verdict.winner, verdict.method) == ("zoe", VerdictMethod.JUDGE)
    result = events[-1]
    assert isinstance(result, SwarmResult)
    assert (result.winner, result.text) == ("zoe", "z says 3")
    assert [a.text for a in result.answers] == ["x says 3", "y says 3", "z says 3"]
    assert result.usage == Usage(2 * 9 + 10, 3 * 9 + 2)  # nine turns and the judge's two words


async def test_a_debate_can_end_in_a_synthesis_of_the_last_answers() -> None:
    fakes = Fakes({"x": debater("x"), "y": debater("y"), "s": echoes(lambda p: "synthesis of " + p[-40:])})
    spec = DebateSpec(
        base(), (Agent(model="x"), Agent(model="y")), rounds=1, conclusion=Conclusion.SYNTHESIS, judge="s"
    )
    events = await collect(fakes.swarm().debate(spec))
    [asked] = fakes.asked("s")
    assert "[agent-1]\nx says 1" in asked.messages[-1].text and "[agent-2]\ny says 1" in asked.messages[-1].text
    assert not of_type(events, Verdict)
    result = events[-1]
    assert isinstance(result, SwarmResult) and result.text.startswith("synthesis of ") and result.winner == ""


# --- limits and names, refused before anything runs ---


@pytest.mark.parametrize(
    ("run", "field", "limit"),
    [
        (lambda s: s.fanout(FanoutSpec(base(), (Agent(model="a"),) * 5)), "agents", "max_agents"),
        (
            lambda s: s.pipeline(PipelineSpec(base(), "x", tuple(Step(f"s{i}", "{{input}}") for i in range(5)))),
            "steps",
            "max_agents",
        ),
        (lambda s: s.debate(DebateSpec(base(), (Agent(model="a"),) * 2, rounds=4)), "rounds", "max_rounds"),
        (
            lambda s: s.fanout(FanoutSpec(base(), (Agent(model="a"),) * 3, RequestedLimits(max_agents=2))),
            "agents",
            "max_agents",
        ),
        (
            lambda s: s.fanout(FanoutSpec(base(), (Agent(model="a"),), RequestedLimits(max_agents=9))),
            "limits.max_agents",
            "max_agents",
        ),
        (
            lambda s: s.vote(VoteSpec(replace(base(), max_tokens=None), (Agent(model="a"),) * 4)),
            "max_tokens",
            "max_total_tokens",
        ),
        (
            lambda s: s.fanout(FanoutSpec(base(), (Agent(model="a"),) * 2, RequestedLimits(max_total_tokens=100))),
            "max_tokens",
            "max_total_tokens",
        ),
    ],
)
async def test_a_swarm_over_a_limit_is_refused_up_front_naming_it(
    run: Callable[[Swarm], AsyncGenerator[SwarmEvent, None]], field: str, limit: str
) -> None:
    fakes = Fakes({"a": answers("Paris"), "": answers("Paris")})
    tight = SwarmLimits(max_agents=4, max_rounds=3, max_total_tokens=400, agent_timeout_seconds=30)
    with pytest.raises(SwarmLimitExceeded) as caught:
        await collect(run(fakes.swarm(tight)))
    assert (caught.value.field, caught.value.limit) == (field, limit)
    assert caught.value.metadata == {"field": field, "limit": limit}
    assert caught.value.code == "INVALID_ARGUMENT" and caught.value.reason == "SWARM_LIMIT_EXCEEDED"
    assert limit in caught.value.message
    assert fakes.requests == []


@pytest.mark.parametrize(
    ("agents", "field"),
    [
        ((), "agents"),
        ((Agent("judge", "a"),), "agents[0].name"),
        ((Agent("agent-2", "a"), Agent(model="a")), "agents[1].name"),
    ],
)
async def test_agent_names_are_checked(agents: tuple[Agent, ...], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await collect(Fakes().swarm().fanout(FanoutSpec(base(), agents)))
    assert caught.value.field == field


# --- through a real Gateway: agents are admitted chats ---


class Held(Backend):
    """Answers at once (`quick`) or holds its generation until cancelled; counts who is running."""

    name = "held"

    def __init__(self) -> None:
        self.running = 0
        self.cancelled = 0

    async def stream(
        self, model: ModelProfile, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        self.running += 1
        try:
            yield Delta(f"{model.id} here")
            if model.id != "quick":
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    self.cancelled += 1
                    raise
            yield Finish(FinishReason.STOP, Usage(3, 2))
        finally:
            self.running -= 1


def held_gateway(admission: Admission) -> tuple[Gateway, Held]:
    backend = Held()
    registry = ModelRegistry([RegisteredModel(ModelProfile(id=i), backend) for i in ("quick", "slow", "slower")])
    resolver = Resolver(registry, default_model="quick", roles={}, escalation=Escalation())
    return Gateway(registry, resolver, GenerationLimits(max_tokens_ceiling=100), admission=admission), backend


async def test_through_the_gateway_first_success_frees_the_losers_slots_at_once() -> None:
    admission = Admission(AdmissionLimits(8, 8, queue_size=8, queue_timeout_seconds=30))
    gateway, backend = held_gateway(admission)
    agents = GatewayAgents(gateway, max_tokens_ceiling=100)
    swarm = Swarm(agents.run, LIMITS, max_tokens_ceiling=100, judge_max_tokens=10, check=agents.check)
    spec = VoteSpec(
        base(), (Agent(model="slow"), Agent(model="slower"), Agent(model="quick")), strategy=Strategy.FIRST_SUCCESS
    )

    events = swarm.vote(spec)
    async with aclosing(events):
        async for event in events:
            if isinstance(event, Verdict):
                # When the verdict comes, the losers have let go of their models and slots.
                assert backend.cancelled == 2 and backend.running == 0
                assert [admission.running(m) for m in ("slow", "slower", "quick")] == [0, 0, 0]
                assert event.winner == "agent-3"
            if isinstance(event, SwarmResult):
                assert {a.model for a in event.answers} == {"slow", "slower", "quick"}
                assert event.answers[2].usage == Usage(3, 2)


async def test_through_the_gateway_agents_queue_like_any_chat() -> None:
    """One slot and no queue for `slow`: the second agent on it is refused by admission, alone."""
    admission = Admission(AdmissionLimits(1, 8, queue_size=0, queue_timeout_seconds=30), model_caps={"quick": 8})
    gateway, _ = held_gateway(admission)
    agents = GatewayAgents(gateway, max_tokens_ceiling=100)
    swarm = Swarm(agents.run, LIMITS, max_tokens_ceiling=100, judge_max_tokens=10, check=agents.check)
    holder = await gateway.open_chat(ChatRequest("slow", (user("hold"),)))
    try:
        events = await collect(swarm.fanout(FanoutSpec(base(), (Agent(model="slow"), Agent(model="quick")))))
    finally:
        await holder.aclose()
    refused, served = of_type(events, SwarmResult)[0].answers
    assert refused.failure is not None and refused.failure.reason == "QUEUE_FULL"
    assert served.succeeded and served.model == "quick"


async def test_through_the_gateway_an_unknown_model_is_refused_up_front_naming_the_agent() -> None:
    gateway, backend = held_gateway(Admission(AdmissionLimits(8, 8, queue_size=8, queue_timeout_seconds=30)))
    agents = GatewayAgents(gateway, max_tokens_ceiling=100)
    swarm = Swarm(agents.run, LIMITS, max_tokens_ceiling=100, judge_max_tokens=10, check=agents.check)
    with pytest.raises(ModelNotFound) as caught:
        await collect(swarm.fanout(FanoutSpec(base(), (Agent(model="quick"), Agent(model="nope")))))
    assert caught.value.metadata["field"] == "agents[1].model"
    assert caught.value.message.startswith("agents[1].model: no model matches 'nope'")
    assert backend.running == 0
