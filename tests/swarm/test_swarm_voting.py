"""Swarm votes with fake agents: first success cancelling the others, the judge and its fallback to the
longest answer, and longest and fanout with no judge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from lattice.errors import BackendUnavailable
from lattice.server.chat import ChatRequest, Delta, Finish, FinishReason, Usage
from lattice.server.swarm import (
    Agent,
    AgentEvent,
    AgentFinished,
    AgentStarted,
    FanoutSpec,
    Opened,
    Strategy,
    Swarm,
    SwarmResult,
    Verdict,
    VerdictMethod,
    VoteSpec,
)
from lattice.server.swarm.judge import Unreadable, read_verdict
from tests.swarm.swarm_fakes import LIMITS, QUESTION, Behaviour, Fakes, answers, base, collect, fails, of_type

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


@pytest.mark.parametrize("can_constrain", [True, False])
async def test_the_judge_is_held_to_the_verdict_schema_where_its_model_can_be(can_constrain: bool) -> None:
    judge = answers('{"winner": "A", "scores": {"A": 8, "B": 2}, "reasoning": "A"}')
    fakes = Fakes({"a": answers("Paris"), "b": answers("Lyon"), "j": judge})
    swarm = Swarm(fakes.run, LIMITS, max_tokens_ceiling=100, judge_max_tokens=64, constrains=lambda _: can_constrain)
    await collect(swarm.vote(VoteSpec(base(), (Agent(model="a"), Agent(model="b")), judge="j")))
    [asked] = fakes.asked("j")
    if not can_constrain:
        assert asked.response_format is None
        return
    assert asked.response_format is not None and asked.response_format.json_schema is not None
    schema = asked.response_format.json_schema["schema"]
    assert schema["properties"]["winner"] == {"enum": ["A", "B"]}
    assert schema["required"] == ["winner", "scores", "reasoning"]


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
