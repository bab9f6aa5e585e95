"""`ComputeClient`: chats, text completions, embeddings, resolution and personal runtimes over gRPC, on the
generated betterproto2 stubs."""

# A `timeout=` per call is the SDK idiom (httpx, openai): it bounds the call and its retries together,
# which an `asyncio.timeout` around the call could not tell the retry policy.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import builtins
import contextlib
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar, Unpack

from grpclib.client import Channel
from grpclib.encoding.proto import ProtoCodec
from grpclib.exceptions import GRPCError, StreamTerminatedError
from lattice_betterproto.lattice import v1 as pb

from lattice_client import _convert
from lattice_client._credentials import Credential
from lattice_client._errors import (
    DeadlineExceededError,
    LatticeError,
    UnavailableError,
    UntrustedCertificateError,
    make_error,
)
from lattice_client._retry import Attempts, RetryPolicy
from lattice_client._status import ErrorDetails, StatusDetailsCodec
from lattice_client._types import (
    PERSONAL_MODEL_PREFIX,
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
ChunkT = TypeVar("ChunkT")
DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT = 600.0


class _StreamMessage(Protocol):
    """What every server stream's messages have: a queue update, before any answer."""

    @property
    def queued(self) -> pb.QueueStatus | None: ...


MessageT = TypeVar("MessageT", bound=_StreamMessage)


class ComputeClient:
    """An async client of one Lattice gateway.

        compute = ComputeClient(target="127.0.0.1:50051", credential=ApiKey("sk_…"))
        completion = await compute.chat_complete("role:coder", messages=[{"role": "user", "content": "Hi!"}])

    `timeout` (seconds, None for none) bounds each call, retries included; `retry` is the policy for
    calls refused before their first token (`RetryPolicy.disabled()` turns it off; `retry=False` on a
    call does so for that call). The connection opens on first use, on the running event loop; use
    the client as an async context manager, or call `close()`, to release it.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        credential: Credential | None = None,
        tls: bool | ssl.SSLContext = False,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._host, self._port = _parse_target(target)
        self.target = target
        self._credential = credential
        self._tls = tls
        self._timeout = timeout
        self._retry = retry if retry is not None else RetryPolicy()
        self._channel: Channel | None = None
        self._channel_loop: asyncio.AbstractEventLoop | None = None
        self.personal_runtimes = PersonalRuntimes(self)

    def __repr__(self) -> str:
        return f"ComputeClient(target={self.target!r}, credential={self._credential!r})"

    async def __aenter__(self) -> ComputeClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._channel is not None:
            with contextlib.suppress(RuntimeError):  # its event loop may be closed already
                self._channel.close()
            self._channel = None

    # Chats

    async def chat_complete(
        self,
        model: str = "",
        *,
        messages: Sequence[MessageLike],
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        **options: Unpack[ChatOptions],
    ) -> ChatCompletion:
        """A whole answer from `model`: an id, an alias or an expression (`role:coder`, `a,b`,
        `lattice:personal:<id>`); empty means the gateway's default."""
        request = _convert.chat_request(model, messages, options)

        async def call(stub_timeout: float | None) -> pb.ChatResponse:
            return await pb.ChatServiceStub(self._channel_now(), metadata=self._metadata()).chat(
                request, timeout=stub_timeout
            )

        response = await self._call("Chat", call, timeout, retry)
        return _convert.completion_from_proto(response)

    def chat_stream(
        self,
        model: str = "",
        *,
        messages: Sequence[MessageLike],
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        on_queued: Callable[[QueueUpdate], None] | None = None,
        **options: Unpack[ChatOptions],
    ) -> ChatStream:
        """The answer as it is generated:

            async with compute.chat_stream("role:fast", messages=[...]) as stream:
                async for chunk in stream:
                    print(chunk.content, end="")

        The last chunk carries the finish reason, usage and resolution. A refusal before the first
        chunk is retried as `retry` allows; nothing is retried once a chunk has been yielded.
        `on_queued` is told when the request waits for a slot on a busy model (queue updates are not
        chunks, so a refusal after a wait can still be retried)."""
        request = _convert.chat_request(model, messages, options)

        def open_stream(stub_timeout: float | None) -> AsyncIterator[pb.StreamChatResponse]:
            return pb.ChatServiceStub(self._channel_now(), metadata=self._metadata()).stream_chat(
                request, timeout=stub_timeout
            )

        deadline, policy = self._deadline(timeout), self._policy(retry)
        chunks = self._stream("StreamChat", open_stream, _convert.chunk_from_proto, deadline, policy, on_queued)
        return ChatStream(chunks)

    async def chat_complete_for_personal_runtime(
        self,
        runtime: PersonalRuntime | str,
        *,
        messages: Sequence[MessageLike],
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        **options: Unpack[ChatOptions],
    ) -> ChatCompletion:
        """`chat_complete` on one of the account's personal runtimes (a record or its `lat_…` id)."""
        return await self.chat_complete(
            _personal_model(runtime), messages=messages, timeout=timeout, retry=retry, **options
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
    ) -> ChatStream:
        """`chat_stream` on one of the account's personal runtimes."""
        return self.chat_stream(
            _personal_model(runtime), messages=messages, timeout=timeout, retry=retry, on_queued=on_queued, **options
        )

    # Text completions

    async def complete(
        self,
        model: str = "",
        *,
        prompt: str,
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        **options: Unpack[CompletionOptions],
    ) -> TextCompletion:
        """The continuation of `prompt`, which goes to the model raw (no chat template), from a model with
        the `completions` capability (the gateway's llama.cpp models, OpenAI-compatible upstreams)."""
        request = _convert.complete_request(model, prompt, options)

        async def call(stub_timeout: float | None) -> pb.CompleteResponse:
            return await pb.CompletionServiceStub(self._channel_now(), metadata=self._metadata()).complete(
                request, timeout=stub_timeout
            )

        return _convert.text_completion_from_proto(await self._call("Complete", call, timeout, retry))

    def complete_stream(
        self,
        model: str = "",
        *,
        prompt: str,
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        on_queued: Callable[[QueueUpdate], None] | None = None,
        **options: Unpack[CompletionOptions],
    ) -> CompletionStream:
        """`complete`, as it is generated: `CompletionChunk`s of text, the last one with the finish reason,
        usage and resolution. Retried, closed and told of queues as `chat_stream` is."""
        request = _convert.complete_request(model, prompt, options)

        def open_stream(stub_timeout: float | None) -> AsyncIterator[pb.StreamCompleteResponse]:
            return pb.CompletionServiceStub(self._channel_now(), metadata=self._metadata()).stream_complete(
                request, timeout=stub_timeout
            )

        deadline, policy = self._deadline(timeout), self._policy(retry)
        chunks = self._stream(
            "StreamComplete", open_stream, _convert.completion_chunk_from_proto, deadline, policy, on_queued
        )
        return CompletionStream(chunks)

    # Models

    async def resolve(
        self,
        model: str = "",
        *,
        messages: Sequence[MessageLike] | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | bool = True,
        **options: Unpack[ChatOptions],
    ) -> Resolution:
        """Which model `model` picks and why, without running anything. With `messages` (and options
        such as `tools` or `max_tokens`), the request's needs constrain the choice as a chat's would."""
        chat = None
        if messages is not None or options:
            chat = _convert.chat_request(model, messages or (), options)
        request = pb.ResolveRequest(model=model, request=chat)

        async def call(stub_timeout: float | None) -> pb.ResolveResponse:
            return await pb.ResolveServiceStub(self._channel_now(), metadata=self._metadata()).resolve(
                request, timeout=stub_timeout
            )

        resolution = _convert.resolution_from_proto((await self._call("Resolve", call, timeout, retry)).resolution)
        if resolution is None:
            raise LatticeError("the gateway's answer carries no resolution", code="INTERNAL")
        return resolution

    async def embed(
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
        """A vector per input (a text, or token ids) from `model`, which needs the `embeddings` capability
        (the gateway's llama.cpp models, OpenAI-compatible upstreams' embedding models). `user` and
        `priority` are a chat's."""
        request = _convert.embed_request(model, inputs, dimensions, user, priority)

        async def call(stub_timeout: float | None) -> pb.EmbedResponse:
            return await pb.EmbeddingServiceStub(self._channel_now(), metadata=self._metadata()).embed(
                request, timeout=stub_timeout
            )

        return _convert.embeddings_from_proto(await self._call("Embed", call, timeout, retry))

    async def list_models(self, *, timeout: float | None = None) -> list[Model]:
        """Every model the gateway can run, in its stable order."""
        models: list[Model] = []
        page_token = ""
        while True:
            request = pb.ListModelsRequest(page_token=page_token)

            async def call(
                stub_timeout: float | None, request: pb.ListModelsRequest = request
            ) -> pb.ListModelsResponse:
                return await pb.ResolveServiceStub(self._channel_now(), metadata=self._metadata()).list_models(
                    request, timeout=stub_timeout
                )

            page = await self._call("ListModels", call, timeout, True)
            models += [_convert.model_from_proto(m) for m in page.models]
            if not (page_token := page.next_page_token):
                return models

    async def list_reachable_personal_runtimes(self, *, timeout: float | None = None) -> list[PersonalRuntime]:
        """The account's personal runtimes whose daemon is connected now."""
        return [r for r in await self.personal_runtimes.list(timeout=timeout) if r.reachable]

    # Plumbing

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return self._credential.metadata() if self._credential is not None else ()

    def _channel_now(self) -> Channel:
        """The channel of the running event loop (a client used from a new loop gets a new one)."""
        loop = asyncio.get_running_loop()
        if self._channel is None or self._channel_loop is not loop:
            self.close()
            ssl_context: ssl.SSLContext | bool | None = self._tls or None
            self._channel = Channel(
                self._host,
                self._port,
                ssl=ssl_context,
                codec=ProtoCodec(),
                status_details_codec=StatusDetailsCodec(),
            )
            self._channel_loop = loop
        return self._channel

    def _deadline(self, timeout: float | None) -> float | None:
        timeout = self._timeout if timeout is None else timeout
        return None if timeout is None else time.monotonic() + timeout

    def _policy(self, retry: RetryPolicy | bool) -> RetryPolicy:
        if isinstance(retry, RetryPolicy):
            return retry
        return self._retry if retry else RetryPolicy.disabled()

    async def _call(
        self,
        method: str,
        call: Callable[[float | None], Awaitable[T]],
        timeout: float | None,
        retry: RetryPolicy | bool,
    ) -> T:
        """One unary call, tried again as the policy allows."""
        deadline = self._deadline(timeout)
        attempts = Attempts(self._policy(retry), method, deadline)
        while True:
            try:
                with self._errors_mapped():
                    return await call(_remaining(deadline))
            except LatticeError as error:
                delay = attempts.delay_before_retry(error)
                if delay is None:
                    raise
            await asyncio.sleep(delay)

    async def _stream(
        self,
        method: str,
        open_stream: Callable[[float | None], AsyncIterator[MessageT]],
        chunk_of: Callable[[MessageT], ChunkT | None],
        deadline: float | None,
        policy: RetryPolicy,
        on_queued: Callable[[QueueUpdate], None] | None,
    ) -> AsyncGenerator[ChunkT, None]:
        """A server stream's chunks (`chunk_of` each message that is not a queue update), opened again as
        `policy` allows until the first chunk is yielded."""
        attempts = Attempts(policy, method, deadline)
        while True:
            yielded = False
            responses = open_stream(_remaining(deadline))
            try:
                with self._errors_mapped():
                    async for message in responses:
                        if message.queued is not None:
                            if on_queued is not None:
                                on_queued(_convert.queue_update_from_proto(message.queued))
                            continue
                        chunk = chunk_of(message)
                        if chunk is not None:
                            yielded = True
                            yield chunk
                return
            except LatticeError as error:
                delay = None if yielded else attempts.delay_before_retry(error)
                if delay is None:
                    raise
            finally:
                await responses.aclose()  # type: ignore[attr-defined]  # an async generator, typed as AsyncIterator
            await asyncio.sleep(delay)

    @contextlib.contextmanager
    def _errors_mapped(self) -> Iterator[None]:
        """grpclib's and the socket's failures → LatticeError subclasses (the cause kept)."""
        try:
            yield
        except GRPCError as error:
            details = error.details if isinstance(error.details, ErrorDetails) else ErrorDetails()
            raise make_error(
                error.status.name,
                error.message or error.status.name.lower().replace("_", " "),
                reason=details.reason,
                metadata=details.metadata,
                retry_delay=details.retry_delay,
                domain=details.domain,
            ) from error
        except StreamTerminatedError as error:
            raise UnavailableError(f"the connection to the gateway at {self.target} broke: {error}") from error
        except TimeoutError as error:  # grpclib's deadline; before OSError, of which it is a subclass
            raise DeadlineExceededError("the call's timeout ran out") from error
        except ssl.SSLCertVerificationError as error:  # an OSError too, but no retry can make it pass
            raise UntrustedCertificateError(
                f"the gateway at {self.target} presented a certificate this client does not trust: "
                f"{error.verify_message} (pass tls=ssl.create_default_context(cafile=...) to trust its authority)"
            ) from error
        except OSError as error:
            raise UnavailableError(f"cannot reach the gateway at {self.target}: {error}") from error


class ChunkStream(Generic[ChunkT]):
    """An async iterator of chunks; also an async context manager that ends the call on exit (breaking
    out of the loop early then stops the generation at once)."""

    def __init__(self, chunks: AsyncGenerator[ChunkT, None]) -> None:
        self._chunks = chunks

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ChunkT:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        await self._chunks.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()


class ChatStream(ChunkStream[ChatChunk]):
    """A chat's `ChatChunk`s (`chat_stream`)."""


class CompletionStream(ChunkStream[CompletionChunk]):
    """A text completion's `CompletionChunk`s (`complete_stream`)."""


class PersonalRuntimes:
    """The account's personal runtimes: `compute.personal_runtimes.create(…)`, `.list()`, `.get(…)`,
    `.revoke(…)`, `.create_bootstrap_token(…)`. Reads are retried like chats; changes never are."""

    def __init__(self, client: ComputeClient) -> None:
        self._client = client

    def _stub(self) -> pb.PersonalRuntimeServiceStub:
        return pb.PersonalRuntimeServiceStub(self._client._channel_now(), metadata=self._client._metadata())

    async def create(
        self,
        display_name: str,
        *,
        execution_backend: ExecutionBackend | str = "local-model",
        timeout: float | None = None,
    ) -> PersonalRuntime:
        """A new runtime record, `unpaired` until a daemon redeems one of its bootstrap tokens."""
        request = pb.CreatePersonalRuntimeRequest(display_name=display_name, execution_backend=execution_backend)

        async def call(stub_timeout: float | None) -> pb.CreatePersonalRuntimeResponse:
            return await self._stub().create_personal_runtime(request, timeout=stub_timeout)

        return _convert.runtime_from_proto((await self._client._call("Create", call, timeout, False)).runtime)

    async def list(self, *, page_size: int = 0, timeout: float | None = None) -> builtins.list[PersonalRuntime]:
        """Every runtime of the account, newest first, with its live status (all pages)."""
        runtimes: builtins.list[PersonalRuntime] = []
        page_token = ""
        while True:
            request = pb.ListPersonalRuntimesRequest(page_size=page_size, page_token=page_token)

            async def call(
                stub_timeout: float | None, request: pb.ListPersonalRuntimesRequest = request
            ) -> pb.ListPersonalRuntimesResponse:
                return await self._stub().list_personal_runtimes(request, timeout=stub_timeout)

            page = await self._client._call("List", call, timeout, True)
            runtimes += [_convert.runtime_from_proto(r) for r in page.runtimes]
            if not (page_token := page.next_page_token):
                return runtimes

    async def get(self, runtime: PersonalRuntime | str, *, timeout: float | None = None) -> PersonalRuntime:
        request = pb.GetPersonalRuntimeRequest(lattice_id=_lattice_id(runtime))

        async def call(stub_timeout: float | None) -> pb.GetPersonalRuntimeResponse:
            return await self._stub().get_personal_runtime(request, timeout=stub_timeout)

        return _convert.runtime_from_proto((await self._client._call("Get", call, timeout, True)).runtime)

    async def revoke(self, runtime: PersonalRuntime | str, *, timeout: float | None = None) -> PersonalRuntime:
        """Revokes the runtime: its daemon is disconnected and refused, chats and tokens too. The
        record stays, `revoked`."""
        request = pb.DeletePersonalRuntimeRequest(lattice_id=_lattice_id(runtime))

        async def call(stub_timeout: float | None) -> pb.DeletePersonalRuntimeResponse:
            return await self._stub().delete_personal_runtime(request, timeout=stub_timeout)

        return _convert.runtime_from_proto((await self._client._call("Revoke", call, timeout, False)).runtime)

    async def create_bootstrap_token(
        self, runtime: PersonalRuntime | str, *, ttl_seconds: int = 0, timeout: float | None = None
    ) -> BootstrapToken:
        """A one-time token that pairs a daemon with the runtime (`lattice-ctl relay connect`);
        `ttl_seconds` from 60 to 3600, 0 for the gateway's default (600)."""
        request = pb.CreateBootstrapTokenRequest(lattice_id=_lattice_id(runtime), ttl_seconds=ttl_seconds)

        async def call(stub_timeout: float | None) -> pb.CreateBootstrapTokenResponse:
            return await self._stub().create_bootstrap_token(request, timeout=stub_timeout)

        minted = await self._client._call("CreateBootstrapToken", call, timeout, False)
        return BootstrapToken(minted.lattice_id, minted.bootstrap_token, minted.expires_at, minted.command)


def _lattice_id(runtime: PersonalRuntime | str) -> str:
    return runtime.lattice_id if isinstance(runtime, PersonalRuntime) else runtime.removeprefix(PERSONAL_MODEL_PREFIX)


def _personal_model(runtime: PersonalRuntime | str) -> str:
    return PERSONAL_MODEL_PREFIX + _lattice_id(runtime)


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DeadlineExceededError("the call's timeout ran out")
    return remaining


def _parse_target(target: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port`."""
    host, colon, port = target.rpartition(":")
    if not colon or not port.isdigit() or not host:
        raise ValueError(f"target {target!r} is not host:port")
    return host.strip("[]"), int(port)
