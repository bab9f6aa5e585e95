"""The domain's front door: validate, resolve, run, fall back. Services call this and nothing deeper."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from lattice.config import ModelProfile
from lattice.errors import BackendUnavailable, LatticeError, ModelNotFound, ResourceExhausted, StreamDurationExceeded
from lattice.observability import logs, metrics, tracing
from lattice.server.activity import FinishedRequest
from lattice.server.admission import Admission, AdmissionLimits, QueuedCallback
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.chat import ChatRequest, Delta, Finish, GenerationEvent, Queued, TokenLogprob, ToolCall
from lattice.server.limits import UNLIMITED as NO_REQUEST_LIMITS
from lattice.server.limits import CallerLimits, RequestLimits, check_request_size
from lattice.server.principals import Principal
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.relay import PERSONAL_PREFIX
from lattice.server.resolver import Resolution, Resolver
from lattice.server.tool_calls import ToolCallAssembler
from lattice.server.validation import check_model_expression, validate_chat_request

if TYPE_CHECKING:
    from lattice.server.personal_runtimes import PersonalRuntimes

log = logging.getLogger(__name__)
prompt_log = structlog.get_logger("lattice.prompts")

FALLBACK_ERRORS = (BackendUnavailable, ResourceExhausted)
"""Failures before the first token that send the request to the next candidate: the backend is
down, unreachable or over its limits. A refusal of the request itself (a 4xx) is not retried."""
UNLIMITED = AdmissionLimits(
    max_concurrent_per_model=1_000_000, max_concurrent_total=1_000_000, queue_size=0, queue_timeout_seconds=0
)
"""What a gateway built without an `Admission` admits: everything at once, nothing queued."""


@dataclass(frozen=True)
class Completion:
    resolution: Resolution
    text: str
    tool_calls: tuple[ToolCall, ...]
    finish: Finish
    logprobs: tuple[TokenLogprob, ...] = ()


QueueListener = Callable[[Queued], None]


def _for_model(listener: QueueListener | None, model: str) -> QueuedCallback | None:
    if listener is None:
        return None
    return lambda position, wait: listener(Queued(model, position, wait))


class ChatStream:
    """A chat whose first event has arrived: `resolution` names the model that really answers.

    Iterate it for the events; `aclose()` (or `contextlib.aclosing`) stops generation,
    whether or not iteration has begun.
    """

    def __init__(
        self,
        resolution: Resolution,
        first: GenerationEvent,
        rest: AsyncGenerator[GenerationEvent, None],
        resources: AsyncExitStack,
        span: tracing.Span = tracing.NO_SPAN,
        *,
        started_at: float,
    ) -> None:
        """`resources` (the admission slot, the backend stream) are released by `aclose`; `span` is the
        backend stream's trace span, told how the stream ends; `started_at` (`loop.time()`) is when the
        backend started on it, once admitted: its duration limit counts from there."""
        self.resolution = resolution
        self._span = span
        self._first: GenerationEvent | None = first
        self._rest = rest
        self._resources = resources
        self._deadline: float | None = None
        self._answer: list[str] | None = None
        self.started_at = started_at
        self.finish: Finish | None = None
        """Set when the answer is complete."""
        self.failure: str | None = None
        """The reason (lower case) the stream failed with, when it did."""

    def _bound(self, *, deadline: float | None, on_close: Callable[[], None], log_answer: bool) -> None:
        """Ends the stream with `StreamDurationExceeded` at `deadline` (`loop.time()`); `on_close` runs on
        `aclose`; `log_answer` keeps the text to log it at the end (the operator's `log_prompts`)."""
        self._deadline = deadline
        self._resources.callback(on_close)
        self._answer = [] if log_answer else None

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> GenerationEvent:
        if self._first is not None:
            event, self._first = self._first, None
        else:
            try:
                event = await self._next()
            except LatticeError as error:
                self.failure = error.reason.lower()
                self._span.fail(error)
                raise
        if isinstance(event, Finish):
            self._finished(event)
        elif self._answer is not None:
            self._answer.append(event.text)
        return event

    async def _next(self) -> GenerationEvent:
        if self._deadline is None:
            return await anext(self._rest)
        # A timer rather than a check per event: a backend that stops sending must be cut off too.
        timeout = asyncio.timeout_at(self._deadline)
        try:
            async with timeout:
                return await anext(self._rest)
        except TimeoutError:
            if not timeout.expired():
                raise
            metrics.limit_refused("stream_duration")
            raise StreamDurationExceeded(
                f"the answer from {self.resolution.model!r} ran past the gateway's limit on one chat's duration"
            ) from None

    def _finished(self, finish: Finish) -> None:
        self.finish = finish
        model = self.resolution.model
        metrics.chat_finished(model, finish.reason.value, finish.usage.prompt_tokens, finish.usage.completion_tokens)
        self._span.set("lattice.completion_tokens", finish.usage.completion_tokens)
        if self._answer is not None:
            prompt_log.info("chat answer", model=model, answer="".join(self._answer), reason=finish.reason.value)

    async def aclose(self) -> None:
        await self._resources.aclose()


class Gateway:
    def __init__(
        self,
        resolver: Resolver,
        limits: GenerationLimits,
        backends: list[Backend] | None = None,
        admission: Admission | None = None,
        personal: PersonalRuntimes | None = None,
        *,
        request_limits: RequestLimits = NO_REQUEST_LIMITS,
        log_prompts: bool = False,
        on_finished: Sequence[Callable[[FinishedRequest], None]] = (),
    ) -> None:
        """`resolver` resolves among its registry's models. `backends` are started and closed with the
        gateway; by default, those of the registry's models.
        Without `admission`, nothing is queued or refused for capacity. Without `personal`,
        `lattice:personal:` models do not exist. `on_finished` is told each chat that ends (the dashboard's
        activity, metering)."""
        self.personal = personal
        self._on_finished = tuple(on_finished)
        self._registry = registry = resolver.registry
        self._resolver = resolver
        self._limits = limits
        self._admission = admission or Admission(UNLIMITED)
        self._request_limits = request_limits
        self._callers = CallerLimits(request_limits)
        self._log_prompts = log_prompts
        self._backends = (
            backends if backends is not None else list({id(m.backend): m.backend for m in registry}.values())
        )

    @property
    def registry(self) -> ModelRegistry:
        return self._registry

    @property
    def admission(self) -> Admission:
        return self._admission

    async def start(self) -> None:
        await asyncio.gather(*(backend.start() for backend in self._backends))

    async def close(self) -> None:
        await asyncio.gather(*(backend.close() for backend in self._backends))

    def list_models(self) -> list[RegisteredModel]:
        return list(self._registry)

    def resolve(self, expression: str, request: ChatRequest | None = None) -> Resolution:
        check_model_expression(expression)
        return self._resolver.resolve(expression, request)

    async def open_chat(self, request: ChatRequest, on_queued: QueueListener | None = None) -> ChatStream:
        """Checks the request and its caller against the limits, then starts it (`_start_chat`). The
        chat counts as one of its caller's streams until it is closed, and is cut off after
        `max_stream_seconds`."""
        arrived = time.monotonic()
        request_id = logs.current_request_id() or ""
        limits = self._request_limits
        check_request_size(request, limits)
        self._callers.take(request.caller)
        release = self._callers.open_stream(request.caller)
        try:
            if self._log_prompts:
                messages = [{"role": m.role.value, "text": m.text} for m in request.messages]
                prompt_log.info("chat prompt", model=request.model, messages=messages)
            chat = await self._start_chat(request, on_queued)
        except BaseException as error:
            release()
            outcome = error.reason.lower() if isinstance(error, LatticeError) else "cancelled"
            self._ended(request, request_id, None, arrived=arrived, first_token=None, outcome=outcome)
            raise
        first_token = time.monotonic() - arrived
        metrics.first_token(chat.resolution.model, first_token)
        deadline = None
        if math.isfinite(limits.max_stream_seconds):
            deadline = chat.started_at + limits.max_stream_seconds  # from the backend's start, prompt included

        def closed() -> None:
            release()
            outcome = "ok" if chat.finish else chat.failure or "cancelled"
            self._ended(request, request_id, chat, arrived=arrived, first_token=first_token, outcome=outcome)

        chat._bound(deadline=deadline, on_close=closed, log_answer=self._log_prompts)
        return chat

    def _ended(
        self,
        request: ChatRequest,
        request_id: str,
        chat: ChatStream | None,
        *,
        arrived: float,
        first_token: float | None,
        outcome: str,
    ) -> None:
        """Tells the `on_finished` listeners (the dashboard, metering) about a chat that ended: one record,
        metadata only."""
        if not self._on_finished:
            return
        usage = chat.finish.usage if chat is not None and chat.finish is not None else None
        principal = request.principal
        ended = FinishedRequest(
            end_time=time.time(),
            request_id=request_id,
            account_id=principal.account_id if principal else "",
            model=chat.resolution.model if chat else request.model,
            backend=chat.resolution.chosen.profile.backend if chat else "",
            outcome=outcome,
            duration_ms=round((time.monotonic() - arrived) * 1000),
            first_token_ms=None if first_token is None else round(first_token * 1000),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            key_id=principal.credential_id if principal else "",
        )
        for listener in self._on_finished:
            listener(ended)

    async def _start_chat(self, request: ChatRequest, on_queued: QueueListener | None) -> ChatStream:
        """Validates, resolves and starts generation, falling back to the next candidate while
        a backend fails before its first event. After that there is no silent switch.
        `request.principal` is who asks: personal runtimes answer only their own account."""
        validate_chat_request(request, max_tokens_ceiling=self._limits.max_tokens_ceiling)
        with tracing.span("lattice.resolve") as resolving:
            resolution: Resolution | None = await self.resolve_for(request.model, request, request.principal)
            resolving.set("lattice.model", resolution.model if resolution else "")
        while resolution is not None:
            resources = AsyncExitStack()
            traced = {"lattice.model": resolution.model, "lattice.backend": resolution.chosen.profile.backend}
            backend_span = tracing.NO_SPAN
            try:
                with tracing.span("lattice.admit", traced):
                    await resources.enter_async_context(
                        self._admission.slot(
                            resolution.model,
                            caller=request.caller,
                            priority=request.priority,
                            deadline=request.deadline,
                            on_queued=_for_model(on_queued, resolution.model),
                        )
                    )
                # From the backend's start to the stream's close; the relay's work item is its child.
                backend_span = tracing.start("lattice.backend", traced)
                resources.callback(backend_span.end)
                limits = self._generation_limits(resolution.chosen.profile, request)
                events = resolution.chosen.backend.stream(resolution.chosen.profile, request, limits)
                resources.push_async_callback(events.aclose)  # closed before the slot is given back
                started = asyncio.get_running_loop().time()
                with tracing.within(backend_span):
                    first = await self._first_event(events, resolution.model, started)
            except FALLBACK_ERRORS as error:
                backend_span.fail(error)
                await resources.aclose()
                log.warning("model %s failed before its first token: %s", resolution.model, error.message)
                next_resolution = resolution.fall_back(error)
                if next_resolution is None:
                    raise
                resolution = next_resolution
                continue
            except BaseException as error:
                backend_span.fail(error)
                await resources.aclose()
                raise
            return ChatStream(resolution, first, events, resources, backend_span, started_at=started)
        raise AssertionError("unreachable")

    def generation_cap(self, profile: ModelProfile) -> int:
        """The most tokens an answer of `profile` runs to when the request sets no `max_tokens`."""
        ceiling = self._limits.max_tokens_ceiling
        return min(profile.default_max_tokens or ceiling, ceiling)

    def _generation_limits(self, profile: ModelProfile, request: ChatRequest) -> GenerationLimits:
        # Backends run a request without max_tokens up to the ceiling: for such a request it is the model's cap,
        # which ends the answer with finish reason `length`, never an error.
        if request.max_tokens is not None:
            return self._limits
        return dataclasses.replace(self._limits, max_tokens_ceiling=self.generation_cap(profile))

    async def _first_event(
        self, events: AsyncGenerator[GenerationEvent, None], model: str, started: float
    ) -> GenerationEvent:
        """The backend's first event, within the chat's duration limit: processing a long prompt counts
        as running (closing `events` then stops it, within one prompt chunk on the in-process engines)."""
        limit = self._request_limits.max_stream_seconds
        if not math.isfinite(limit):
            return await anext(events)
        timeout = asyncio.timeout_at(started + limit)
        try:
            async with timeout:
                return await anext(events)
        except TimeoutError:
            if not timeout.expired():
                raise
            metrics.limit_refused("stream_duration")
            raise StreamDurationExceeded(
                f"{model!r} was still processing the prompt when the chat reached the gateway's limit on one "
                f"chat's duration ({limit:g} s)"
            ) from None

    async def resolve_for(
        self, expression: str, request: ChatRequest | None, principal: Principal | None
    ) -> Resolution:
        """`resolve`, personal runtimes included: those need the caller's account and the store."""
        check_model_expression(expression)
        if expression.startswith(PERSONAL_PREFIX):
            if self.personal is None:
                raise ModelNotFound("personal runtimes are not enabled here", metadata={"model": expression})
            return await self.personal.resolve(expression, principal)
        return self._resolver.resolve(expression, request)

    async def complete(self, request: ChatRequest) -> Completion:
        chat = await self.open_chat(request)
        parts: list[str] = []
        logprobs: list[TokenLogprob] = []
        tool_calls = ToolCallAssembler()
        async with aclosing(chat):
            async for event in chat:
                if isinstance(event, Delta):
                    parts.append(event.text)
                    logprobs.extend(event.logprobs)
                    tool_calls.add(event.tool_calls)
                else:
                    return Completion(chat.resolution, "".join(parts), tool_calls.calls(), event, tuple(logprobs))
        raise AssertionError("a backend stream always ends with Finish")
