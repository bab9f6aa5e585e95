import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from lattice.v1 import chat_pb2 as _chat_pb2
from lattice.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConnectRequest(_message.Message):
    __slots__ = ("hello", "heartbeat", "update")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    hello: RelayHello
    heartbeat: RelayHeartbeat
    update: WorkUpdate
    def __init__(self, hello: _Optional[_Union[RelayHello, _Mapping]] = ..., heartbeat: _Optional[_Union[RelayHeartbeat, _Mapping]] = ..., update: _Optional[_Union[WorkUpdate, _Mapping]] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("welcome", "heartbeat", "work", "cancel")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    WORK_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    welcome: RelayWelcome
    heartbeat: RelayHeartbeat
    work: WorkItem
    cancel: WorkCancel
    def __init__(self, welcome: _Optional[_Union[RelayWelcome, _Mapping]] = ..., heartbeat: _Optional[_Union[RelayHeartbeat, _Mapping]] = ..., work: _Optional[_Union[WorkItem, _Mapping]] = ..., cancel: _Optional[_Union[WorkCancel, _Mapping]] = ...) -> None: ...

class RelayHello(_message.Message):
    __slots__ = ("lattice_id", "daemon_version")
    LATTICE_ID_FIELD_NUMBER: _ClassVar[int]
    DAEMON_VERSION_FIELD_NUMBER: _ClassVar[int]
    lattice_id: str
    daemon_version: str
    def __init__(self, lattice_id: _Optional[str] = ..., daemon_version: _Optional[str] = ...) -> None: ...

class RelayWelcome(_message.Message):
    __slots__ = ("lattice_id", "heartbeat_seconds")
    LATTICE_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    lattice_id: str
    heartbeat_seconds: int
    def __init__(self, lattice_id: _Optional[str] = ..., heartbeat_seconds: _Optional[int] = ...) -> None: ...

class RelayHeartbeat(_message.Message):
    __slots__ = ("send_time",)
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    send_time: _timestamp_pb2.Timestamp
    def __init__(self, send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WorkItem(_message.Message):
    __slots__ = ("work_id", "sealed_payload")
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    SEALED_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    work_id: str
    sealed_payload: bytes
    def __init__(self, work_id: _Optional[str] = ..., sealed_payload: _Optional[bytes] = ...) -> None: ...

class WorkPayload(_message.Message):
    __slots__ = ("lattice_id", "work_id", "request", "request_id", "trace_context", "answer_key")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LATTICE_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_KEY_FIELD_NUMBER: _ClassVar[int]
    lattice_id: str
    work_id: str
    request: _chat_pb2.ChatRequest
    request_id: str
    trace_context: _containers.ScalarMap[str, str]
    answer_key: bytes
    def __init__(self, lattice_id: _Optional[str] = ..., work_id: _Optional[str] = ..., request: _Optional[_Union[_chat_pb2.ChatRequest, _Mapping]] = ..., request_id: _Optional[str] = ..., trace_context: _Optional[_Mapping[str, str]] = ..., answer_key: _Optional[bytes] = ...) -> None: ...

class WorkCancel(_message.Message):
    __slots__ = ("work_id", "reason")
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    work_id: str
    reason: str
    def __init__(self, work_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WorkUpdate(_message.Message):
    __slots__ = ("work_id", "sealed_event")
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    SEALED_EVENT_FIELD_NUMBER: _ClassVar[int]
    work_id: str
    sealed_event: bytes
    def __init__(self, work_id: _Optional[str] = ..., sealed_event: _Optional[bytes] = ...) -> None: ...

class WorkEvent(_message.Message):
    __slots__ = ("lattice_id", "work_id", "delta", "finish", "failure", "chat_delta")
    LATTICE_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    FINISH_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    CHAT_DELTA_FIELD_NUMBER: _ClassVar[int]
    lattice_id: str
    work_id: str
    delta: str
    finish: WorkFinish
    failure: WorkFailure
    chat_delta: _chat_pb2.ChatDelta
    def __init__(self, lattice_id: _Optional[str] = ..., work_id: _Optional[str] = ..., delta: _Optional[str] = ..., finish: _Optional[_Union[WorkFinish, _Mapping]] = ..., failure: _Optional[_Union[WorkFailure, _Mapping]] = ..., chat_delta: _Optional[_Union[_chat_pb2.ChatDelta, _Mapping]] = ...) -> None: ...

class WorkFinish(_message.Message):
    __slots__ = ("finish_reason", "usage", "stop_sequence")
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    STOP_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    finish_reason: _common_pb2.FinishReason
    usage: _common_pb2.Usage
    stop_sequence: str
    def __init__(self, finish_reason: _Optional[_Union[_common_pb2.FinishReason, str]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., stop_sequence: _Optional[str] = ...) -> None: ...

class WorkFailure(_message.Message):
    __slots__ = ("reason", "message")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    message: str
    def __init__(self, reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...
