"""Any OpenAI-compatible server (mlx_lm.server, llama.cpp, vLLM, Ollama, LM Studio) as a backend: chat, text
completions (a raw prompt, `/completions`) and embeddings (`/embeddings`).

One pooled aiohttp session per upstream; answers are always streamed from the
upstream and passed through as they arrive; closing the stream closes the
upstream request. aiohttp rather than httpx: its C parser and plain stream
reader cost about half the CPU per proxied answer (bench/README.md, "After
profiling"), and a read hands over everything that has arrived, so the deltas
that came together go on as one message (`chat.merged`). A stream is read to
its end, past `[DONE]`, so its connection goes back to the pool: one left
unread is closed, and the next request pays for a new TCP connection. The
session keeps no cookies: it is shared by every caller, and one caller's cookie
must not ride on another's request. The proxy variables (`HTTPS_PROXY`,
`NO_PROXY`, ...) are read once, when the backend is made: aiohttp's own
`trust_env` would look for a `.netrc` on a thread for every request. The model
list is re-read in the background, which doubles as the health check: an
upstream that fails it is marked unavailable and the resolver skips its models
until it answers again.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp

from lattice.config import ModelProfile, Upstream
from lattice.errors import BackendUnavailable
from lattice.server.backends.base import GenerationLimits
from lattice.server.backends.upstream.discovery import DiscoveringUpstream, ModelsCallback, UpstreamDown
from lattice.server.backends.upstream.http_errors import from_status
from lattice.server.backends.upstream.openai_wire import StreamState, completion_body, request_body
from lattice.server.backends.upstream.sse import SseDataLines
from lattice.server.chat import ChatRequest, Delta, Finish, FinishReason, GenerationEvent, merged
from lattice.server.embeddings import Embeddings, EmbedRequest

_JSON = {"content-type": "application/json"}
DEFAULT_MAX_CONNECTIONS = 256
"""Connections the gateway opens to one upstream at most; more requests wait for one."""


class OpenAIUpstream(DiscoveringUpstream):
    name = "openai"

    def __init__(
        self, upstream: Upstream, on_models: ModelsCallback, *, max_connections: int = DEFAULT_MAX_CONNECTIONS
    ) -> None:
        """`max_connections`: the pool's size, as many as the requests that may run on it at once."""
        super().__init__(upstream, on_models)
        self._max_connections = max_connections
        self._headers = {"authorization": f"Bearer {upstream.api_key.get_secret_value()}"} if upstream.api_key else {}
        root = upstream.base_url.rstrip("/") + "/"
        self._models_url = root + "models"
        self._completions_url = root + "chat/completions"
        self._text_completions_url = root + "completions"  # the legacy text completions: a raw prompt
        self._embeddings_url = root + "embeddings"
        # A read that waits longer than timeout_seconds fails; so does a connection (pool wait included).
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=upstream.timeout_seconds,
            sock_connect=upstream.connect_timeout_seconds,
            sock_read=upstream.timeout_seconds,
        )
        self._proxy = _proxy_for(root)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """The session, made on first use: aiohttp wants it made inside the event loop that uses it."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=30),
            )
        return self._session

    async def fetch_model_ids(self) -> list[str]:
        """GET /models. With `models` configured, any HTTP answer counts as up: some servers
        (mlx_lm.server without a Hugging Face cache) cannot list their models."""
        timeout = aiohttp.ClientTimeout(total=self._upstream.connect_timeout_seconds * 2)
        try:
            async with self._client().get(self._models_url, timeout=timeout, proxy=self._proxy) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise UpstreamDown(f"{type(error).__name__}: {error}") from error
        try:
            if status != 200:
                raise ValueError(f"HTTP {status}")
            return [str(m["id"]) for m in json.loads(body).get("data", []) if "id" in m]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            if self._upstream.models:
                return []
            raise UpstreamDown(f"its model list is unreadable: {error}") from error

    async def close_client(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def stream(
        self, model: ModelProfile, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        raw = request.prompt is not None
        name = model.upstream_model or model.id
        body = completion_body(name, request) if raw else request_body(name, request)
        url = self._text_completions_url if raw else self._completions_url
        if "max_tokens" not in body:
            body["max_tokens"] = limits.max_tokens_ceiling
        state = StreamState(stops=request.stop)
        lines = SseDataLines()
        done = False
        try:
            data = json.dumps(body).encode()
            posted = self._client().post(url, data=data, headers=_JSON, proxy=self._proxy)
            async with posted as response:
                if response.status != 200:
                    text = (await response.read()).decode(errors="replace")
                    raise from_status(self._upstream.name, response.status, response.headers, text)
                async for received in response.content.iter_any():
                    if done:
                        continue  # after [DONE], read on to the end of the body so the connection is reused
                    deltas: list[Delta] = []
                    for payload in lines.feed(received):
                        if payload == "[DONE]":
                            done = True
                            break
                        delta = state.read_chunk(json.loads(payload))
                        if delta is not None:
                            deltas.append(delta)
                    for delta in merged(deltas):
                        yield delta
        except aiohttp.ClientError as error:  # timeouts included
            raise self._failed(error) from error
        except json.JSONDecodeError as error:
            raise BackendUnavailable(f"upstream {self._upstream.name!r} sent a malformed chunk: {error}") from error
        # The stop strings go to the upstream, which applies them before its tokens are spent. Which one
        # ended an answer is passed on only when the upstream says it (`stop_reason`): the gateway never
        # sees the cut text, and an answer that ends on its own looks the same.
        yield Finish(
            state.finish_reason or FinishReason.STOP,
            state.final_usage(request.estimated_prompt_tokens),
            state.stop_sequence,
        )

    async def embed(self, model: ModelProfile, request: EmbedRequest) -> Embeddings:
        """POST /embeddings, floats asked for (the shim encodes base64 itself)."""
        body: dict[str, Any] = {
            "model": model.upstream_model or model.id,
            "input": [item if isinstance(item, str) else list(item) for item in request.inputs],
            "encoding_format": "float",
        }
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        if request.user:
            body["user"] = request.user
        try:
            data = json.dumps(body).encode()
            posted = self._client().post(self._embeddings_url, data=data, headers=_JSON, proxy=self._proxy)
            async with posted as response:
                text = (await response.read()).decode(errors="replace")
                if response.status != 200:
                    raise from_status(self._upstream.name, response.status, response.headers, text)
        except aiohttp.ClientError as error:
            raise self._failed(error) from error
        try:
            answer = json.loads(text)
            items = sorted(answer["data"], key=lambda item: int(item.get("index", 0)))
            vectors = tuple(tuple(float(x) for x in item["embedding"]) for item in items)
            tokens = int((answer.get("usage") or {}).get("prompt_tokens", 0))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise BackendUnavailable(f"upstream {self._upstream.name!r} sent unreadable embeddings: {error}") from error
        if len(vectors) != len(request.inputs):
            raise BackendUnavailable(
                f"upstream {self._upstream.name!r} sent {len(vectors)} vectors for {len(request.inputs)} inputs"
            )
        return Embeddings(vectors, tokens)

    def _failed(self, error: aiohttp.ClientError) -> BackendUnavailable:
        """The upstream could not be reached or read (timeouts included): marked down until its list answers."""
        self.mark_unhealthy(str(error) or type(error).__name__)
        return BackendUnavailable(f"upstream {self._upstream.name!r} failed: {type(error).__name__}: {error}")


def _proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url`, if any (`NO_PROXY` honoured)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)
