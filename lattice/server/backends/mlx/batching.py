"""Continuous batching for one MLX model, on the MLX worker thread.

Requests join the running batch between decode steps and leave it the step
after they finish or their caller goes away, each with its own sampler, token
budget and stop strings (mlx_lm's BatchGenerator does the batched forward
passes; this module feeds it and turns its tokens into text events). The loop
runs as one worker job while any sequence is active and ends when none is.

Prompts are processed in chunks of at most `PREFILL_CHUNK_TOKENS`, one chunk per step, between the
other sequences' decode steps: a long prompt slows the batch by one chunk a step instead of stopping
it until the whole prompt is done, and a caller who leaves during its prompt is removed within one
chunk. What each chunk took is reported to `rates` (the gateway's prompt budget).

Finished sequences leave their KV cache in an LRU prompt cache; a new request
starts from the longest cached prefix of its prompt (the system prompt and
earlier turns of a conversation), so only the new tokens are prefilled.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from mlx_lm.generate import BatchGenerator
from mlx_lm.models.cache import LRUPromptCache, trim_prompt_cache

from lattice.server.backends.bridge import JobStream, StreamBridge
from lattice.server.backends.mlx.sampling import make_request_sampler
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.chat import Delta, Finish, FinishReason, GenerationEvent, Sampling, Usage
from lattice.server.prompt_budget import PromptRates
from lattice.server.stop_strings import StopStringMatcher

log = logging.getLogger(__name__)

CACHE_KEY = "model"
"""One engine serves one model, so its prompt cache needs no per-model key."""
PREFILL_CHUNK_TOKENS = 128
"""Prompt tokens one sequence prefills per step. mlx_lm's default, 2,048, takes minutes on a busy
2-core CPU (prompts ran at 10 to 15 tokens/s there), all of it a stall for every other sequence."""


@dataclass(frozen=True)
class GenerationJob:
    prompt_ids: list[int]
    max_tokens: int
    sampling: Sampling
    stop: tuple[str, ...]


@dataclass(eq=False)
class _Sequence:
    job: GenerationJob
    bridge: StreamBridge[GenerationEvent]
    detokenizer: Any
    stops: StopStringMatcher
    generated: int = 0
    uid: int = -1
    done: bool = field(default=False)

    def emit_text(self, text: str) -> None:
        if text:
            self.bridge.post_item(Delta(text))

    def finish(self, reason: FinishReason, stop_sequence: str = "") -> None:
        usage = Usage(prompt_tokens=len(self.job.prompt_ids), completion_tokens=self.generated)
        self.bridge.post_item(Finish(reason, usage, stop_sequence))
        self.bridge.post_done()
        self.done = True


class BatchEngine:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        worker: MlxWorker,
        max_batch: int,
        prompt_cache_entries: int = 16,
        *,
        model_id: str = "",
        prefill_chunk_tokens: int = PREFILL_CHUNK_TOKENS,
    ) -> None:
        self.model_id = model_id
        self.rates: PromptRates | None = None
        """Where each step's prompt throughput is reported, when set."""
        self._prefill_chunk = prefill_chunk_tokens
        self.prefilled_tokens = 0
        """Prompt tokens processed so far (for tests and metrics)."""
        self._model = model
        self._tokenizer = tokenizer
        self._worker = worker
        self._max_batch = max_batch
        self._eos = set(tokenizer.eos_token_ids)
        self._inbox: queue.SimpleQueue[_Sequence] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._looping = False
        self._prompt_cache = LRUPromptCache(max_size=prompt_cache_entries)  # touched on the worker thread only
        self.reused_prompt_tokens = 0
        """Prompt tokens served from the prompt cache instead of prefilled (for tests and metrics)."""

    def stream(self, job: GenerationJob) -> JobStream[GenerationEvent]:
        """Queues `job` for the batch; iterate for its events, `aclose()` to leave the batch."""
        bridge: StreamBridge[GenerationEvent] = StreamBridge(asyncio.get_running_loop())
        detokenizer = self._tokenizer.detokenizer
        self._inbox.put(_Sequence(job, bridge, detokenizer, StopStringMatcher(job.stop)))
        with self._lock:
            if not self._looping:
                self._looping = True
                self._worker.submit(self._run)
        return JobStream(bridge)

    def _run(self) -> None:
        active: dict[int, _Sequence] = {}
        try:
            generator: Any = BatchGenerator(
                self._model,
                stop_tokens=[[token] for token in self._eos],
                completion_batch_size=self._max_batch,
                prefill_batch_size=self._max_batch,
                prefill_step_size=self._prefill_chunk,
            )
            try:
                while self._step(generator, active):
                    pass
            finally:
                generator.close()
        except Exception as error:  # every waiting caller hears of it; the next request starts afresh
            log.exception("MLX batch loop failed")
            with self._lock:
                self._looping = False
            for sequence in [*active.values(), *self._drain_inbox()]:
                sequence.bridge.post_error(error)

    def _step(self, generator: Any, active: dict[int, _Sequence]) -> bool:  # mlx_lm's BatchGenerator: untyped
        """One decode step; False once nothing is left to do."""
        joining = [s for s in self._drain_inbox() if not s.bridge.cancelled]
        if joining:
            starts = [self._cached_start(s.job.prompt_ids) for s in joining]
            uids = generator.insert(
                [rest for _, rest in starts],
                max_tokens=[s.job.max_tokens for s in joining],
                caches=[cache for cache, _ in starts],
                samplers=[make_request_sampler(s.job.sampling) for s in joining],
            )
            for uid, sequence in zip(uids, joining, strict=True):
                sequence.uid = uid
                sequence.detokenizer.reset()
                active[uid] = sequence
        gone = [uid for uid, s in active.items() if s.bridge.cancelled]
        if gone:
            generator.remove(gone)
            for uid in gone:
                del active[uid]
        if not active:
            with self._lock:
                if self._inbox.empty():
                    self._looping = False
                    return False
            return True
        with generator.stats() as stats:
            _, responses = generator.next()
        if stats.prompt_tokens:
            self.prefilled_tokens += stats.prompt_tokens
            if self.rates is not None:
                self.rates.observe(self.model_id, stats.prompt_tokens, stats.prompt_time)
        still_held = []  # ended here (a stop string) while the generator would go on
        for response in responses:
            answering = active.get(response.uid)
            if answering is None:
                continue
            self._advance(answering, response.token, response.finish_reason)
            if response.finish_reason is not None and response.prompt_cache:
                self._prompt_cache.insert_cache(CACHE_KEY, list(response.all_tokens), response.prompt_cache)
            if answering.done:
                del active[response.uid]
                if response.finish_reason is None:
                    still_held.append(response.uid)
        if still_held:
            generator.remove(still_held)
        return True

    def _cached_start(self, prompt: list[int]) -> tuple[Any, list[int]]:
        """The KV cache of the longest cached prefix of `prompt`, and the tokens still to prefill."""
        cache, rest = self._prompt_cache.fetch_nearest_cache(CACHE_KEY, prompt)
        if cache is not None and not rest:
            # The whole prompt is cached, but generation needs the last prompt token's logits: recompute it.
            trim_prompt_cache(cache, 1)
            rest = prompt[-1:]
        self.reused_prompt_tokens += len(prompt) - len(rest)
        return cache, list(rest)

    def _advance(self, sequence: _Sequence, token: int, finish_reason: str | None) -> None:
        if token in self._eos:
            sequence.finish(FinishReason.STOP, self._flush(sequence))
            return
        sequence.generated += 1
        sequence.detokenizer.add_token(token)
        scan = sequence.stops.feed(sequence.detokenizer.last_segment)
        sequence.emit_text(scan.text)
        if scan.stopped:
            sequence.finish(FinishReason.STOP, scan.stop)
        elif finish_reason is not None:
            # The detokenizer's last bytes may still complete a stop string: then that is what ended it.
            if stop := self._flush(sequence):
                sequence.finish(FinishReason.STOP, stop)
            else:
                sequence.finish(FinishReason.LENGTH if finish_reason == "length" else FinishReason.STOP)

    @staticmethod
    def _flush(sequence: _Sequence) -> str:
        """Emits what the detokenizer and the stop strings held back; returns the stop string that this
        last text completed, if any."""
        sequence.detokenizer.finalize()
        scan = sequence.stops.feed(sequence.detokenizer.last_segment)
        sequence.emit_text(scan.text if scan.stopped else scan.text + sequence.stops.flush())
        return scan.stop

    def _drain_inbox(self) -> list[_Sequence]:
        drained = []
        while True:
            try:
                drained.append(self._inbox.get_nowait())
            except queue.Empty:
                return drained
