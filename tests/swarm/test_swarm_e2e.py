"""SwarmService end to end on the real SmolLM2 model: over gRPC, through the shim (its own JSON,
SSE, and the OpenAI SDK's chat with a `swarm` object) and through Envoy. Fixed seeds and small
`max_tokens` keep it quick."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import openai
import pytest

from lattice.v1 import common_pb2, swarm_pb2, swarm_pb2_grpc
from tests.envoy_process import EnvoyProcess
from tests.gateway_process import GatewayProcess
from tests.rpc_errors import error_info

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"
POEM = "Write a short poem about the sea."
CAPITAL = "What is the capital of France? Answer in one word."
TIMEOUT = httpx.Timeout(10, read=120)


def user(text: str) -> common_pb2.Message:
    return common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text=text)])


def agents(*models: str) -> list[swarm_pb2.SwarmAgent]:
    return [swarm_pb2.SwarmAgent(model=m) for m in models]


def runs(names: list[str]) -> int:
    """How many stretches of consecutive events one agent has: 3 agents answering one after another make 3."""
    return sum(1 for i, name in enumerate(names) if i == 0 or names[i - 1] != name)


async def test_fanout_streams_the_deltas_of_three_agents_interleaved(channel: grpc.aio.Channel) -> None:
    request = swarm_pb2.FanoutRequest(
        messages=[user(POEM)],
        agents=agents("smollm2", "role:fast", MODEL),
        max_tokens=16,
        temperature=1.0,
        seed=42,
    )
    events = [m async for m in swarm_pb2_grpc.SwarmServiceStub(channel).Fanout(request)]

    started = [e.agent_started for e in events if e.HasField("agent_started")]
    assert sorted((s.agent, s.resolution.expression) for s in started) == [
        ("agent-1", "smollm2"),
        ("agent-2", "role:fast"),
        ("agent-3", MODEL),
    ]
    assert {s.model for s in started} == {MODEL}
    deltas = [e.agent_delta for e in events if e.HasField("agent_delta")]
    speakers = [d.agent for d in deltas]
    assert set(speakers) == {"agent-1", "agent-2", "agent-3"}
    assert runs(speakers) > 3, f"the agents answered one after another, not together: {speakers}"
    assert events[-1].HasField("result")
    result = events[-1].result
    assert [a.agent for a in result.answers] == ["agent-1", "agent-2", "agent-3"]
    for answer in result.answers:
        assert not answer.HasField("error")
        assert answer.text == "".join(d.text for d in deltas if d.agent == answer.agent)
        assert answer.finish_reason == common_pb2.FINISH_REASON_LENGTH and answer.usage.completion_tokens == 16
    assert len({a.text for a in result.answers}) == 3  # seeds 42, 43, 44
    assert result.usage.completion_tokens == 48
    assert result.usage.total_tokens == sum(a.usage.total_tokens for a in result.answers)
    assert result.winner == "" and result.text == ""


async def test_vote_returns_a_verdict_from_the_judge(channel: grpc.aio.Channel) -> None:
    request = swarm_pb2.VoteRequest(
        messages=[user(CAPITAL)],
        agents=agents("smollm2", "smollm2"),
        strategy=swarm_pb2.VOTE_STRATEGY_BEST_OF_N,
        judge="smollm2",
        max_tokens=12,
        temperature=0.8,
        seed=7,
        judge_max_tokens=40,
    )
    events = [m async for m in swarm_pb2_grpc.SwarmServiceStub(channel).Vote(request)]
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-2:] == ["verdict", "result"] and kinds.count("verdict") == 1

    judge = next(e.agent_started for e in events if e.HasField("agent_started") and e.agent_started.agent == "judge")
    assert judge.model == MODEL
    assert "[A]" in judge.prompt and "[B]" in judge.prompt and "JSON" in judge.prompt
    verdict, result = events[-2].verdict, events[-1].result
    assert verdict.winner in ("agent-1", "agent-2") and verdict.label in ("A", "B")
    # On llama.cpp the judge answers under the verdict's JSON schema: even a 135M-parameter judge's verdict parses.
    assert verdict.method == swarm_pb2.VERDICT_METHOD_JUDGE, verdict.fallback_reason
    assert verdict.fallback_reason == ""
    assert result.winner == verdict.winner
    assert result.text == next(a.text for a in result.answers if a.agent == verdict.winner)
    judged = next(
        e.agent_finished for e in events if e.HasField("agent_finished") and e.agent_finished.agent == "judge"
    )
    assert result.usage.total_tokens == sum(a.usage.total_tokens for a in result.answers) + judged.usage.total_tokens


async def test_a_two_step_pipeline_passes_the_previous_answer_on(channel: grpc.aio.Channel) -> None:
    request = swarm_pb2.PipelineRequest(
        input="the sea at night",
        steps=[
            swarm_pb2.PipelineStep(name="line", model="smollm2", prompt="Write one line of poetry about {{input}}."),
            swarm_pb2.PipelineStep(name="title", model="role:fast", prompt="Give this line a title: {{previous}}"),
        ],
        max_tokens=12,
        temperature=0,
    )
    events = [m async for m in swarm_pb2_grpc.SwarmServiceStub(channel).Pipeline(request)]
    started = [e.agent_started for e in events if e.HasField("agent_started")]
    finished = [e.agent_finished for e in events if e.HasField("agent_finished")]
    assert [s.agent for s in started] == ["line", "title"] and [f.agent for f in finished] == ["line", "title"]
    line = finished[0].text
    assert line.strip()
    assert started[0].prompt == "Write one line of poetry about the sea at night."
    assert started[1].prompt == f"Give this line a title: {line}"
    result = events[-1].result
    assert result.text == finished[1].text and [a.agent for a in result.answers] == ["line", "title"]


async def test_a_step_that_fails_stops_the_pipeline_naming_it(channel: grpc.aio.Channel) -> None:
    request = swarm_pb2.PipelineRequest(
        input="x",
        steps=[swarm_pb2.PipelineStep(name="slowpoke", prompt="{{input}}")],
        max_tokens=8,
        limits=swarm_pb2.SwarmLimits(agent_timeout={"nanos": 1_000_000}),  # no model answers within 1 ms
    )
    stream = swarm_pb2_grpc.SwarmServiceStub(channel).Pipeline(request)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stream:
            pass
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "pipeline step 'slowpoke' failed" in (caught.value.details() or "")
    assert error_info(caught.value).metadata["step"] == "slowpoke"


async def test_a_swarm_over_a_limit_is_refused_up_front_naming_it(channel: grpc.aio.Channel) -> None:
    stub = swarm_pb2_grpc.SwarmServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Fanout(swarm_pb2.FanoutRequest(messages=[user(POEM)], agents=agents(*["smollm2"] * 9))).read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert info.reason == "SWARM_LIMIT_EXCEEDED"
    assert dict(info.metadata) == {"field": "agents", "limit": "max_agents"}
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.Fanout(swarm_pb2.FanoutRequest(messages=[user(POEM)], agents=agents("smollm2", "nope"))).read()
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(unknown.value).metadata["field"] == "agents[1].model"


def test_the_openai_sdk_gets_an_ordinary_completion_from_a_swarm(gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", timeout=120)
    reply = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": POEM}],
        max_tokens=10,
        temperature=1.0,
        seed=5,
        extra_body={"swarm": {"models": ["smollm2", "role:fast"], "strategy": "longest"}},
    )
    assert reply.object == "chat.completion" and reply.model == MODEL
    [choice] = reply.choices
    swarm = (reply.model_extra or {})["lattice"]["swarm"]
    answers = {a["agent"]: a for a in swarm["answers"]}
    assert set(answers) == {"agent-1", "agent-2"}
    assert swarm["verdict"]["method"] == "VERDICT_METHOD_LONGEST"
    assert choice.message.content == answers[swarm["winner"]]["text"]
    assert choice.message.content == max((a["text"] for a in swarm["answers"]), key=len)
    assert choice.finish_reason == "length"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 20
    assert reply.usage.total_tokens == sum(int(a["usage"]["totalTokens"]) for a in swarm["answers"])


def test_the_openai_sdk_streams_the_winner_of_a_swarm_model(gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", timeout=120)
    chunks = list(
        client.chat.completions.create(
            model="swarm:first-success",
            messages=[{"role": "user", "content": CAPITAL}],
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"swarm": {"models": ["smollm2", "smollm2"]}},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert {c.model for c in chunks} == {MODEL}


def test_a_chat_swarm_without_models_is_a_400_naming_the_field(gateway: GatewayProcess) -> None:
    body = {"model": "swarm:vote", "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(f"{gateway.http_url}/v1/chat/completions", json=body, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "swarm.models"


def sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, data) per server-sent event."""
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))
            name = ""


