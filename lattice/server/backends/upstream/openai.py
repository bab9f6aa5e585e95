"""Any OpenAI-compatible server (mlx_lm.server, llama.cpp, vLLM, Ollama, LM Studio) as a backend.

One pooled async HTTP client per upstream; answers are always streamed from the
upstream and passed through as they arrive; closing the stream closes the
upstream request. The model list is re-read in the background, which doubles
as the health check: an upstream that fails it is marked unavailable and the
resolver skips its models until it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Callable

import httpx

from lattice.config import ModelProfile, Upstream
from lattice.errors import BackendUnavailable
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.backends.upstream.http_errors import from_status
from lattice.server.backends.upstream.openai_wire import StreamState, request_body
from lattice.server.chat import ChatRequest, Finish, FinishReason, GenerationEvent

log = logging.getLogger(__name__)

ModelsCallback = Callable[[list[str]], None]


class OpenAIUpstream(Backend):
    name = "openai"

    def __init__(self, upstream: Upstream, on_models: ModelsCallback) -> None:
        self._upstream = upstream
        self._on_models = on_models
        headers = {"authorization": f"Bearer {upstream.api_key.get_secret_value()}"} if upstream.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=upstream.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(upstream.timeout_seconds, connect=upstream.connect_timeout_seconds),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=32),
        )
        self._healthy = False
        self._refresher: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        return self._healthy

    async def start(self) -> None:
        await self.refresh()
        self._refresher = asyncio.create_task(self._refresh_forever(), name=f"refresh {self._upstream.name}")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self._client.aclose()

    async def refresh(self) -> None:
        """Re-reads the model list; its success is the upstream's health.

        With `models` configured, any HTTP answer counts as healthy: some servers
        (mlx_lm.server without a Hugging Face cache) cannot list their models.
        """
        try:
            response = await self._client.get("models", timeout=self._upstream.connect_timeout_seconds * 2)
        except httpx.HTTPError as error:
            self._set_health(False, f"{type(error).__name__}: {error}")
            return
        try:
            response.raise_for_status()
            ids = [str(m["id"]) for m in response.json().get("data", []) if "id" in m]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as error:
            if not self._upstream.models:
                self._set_health(False, f"its model list is unreadable: {error}")
                return
            ids = []
        self._set_health(True, f"{len(self._upstream.models or ids)} models")
        self._on_models(list(self._upstream.models) or ids)

    def _set_health(self, healthy: bool, detail: str) -> None:
        if healthy != self._healthy:
            log.info("upstream %s is %s: %s", self._upstream.name, "healthy" if healthy else "unhealthy", detail)
        self._healthy = healthy

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._upstream.refresh_seconds)
            await self.refresh()

    async def stream(
        self, model: ModelProfile, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        body = request_body(model.upstream_model or model.id, request)
        if "max_tokens" not in body:
            body["max_tokens"] = limits.max_tokens_ceiling
        state = StreamState()
        try:
            async with self._client.stream("POST", "chat/completions", json=body) as response:
                if response.status_code != 200:
                    text = (await response.aread()).decode(errors="replace")
                    raise from_status(self._upstream.name, response.status_code, response.headers, text)
                async for line in response.aiter_lines():
                    payload = _sse_data(line)
                    if payload is None:
                        continue
                    if payload == "[DONE]":
                        break
                    delta = state.read_chunk(json.loads(payload))
                    if delta is not None:
                        yield delta
        except httpx.HTTPError as error:
            self._healthy = False  # skip it until the next successful refresh
            raise BackendUnavailable(
                f"upstream {self._upstream.name!r} failed: {type(error).__name__}: {error}"
            ) from error
        except json.JSONDecodeError as error:
            raise BackendUnavailable(f"upstream {self._upstream.name!r} sent a malformed chunk: {error}") from error
        prompt_estimate = request.text_length // 4
        yield Finish(state.finish_reason or FinishReason.STOP, state.final_usage(prompt_estimate))


def _sse_data(line: str) -> str | None:
    """The payload of an SSE `data:` line; None for comments, events and blank lines."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip()
