"""Model residency on the real in-process backends (MLX and llama.cpp): LRU eviction, pinning, single-flight
loads, refusals."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

import pytest

from lattice.config import ModelProfile
from lattice.errors import BackendUnavailable
from lattice.server.backends.base import GenerationLimits
from lattice.server.backends.llamacpp.backend import LlamaCppBackend
from lattice.server.backends.llamacpp.engine import EngineOptions
from lattice.server.backends.mlx.backend import MlxBackend
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.backends.residency import Residency
from lattice.server.chat import ChatRequest, Delta, Message, Role, Sampling, TextPart
from tests.gateway_process import TEST_HOME

pytestmark = pytest.mark.slow

HI = ChatRequest("", (Message(Role.USER, (TextPart("Say hi."),)),), max_tokens=2, sampling=Sampling(temperature=0))
LIMITS = GenerationLimits(max_tokens_ceiling=64)


@pytest.fixture(scope="module")
async def worker() -> AsyncIterator[MlxWorker]:
    worker = MlxWorker(name="test-residency")
    yield worker
    worker.stop()


InProcess = MlxBackend | LlamaCppBackend
Make = Callable[..., InProcess]
"""(residency, model id, pinned=…, **profile fields) → a backend of the engine under test."""


@pytest.fixture(params=["mlx", "llamacpp"])
def backend(request: pytest.FixtureRequest, worker: MlxWorker) -> Make:
    def make(residency: Residency, model_id: str, *, pinned: bool = False, **profile: object) -> InProcess:
        model = ModelProfile(id=model_id, **profile)  # type: ignore[arg-type]
        if request.param == "llamacpp":
            options = EngineOptions(threads=1, parallel=4, context_tokens=2048, batch_tokens=256)
            return LlamaCppBackend(model, options=options, residency=residency, pinned=pinned)
        return MlxBackend(
            model,
            cache_dir=TEST_HOME / "models",
            weights="float32",
            worker=worker,
            max_batch=4,
            residency=residency,
            pinned=pinned,
        )

    return make


async def ask(model: InProcess) -> str:
    async with aclosing(model.stream(ModelProfile(id=model.model_id), HI, LIMITS)) as events:
        return "".join([e.text async for e in events if isinstance(e, Delta)])


async def test_the_least_recently_used_idle_model_is_evicted(backend: Make) -> None:
    residency = Residency(max_resident=2)
    a, b, c = (backend(residency, name) for name in "abc")
    await ask(a)
    await ask(b)
    await ask(a)  # a is now the most recently used
    await ask(c)
    assert residency.resident == ["a", "c"]
    assert not b.resident
    assert (a.loads, b.loads, c.loads) == (1, 1, 1)


async def test_pinned_models_load_at_start_and_stay(backend: Make) -> None:
    residency = Residency(max_resident=1)
    pinned, other = backend(residency, "pinned", pinned=True), backend(residency, "other")
    await pinned.start()
    await other.start()
    assert pinned.resident
    assert not other.resident  # unpinned models load on first use
    with pytest.raises(BackendUnavailable) as caught:
        await ask(other)
    assert caught.value.reason == "NO_ROOM_TO_LOAD"
    assert pinned.resident


async def test_concurrent_requests_for_a_cold_model_load_it_once(backend: Make) -> None:
    residency = Residency(max_resident=2)
    cold = backend(residency, "cold")
    answers = await asyncio.gather(*(ask(cold) for _ in range(3)))
    assert cold.loads == 1
    assert all(answers)


async def test_a_busy_model_is_not_evicted(backend: Make) -> None:
    residency = Residency(max_resident=1)
    busy, waiting = backend(residency, "busy"), backend(residency, "waiting")
    long = ChatRequest("", HI.messages, max_tokens=64)
    async with aclosing(busy.stream(ModelProfile(id="busy"), long, LIMITS)) as events:
        await anext(events)
        with pytest.raises(BackendUnavailable, match="pinned or busy"):
            await ask(waiting)
    await ask(waiting)  # once idle, it gives way
    assert residency.resident == ["waiting"]


async def test_a_load_failure_is_unavailable_with_the_reason(backend: Make, tmp_path: pathlib.Path) -> None:
    broken = backend(Residency(max_resident=2), "broken", gguf_path=tmp_path / "missing.gguf")
    with pytest.raises(BackendUnavailable) as caught:
        await ask(broken)
    assert caught.value.reason == "MODEL_LOAD_FAILED"
    assert "missing.gguf" in caught.value.message