def test_fanout_through_the_shim_as_server_sent_events(gateway: GatewayProcess) -> None:
    body = {
        "messages": [{"role": "ROLE_USER", "content": [{"text": POEM}]}],
        "agents": [{"model": "smollm2"}, {"model": "smollm2", "name": "second"}],
        "maxTokens": 10,
        "seed": 1,
        "stream": True,
    }
    url = f"{gateway.http_url}/v1/swarm/fanout"
    with httpx.stream("POST", url, json=body, timeout=TIMEOUT) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse(response.iter_lines()))
    names = [name for name, _ in events]
    assert names[-1] == "result" and names.count("agent.started") == 2 and names.count("agent.finished") == 2
    deltas = [data for name, data in events if name == "agent.delta"]
    assert {d["agent"] for d in deltas} == {"agent-1", "second"}
    answers = {a["agent"]: a["text"] for a in events[-1][1]["answers"]}
    assert answers["second"] == "".join(d["text"] for d in deltas if d["agent"] == "second")


def test_vote_through_the_shim_collects_the_events(gateway: GatewayProcess) -> None:
    body = {
        "messages": [{"role": "ROLE_USER", "content": [{"text": CAPITAL}]}],
        "agents": [{"model": "smollm2"}, {"model": "smollm2"}],
        "strategy": "VOTE_STRATEGY_LONGEST",
        "maxTokens": 8,
        "seed": 3,
    }
    response = httpx.post(f"{gateway.http_url}/v1/swarm/vote", json=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["verdict"]["method"] == "VERDICT_METHOD_LONGEST"
    assert reply["result"]["winner"] == reply["verdict"]["winner"]
    kinds = [next(iter(event)) for event in reply["events"]]
    assert "agentDelta" not in kinds and kinds.count("agentFinished") == 2 and kinds[-1] == "result"


def test_the_shim_refuses_a_body_that_is_not_the_contracts_json(gateway: GatewayProcess) -> None:
    response = httpx.post(f"{gateway.http_url}/v1/swarm/fanout", json={"agentz": []}, timeout=TIMEOUT)
    assert response.status_code == 400
    assert "agentz" in response.json()["error"]["message"]
    limited = httpx.post(
        f"{gateway.http_url}/v1/swarm/debate",
        json={"messages": [{"role": "ROLE_USER", "content": [{"text": "hi"}]}], "agents": [{}, {}], "rounds": 50},
        timeout=TIMEOUT,
    )
    assert limited.status_code == 400
    assert limited.json()["error"]["code"] == "swarm_limit_exceeded" and limited.json()["error"]["param"] == "rounds"


def test_fanout_through_envoy_transcoding(envoy: EnvoyProcess) -> None:
    body = {"messages": [{"role": "ROLE_USER", "content": [{"text": POEM}]}], "agents": [{}, {}], "maxTokens": 6}
    with httpx.stream("POST", f"{envoy.url}/v1/swarm/fanout", json=body, timeout=TIMEOUT) as response:
        assert response.status_code == 200
        events = [json.loads(line.removeprefix("data: ")) for line in response.iter_lines() if line]
    kinds = [next(iter(event)) for event in events]
    assert kinds[-1] == "result" and kinds.count("agentFinished") == 2 and "agentDelta" in kinds
    assert [a["agent"] for a in events[-1]["result"]["answers"]] == ["agent-1", "agent-2"]
