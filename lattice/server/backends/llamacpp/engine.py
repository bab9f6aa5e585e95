"""One GGUF model in llama.cpp's own server, inside this process (the `xllamacpp` wheel).

The C++ server batches the sequences it runs (continuous batching over `parallel`
slots); it is thread-safe, and each call blocks its thread until the answer is
done, streaming chunks to a callback on that thread. So every request gets a
thread from the engine's pool, and its chunks reach the event loop through a
`StreamBridge`; the callback returns True once the caller has left, which stops
generation at the next token (or the next prompt batch: requests ask for
progress chunks).
"""

from __future__ import annotations

import asyncio
import pathlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lattice.errors import BackendFailed, ContextLengthExceeded, InvalidArgument, LatticeError
from lattice.server.backends.bridge import JobStream, StreamBridge

Chunk = dict[str, Any]


@dataclass(frozen=True)
class EngineOptions:
    threads: int
    """CPU threads for prompt and decode."""
    parallel: int
    """Sequences decoded together: the model's concurrency."""
    context_tokens: int
    """Tokens of KV cache, shared by the sequences that run at once (each may use up to all of it)."""
    batch_tokens: int
    """Prompt tokens processed per step: how long one long prompt holds the others' next token back."""


class LlamaCppEngine:
    def __init__(self, server: Any, options: EngineOptions) -> None:
        self._server = server
        self._batch_tokens = options.batch_tokens
        self._threads = ThreadPoolExecutor(max_workers=options.parallel, thread_name_prefix="lattice-llamacpp")

    @classmethod
    def load(cls, gguf: pathlib.Path, options: EngineOptions, *, pooling_in_file: bool = False) -> LlamaCppEngine:
        """Blocks while the weights load (well under a second for the default model)."""
        import xllamacpp  # imported here: the MLX-only install must not need it

        return cls(xllamacpp.Server(server_params(gguf, options, pooling_in_file=pooling_in_file)), options)

    def stream(self, body: dict[str, Any], *, raw: bool = False) -> JobStream[Chunk]:
        """Starts a streamed chat completion (`raw`: a text completion of `body["prompt"]`, no chat template);
        iterate for its chunks, `aclose()` to stop it."""
        bridge: StreamBridge[Chunk] = StreamBridge(asyncio.get_running_loop())
        handle = self._server.handle_completions if raw else self._server.handle_chat_completions
        field = "prompt" if raw else "messages"

        def on_chunk(chunk: Chunk) -> bool:
            bridge.post_item(chunk)
            return bridge.cancelled

        def run() -> None:
            if bridge.cancelled:
                return
            try:
                result = handle(body, on_chunk)
            except ValueError as error:  # the engine's own check of the body's shape
                bridge.post_error(InvalidArgument(str(error), field=field))
            except BaseException as error:
                bridge.post_error(BackendFailed(f"llama.cpp failed: {type(error).__name__}: {error}"))
            else:
                if isinstance(result, dict) and "error" in result:
                    bridge.post_error(engine_error(result["error"], field=field))
                else:
                    bridge.post_done()

        self._threads.submit(run)
        return JobStream(bridge)

    async def embed(self, body: dict[str, Any]) -> dict[str, Any]:
        """llama.cpp's OpenAI embeddings answer for `body`, computed on one of the pool's threads."""

        def run() -> dict[str, Any]:
            try:
                result: dict[str, Any] = self._server.handle_embeddings(body)
            except ValueError as error:
                raise InvalidArgument(str(error), field="input") from None
            if "error" in result:
                raise self._embedding_error(result["error"])
            return result

        return await asyncio.wrap_future(self._threads.submit(run))

    def _embedding_error(self, error: Any) -> LatticeError:
        """llama.cpp embeds each input in one physical batch: a longer input is the caller's to shorten (a 400
        saying how long it may be), not the engine's failure."""
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        if "too large to process" in message:
            return ContextLengthExceeded(
                f"{message.split('.')[0]}: this model embeds an input of at most {self._batch_tokens} tokens (the "
                "gateway's llamacpp_batch_tokens): shorten or split it",
                field="input",
            )
        return engine_error(error, field="input")

    def close(self) -> None:
        """Waits for running requests (callers close theirs first), then frees the model."""
        self._threads.shutdown(wait=True)
        self._server = None


def server_params(gguf: pathlib.Path, options: EngineOptions, *, pooling_in_file: bool = False) -> Any:
    """The `xllamacpp.CommonParams` a model is loaded with (also what the benchmark's direct floor uses).

    Embeddings are on for every model: the same instance still serves chat and text completions (measured on
    the default model: the same greedy answers with and without), so no second copy of the weights is loaded.
    The pooling is the file's (`<arch>.pooling_type`, embedding models set it); a chat model's file names
    none, and gets mean pooling, since llama.cpp's "none" gives no vector per input."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.n_parallel = options.parallel
    params.n_ctx = options.context_tokens
    params.kv_unified = True  # each running request may use the whole cache, up to its context window
    params.n_batch = params.n_ubatch = options.batch_tokens
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = options.threads
    params.embedding = True
    if not pooling_in_file:
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    params.warmup = False
    params.verbosity = -1  # llama.cpp's own per-request lines; the gateway logs each request itself
    return params


def engine_error(error: Any, *, field: str = "messages") -> LatticeError:
    """llama.cpp's OpenAI-style error object as a Lattice error; `field`: what the request's text is called."""
    if not isinstance(error, dict):
        return BackendFailed(f"llama.cpp failed: {error}")
    message = str(error.get("message", "llama.cpp refused the request"))
    if error.get("type") == "exceed_context_size_error":
        return ContextLengthExceeded(message, field=field)
    if error.get("code") == 400 or error.get("type") == "invalid_request_error":
        return InvalidArgument(message, field=message.split("'")[1] if message.startswith("Field '") else field)
    return BackendFailed(f"llama.cpp failed: {message}")
