import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from lattice.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VoteStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOTE_STRATEGY_UNSPECIFIED: _ClassVar[VoteStrategy]
    VOTE_STRATEGY_BEST_OF_N: _ClassVar[VoteStrategy]
    VOTE_STRATEGY_FIRST_SUCCESS: _ClassVar[VoteStrategy]
    VOTE_STRATEGY_LONGEST: _ClassVar[VoteStrategy]
    VOTE_STRATEGY_FANOUT: _ClassVar[VoteStrategy]

class DebateConclusion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEBATE_CONCLUSION_UNSPECIFIED: _ClassVar[DebateConclusion]
    DEBATE_CONCLUSION_JUDGE: _ClassVar[DebateConclusion]
    DEBATE_CONCLUSION_SYNTHESIS: _ClassVar[DebateConclusion]

class VerdictMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_METHOD_UNSPECIFIED: _ClassVar[VerdictMethod]
    VERDICT_METHOD_JUDGE: _ClassVar[VerdictMethod]
    VERDICT_METHOD_FIRST_SUCCESS: _ClassVar[VerdictMethod]
    VERDICT_METHOD_LONGEST: _ClassVar[VerdictMethod]
    VERDICT_METHOD_SOLE_CANDIDATE: _ClassVar[VerdictMethod]
VOTE_STRATEGY_UNSPECIFIED: VoteStrategy
VOTE_STRATEGY_BEST_OF_N: VoteStrategy
VOTE_STRATEGY_FIRST_SUCCESS: VoteStrategy
VOTE_STRATEGY_LONGEST: VoteStrategy
VOTE_STRATEGY_FANOUT: VoteStrategy
DEBATE_CONCLUSION_UNSPECIFIED: DebateConclusion
DEBATE_CONCLUSION_JUDGE: DebateConclusion
DEBATE_CONCLUSION_SYNTHESIS: DebateConclusion
VERDICT_METHOD_UNSPECIFIED: VerdictMethod
VERDICT_METHOD_JUDGE: VerdictMethod
VERDICT_METHOD_FIRST_SUCCESS: VerdictMethod
VERDICT_METHOD_LONGEST: VerdictMethod
VERDICT_METHOD_SOLE_CANDIDATE: VerdictMethod

