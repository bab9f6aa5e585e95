"""`POST /v1/completions` (OpenAI's legacy text completions, issue #18) driven by the official OpenAI SDK on
the real default model (llama.cpp, the prompt raw: no chat template) and through an OpenAI-compatible
upstream (the echo provider), stream and not; CompletionService over gRPC; OpenAI's error envelope for
what is refused, the credential judged before the body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import openai
import pytest

from lattice.config import DEFAULT_MODEL_ID
from lattice.v1 import common_pb2, completions_pb2, completions_pb2_grpc
from tests.conftest import API_KEY
from tests.envoy_process import EnvoyProcess, run_envoy
from tests.gateway_process import GatewayProcess
from tests.text_api_gateway import text_api_gateway

pytestmark = pytest.mark.slow

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with text_api_gateway(tmp_path_factory.mktemp("completions")) as process:
        yield process


@pytest.fixture(scope="module")
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", max_retries=0)


def post(gateway: GatewayProcess, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{gateway.http_url}/v1/completions", json=body, headers=headers, timeout=120)


def test_a_completion(client: openai.OpenAI) -> None:
    raw = client.completions.with_raw_response.create(model="smollm2", prompt=PROMPT, max_tokens=8, temperature=0)
    answer = raw.parse()
    assert raw.headers["x-lattice-model"] == DEFAULT_MODEL_ID
    assert answer.object == "text_completion" and answer.model == DEFAULT_MODEL_ID and answer.id.startswith("cmpl-")
    (choice,) = answer.choices
    assert "Paris" in choice.text
    assert choice.finish_reason == "length"  # 8 tokens: the model goes on past the answer
    assert answer.usage is not None and answer.usage.completion_tokens == 8
    # Raw: the five tokens of the prompt, not the dozens a chat template would add.
    assert answer.usage.prompt_tokens < 10
    assert (answer.model_extra or {})["lattice"]["resolution"]["model"] == DEFAULT_MODEL_ID


def test_the_stream_says_what_the_answer_says(client: openai.OpenAI) -> None:
    whole = client.completions.create(model="smollm2", prompt=PROMPT, max_tokens=8, temperature=0)
    chunks = list(
        client.completions.create(
            model="smollm2",
            prompt=PROMPT,
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "text_completion" for c in chunks)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8


def test_a_stop_sequence_ends_the_text_before_it(client: openai.OpenAI) -> None:
    answer = client.completions.create(model="smollm2", prompt=PROMPT, max_tokens=16, temperature=0, stop=["."])
    assert answer.choices[0].text.strip() == "Paris"
    assert answer.choices[0].finish_reason == "stop"


def test_max_tokens_ends_with_length_and_unset_is_openais_16(client: openai.OpenAI) -> None:
    short = client.completions.create(model="smollm2", prompt="Once upon a time", max_tokens=3, temperature=0)
    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None and short.usage.completion_tokens == 3
    unset = client.completions.create(model="smollm2", prompt="Once upon a time", temperature=0)
    assert unset.usage is not None and unset.usage.completion_tokens <= 16


@pytest.mark.parametrize("stream", [False, True])
def test_echo_puts_the_prompt_first(client: openai.OpenAI, stream: bool) -> None:
    if stream:
        chunks = client.completions.create(
            model="smollm2", prompt=PROMPT, max_tokens=4, temperature=0, echo=True, stream=True
        )
        text = "".join(c.choices[0].text for c in chunks if c.choices)
    else:
        answer = client.completions.create(model="smollm2", prompt=PROMPT, max_tokens=4, temperature=0, echo=True)
        text = answer.choices[0].text
    assert text.startswith(PROMPT) and len(text) > len(PROMPT)


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"logprobs": 1}, "logprobs"),
        ({"n": 2}, "n"),
        ({"best_of": 2}, "best_of"),
        ({"suffix": "!"}, "suffix"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
    ],
)
def test_what_is_not_served_is_refused_naming_it(client: openai.OpenAI, options: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as refusal:
        client.completions.create(model="smollm2", prompt=PROMPT, max_tokens=2, **options)
    assert refusal.value.param == param


def test_several_prompts_are_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refusal:
        client.completions.create(model="smollm2", prompt=["a", "b"], max_tokens=2)
    assert refusal.value.param == "prompt"
    one = client.completions.create(model="smollm2", prompt=[PROMPT], max_tokens=2, temperature=0)
    assert one.choices[0].text


@pytest.mark.parametrize("model", ["echo-chat", "echo-embed"])
def test_a_model_that_cannot_complete_text_is_refused(client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as refusal:
        client.completions.create(model=model, prompt=PROMPT, max_tokens=2)
    assert refusal.value.code == "no_model_satisfies"
    assert "completions" in refusal.value.message


def test_a_personal_runtime_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refusal:
        client.completions.create(model="lattice:personal:lat_abc", prompt=PROMPT, max_tokens=2)
    assert refusal.value.code == "no_model_satisfies"


@pytest.mark.parametrize("stream", [False, True])
def test_an_openai_compatible_upstream(client: openai.OpenAI, stream: bool) -> None:
    prompt = "one two three"
    if stream:
        chunks = list(client.completions.create(model="echo-1", prompt=prompt, max_tokens=5, stream=True))
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        assert chunks[-1].choices[0].finish_reason == "stop"
    else:
        answer = client.completions.create(model="echo-1", prompt=prompt, max_tokens=5)
        text = answer.choices[0].text
        assert answer.usage is not None and answer.usage.prompt_tokens == 3
    assert text == prompt  # the echo provider continues a prompt with itself


async def test_grpc_complete_and_stream_complete(gateway: GatewayProcess) -> None:
    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        stub = completions_pb2_grpc.CompletionServiceStub(channel)
        request = completions_pb2.CompleteRequest(model="smollm2", prompt=PROMPT, max_tokens=8, temperature=0)
        whole = await stub.Complete(request)
        assert whole.model == DEFAULT_MODEL_ID and "Paris" in whole.text
        assert whole.finish_reason == common_pb2.FINISH_REASON_LENGTH
        assert whole.resolution.model == DEFAULT_MODEL_ID
        messages = [m async for m in stub.StreamComplete(request)]
        assert "".join(m.text for m in messages) == whole.text
        assert messages[-1].WhichOneof("event") == "done"
        assert messages[-1].done.usage.completion_tokens == 8
        with pytest.raises(grpc.aio.AioRpcError) as refusal:
            await stub.Complete(completions_pb2.CompleteRequest(model="smollm2"))
        assert refusal.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"prompt": PROMPT, "stream": "yes"}, "invalid_type", "stream"),
        ({"prompt": PROMPT, "max_tokens": "3"}, "invalid_type", "max_tokens"),
        ({"prompt": PROMPT, "temperature": "0.5"}, "invalid_type", "temperature"),
        ({"prompt": PROMPT, "echo": "true"}, "invalid_type", "echo"),
        ({"prompt": PROMPT, "n": True}, "invalid_type", "n"),
        ({"prompt": 5}, "invalid_type", "prompt"),
        ({}, "missing_required_parameter", "prompt"),
        ({"prompt": ""}, "invalid_argument", "prompt"),
        ({"prompt": PROMPT, "max_tokens": 0}, "invalid_argument", "max_tokens"),
    ],
)
def test_bad_bodies_get_openais_envelope(gateway: GatewayProcess, body: Any, code: str, param: str) -> None:
    response = post(gateway, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param), error


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with text_api_gateway(tmp_path_factory.mktemp("keyed-completions"), LATTICE_API_KEY=API_KEY) as process:
        yield process


@pytest.mark.parametrize("body", [{"prompt": 5}, {}, {"prompt": PROMPT, "logprobs": 1}, {"prompt": ""}])
def test_the_credential_is_judged_before_the_body(keyed: GatewayProcess, body: Any) -> None:
    for headers in ({}, {"x-api-key": "wrong"}):
        response = post(keyed, body, headers)
        assert response.status_code == 401, response.text
    assert post(keyed, body, {"x-api-key": API_KEY}).status_code == 400


@pytest.fixture(scope="module")
def text_envoy(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProcess]:
    yield from run_envoy(gateway, tmp_path_factory.mktemp("completions-envoy"))


def test_envoy_transcodes_both_rpcs(text_envoy: EnvoyProcess) -> None:
    body = {"model": "smollm2", "prompt": PROMPT, "maxTokens": 8, "temperature": 0}
    whole = httpx.post(f"{text_envoy.url}/v1/text:complete", json=body, timeout=60)
    assert whole.status_code == 200, whole.text
    assert "Paris" in whole.json()["text"] and whole.json()["finishReason"] == "FINISH_REASON_LENGTH"
    with httpx.stream("POST", f"{text_envoy.url}/v1/text:stream", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        events = [json.loads(line.removeprefix("data: ")) for line in response.iter_lines() if line]
    *pieces, last = events
    assert "".join(p["text"] for p in pieces) == whole.json()["text"]
    assert last["done"]["usage"]["completionTokens"] == 8


def test_a_prompt_past_the_context_window_is_a_400_naming_prompt(gateway: GatewayProcess) -> None:
    response = post(gateway, {"model": "smollm2", "prompt": "word " * 9000, "max_tokens": 2})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("context_length_exceeded", "prompt"), error
