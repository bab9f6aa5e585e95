"""OpenTelemetry tracing: off, nothing of the SDK or the instrumentations is loaded; on, one request
through the shim is one trace, from the shim's HTTP span through its gRPC call, the server's RPC and
the gateway's steps, down the relay to the daemon's run of the work (console exporter, live processes)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lattice.observability import tracing
from tests.gateway_process import REPO, GatewayProcess, start_gateway
from tests.personal_runtime_fixtures import (
    Daemon,
    EchoProvider,
    create_key,
    gateway_env,
    pair,
    runtime_status,
    wait_for,
)

MODEL = "smollm2-135m-instruct"

OFF_PROBE = """
import sys
import lattice.serve, lattice.daemon.main
from lattice.observability import tracing
from lattice.shim import create_app

app = create_app("127.0.0.1:1")
with tracing.span("x", {"a": 1}) as span:
    span.set("b", 2)
tracing.start("y").end()
assert tracing.server_interceptors() == [] and tracing.client_interceptors() == []
assert tracing.carrier(tracing.start("z")) == {}
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.instrumentation",
                                                       "opentelemetry.exporter")))
print(loaded)
"""


def test_off_nothing_of_opentelemetry_is_loaded() -> None:
    """FastAPI imports the OpenTelemetry *API* itself (a no-op without a provider); the SDK, the
    instrumentations and the exporters stay unloaded while `otel_exporter` is `none`."""
    probe = subprocess.run([sys.executable, "-c", OFF_PROBE], cwd=REPO, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr


@pytest.fixture
def memory() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure_exporter(exporter, service_name="test")
    try:
        yield exporter
    finally:
        tracing.shutdown()


def test_spans_started_here_continue_in_another_process(memory: InMemorySpanExporter) -> None:
    with tracing.span("lattice.resolve", {"lattice.model": "m"}):
        work = tracing.start("lattice.relay.work")
        carried = tracing.carrier(work)  # what the sealed payload carries to the daemon
    with tracing.continued("lattice.daemon.work", carried) as remote:
        remote.set("lattice.work_id", "w1")
    work.end()
    spans = {s.name: s for s in memory.get_finished_spans()}
    assert set(spans) == {"lattice.resolve", "lattice.relay.work", "lattice.daemon.work"}
    assert carried["traceparent"].split("-")[1] == f"{spans['lattice.resolve'].context.trace_id:032x}"
    assert len({s.context.trace_id for s in spans.values()}) == 1
    assert spans["lattice.relay.work"].parent.span_id == spans["lattice.resolve"].context.span_id  # type: ignore[union-attr]
    assert spans["lattice.daemon.work"].parent.span_id == spans["lattice.relay.work"].context.span_id  # type: ignore[union-attr]
    assert spans["lattice.daemon.work"].attributes == {"lattice.work_id": "w1"}


# --- live processes, console exporter ----------------------------------------------------------------


@dataclass
class TracedDaemon(Daemon):
    """A daemon that prints its spans too (to daemon.log)."""

    def env(self) -> dict[str, str]:
        return {**super().env(), "LATTICE_OTEL_EXPORTER": "console"}


def spans_in(text: str) -> list[dict[str, Any]]:
    """The console exporter's lines (one JSON span each) among the log lines."""
    found = []
    for line in text.splitlines():
        if line.startswith("{") and '"trace_id"' in line:
            span = json.loads(line)
            if "context" in span:
                found.append(span)
    return found


def trace_of(spans: list[dict[str, Any]], name: str, **attributes: Any) -> list[dict[str, Any]]:
    """Every span of the trace that holds the span called `name` with `attributes`."""
    root = next(
        s for s in spans if s["name"] == name and all(s["attributes"].get(k) == v for k, v in attributes.items())
    )
    return [s for s in spans if s["context"]["trace_id"] == root["context"]["trace_id"]]


def one(spans: list[dict[str, Any]], name: str, kind: str | None = None) -> dict[str, Any]:
    matching = [s for s in spans if s["name"] == name and (kind is None or s["kind"] == f"SpanKind.{kind}")]
    assert len(matching) == 1, (name, kind, [s["name"] for s in spans])
    return matching[0]


