"""A long prompt against the chat duration limit (issue #22, item 3), through a real gateway: its
processing counts as running (504 `stream_duration_exceeded` when it outlasts the limit, instead of
holding the model for minutes), and once the model's prompt rate is measured, a prompt that would
outlast the limit is refused before it runs (400 `prompt_too_long_for_duration`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.gateway_process import GatewayProcess, start_gateway

pytestmark = pytest.mark.slow

MAX_STREAM_SECONDS = 2
LONG_PROMPT = "x " * 7000  # about 7,000 tokens: minutes of prompt processing on a busy 2-core CPU


@pytest.fixture(scope="module", params=["llamacpp", "mlx"])
def short_lived(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = start_gateway(
        tmp_path_factory.mktemp(f"prompt-duration-{request.param}"),
        LATTICE_MAX_STREAM_SECONDS=str(MAX_STREAM_SECONDS),
        LATTICE_ENGINE=request.param,
    )
    yield process
    process.stop()


def chat(gateway: GatewayProcess, text: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = httpx.post(
        gateway.http_url + "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": text}], "max_tokens": 1},
        timeout=600,
    )
    return answer, time.monotonic() - started


def test_a_long_prompt_is_cut_off_at_the_chat_duration_then_refused_up_front(
    short_lived: GatewayProcess,
) -> None:
    # Unmeasured yet: it runs, and its prompt processing is cut off at the limit (plus one chunk).
    cut, took = chat(short_lived, LONG_PROMPT)
    assert (cut.status_code, cut.json()["error"]["code"]) == (504, "stream_duration_exceeded"), cut.text
    assert took < 60  # generous on a loaded box: the whole prompt takes minutes
    # Measured now: the same prompt is refused before it runs, saying why.
    refused, took = chat(short_lived, LONG_PROMPT)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == ("prompt_too_long_for_duration", "messages")
    assert took < 30
