"""Swarm pipelines with fake agents: templates with the input, the previous answer and named steps, checked
before anything runs; a failing step stops the rest."""

from __future__ import annotations

import pytest

from lattice.errors import BackendUnavailable, InvalidArgument, SwarmFailed
from lattice.server.swarm import AgentFinished, AgentStarted, PipelineSpec, Step, SwarmEvent, SwarmResult
from tests.swarm.swarm_fakes import Fakes, base, collect, drain, echoes, fails, of_type

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
