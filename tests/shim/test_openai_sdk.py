"""The real OpenAI Python SDK against the shim, the real model behind it."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.gateway_process import GatewayProcess

pytestmark = pytest.mark.slow

PARIS: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the capital of France? Answer in one word."}
]
MODEL = "smollm2-135m-instruct"


def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", max_retries=0)


def test_lists_the_default_model(gateway: GatewayProcess) -> None:
    models = client(gateway).models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert models.data[0].owned_by == "HuggingFaceTB"


def test_chat_completion_names_paris(gateway: GatewayProcess) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=MODEL,
        messages=PARIS,
        temperature=0,
        seed=7,
        max_tokens=24,
    )
    completion = raw.parse()
    assert raw.headers["x-lattice-model"] == MODEL
    assert completion.model == MODEL
    assert "Paris" in (completion.choices[0].message.content or "")
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streamed_chat_completion_names_paris(gateway: GatewayProcess) -> None:
    stream = client(gateway).chat.completions.create(
        model=MODEL,
        messages=PARIS,
        temperature=0,
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert "Paris" in text
    assert finishes == ["stop"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    usage = chunks[-1].usage
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_stream_equals_unary_for_greedy_decoding(gateway: GatewayProcess) -> None:
    c = client(gateway)
    whole = c.chat.completions.create(model=MODEL, messages=PARIS, temperature=0, max_tokens=16)
    streamed = c.chat.completions.create(
        model=MODEL,
        messages=PARIS,
        temperature=0,
        max_tokens=16,
        stream=True,
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices)
    assert text == whole.choices[0].message.content


async def test_async_client_unary_and_stream(gateway: GatewayProcess) -> None:
    async with openai.AsyncOpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", max_retries=0) as c:
        completion = await c.chat.completions.create(model="", messages=PARIS, temperature=0, max_tokens=24)
        assert "Paris" in (completion.choices[0].message.content or "")
        stream = await c.chat.completions.create(
            model="default",
            messages=PARIS,
            temperature=0,
            max_tokens=24,
            stream=True,
        )
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
        assert text == completion.choices[0].message.content
