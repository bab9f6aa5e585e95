"""Tracing: OpenTelemetry spans across the shim, the gRPC server, the gateway's steps and the relay,
exported only when configured (`otel_exporter`).

Off (the default) nothing of OpenTelemetry is even imported: `span()` hands out one shared no-op
context manager, `start()` one shared no-op span, and no interceptor or middleware is installed, so
tracing costs a function call where a span would be. On, the official instrumentations make the
spans at the edges (`opentelemetry-instrumentation-asgi` for the shim's requests,
`opentelemetry-instrumentation-grpc` for the shim's calls and the server's RPCs, which carries the
W3C `traceparent` in gRPC metadata), and the gateway adds its own steps: resolve, admit, the backend's
stream, a relay work item, and the daemon's run of it (the context travels in the sealed payload).

The tracer provider is this module's, not OpenTelemetry's global one, and is handed to each
instrumentation, so a test can configure it with an in-memory exporter and nothing leaks between
configurations.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the types only: nothing of OpenTelemetry is imported while tracing is off
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span as OtelSpan
    from opentelemetry.trace import Tracer

Exporter = Literal["none", "console", "otlp"]
Attribute = str | int | float | bool

# Scraped and probed every few seconds: a trace each would drown the rest.
UNTRACED_ROUTES = "healthz,metrics"

_provider: TracerProvider | None = None
_tracer: Tracer | None = None


class TracingUnavailable(RuntimeError):
    """Tracing is configured but OpenTelemetry is not installed."""


class Span:
    """A span the gateway made; this base class is the no-op one, used while tracing is off."""

    def set(self, key: str, value: Attribute) -> None:
        """Adds an attribute (`lattice.model`, …)."""

    def fail(self, error: BaseException) -> None:
        """Marks the span failed by `error`."""

    def end(self) -> None:
        """Ends a span from `start()`; those from `span()` end with their block."""


NO_SPAN = Span()
_NO_BLOCK = contextlib.nullcontext(NO_SPAN)


class _LiveSpan(Span):
    def __init__(self, span: OtelSpan) -> None:
        self.otel = span

    def set(self, key: str, value: Attribute) -> None:
        self.otel.set_attribute(key, value)

    def fail(self, error: BaseException) -> None:
        from opentelemetry.trace import Status, StatusCode

        self.otel.record_exception(error)
        self.otel.set_status(Status(StatusCode.ERROR, type(error).__name__))

    def end(self) -> None:
        self.otel.end()


def configure(
    exporter: Exporter, *, endpoint: str | None = None, service_name: str = "lattice", out: Any = None
) -> None:
    """Turns tracing on with `exporter`: `console` writes each span as one JSON line to `out` (stdout),
    `otlp` sends batches to an OpenTelemetry collector over gRPC at `endpoint` (default: the
    `OTEL_EXPORTER_OTLP_ENDPOINT` environment variable, else `localhost:4317`). `none` leaves it off."""
    if exporter == "none":
        return
    try:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError as error:
        raise TracingUnavailable(
            f"otel_exporter = {exporter!r} needs OpenTelemetry: pip install 'lattice-gateway[tracing]'"
        ) from error

    if exporter == "console":
        console = ConsoleSpanExporter(out=out or sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")
        configure_exporter(console, service_name=service_name, processor=SimpleSpanProcessor)
        return
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    otlp = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    configure_exporter(otlp, service_name=service_name, processor=BatchSpanProcessor)


def configure_exporter(exporter: SpanExporter, *, service_name: str = "lattice", processor: Any = None) -> None:
    """Turns tracing on with any exporter (tests pass an in-memory one); spans are exported one by one
    unless `processor` says otherwise."""
    global _provider, _tracer
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor((processor or SimpleSpanProcessor)(exporter))
    _provider, _tracer = provider, provider.get_tracer("lattice")


def shutdown() -> None:
    """Exports what is pending and turns tracing off."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider, _tracer = None, None


def enabled() -> bool:
    return _tracer is not None


def span(name: str, attributes: Mapping[str, Attribute] | None = None) -> contextlib.AbstractContextManager[Span]:
    """A span for the block, current inside it (what starts there is its child)."""
    if _tracer is None:
        return _NO_BLOCK
    return _current(_tracer, name, attributes or {})


@contextlib.contextmanager
def _current(tracer: Tracer, name: str, attributes: Mapping[str, Attribute]) -> Iterator[Span]:
    with tracer.start_as_current_span(name, attributes=attributes) as otel:
        yield _LiveSpan(otel)


def start(name: str, attributes: Mapping[str, Attribute] | None = None) -> Span:
    """A span that outlives the block that starts it (a stream), child of the current one; `end()` it."""
    if _tracer is None:
        return NO_SPAN
    return _LiveSpan(_tracer.start_span(name, attributes=attributes))


def start_client(name: str) -> Span:
    """A client span for a gRPC call made without a channel's interceptors (the in-process channel):
    the one `opentelemetry-instrumentation-grpc` would make; its `carrier()` goes with the call."""
    if _tracer is None:
        return NO_SPAN
    from opentelemetry.trace import SpanKind

    return _LiveSpan(_tracer.start_span(name, kind=SpanKind.CLIENT, attributes={"rpc.system": "grpc"}))


def tag_current(key: str, value: Attribute) -> None:
    """Adds an attribute to the current span (the RPC's, in the server), if there is one."""
    if _tracer is None:
        return
    from opentelemetry import trace

    trace.get_current_span().set_attribute(key, value)


@contextlib.contextmanager
def within(started: Span) -> Iterator[None]:
    """Makes a span from `start()` the current one for the block, without ending it."""
    if not isinstance(started, _LiveSpan):
        yield
        return
    from opentelemetry import trace

    with trace.use_span(started.otel, end_on_exit=False):
        yield


def carrier(started: Span) -> dict[str, str]:
    """`started`'s W3C trace context (`traceparent`, …), to continue its trace in another process."""
    if not isinstance(started, _LiveSpan):
        return {}
    from opentelemetry import propagate, trace

    headers: dict[str, str] = {}
    propagate.inject(headers, context=trace.set_span_in_context(started.otel))
    return headers


def continued(
    name: str, context: Mapping[str, str], attributes: Mapping[str, Attribute] | None = None
) -> contextlib.AbstractContextManager[Span]:
    """Like `span()`, as a child of the remote span whose `carrier()` is `context` (when it has one)."""
    if _tracer is None:
        return _NO_BLOCK
    return _continued(_tracer, name, context, attributes or {})


@contextlib.contextmanager
def _continued(
    tracer: Tracer, name: str, context: Mapping[str, str], attributes: Mapping[str, Attribute]
) -> Iterator[Span]:
    from opentelemetry import propagate

    parent = propagate.extract(dict(context)) if context else None
    with tracer.start_as_current_span(name, context=parent, attributes=attributes) as otel:
        yield _LiveSpan(otel)


def server_interceptors() -> list[Any]:
    """The gRPC server's: a span per RPC, continuing the caller's trace from its metadata."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor(tracer_provider=_provider)]  # type: ignore[no-untyped-call]


def client_interceptors() -> list[Any]:
    """A gRPC client's (the shim's channel): a span per call, its context sent as metadata."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(tracer_provider=_provider))  # type: ignore[no-untyped-call]


def install_asgi(app: FastAPI) -> None:
    """A span per HTTP request of `app` (the shim), outermost of its middleware; nothing while tracing is off."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    # No span per ASGI send/receive: a streamed answer would make one per chunk.
    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls=UNTRACED_ROUTES,
        tracer_provider=_provider,
        exclude_spans=["receive", "send"],
    )
