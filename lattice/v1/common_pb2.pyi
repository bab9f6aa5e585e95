from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_SYSTEM: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]
    ROLE_TOOL: _ClassVar[Role]

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_STOP: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_TOOL_CALLS: _ClassVar[FinishReason]
    FINISH_REASON_CONTENT_FILTER: _ClassVar[FinishReason]

class CandidateVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANDIDATE_VERDICT_UNSPECIFIED: _ClassVar[CandidateVerdict]
    CANDIDATE_VERDICT_CHOSEN: _ClassVar[CandidateVerdict]
    CANDIDATE_VERDICT_OUTRANKED: _ClassVar[CandidateVerdict]
    CANDIDATE_VERDICT_MISSING_CAPABILITY: _ClassVar[CandidateVerdict]
    CANDIDATE_VERDICT_CONTEXT_TOO_SMALL: _ClassVar[CandidateVerdict]
    CANDIDATE_VERDICT_UNAVAILABLE: _ClassVar[CandidateVerdict]
    CANDIDATE_VERDICT_UNHEALTHY: _ClassVar[CandidateVerdict]
    CANDIDATE_VERDICT_OVER_CAPACITY: _ClassVar[CandidateVerdict]
    CANDIDATE_VERDICT_FAILED: _ClassVar[CandidateVerdict]

class LatencyTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LATENCY_TIER_UNSPECIFIED: _ClassVar[LatencyTier]
    LATENCY_TIER_FAST: _ClassVar[LatencyTier]
    LATENCY_TIER_STANDARD: _ClassVar[LatencyTier]
    LATENCY_TIER_SLOW: _ClassVar[LatencyTier]
ROLE_UNSPECIFIED: Role
ROLE_SYSTEM: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
ROLE_TOOL: Role
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_STOP: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_TOOL_CALLS: FinishReason
FINISH_REASON_CONTENT_FILTER: FinishReason
CANDIDATE_VERDICT_UNSPECIFIED: CandidateVerdict
CANDIDATE_VERDICT_CHOSEN: CandidateVerdict
CANDIDATE_VERDICT_OUTRANKED: CandidateVerdict
CANDIDATE_VERDICT_MISSING_CAPABILITY: CandidateVerdict
CANDIDATE_VERDICT_CONTEXT_TOO_SMALL: CandidateVerdict
CANDIDATE_VERDICT_UNAVAILABLE: CandidateVerdict
CANDIDATE_VERDICT_UNHEALTHY: CandidateVerdict
CANDIDATE_VERDICT_OVER_CAPACITY: CandidateVerdict
CANDIDATE_VERDICT_FAILED: CandidateVerdict
LATENCY_TIER_UNSPECIFIED: LatencyTier
LATENCY_TIER_FAST: LatencyTier
LATENCY_TIER_STANDARD: LatencyTier
LATENCY_TIER_SLOW: LatencyTier

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "total_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ...) -> None: ...

class ImageUrl(_message.Message):
    __slots__ = ("url", "detail")
    URL_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    url: str
    detail: str
    def __init__(self, url: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ContentPart(_message.Message):
    __slots__ = ("text", "image_url")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    text: str
    image_url: ImageUrl
    def __init__(self, text: _Optional[str] = ..., image_url: _Optional[_Union[ImageUrl, _Mapping]] = ...) -> None: ...

class FunctionCall(_message.Message):
    __slots__ = ("name", "arguments")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    arguments: str
    def __init__(self, name: _Optional[str] = ..., arguments: _Optional[str] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("id", "type", "function")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    function: FunctionCall
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., function: _Optional[_Union[FunctionCall, _Mapping]] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("role", "content", "name", "tool_calls", "tool_call_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    role: Role
    content: _containers.RepeatedCompositeFieldContainer[ContentPart]
    name: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    tool_call_id: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., content: _Optional[_Iterable[_Union[ContentPart, _Mapping]]] = ..., name: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ..., tool_call_id: _Optional[str] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("model", "verdict", "detail")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    model: str
    verdict: CandidateVerdict
    detail: str
    def __init__(self, model: _Optional[str] = ..., verdict: _Optional[_Union[CandidateVerdict, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class Resolution(_message.Message):
    __slots__ = ("expression", "model", "backend", "candidates", "escalated")
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_FIELD_NUMBER: _ClassVar[int]
    expression: str
    model: str
    backend: str
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    escalated: bool
    def __init__(self, expression: _Optional[str] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., escalated: _Optional[bool] = ...) -> None: ...
