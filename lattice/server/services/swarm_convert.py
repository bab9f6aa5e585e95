"""Proto ⇄ domain for SwarmService: requests to swarm specs, swarm events to stream messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from google.protobuf.message import Message as ProtoMessage

from lattice.server import chat, swarm
from lattice.server.principals import Principal
from lattice.v1 import chat_pb2, common_pb2, swarm_pb2
from lattice.wire import convert

SwarmResponse = TypeVar(
    "SwarmResponse",
    swarm_pb2.FanoutResponse,
    swarm_pb2.VoteResponse,
    swarm_pb2.PipelineResponse,
    swarm_pb2.DebateResponse,
)

_STRATEGIES = {
    swarm_pb2.VOTE_STRATEGY_UNSPECIFIED: swarm.Strategy.BEST_OF_N,
    swarm_pb2.VOTE_STRATEGY_BEST_OF_N: swarm.Strategy.BEST_OF_N,
    swarm_pb2.VOTE_STRATEGY_FIRST_SUCCESS: swarm.Strategy.FIRST_SUCCESS,
    swarm_pb2.VOTE_STRATEGY_LONGEST: swarm.Strategy.LONGEST,
    swarm_pb2.VOTE_STRATEGY_FANOUT: swarm.Strategy.FANOUT,
}
_CONCLUSIONS = {
    swarm_pb2.DEBATE_CONCLUSION_UNSPECIFIED: swarm.Conclusion.JUDGE,
    swarm_pb2.DEBATE_CONCLUSION_JUDGE: swarm.Conclusion.JUDGE,
    swarm_pb2.DEBATE_CONCLUSION_SYNTHESIS: swarm.Conclusion.SYNTHESIS,
}
_METHODS = {
    swarm.VerdictMethod.JUDGE: swarm_pb2.VERDICT_METHOD_JUDGE,
    swarm.VerdictMethod.FIRST_SUCCESS: swarm_pb2.VERDICT_METHOD_FIRST_SUCCESS,
    swarm.VerdictMethod.LONGEST: swarm_pb2.VERDICT_METHOD_LONGEST,
    swarm.VerdictMethod.SOLE_CANDIDATE: swarm_pb2.VERDICT_METHOD_SOLE_CANDIDATE,
}
DEFAULT_ROUNDS = 2


class Caller:
    """What every agent's chat inherits from the call: metadata hints, identity, principal, deadline."""

    def __init__(
        self, metadata: Mapping[str, str], caller: str, principal: Principal | None, deadline: float | None
    ) -> None:
        self.metadata = metadata
        self.caller = caller
        self.principal = principal
        self.deadline = deadline

    def base(self, request: Any, messages: Iterable[common_pb2.Message] = ()) -> chat.ChatRequest:
        """The request every agent's chat starts from: the swarm's messages, sampling and `max_tokens`,
        converted exactly as a ChatRequest's (priority, latency tier and escalation from metadata)."""
        proto = chat_pb2.ChatRequest(messages=messages)
        for name in ("max_tokens", "temperature", "seed"):
            if request.HasField(name):
                setattr(proto, name, getattr(request, name))
        return convert.chat_request_from_proto(
            proto, self.metadata, caller=self.caller, principal=self.principal, deadline=self.deadline
        )


def fanout_spec(request: swarm_pb2.FanoutRequest, caller: Caller) -> swarm.FanoutSpec:
    return swarm.FanoutSpec(caller.base(request, request.messages), _agents(request.agents), _limits(request))


def vote_spec(request: swarm_pb2.VoteRequest, caller: Caller) -> swarm.VoteSpec:
    return swarm.VoteSpec(
        caller.base(request, request.messages),
        _agents(request.agents),
        _limits(request),
        strategy=_STRATEGIES.get(request.strategy, swarm.Strategy.BEST_OF_N),
        judge=request.judge,
        criteria=request.criteria,
        judge_max_tokens=request.judge_max_tokens if request.HasField("judge_max_tokens") else None,
    )


