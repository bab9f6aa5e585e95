from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from lattice.v1 import chat_pb2 as _chat_pb2
from lattice.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Capability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAPABILITY_UNSPECIFIED: _ClassVar[Capability]
    CAPABILITY_CHAT: _ClassVar[Capability]
    CAPABILITY_VISION: _ClassVar[Capability]
    CAPABILITY_TOOLS: _ClassVar[Capability]
    CAPABILITY_JSON_MODE: _ClassVar[Capability]
    CAPABILITY_LONG_CONTEXT: _ClassVar[Capability]
    CAPABILITY_LOGPROBS: _ClassVar[Capability]
    CAPABILITY_EMBEDDINGS: _ClassVar[Capability]
    CAPABILITY_COMPLETIONS: _ClassVar[Capability]
CAPABILITY_UNSPECIFIED: Capability
CAPABILITY_CHAT: Capability
CAPABILITY_VISION: Capability
CAPABILITY_TOOLS: Capability
CAPABILITY_JSON_MODE: Capability
CAPABILITY_LONG_CONTEXT: Capability
CAPABILITY_LOGPROBS: Capability
CAPABILITY_EMBEDDINGS: Capability
CAPABILITY_COMPLETIONS: Capability

class Model(_message.Message):
    __slots__ = ("name", "id", "aliases", "backend", "context_window", "capabilities", "roles", "owned_by", "latency_tier", "cost_per_million_tokens", "available", "default_max_tokens")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    OWNED_BY_FIELD_NUMBER: _ClassVar[int]
    LATENCY_TIER_FIELD_NUMBER: _ClassVar[int]
    COST_PER_MILLION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    backend: str
    context_window: int
    capabilities: _containers.RepeatedScalarFieldContainer[Capability]
    roles: _containers.RepeatedScalarFieldContainer[str]
    owned_by: str
    latency_tier: _common_pb2.LatencyTier
    cost_per_million_tokens: float
    available: bool
    default_max_tokens: int
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., backend: _Optional[str] = ..., context_window: _Optional[int] = ..., capabilities: _Optional[_Iterable[_Union[Capability, str]]] = ..., roles: _Optional[_Iterable[str]] = ..., owned_by: _Optional[str] = ..., latency_tier: _Optional[_Union[_common_pb2.LatencyTier, str]] = ..., cost_per_million_tokens: _Optional[float] = ..., available: _Optional[bool] = ..., default_max_tokens: _Optional[int] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("model", "request")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    model: str
    request: _chat_pb2.ChatRequest
    def __init__(self, model: _Optional[str] = ..., request: _Optional[_Union[_chat_pb2.ChatRequest, _Mapping]] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("resolution",)
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    resolution: _common_pb2.Resolution
    def __init__(self, resolution: _Optional[_Union[_common_pb2.Resolution, _Mapping]] = ...) -> None: ...
