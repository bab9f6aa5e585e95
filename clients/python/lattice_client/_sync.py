"""`SyncComputeClient`: the same calls for code without an event loop, run on a private one in a thread."""

from __future__ import annotations

import asyncio
import builtins
import ssl
import threading
from collections.abc import Callable, Coroutine, Generator, Sequence
from types import TracebackType
from typing import Any, TypeVar, Unpack

from lattice_client._client import DEFAULT_TARGET, DEFAULT_TIMEOUT, ChunkStream, ComputeClient
from lattice_client._credentials import Credential
from lattice_client._retry import RetryPolicy
from lattice_client._types import (
    BootstrapToken,
    ChatChunk,
    ChatCompletion,
    ChatOptions,
    CompletionChunk,
    CompletionOptions,
    Embeddings,
    ExecutionBackend,
    MessageLike,
    Model,
    PersonalRuntime,
    QueueUpdate,
    Resolution,
    TextCompletion,
)

T = TypeVar("T")


class SyncComputeClient:
    """`ComputeClient` for synchronous code: each call blocks until its answer; `chat_stream` and
    `complete_stream` are plain iterators. Its own event loop runs in a daemon thread until `close()`
    (or the `with` block)."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        credential: Credential | None = None,
        tls: bool | ssl.SSLContext = False,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._client = ComputeClient(target, credential=credential, tls=tls, timeout=timeout, retry=retry)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lattice-client", daemon=True)
        self._thread.start()
        self.personal_runtimes = SyncPersonalRuntimes(self)

    def __repr__(self) -> str:
        return "Sync" + repr(self._client)

    def __enter__(self) -> SyncComputeClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return

        async def release() -> None:
            self._client.close()

        self._run(release())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            call.close()
            raise RuntimeError("the client is closed")
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()

    def chat_complete(
        self,
        model: str = "",
        *,
        messages: Sequence[MessageLike],
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        **options: Unpack[ChatOptions],
    ) -> ChatCompletion:
        return self._run(self._client.chat_complete(model, messages=messages, timeout=timeout, retry=retry, **options))

    def chat_stream(
        self,
        model: str = "",
        *,
        messages: Sequence[MessageLike],
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        on_queued: Callable[[QueueUpdate], None] | None = None,
        **options: Unpack[ChatOptions],
    ) -> Generator[ChatChunk, None, None]:
        """The chunks as they come; `close()` on the generator (or dropping it) ends the call early."""
        return self._chunks(
            self._client.chat_stream(
                model, messages=messages, timeout=timeout, retry=retry, on_queued=on_queued, **options
            )
        )

    def chat_complete_for_personal_runtime(
        self,
        runtime: PersonalRuntime | str,
        *,
        messages: Sequence[MessageLike],
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        **options: Unpack[ChatOptions],
    ) -> ChatCompletion:
        return self._run(
            self._client.chat_complete_for_personal_runtime(
                runtime, messages=messages, timeout=timeout, retry=retry, **options
            )
        )

    def chat_stream_for_personal_runtime(
        self,
        runtime: PersonalRuntime | str,
        *,
        messages: Sequence[MessageLike],
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        on_queued: Callable[[QueueUpdate], None] | None = None,
        **options: Unpack[ChatOptions],
    ) -> Generator[ChatChunk, None, None]:
        return self._chunks(
            self._client.chat_stream_for_personal_runtime(
                runtime, messages=messages, timeout=timeout, retry=retry, on_queued=on_queued, **options
            )
        )

    def complete(
        self,
        model: str = "",
        *,
        prompt: str,
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        **options: Unpack[CompletionOptions],
    ) -> TextCompletion:
        return self._run(self._client.complete(model, prompt=prompt, timeout=timeout, retry=retry, **options))

    def complete_stream(
        self,
        model: str = "",
        *,
        prompt: str,
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        on_queued: Callable[[QueueUpdate], None] | None = None,
        **options: Unpack[CompletionOptions],
    ) -> Generator[CompletionChunk, None, None]:
        """The chunks as they come, ended early as `chat_stream`'s are."""
        return self._chunks(
            self._client.complete_stream(
                model, prompt=prompt, timeout=timeout, retry=retry, on_queued=on_queued, **options
            )
        )

    def resolve(
        self,
        model: str = "",
        *,
        messages: Sequence[MessageLike] | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        **options: Unpack[ChatOptions],
    ) -> Resolution:
        return self._run(self._client.resolve(model, messages=messages, timeout=timeout, retry=retry, **options))

    def embed(
        self,
        model: str = "",
        *,
        inputs: Sequence[str | Sequence[int]],
        dimensions: int | None = None,
        user: str = "",
        priority: int = 0,
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
    ) -> Embeddings:
        return self._run(
            self._client.embed(
                model, inputs=inputs, dimensions=dimensions, user=user, priority=priority, timeout=timeout, retry=retry
            )
        )

    def list_models(self, *, timeout: float | None = None) -> list[Model]:
        return self._run(self._client.list_models(timeout=timeout))

    def list_reachable_personal_runtimes(self, *, timeout: float | None = None) -> list[PersonalRuntime]:
        return self._run(self._client.list_reachable_personal_runtimes(timeout=timeout))

    def _chunks(self, stream: ChunkStream[T]) -> Generator[T, None, None]:
        try:
            while True:
                try:
                    chunk = self._run(stream.__anext__())
                except StopAsyncIteration:
                    return
                yield chunk
        finally:
            if not self._loop.is_closed():  # else the call ended with the client
                self._run(stream.aclose())


class SyncPersonalRuntimes:
    """`PersonalRuntimes`, blocking."""

    def __init__(self, client: SyncComputeClient) -> None:
        self._client = client
        self._runtimes = client._client.personal_runtimes

    def create(
        self,
        display_name: str,
        *,
        execution_backend: ExecutionBackend | str = "local-model",
        timeout: float | None = None,
    ) -> PersonalRuntime:
        return self._client._run(
            self._runtimes.create(display_name, execution_backend=execution_backend, timeout=timeout)
        )

    def list(self, *, page_size: int = 0, timeout: float | None = None) -> builtins.list[PersonalRuntime]:
        return self._client._run(self._runtimes.list(page_size=page_size, timeout=timeout))

    def get(self, runtime: PersonalRuntime | str, *, timeout: float | None = None) -> PersonalRuntime:
        return self._client._run(self._runtimes.get(runtime, timeout=timeout))

    def revoke(self, runtime: PersonalRuntime | str, *, timeout: float | None = None) -> PersonalRuntime:
        return self._client._run(self._runtimes.revoke(runtime, timeout=timeout))

    def create_bootstrap_token(
        self, runtime: PersonalRuntime | str, *, ttl_seconds: int = 0, timeout: float | None = None
    ) -> BootstrapToken:
        return self._client._run(
            self._runtimes.create_bootstrap_token(runtime, ttl_seconds=ttl_seconds, timeout=timeout)
        )