def parent_of(span: dict[str, Any], spans: list[dict[str, Any]]) -> dict[str, Any]:
    return next(s for s in spans if s["context"]["span_id"] == span["parent_id"])


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, dict[str, str]]]:
    env = {**gateway_env(tmp_path_factory.mktemp("traced-db")), "LATTICE_OTEL_EXPORTER": "console"}
    process = start_gateway(tmp_path_factory.mktemp("traced"), **env)
    yield process, env
    process.stop()


@pytest.mark.slow
def test_a_shim_request_is_one_trace_from_the_shim_to_the_backend(
    traced: tuple[GatewayProcess, dict[str, str]],
) -> None:
    gateway, _env = traced
    answer = httpx.post(
        gateway.http_url + "/v1/chat/completions",
        headers={"x-request-id": "traced-1"},
        json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
        timeout=120,
    )
    assert answer.status_code == 200

    def the_trace() -> list[dict[str, Any]]:
        try:
            return trace_of(
                spans_in(gateway.log()), "/lattice.v1.ChatService/Chat", **{"lattice.request_id": "traced-1"}
            )
        except StopIteration:
            return []

    wait_for(lambda: any(s["name"] == "POST /v1/chat/completions" for s in the_trace()), "the shim's span")
    spans = the_trace()
    http = one(spans, "POST /v1/chat/completions", "SERVER")
    client = one(spans, "/lattice.v1.ChatService/Chat", "CLIENT")
    server = one(spans, "/lattice.v1.ChatService/Chat", "SERVER")
    assert http["parent_id"] is None  # the caller sent no trace context: the shim starts the trace
    assert parent_of(client, spans) is http  # the shim's gRPC call, inside its HTTP request
    assert parent_of(server, spans) is client  # the context crossed the channel as metadata
    for step in ("lattice.resolve", "lattice.admit", "lattice.backend"):
        assert parent_of(one(spans, step), spans) is server, step
    backend = one(spans, "lattice.backend")
    assert (backend["attributes"]["lattice.model"], backend["attributes"]["lattice.backend"]) == (MODEL, "llamacpp")
    assert backend["attributes"]["lattice.completion_tokens"] > 0
    assert all(s["resource"]["attributes"]["service.name"] == "lattice" for s in spans)
    assert "Hi" not in json.dumps([s["attributes"] for s in spans])  # no prompt in the spans


@pytest.mark.slow
def test_the_trace_goes_down_the_relay_to_the_daemon(
    traced: tuple[GatewayProcess, dict[str, str]], echo: EchoProvider, tmp_path: pathlib.Path
) -> None:
    gateway, env = traced
    key = create_key(env, "acct_traced")
    paired = pair(gateway, key, tmp_path / "ctl", "traced laptop", "--provider-url", echo.url)
    daemon = TracedDaemon(paired.home, paired.lattice_id)
    daemon.start()
    try:
        wait_for(lambda: runtime_status(gateway, key, daemon.lattice_id) == "reachable", "the daemon to connect")
        answer = httpx.post(
            gateway.http_url + "/v1/chat/completions",
            headers={"x-api-key": key, "x-request-id": "traced-relay-1"},
            json={"model": f"lattice:personal:{daemon.lattice_id}", "messages": [{"role": "user", "content": "ping"}]},
            timeout=120,
        )
        assert answer.status_code == 200
        wait_for(lambda: any(s["name"] == "lattice.daemon.work" for s in spans_in(daemon.log())), "the daemon's span")
        gateway_spans = trace_of(
            spans_in(gateway.log()), "/lattice.v1.ChatService/Chat", **{"lattice.request_id": "traced-relay-1"}
        )
    finally:
        daemon.stop()
    work = one(gateway_spans, "lattice.relay.work")
    assert parent_of(work, gateway_spans) is one(gateway_spans, "lattice.backend")
    assert work["attributes"]["lattice.runtime"] == daemon.lattice_id
    remote = one(spans_in(daemon.log()), "lattice.daemon.work")
    assert remote["context"]["trace_id"] == work["context"]["trace_id"]
    assert remote["parent_id"] == work["context"]["span_id"]
    assert remote["attributes"]["lattice.work_id"] == work["attributes"]["lattice.work_id"]
    assert remote["resource"]["attributes"]["service.name"] == "lattice-daemon"
