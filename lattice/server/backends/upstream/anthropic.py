"""Anthropic's Messages API as a backend, through the official `anthropic` SDK.

One SDK client per upstream, with the SDK's own retries off: the gateway falls
back to another candidate itself, and a retry here would hide the failure from
it. Answers are always streamed and passed on as the events arrive; closing the
stream closes the upstream response. The model list is re-read in the
background, which doubles as the health check (as for OpenAI-compatible
upstreams).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import anthropic
import httpx2  # the SDK's HTTP client: a dropped connection mid-stream surfaces as its error, unwrapped
from pydantic import SecretStr

from lattice.config import ModelProfile, Upstream
from lattice.errors import BackendUnavailable, LatticeError
from lattice.server.backends.base import GenerationLimits
from lattice.server.backends.upstream.anthropic_wire import StreamState, request_kwargs
from lattice.server.backends.upstream.discovery import DiscoveringUpstream, ModelsCallback, UpstreamDown
from lattice.server.backends.upstream.http_errors import from_status
from lattice.server.chat import ChatRequest, GenerationEvent


class AnthropicUpstream(DiscoveringUpstream):
    name = "anthropic"

    def __init__(self, upstream: Upstream, api_key: SecretStr | None, on_models: ModelsCallback) -> None:
        super().__init__(upstream, on_models)
        key = upstream.api_key or api_key
        self._client = anthropic.AsyncAnthropic(
            base_url=upstream.base_url,
            api_key=key.get_secret_value() if key is not None else None,
            max_retries=0,
            timeout=anthropic.Timeout(upstream.timeout_seconds, connect=upstream.connect_timeout_seconds),
        )

    async def fetch_model_ids(self) -> list[str]:
        """Anthropic can always list its models, so the list decides health even with `models` configured."""
        try:
            pages = self._client.models.list(timeout=self._upstream.connect_timeout_seconds * 2)
            return [model.id async for model in pages]
        except anthropic.AnthropicError as error:
            raise UpstreamDown(str(error)) from error

    async def close_client(self) -> None:
        await self._client.close()

    async def stream(
        self, model: ModelProfile, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        kwargs = request_kwargs(model.upstream_model or model.id, request, limits.max_tokens_ceiling)
        try:
            events = await self._client.messages.create(**kwargs, stream=True)
        except anthropic.AnthropicError as error:
            raise self._lattice_error(error) from error
        state = StreamState()
        try:
            async with events:  # closes the HTTP response however this generator ends, cancellation included
                async for event in events:
                    delta = state.read_event(event)
                    if delta is not None:
                        yield delta
        except (anthropic.AnthropicError, httpx2.HTTPError) as error:
            # The stream had begun (an `event: error`, a dropped connection): the caller can only be told it is gone.
            if isinstance(error, httpx2.TransportError):
                self.mark_unhealthy(str(error))  # the connection itself failed
            raise BackendUnavailable(
                f"upstream {self._upstream.name!r} failed mid-stream: {type(error).__name__}: {error}"
            ) from error
        yield state.finish()

    def _lattice_error(self, error: anthropic.AnthropicError) -> LatticeError:
        """The one place an SDK failure before the stream starts becomes the Lattice error the gateway acts on."""
        if isinstance(error, anthropic.APIStatusError):
            # 429 → ResourceExhausted (Retry-After), 401/403 → auth failed, 404 → model gone, other 4xx → rejected,
            # 5xx and 529 overloaded → unavailable: the same rules as every HTTP upstream.
            detail = f"{error.type or 'error'}: {error.api_message or error.message}"
            return from_status(self._upstream.name, error.status_code, error.response.headers, detail)
        if isinstance(error, anthropic.APIConnectionError):  # timeouts included
            self.mark_unhealthy(str(error))
        return BackendUnavailable(f"upstream {self._upstream.name!r} failed: {type(error).__name__}: {error}")
