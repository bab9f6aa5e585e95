"""Any OpenAI-compatible server (mlx_lm.server, llama.cpp, vLLM, Ollama, LM Studio) as a backend.

One pooled async HTTP client per upstream; answers are always streamed from the
upstream and passed through as they arrive; closing the stream closes the
upstream request. A stream is read to its end, past `[DONE]`, so its connection
goes back to the pool: one left unread is closed, and the next request pays for
a new TCP connection (~0.4 ms of gateway CPU on loopback). The client keeps no
cookies: it is shared by every caller, and one caller's cookie must not ride on
another's request. The model list is re-read in the background, which doubles
as the health check: an upstream that fails it is marked unavailable and the
resolver skips its models until it answers again.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import urllib.request
from collections.abc import AsyncGenerator

import httpx

from lattice.config import ModelProfile, Upstream
from lattice.errors import BackendUnavailable
from lattice.server.backends.base import GenerationLimits
from lattice.server.backends.upstream.discovery import DiscoveringUpstream, ModelsCallback, UpstreamDown
from lattice.server.backends.upstream.http_errors import from_status
from lattice.server.backends.upstream.openai_wire import StreamState, request_body
from lattice.server.chat import ChatRequest, Finish, FinishReason, GenerationEvent


class OpenAIUpstream(DiscoveringUpstream):
    name = "openai"

    def __init__(self, upstream: Upstream, on_models: ModelsCallback) -> None:
        super().__init__(upstream, on_models)
        headers = {"authorization": f"Bearer {upstream.api_key.get_secret_value()}"} if upstream.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=upstream.base_url.rstrip("/") + "/",
            headers=headers,
            cookies=_NoCookies(),
            timeout=httpx.Timeout(upstream.timeout_seconds, connect=upstream.connect_timeout_seconds),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=32),
        )
        # Parsed once: a relative path would be parsed and joined to base_url on every request.
        self._completions_url = self._client.base_url.join("chat/completions")

    async def fetch_model_ids(self) -> list[str]:
        """GET /models. With `models` configured, any HTTP answer counts as up: some servers
        (mlx_lm.server without a Hugging Face cache) cannot list their models."""
        try:
            response = await self._client.get("models", timeout=self._upstream.connect_timeout_seconds * 2)
        except httpx.HTTPError as error:
            raise UpstreamDown(f"{type(error).__name__}: {error}") from error
        try:
            response.raise_for_status()
            return [str(m["id"]) for m in response.json().get("data", []) if "id" in m]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as error:
            if self._upstream.models:
                return []
            raise UpstreamDown(f"its model list is unreadable: {error}") from error

    async def close_client(self) -> None:
        await self._client.aclose()

    async def stream(
        self, model: ModelProfile, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        body = request_body(model.upstream_model or model.id, request)
        if "max_tokens" not in body:
            body["max_tokens"] = limits.max_tokens_ceiling
        state = StreamState()
        done = False
        try:
            async with self._client.stream("POST", self._completions_url, json=body) as response:
                if response.status_code != 200:
                    text = (await response.aread()).decode(errors="replace")
                    raise from_status(self._upstream.name, response.status_code, response.headers, text)
                async for line in response.aiter_lines():
                    payload = _sse_data(line)
                    if payload is None or done:
                        continue  # after [DONE], read on to the end of the body so the connection is reused
                    if payload == "[DONE]":
                        done = True
                        continue
                    delta = state.read_chunk(json.loads(payload))
                    if delta is not None:
                        yield delta
        except httpx.HTTPError as error:
            self.mark_unhealthy(str(error))
            raise BackendUnavailable(
                f"upstream {self._upstream.name!r} failed: {type(error).__name__}: {error}"
            ) from error
        except json.JSONDecodeError as error:
            raise BackendUnavailable(f"upstream {self._upstream.name!r} sent a malformed chunk: {error}") from error
        yield Finish(state.finish_reason or FinishReason.STOP, state.final_usage(request.estimated_prompt_tokens))


class _NoCookies(http.cookiejar.CookieJar):
    """A jar that stores nothing and sends nothing."""

    def extract_cookies(self, response: http.client.HTTPResponse, request: urllib.request.Request) -> None:
        pass

    def add_cookie_header(self, request: urllib.request.Request) -> None:
        pass


def _sse_data(line: str) -> str | None:
    """The payload of an SSE `data:` line; None for comments, events and blank lines."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip()