def pipeline_spec(request: swarm_pb2.PipelineRequest, caller: Caller) -> swarm.PipelineSpec:
    steps = tuple(swarm.Step(s.name, s.prompt, s.model, s.system_prompt) for s in request.steps)
    return swarm.PipelineSpec(caller.base(request), request.input, steps, _limits(request))


def debate_spec(request: swarm_pb2.DebateRequest, caller: Caller) -> swarm.DebateSpec:
    return swarm.DebateSpec(
        caller.base(request, request.messages),
        _agents(request.agents),
        _limits(request),
        rounds=request.rounds or DEFAULT_ROUNDS,
        conclusion=_CONCLUSIONS.get(request.conclusion, swarm.Conclusion.JUDGE),
        judge=request.judge,
        criteria=request.criteria,
        judge_max_tokens=request.judge_max_tokens if request.HasField("judge_max_tokens") else None,
    )


def _agents(agents: Iterable[swarm_pb2.SwarmAgent]) -> tuple[swarm.Agent, ...]:
    return tuple(
        swarm.Agent(
            name=a.name,
            model=a.model,
            system_prompt=a.system_prompt,
            temperature=a.temperature if a.HasField("temperature") else None,
            seed=a.seed if a.HasField("seed") else None,
        )
        for a in agents
    )


def _limits(request: Any) -> swarm.RequestedLimits:
    limits: swarm_pb2.SwarmLimits = request.limits
    return swarm.RequestedLimits(
        max_agents=limits.max_agents if limits.HasField("max_agents") else None,
        max_rounds=limits.max_rounds if limits.HasField("max_rounds") else None,
        max_total_tokens=limits.max_total_tokens if limits.HasField("max_total_tokens") else None,
        agent_timeout_seconds=limits.agent_timeout.ToTimedelta().total_seconds()
        if limits.HasField("agent_timeout")
        else None,
    )


def event_to_proto(event: swarm.SwarmEvent, response: type[SwarmResponse]) -> SwarmResponse:
    """One domain event as the RPC's stream message (each RPC's oneof names its events alike)."""
    field, message = _event(event)
    assert field in response.DESCRIPTOR.fields_by_name, f"{response.__name__} has no {field}"
    fields: dict[str, Any] = {field: message}
    return response(**fields)


def _event(event: swarm.SwarmEvent) -> tuple[str, ProtoMessage]:
    match event:
        case swarm.AgentStarted():
            resolution = convert.resolution_to_proto(event.resolution) if event.resolution is not None else None
            return "agent_started", swarm_pb2.AgentStarted(
                agent=event.agent, model=event.model, round=event.round, prompt=event.prompt, resolution=resolution
            )
        case swarm.AgentDelta():
            return "agent_delta", swarm_pb2.AgentDelta(agent=event.agent, round=event.round, text=event.text)
        case swarm.AgentFinished():
            return "agent_finished", _finished(event)
        case swarm.RoundStarted():
            return "round_started", swarm_pb2.RoundStarted(round=event.round, rounds=event.rounds)
        case swarm.Verdict():
            return "verdict", swarm_pb2.JudgeVerdict(
                winner=event.winner,
                label=event.label,
                method=_METHODS[event.method],
                scores=[swarm_pb2.CandidateScore(agent=s.agent, label=s.label, score=s.score) for s in event.scores],
                reasoning=event.reasoning,
                fallback_reason=event.fallback_reason,
            )
        case swarm.SwarmResult():
            return "result", swarm_pb2.SwarmResult(
                text=event.text,
                winner=event.winner,
                answers=[_finished(a) for a in event.answers],
                usage=convert.usage_to_proto(event.usage),
            )
    raise AssertionError(f"unknown swarm event {event!r}")


def _finished(event: swarm.AgentFinished) -> swarm_pb2.AgentFinished:
    message = swarm_pb2.AgentFinished(
        agent=event.agent,
        model=event.model,
        round=event.round,
        text=event.text,
        usage=convert.usage_to_proto(event.usage),
    )
    if event.finish is not None:
        message.finish_reason = convert.finish_reason_to_proto(event.finish.reason)
    if event.failure is not None:
        failure = event.failure
        message.error.CopyFrom(swarm_pb2.AgentError(code=failure.code, reason=failure.reason, message=failure.message))
    return message
