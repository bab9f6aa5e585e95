import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from lattice.v1 import resolve_pb2 as _resolve_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetDashboardRequest(_message.Message):
    __slots__ = ("recent_limit",)
    RECENT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    recent_limit: int
    def __init__(self, recent_limit: _Optional[int] = ...) -> None: ...

class GetDashboardResponse(_message.Message):
    __slots__ = ("snapshot_time", "scope", "account_id", "version", "models", "personal_runtimes", "activity", "bucket_seconds", "window_seconds", "recent_requests")
    SNAPSHOT_TIME_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    PERSONAL_RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    BUCKET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECENT_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    snapshot_time: _timestamp_pb2.Timestamp
    scope: str
    account_id: str
    version: str
    models: _containers.RepeatedCompositeFieldContainer[ModelState]
    personal_runtimes: _containers.RepeatedCompositeFieldContainer[RuntimeState]
    activity: _containers.RepeatedCompositeFieldContainer[ActivityBucket]
    bucket_seconds: int
    window_seconds: int
    recent_requests: _containers.RepeatedCompositeFieldContainer[RecentRequest]
    def __init__(self, snapshot_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scope: _Optional[str] = ..., account_id: _Optional[str] = ..., version: _Optional[str] = ..., models: _Optional[_Iterable[_Union[ModelState, _Mapping]]] = ..., personal_runtimes: _Optional[_Iterable[_Union[RuntimeState, _Mapping]]] = ..., activity: _Optional[_Iterable[_Union[ActivityBucket, _Mapping]]] = ..., bucket_seconds: _Optional[int] = ..., window_seconds: _Optional[int] = ..., recent_requests: _Optional[_Iterable[_Union[RecentRequest, _Mapping]]] = ...) -> None: ...

class ModelState(_message.Message):
    __slots__ = ("model", "state", "running", "queued", "max_concurrency")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    model: _resolve_pb2.Model
    state: str
    running: int
    queued: int
    max_concurrency: int
    def __init__(self, model: _Optional[_Union[_resolve_pb2.Model, _Mapping]] = ..., state: _Optional[str] = ..., running: _Optional[int] = ..., queued: _Optional[int] = ..., max_concurrency: _Optional[int] = ...) -> None: ...

class RuntimeState(_message.Message):
    __slots__ = ("lattice_id", "account_id", "display_name", "status", "in_flight", "last_seen_time")
    LATTICE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    lattice_id: str
    account_id: str
    display_name: str
    status: str
    in_flight: int
    last_seen_time: _timestamp_pb2.Timestamp
    def __init__(self, lattice_id: _Optional[str] = ..., account_id: _Optional[str] = ..., display_name: _Optional[str] = ..., status: _Optional[str] = ..., in_flight: _Optional[int] = ..., last_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ActivityBucket(_message.Message):
    __slots__ = ("start_time", "requests", "failed_requests", "prompt_tokens", "completion_tokens", "mean_duration_ms", "mean_first_token_ms")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MEAN_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    requests: int
    failed_requests: int
    prompt_tokens: int
    completion_tokens: int
    mean_duration_ms: float
    mean_first_token_ms: float
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requests: _Optional[int] = ..., failed_requests: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., mean_duration_ms: _Optional[float] = ..., mean_first_token_ms: _Optional[float] = ...) -> None: ...

class RecentRequest(_message.Message):
    __slots__ = ("end_time", "request_id", "account_id", "model", "backend", "status", "duration_ms", "first_token_ms", "prompt_tokens", "completion_tokens")
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    end_time: _timestamp_pb2.Timestamp
    request_id: str
    account_id: str
    model: str
    backend: str
    status: str
    duration_ms: int
    first_token_ms: int
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., account_id: _Optional[str] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., status: _Optional[str] = ..., duration_ms: _Optional[int] = ..., first_token_ms: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...