class SwarmAgent(_message.Message):
    __slots__ = ("name", "model", "system_prompt", "temperature", "seed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: str
    system_prompt: str
    temperature: float
    seed: int
    def __init__(self, name: _Optional[str] = ..., model: _Optional[str] = ..., system_prompt: _Optional[str] = ..., temperature: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class SwarmLimits(_message.Message):
    __slots__ = ("max_agents", "max_rounds", "max_total_tokens", "agent_timeout")
    MAX_AGENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AGENT_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    max_agents: int
    max_rounds: int
    max_total_tokens: int
    agent_timeout: _duration_pb2.Duration
    def __init__(self, max_agents: _Optional[int] = ..., max_rounds: _Optional[int] = ..., max_total_tokens: _Optional[int] = ..., agent_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class FanoutRequest(_message.Message):
    __slots__ = ("messages", "agents", "max_tokens", "temperature", "seed", "limits")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    agents: _containers.RepeatedCompositeFieldContainer[SwarmAgent]
    max_tokens: int
    temperature: float
    seed: int
    limits: SwarmLimits
    def __init__(self, messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., agents: _Optional[_Iterable[_Union[SwarmAgent, _Mapping]]] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., seed: _Optional[int] = ..., limits: _Optional[_Union[SwarmLimits, _Mapping]] = ...) -> None: ...

class VoteRequest(_message.Message):
    __slots__ = ("messages", "agents", "strategy", "judge", "criteria", "max_tokens", "temperature", "seed", "judge_max_tokens", "limits")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    JUDGE_MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    agents: _containers.RepeatedCompositeFieldContainer[SwarmAgent]
    strategy: VoteStrategy
    judge: str
    criteria: str
    max_tokens: int
    temperature: float
    seed: int
    judge_max_tokens: int
    limits: SwarmLimits
    def __init__(self, messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., agents: _Optional[_Iterable[_Union[SwarmAgent, _Mapping]]] = ..., strategy: _Optional[_Union[VoteStrategy, str]] = ..., judge: _Optional[str] = ..., criteria: _Optional[str] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., seed: _Optional[int] = ..., judge_max_tokens: _Optional[int] = ..., limits: _Optional[_Union[SwarmLimits, _Mapping]] = ...) -> None: ...

class PipelineStep(_message.Message):
    __slots__ = ("name", "model", "prompt", "system_prompt")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: str
    prompt: str
    system_prompt: str
    def __init__(self, name: _Optional[str] = ..., model: _Optional[str] = ..., prompt: _Optional[str] = ..., system_prompt: _Optional[str] = ...) -> None: ...

class PipelineRequest(_message.Message):
    __slots__ = ("input", "steps", "max_tokens", "temperature", "seed", "limits")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    input: str
    steps: _containers.RepeatedCompositeFieldContainer[PipelineStep]
    max_tokens: int
    temperature: float
    seed: int
    limits: SwarmLimits
    def __init__(self, input: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[PipelineStep, _Mapping]]] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., seed: _Optional[int] = ..., limits: _Optional[_Union[SwarmLimits, _Mapping]] = ...) -> None: ...

class DebateRequest(_message.Message):
    __slots__ = ("messages", "agents", "rounds", "conclusion", "judge", "criteria", "max_tokens", "temperature", "seed", "judge_max_tokens", "limits")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    CONCLUSION_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    JUDGE_MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    agents: _containers.RepeatedCompositeFieldContainer[SwarmAgent]
    rounds: int
    conclusion: DebateConclusion
    judge: str
    criteria: str
    max_tokens: int
    temperature: float
    seed: int
    judge_max_tokens: int
    limits: SwarmLimits
    def __init__(self, messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., agents: _Optional[_Iterable[_Union[SwarmAgent, _Mapping]]] = ..., rounds: _Optional[int] = ..., conclusion: _Optional[_Union[DebateConclusion, str]] = ..., judge: _Optional[str] = ..., criteria: _Optional[str] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., seed: _Optional[int] = ..., judge_max_tokens: _Optional[int] = ..., limits: _Optional[_Union[SwarmLimits, _Mapping]] = ...) -> None: ...

class AgentStarted(_message.Message):
    __slots__ = ("agent", "model", "round", "prompt", "resolution")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    agent: str
    model: str
    round: int
    prompt: str
    resolution: _common_pb2.Resolution
    def __init__(self, agent: _Optional[str] = ..., model: _Optional[str] = ..., round: _Optional[int] = ..., prompt: _Optional[str] = ..., resolution: _Optional[_Union[_common_pb2.Resolution, _Mapping]] = ...) -> None: ...

class AgentDelta(_message.Message):
    __slots__ = ("agent", "round", "text")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    agent: str
    round: int
    text: str
    def __init__(self, agent: _Optional[str] = ..., round: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class AgentError(_message.Message):
    __slots__ = ("code", "reason", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    reason: str
    message: str
    def __init__(self, code: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class AgentFinished(_message.Message):
    __slots__ = ("agent", "model", "round", "text", "finish_reason", "usage", "error")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    agent: str
    model: str
    round: int
    text: str
    finish_reason: _common_pb2.FinishReason
    usage: _common_pb2.Usage
    error: AgentError
    def __init__(self, agent: _Optional[str] = ..., model: _Optional[str] = ..., round: _Optional[int] = ..., text: _Optional[str] = ..., finish_reason: _Optional[_Union[_common_pb2.FinishReason, str]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., error: _Optional[_Union[AgentError, _Mapping]] = ...) -> None: ...

class RoundStarted(_message.Message):
    __slots__ = ("round", "rounds")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    round: int
    rounds: int
    def __init__(self, round: _Optional[int] = ..., rounds: _Optional[int] = ...) -> None: ...

class CandidateScore(_message.Message):
    __slots__ = ("agent", "label", "score")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    agent: str
    label: str
    score: float
    def __init__(self, agent: _Optional[str] = ..., label: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class JudgeVerdict(_message.Message):
    __slots__ = ("winner", "label", "method", "scores", "reasoning", "fallback_reason")
    WINNER_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    REASONING_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    winner: str
    label: str
    method: VerdictMethod
    scores: _containers.RepeatedCompositeFieldContainer[CandidateScore]
    reasoning: str
    fallback_reason: str
    def __init__(self, winner: _Optional[str] = ..., label: _Optional[str] = ..., method: _Optional[_Union[VerdictMethod, str]] = ..., scores: _Optional[_Iterable[_Union[CandidateScore, _Mapping]]] = ..., reasoning: _Optional[str] = ..., fallback_reason: _Optional[str] = ...) -> None: ...

class SwarmResult(_message.Message):
    __slots__ = ("text", "winner", "answers", "usage")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    text: str
    winner: str
    answers: _containers.RepeatedCompositeFieldContainer[AgentFinished]
    usage: _common_pb2.Usage
    def __init__(self, text: _Optional[str] = ..., winner: _Optional[str] = ..., answers: _Optional[_Iterable[_Union[AgentFinished, _Mapping]]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ...) -> None: ...

class FanoutResponse(_message.Message):
    __slots__ = ("agent_started", "agent_delta", "agent_finished", "result")
    AGENT_STARTED_FIELD_NUMBER: _ClassVar[int]
    AGENT_DELTA_FIELD_NUMBER: _ClassVar[int]
    AGENT_FINISHED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    agent_started: AgentStarted
    agent_delta: AgentDelta
    agent_finished: AgentFinished
    result: SwarmResult
    def __init__(self, agent_started: _Optional[_Union[AgentStarted, _Mapping]] = ..., agent_delta: _Optional[_Union[AgentDelta, _Mapping]] = ..., agent_finished: _Optional[_Union[AgentFinished, _Mapping]] = ..., result: _Optional[_Union[SwarmResult, _Mapping]] = ...) -> None: ...

class VoteResponse(_message.Message):
    __slots__ = ("agent_started", "agent_delta", "agent_finished", "verdict", "result")
    AGENT_STARTED_FIELD_NUMBER: _ClassVar[int]
    AGENT_DELTA_FIELD_NUMBER: _ClassVar[int]
    AGENT_FINISHED_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    agent_started: AgentStarted
    agent_delta: AgentDelta
    agent_finished: AgentFinished
    verdict: JudgeVerdict
    result: SwarmResult
    def __init__(self, agent_started: _Optional[_Union[AgentStarted, _Mapping]] = ..., agent_delta: _Optional[_Union[AgentDelta, _Mapping]] = ..., agent_finished: _Optional[_Union[AgentFinished, _Mapping]] = ..., verdict: _Optional[_Union[JudgeVerdict, _Mapping]] = ..., result: _Optional[_Union[SwarmResult, _Mapping]] = ...) -> None: ...

class PipelineResponse(_message.Message):
    __slots__ = ("agent_started", "agent_delta", "agent_finished", "result")
    AGENT_STARTED_FIELD_NUMBER: _ClassVar[int]
    AGENT_DELTA_FIELD_NUMBER: _ClassVar[int]
    AGENT_FINISHED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    agent_started: AgentStarted
    agent_delta: AgentDelta
    agent_finished: AgentFinished
    result: SwarmResult
    def __init__(self, agent_started: _Optional[_Union[AgentStarted, _Mapping]] = ..., agent_delta: _Optional[_Union[AgentDelta, _Mapping]] = ..., agent_finished: _Optional[_Union[AgentFinished, _Mapping]] = ..., result: _Optional[_Union[SwarmResult, _Mapping]] = ...) -> None: ...

class DebateResponse(_message.Message):
    __slots__ = ("agent_started", "agent_delta", "agent_finished", "round_started", "verdict", "result")
    AGENT_STARTED_FIELD_NUMBER: _ClassVar[int]
    AGENT_DELTA_FIELD_NUMBER: _ClassVar[int]
    AGENT_FINISHED_FIELD_NUMBER: _ClassVar[int]
    ROUND_STARTED_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    agent_started: AgentStarted
    agent_delta: AgentDelta
    agent_finished: AgentFinished
    round_started: RoundStarted
    verdict: JudgeVerdict
    result: SwarmResult
    def __init__(self, agent_started: _Optional[_Union[AgentStarted, _Mapping]] = ..., agent_delta: _Optional[_Union[AgentDelta, _Mapping]] = ..., agent_finished: _Optional[_Union[AgentFinished, _Mapping]] = ..., round_started: _Optional[_Union[RoundStarted, _Mapping]] = ..., verdict: _Optional[_Union[JudgeVerdict, _Mapping]] = ..., result: _Optional[_Union[SwarmResult, _Mapping]] = ...) -> None: ...
