"""Swarm debates with fake agents: each round sees the others' last answers; a judge's verdict or a
synthesis at the end."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from lattice.server.chat import ChatRequest, Delta, Finish, FinishReason, Message, Role, TextPart, Usage
from lattice.server.swarm import (
    Agent,
    AgentEvent,
    AgentFinished,
    Conclusion,
    DebateSpec,
    Opened,
    RoundStarted,
    SwarmResult,
    Verdict,
    VerdictMethod,
)
from tests.swarm.swarm_fakes import Behaviour, Fakes, answers, base, collect, echoes, of_type

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
