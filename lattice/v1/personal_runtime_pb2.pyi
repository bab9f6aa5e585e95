import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PersonalRuntime(_message.Message):
    __slots__ = ("lattice_id", "account_id", "display_name", "execution_backend", "status", "created_at", "updated_at")
    LATTICE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_BACKEND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    lattice_id: str
    account_id: str
    display_name: str
    execution_backend: str
    status: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, lattice_id: _Optional[str] = ..., account_id: _Optional[str] = ..., display_name: _Optional[str] = ..., execution_backend: _Optional[str] = ..., status: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreatePersonalRuntimeRequest(_message.Message):
    __slots__ = ("display_name", "execution_backend")
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_BACKEND_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    execution_backend: str
    def __init__(self, display_name: _Optional[str] = ..., execution_backend: _Optional[str] = ...) -> None: ...

class CreatePersonalRuntimeResponse(_message.Message):
    __slots__ = ("runtime",)
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    runtime: PersonalRuntime
    def __init__(self, runtime: _Optional[_Union[PersonalRuntime, _Mapping]] = ...) -> None: ...

class ListPersonalRuntimesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPersonalRuntimesResponse(_message.Message):
    __slots__ = ("runtimes", "next_page_token")
    RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runtimes: _containers.RepeatedCompositeFieldContainer[PersonalRuntime]
    next_page_token: str
    def __init__(self, runtimes: _Optional[_Iterable[_Union[PersonalRuntime, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetPersonalRuntimeRequest(_message.Message):
    __slots__ = ("lattice_id",)
    LATTICE_ID_FIELD_NUMBER: _ClassVar[int]
    lattice_id: str
    def __init__(self, lattice_id: _Optional[str] = ...) -> None: ...

class GetPersonalRuntimeResponse(_message.Message):
    __slots__ = ("runtime",)
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    runtime: PersonalRuntime
    def __init__(self, runtime: _Optional[_Union[PersonalRuntime, _Mapping]] = ...) -> None: ...

class DeletePersonalRuntimeRequest(_message.Message):
    __slots__ = ("lattice_id",)
    LATTICE_ID_FIELD_NUMBER: _ClassVar[int]
    lattice_id: str
    def __init__(self, lattice_id: _Optional[str] = ...) -> None: ...

class DeletePersonalRuntimeResponse(_message.Message):
    __slots__ = ("runtime",)
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    runtime: PersonalRuntime
    def __init__(self, runtime: _Optional[_Union[PersonalRuntime, _Mapping]] = ...) -> None: ...

class CreateBootstrapTokenRequest(_message.Message):
    __slots__ = ("lattice_id", "ttl_seconds")
    LATTICE_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    lattice_id: str
    ttl_seconds: int
    def __init__(self, lattice_id: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class CreateBootstrapTokenResponse(_message.Message):
    __slots__ = ("lattice_id", "bootstrap_token", "expires_at", "command")
    LATTICE_ID_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    lattice_id: str
    bootstrap_token: str
    expires_at: _timestamp_pb2.Timestamp
    command: str
    def __init__(self, lattice_id: _Optional[str] = ..., bootstrap_token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., command: _Optional[str] = ...) -> None: ...

class RedeemBootstrapTokenRequest(_message.Message):
    __slots__ = ("bootstrap_token", "public_key")
    BOOTSTRAP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    bootstrap_token: str
    public_key: bytes
    def __init__(self, bootstrap_token: _Optional[str] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class RedeemBootstrapTokenResponse(_message.Message):
    __slots__ = ("relay_endpoint", "lattice_id", "account_id", "display_name", "daemon_credential", "execution_backend", "gateway_public_key", "heartbeat_seconds")
    RELAY_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    LATTICE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DAEMON_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_BACKEND_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    relay_endpoint: str
    lattice_id: str
    account_id: str
    display_name: str
    daemon_credential: str
    execution_backend: str
    gateway_public_key: bytes
    heartbeat_seconds: int
    def __init__(self, relay_endpoint: _Optional[str] = ..., lattice_id: _Optional[str] = ..., account_id: _Optional[str] = ..., display_name: _Optional[str] = ..., daemon_credential: _Optional[str] = ..., execution_backend: _Optional[str] = ..., gateway_public_key: _Optional[bytes] = ..., heartbeat_seconds: _Optional[int] = ...) -> None: ...
