"""Prometheus metrics reflect a known sequence of requests, exactly, and carry no secrets."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lattice.errors import ResourceExhausted
from lattice.observability import metrics
from lattice.server.admission import Admission, AdmissionLimits
from lattice.server.backends.residency import Residency
from lattice.server.services.observability import ObservabilityInterceptor
from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from tests.gateway_process import GatewayProcess, free_port, start_gateway

API_KEY = "sk-metrics-secret-0123456789"
PROMPT_MARKER = "zebra-quasar-4711"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def local(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


# --- the interceptor, on a real in-process server ------------------------------------------------


async def answer(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    if request == b"missing":
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    if request == b"crash":
        raise RuntimeError("a bug")
    return request


async def count(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> AsyncIterator[bytes]:
    for i in range(int(request)):
        yield str(i).encode()


def unary(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    """A call that sends and receives raw bytes."""
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
    return call


class Toy(grpc.GenericRpcHandler):
    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes] | None:
        if details.method == "/toy.Toy/Answer":
            return grpc.unary_unary_rpc_method_handler(answer)
        if details.method == "/toy.Toy/Count":
            return grpc.unary_stream_rpc_method_handler(count)
        return None


async def test_the_interceptor_counts_every_call_by_service_method_and_code() -> None:
    before = {
        code: local("lattice_grpc_server_handled_total", service="toy.Toy", method="Answer", code=code)
        for code in ("OK", "NOT_FOUND", "UNKNOWN")
    }
    streams_before = local("lattice_grpc_server_handled_total", service="toy.Toy", method="Count", code="OK")
    timed_before = local("lattice_grpc_server_handling_seconds_count", service="toy.Toy", method="Answer")
    unknown_before = local(
        "lattice_grpc_server_handled_total", service="unknown", method="unknown", code="UNIMPLEMENTED"
    )
    server = grpc.aio.server(interceptors=[ObservabilityInterceptor()])
    server.add_generic_rpc_handlers((Toy(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = unary(channel, "/toy.Toy/Answer")
            for request in (b"a", b"b", b"missing", b"crash"):
                failing = request in (b"missing", b"crash")
                with pytest.raises(grpc.aio.AioRpcError) if failing else contextlib.nullcontext():
                    await call(request)
            counting: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream("/toy.Toy/Count")
            replies = [r async for r in counting(b"3")]
            assert replies == [b"0", b"1", b"2"]
            with pytest.raises(grpc.aio.AioRpcError) as unimplemented:
                await unary(channel, "/toy.Secret/sk-not-a-label")(b"")
            assert unimplemented.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(None)

    def delta(code: str) -> float:
        now = local("lattice_grpc_server_handled_total", service="toy.Toy", method="Answer", code=code)
        return now - before[code]

    assert (delta("OK"), delta("NOT_FOUND"), delta("UNKNOWN")) == (2, 1, 1)
    assert (
        local("lattice_grpc_server_handled_total", service="toy.Toy", method="Count", code="OK") - streams_before == 1
    )
    assert local("lattice_grpc_server_handling_seconds_count", service="toy.Toy", method="Answer") - timed_before == 4
    unknown = local("lattice_grpc_server_handled_total", service="unknown", method="unknown", code="UNIMPLEMENTED")
    assert unknown - unknown_before == 1
    assert b"sk-not-a-label" not in metrics.exposition()[0]  # a caller's text never becomes a label
    assert local("lattice_grpc_server_in_flight", service="toy.Toy", method="Count") == 0


# --- domain metrics, fed where the facts are -------------------------------------------------------


async def test_admission_reports_running_waiting_waits_and_refusals() -> None:
    admission = Admission(
        AdmissionLimits(max_concurrent_per_model=1, max_concurrent_total=10, queue_size=1, queue_timeout_seconds=30)
    )
    model = "metrics-admission-model"
    waits_before = local("lattice_queue_wait_seconds_count", model=model)
    release = asyncio.Event()
    entered = asyncio.Event()

    async def hold() -> None:
        async with admission.slot(model, caller="a"):
            entered.set()
            await release.wait()

    queued = asyncio.Event()

    async def wait_in_line() -> None:
        async with admission.slot(model, caller="b", on_queued=lambda _position, _wait: queued.set()):
            pass

    holder = asyncio.create_task(hold())
    await entered.wait()
    waiter = asyncio.create_task(wait_in_line())
    await queued.wait()
    assert local("lattice_running_requests", model=model) == 1
    assert local("lattice_queue_depth", model=model) == 1
    with pytest.raises(ResourceExhausted):
        async with admission.slot(model, caller="c"):
            pass
    assert local("lattice_admission_refusals_total", model=model, reason="queue_full") == 1
    release.set()
    await asyncio.gather(holder, waiter)
    assert local("lattice_running_requests", model=model) == 0
    assert local("lattice_queue_depth", model=model) == 0
    assert local("lattice_queue_wait_seconds_count", model=model) - waits_before == 2  # one at once, one after waiting


class Loadable:
    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.pinned = False
        self.busy = False

    async def unload(self) -> None:
        pass


async def test_residency_reports_loads_evictions_and_what_is_resident() -> None:
    residency = Residency(max_resident=1)
    first, second = Loadable("metrics-resident-a"), Loadable("metrics-resident-b")
    for model in (first, second, first):
        await residency.make_room_for(model.model_id)
        residency.loaded(model)
    assert local("lattice_model_loads_total", model="metrics-resident-a") == 2
    assert local("lattice_model_loads_total", model="metrics-resident-b") == 1
    assert local("lattice_model_evictions_total", model="metrics-resident-a") == 1
    assert local("lattice_model_evictions_total", model="metrics-resident-b") == 1
    assert local("lattice_model_resident", model="metrics-resident-a") == 1
    assert local("lattice_model_resident", model="metrics-resident-b") == 0
    assert local("lattice_model_load_seconds_count", model="metrics-resident-a") == 2


# --- a live gateway ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, int]]:
    """A gateway with an API key and a metrics port of its own, and no other traffic."""
    metrics_port = free_port()
    process = start_gateway(
        tmp_path_factory.mktemp("metrics"), LATTICE_API_KEY=API_KEY, LATTICE_METRICS_PORT=str(metrics_port)
    )
    yield process, metrics_port
    process.stop()


def scrape(gateway: GatewayProcess) -> Samples:
    response = httpx.get(f"{gateway.http_url}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


MODEL = "smollm2-135m-instruct"
CHAT = {"service": "lattice.v1.ChatService", "method": "Chat"}
STREAM = {"service": "lattice.v1.ChatService", "method": "StreamChat"}


@pytest.mark.slow
async def test_metrics_count_a_known_sequence_of_requests_exactly(observed: tuple[GatewayProcess, int]) -> None:
    gateway, _ = observed
    before = scrape(gateway)
    headers = {"authorization": f"Bearer {API_KEY}"}
    body = {"messages": [{"role": "user", "content": f"Say {PROMPT_MARKER}."}], "max_tokens": 4, "temperature": 0}
    usages = []
    async with httpx.AsyncClient(base_url=gateway.http_url, headers=headers, timeout=120) as client:
        for _ in range(2):
            answer = await client.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200
            usages.append(answer.json()["usage"])
        streamed = await client.post(
            "/v1/chat/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}}
        )
        assert streamed.status_code == 200
        usages.append(next(e for e in sse_events(streamed.text) if e.get("usage"))["usage"])
        missing = await client.post("/v1/chat/completions", json={**body, "model": "no-such-model"})
        assert missing.status_code == 404
        unauthenticated = await client.post(
            "/v1/chat/completions", json=body, headers={"authorization": "Bearer wrong"}
        )
        assert unauthenticated.status_code == 401
    after = scrape(gateway)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    handled = "lattice_grpc_server_handled_total"
    assert grew(handled, **CHAT, code="OK") == 2
    assert grew(handled, **STREAM, code="OK") == 1
    assert grew(handled, **CHAT, code="NOT_FOUND") == 1
    assert grew(handled, **CHAT, code="UNAUTHENTICATED") == 1
    assert grew("lattice_grpc_server_handling_seconds_count", **CHAT) == 4
    http = "lattice_http_requests_total"
    route = {"route": "/v1/chat/completions", "method": "POST"}
    assert (
        grew(http, **route, status="200"),
        grew(http, **route, status="404"),
        grew(http, **route, status="401"),
    ) == (
        3,
        1,
        1,
    )
    assert grew("lattice_time_to_first_token_seconds_count", model=MODEL) == 3
    assert (
        grew("lattice_chats_finished_total", model=MODEL, reason="length")
        + grew("lattice_chats_finished_total", model=MODEL, reason="stop")
        == 3
    )
    assert grew("lattice_prompt_tokens_total", model=MODEL) == sum(u["prompt_tokens"] for u in usages)
    assert grew("lattice_completion_tokens_total", model=MODEL) == sum(u["completion_tokens"] for u in usages)
    assert grew("lattice_queue_wait_seconds_count", model=MODEL) == 3
    assert value(after, "lattice_running_requests", model=MODEL) == 0
    assert value(after, "lattice_model_resident", model=MODEL) == 1
    assert value(after, "lattice_model_loads_total", model=MODEL) == 1


@pytest.mark.slow
def test_the_metrics_port_serves_the_same_registry(observed: tuple[GatewayProcess, int]) -> None:
    _, port = observed
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    assert response.status_code == 200
    samples = parse(response.text)
    # The pinned default model was loaded once, at start; the shim's own requests are in it too.
    assert value(samples, "lattice_model_loads_total", model=MODEL) == 1
    assert any(name == "lattice_http_requests_total" for name, _ in samples)


@pytest.mark.slow
def test_the_gateway_froze_its_startup_heap_and_times_its_full_collections(
    observed: tuple[GatewayProcess, int],
) -> None:
    gateway, _ = observed
    samples = scrape(gateway)
    # Modules, the app, descriptors: well over 50,000 objects the full collections no longer walk.
    assert value(samples, "lattice_gc_frozen_objects") > 50_000
    assert ("lattice_gc_full_collection_seconds_count", frozenset()) in samples
    assert value(samples, "lattice_gc_full_collection_seconds_bucket", le="+Inf") == value(
        samples, "lattice_gc_full_collection_seconds_count"
    )


@pytest.mark.slow
async def test_no_secret_or_prompt_reaches_the_metrics(observed: tuple[GatewayProcess, int]) -> None:
    gateway, port = observed
    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        request = chat_pb2.ChatRequest(
            model=f"role:{PROMPT_MARKER}",
            messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="hi")])],
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Chat(request, metadata=(("x-api-key", API_KEY),))
        with pytest.raises(grpc.aio.AioRpcError):
            await unary(channel, f"/lattice.v1.ChatService/{API_KEY}")(b"", metadata=(("x-api-key", API_KEY),))
    async with httpx.AsyncClient(timeout=30) as client:
        texts = [(await client.get(f"{url}/metrics")).text for url in (gateway.http_url, f"http://127.0.0.1:{port}")]
    for text in texts:
        assert API_KEY not in text
        assert PROMPT_MARKER not in text


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;"
    "q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)
"""What Prometheus 3 sends when it scrapes."""


@pytest.mark.slow
@pytest.mark.parametrize(
    "accept", ["*/*", "text/plain", "application/openmetrics-text; version=1.0.0", PROMETHEUS_ACCEPT]
)
def test_the_shim_answers_in_the_format_asked_for_as_the_metrics_port_does(
    observed: tuple[GatewayProcess, int], accept: str
) -> None:
    # Whichever process answers the shim's /metrics (the gateway's embedded shim, or a shim worker that
    # fetches the gateway's), it is the format the metrics port gives for the same `Accept`.
    gateway, port = observed
    shim, own = (
        httpx.get(f"{url}/metrics", headers={"accept": accept}, timeout=30)
        for url in (gateway.http_url, f"http://127.0.0.1:{port}")
    )
    assert shim.status_code == own.status_code == 200
    assert shim.headers["content-type"] == own.headers["content-type"]
    assert shim.text.endswith("# EOF\n") == own.text.endswith("# EOF\n")  # OpenMetrics' last line
