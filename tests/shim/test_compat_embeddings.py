"""`POST /v1/embeddings` (issue #18) driven by the official OpenAI SDK and LangChain's `OpenAIEmbeddings`,
on the real default model (llama.cpp, mean pooling) and through an OpenAI-compatible upstream (the echo
provider); EmbeddingService.Embed over gRPC; OpenAI's error envelope for what is refused, the credential
judged before the body."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import openai
import pytest
from pydantic import SecretStr

from lattice.config import DEFAULT_MODEL_ID, ModelProfile, Settings
from lattice.server.backends.engines import LocalModels
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.profiles import discovered_profile
from lattice.v1 import embeddings_pb2, embeddings_pb2_grpc
from tests.conftest import API_KEY
from tests.envoy_process import EnvoyProcess, run_envoy
from tests.gateway_process import GatewayProcess
from tests.text_api_gateway import text_api_gateway
from tests.vectors import cosine

VECTOR_SIZE = 576
"""SmolLM2-135M's hidden size: the length of its pooled vectors."""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with text_api_gateway(tmp_path_factory.mktemp("embeddings")) as process:
        yield process


@pytest.fixture(scope="module")
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", max_retries=0)


def post(gateway: GatewayProcess, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{gateway.http_url}/v1/embeddings", json=body, headers=headers, timeout=120)


def refused(response: httpx.Response, status: int, code: str | None, param: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param), error
    assert error["message"]
    return dict(error)


@pytest.mark.slow
def test_a_string(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(model="smollm2", input="hello world", encoding_format="float")
    answer = raw.parse()
    assert raw.headers["x-lattice-model"] == DEFAULT_MODEL_ID
    assert answer.object == "list" and answer.model == DEFAULT_MODEL_ID
    (item,) = answer.data
    assert (item.object, item.index, len(item.embedding)) == ("embedding", 0, VECTOR_SIZE)
    assert all(math.isfinite(x) for x in item.embedding)
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > 0
    assert (answer.model_extra or {})["lattice"]["resolution"]["model"] == DEFAULT_MODEL_ID


@pytest.mark.slow
def test_a_list_keeps_its_order_and_each_vector_is_its_inputs_alone(client: openai.OpenAI) -> None:
    texts = ["the cat sat on the mat", "stock markets fell sharply", "hello"]
    together = client.embeddings.create(model="smollm2", input=texts, encoding_format="float")
    assert [d.index for d in together.data] == [0, 1, 2]
    for text, item in zip(texts, together.data, strict=True):
        alone = client.embeddings.create(model="smollm2", input=text, encoding_format="float").data[0]
        assert cosine(alone.embedding, item.embedding) > 0.999


@pytest.mark.slow
def test_base64_is_the_same_vector(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model="smollm2", input="hello world", encoding_format="float").data[0]
    # The SDK asks for base64 when no format is given, and decodes the float32 bytes itself.
    decoded = client.embeddings.create(model="smollm2", input="hello world").data[0]
    assert len(decoded.embedding) == VECTOR_SIZE
    assert decoded.embedding == pytest.approx(floats.embedding, abs=1e-6)
    raw = post_json(client, {"model": "smollm2", "input": "hello world", "encoding_format": "base64"})
    assert isinstance(raw["data"][0]["embedding"], str)


def post_json(client: openai.OpenAI, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{client.base_url}embeddings", json=body, timeout=120)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.slow
def test_token_arrays(client: openai.OpenAI) -> None:
    one = client.embeddings.create(model="smollm2", input=[1, 2, 3], encoding_format="float")
    assert len(one.data) == 1 and len(one.data[0].embedding) == VECTOR_SIZE
    assert one.usage.prompt_tokens == 3
    several = client.embeddings.create(model="smollm2", input=[[1, 2, 3], [4, 5]], encoding_format="float")
    assert len(several.data) == 2 and several.usage.prompt_tokens == 5
    assert several.data[0].embedding == pytest.approx(one.data[0].embedding, abs=1e-4)


@pytest.mark.slow
def test_paraphrases_are_closer_than_an_unrelated_sentence(client: openai.OpenAI) -> None:
    texts = [
        "The weather is lovely and sunny today.",
        "Today it is sunny and the weather is nice.",
        "The invoice must be paid within thirty days.",
    ]
    a, b, c = (d.embedding for d in client.embeddings.create(model="smollm2", input=texts).data)
    assert cosine(a, b) > cosine(a, c)
    assert cosine(a, b) > cosine(b, c)


@pytest.mark.slow
def test_dimensions_is_refused_by_the_llamacpp_engine(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refusal:
        client.embeddings.create(model="smollm2", input="hello", dimensions=8)
    assert refusal.value.param == "dimensions"
    assert "dimensions" in refusal.value.message


@pytest.mark.slow
@pytest.mark.parametrize("model", ["echo-chat", "echo-1"])
def test_a_model_that_cannot_embed_is_refused_naming_what_can(client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as refusal:
        client.embeddings.create(model=model, input="hello")
    assert refusal.value.code == "no_model_satisfies"
    assert "embeddings" in refusal.value.message


@pytest.mark.slow
def test_the_embeddings_capability_term_picks_a_model_that_embeds(client: openai.OpenAI) -> None:
    answer = client.embeddings.create(model="echo*+embeddings", input="hello", encoding_format="float")
    assert answer.model == "echo-embed"


@pytest.mark.slow
def test_a_personal_runtime_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refusal:
        client.embeddings.create(model="lattice:personal:lat_abc", input="hello")
    assert refusal.value.code == "no_model_satisfies"


@pytest.mark.slow
def test_an_openai_compatible_upstream(client: openai.OpenAI) -> None:
    answer = client.embeddings.create(model="echo-embed", input=["abc", "hello"], encoding_format="float")
    assert answer.model == "echo-embed"
    assert [d.embedding[0] for d in answer.data] == [3.0, 5.0]  # the echo provider's vector: the input's length
    assert answer.usage.prompt_tokens == 8
    # An upstream takes `dimensions`; the SDK's default (base64) is decoded from what the shim encodes.
    shortened = client.embeddings.create(model="echo-embed", input=[[1, 2, 3, 4]], dimensions=4)
    assert shortened.data[0].embedding == [4.0, 1.0, 1.0, 1.0]


@pytest.mark.slow
def test_langchain_openai_embeddings(gateway: GatewayProcess) -> None:
    from langchain_openai import OpenAIEmbeddings

    # check_embedding_ctx_length=False: send the texts as they are (no tiktoken, whose files are fetched).
    embeddings = OpenAIEmbeddings(
        model="smollm2",
        base_url=f"{gateway.http_url}/v1",
        api_key=SecretStr("unused"),
        check_embedding_ctx_length=False,
    )
    documents = embeddings.embed_documents(["Paris is the capital of France.", "Bananas are yellow."])
    query = embeddings.embed_query("What is the capital of France?")
    assert [len(v) for v in documents] == [VECTOR_SIZE, VECTOR_SIZE] and len(query) == VECTOR_SIZE
    assert cosine(query, documents[0]) > cosine(query, documents[1])


@pytest.mark.slow
async def test_grpc_embed(gateway: GatewayProcess) -> None:
    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        stub = embeddings_pb2_grpc.EmbeddingServiceStub(channel)
        inputs = [
            embeddings_pb2.EmbedInput(text="hello"),
            embeddings_pb2.EmbedInput(tokens=embeddings_pb2.TokenIds(ids=[1, 2, 3])),
        ]
        call = stub.Embed(embeddings_pb2.EmbedRequest(model="smollm2", inputs=inputs))
        answer = await call
        assert answer.model == DEFAULT_MODEL_ID
        assert [e.index for e in answer.embeddings] == [0, 1]
        assert all(len(e.values) == VECTOR_SIZE for e in answer.embeddings)
        assert answer.usage.prompt_tokens == answer.usage.total_tokens > 3
        assert answer.resolution.model == DEFAULT_MODEL_ID
        with pytest.raises(grpc.aio.AioRpcError) as refusal:
            await stub.Embed(embeddings_pb2.EmbedRequest(model="smollm2"))
        assert refusal.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.slow
def test_embeddings_are_counted_in_the_metrics(gateway: GatewayProcess, client: openai.OpenAI) -> None:
    client.embeddings.create(model="smollm2", input="count me")
    exposition = httpx.get(f"{gateway.http_url}/metrics", timeout=30).text
    assert f'lattice_embedding_requests_total{{model="{DEFAULT_MODEL_ID}"}}' in exposition


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"input": 5}, "invalid_type", "input"),
        ({"input": ["a", 1]}, "invalid_type", "input[1]"),
        ({"input": "a", "encoding_format": "hex"}, "invalid_value", "encoding_format"),
        ({"input": "a", "dimensions": "3"}, "invalid_type", "dimensions"),
        ({"input": "a", "dimensions": 0}, "invalid_value", "dimensions"),
        ({"input": "a", "model": 3}, "invalid_type", "model"),
        ({"model": "smollm2"}, "missing_required_parameter", "input"),
        ({"input": []}, "invalid_argument", "input"),
        ({"input": [""]}, "invalid_argument", "input"),
        ({"input": [-1]}, "invalid_value", "input[0]"),
    ],
)
def test_bad_bodies_get_openais_envelope(gateway: GatewayProcess, body: Any, code: str, param: str) -> None:
    refused(post(gateway, body), 400, code, param)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    # Its own home, so its store (metering) starts empty.
    home = tmp_path_factory.mktemp("keyed-embeddings")
    with text_api_gateway(home, LATTICE_API_KEY=API_KEY, LATTICE_HOME=str(home)) as process:
        yield process


@pytest.mark.slow
@pytest.mark.parametrize("body", [{"input": 5}, {}, {"input": []}])
def test_the_credential_is_judged_before_the_body(keyed: GatewayProcess, body: Any) -> None:
    for headers in ({}, {"x-api-key": "wrong"}):
        response = post(keyed, body, headers)
        assert response.status_code == 401, response.text
    assert post(keyed, body, {"x-api-key": API_KEY}).status_code == 400


def test_which_engines_and_upstream_models_embed(tmp_path: pathlib.Path) -> None:
    local = LocalModels(Settings(home=tmp_path), MlxWorker())
    llamacpp = local.profile(ModelProfile(id="a", engine="llamacpp"))
    mlx = local.profile(ModelProfile(id="b", engine="mlx"))
    assert {"embeddings", "completions"} <= set(llamacpp.capabilities)
    assert not {"embeddings", "completions"} & set(mlx.capabilities)
    embedder = discovered_profile("text-embedding-3-small", backend="openai", upstream="u", owned_by="u", patterns=())
    assert embedder.capabilities == ("embeddings",)
    chat = discovered_profile("some-chat-model", backend="openai", upstream="u", owned_by="u", patterns=())
    assert "completions" in chat.capabilities and "embeddings" not in chat.capabilities
    claude = discovered_profile("claude-3-5-haiku", backend="anthropic", upstream="u", owned_by="u", patterns=())
    assert not {"embeddings", "completions"} & set(claude.capabilities)


@pytest.fixture(scope="module")
def text_envoy(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProcess]:
    yield from run_envoy(gateway, tmp_path_factory.mktemp("embeddings-envoy"))


@pytest.mark.slow
def test_envoy_transcodes_embed(text_envoy: EnvoyProcess) -> None:
    body = {"model": "smollm2", "inputs": [{"text": "hello"}, {"tokens": {"ids": [1, 2, 3]}}]}
    response = httpx.post(f"{text_envoy.url}/v1/embeddings:create", json=body, timeout=60)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [len(e["values"]) for e in answer["embeddings"]] == [VECTOR_SIZE, VECTOR_SIZE]
    assert answer["usage"]["promptTokens"] == answer["usage"]["totalTokens"]


@pytest.mark.slow
def test_an_input_longer_than_the_engine_embeds_at_once_is_a_400_naming_input(gateway: GatewayProcess) -> None:
    # llama.cpp embeds an input in one physical batch (`llamacpp_batch_tokens`, 256 by default).
    response = post(gateway, {"model": "smollm2", "input": ["short", "word " * 300]})
    error = refused(response, 400, "context_length_exceeded", "input")
    assert "llamacpp_batch_tokens" in error["message"]


@pytest.mark.slow
def test_embeddings_and_text_completions_are_metered_as_chats_are(keyed: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=f"{keyed.http_url}/v1", api_key=API_KEY, max_retries=0)
    embedded = client.embeddings.create(model="smollm2", input=["one", "two three"]).usage
    completed = client.completions.create(model="smollm2", prompt="Once upon a time", max_tokens=3).usage
    assert completed is not None
    usage = httpx.get(f"{keyed.http_url}/v1/usage?groupBy=model", headers={"x-api-key": API_KEY}, timeout=30).json()
    (own,) = [g for g in usage["groups"] if g.get("model") == DEFAULT_MODEL_ID]
    assert int(own["requests"]) == 2 and int(own.get("failedRequests", 0)) == 0  # proto3 JSON omits zeros
    assert int(own["promptTokens"]) == embedded.prompt_tokens + completed.prompt_tokens
    assert int(own["completionTokens"]) == completed.completion_tokens == 3


@pytest.mark.slow
async def test_the_python_sdk_embeds(gateway: GatewayProcess) -> None:
    from lattice_client import ComputeClient, NoModelSatisfiesError

    async with ComputeClient(gateway.grpc_target) as compute:
        answer = await compute.embed("smollm2", inputs=["hello", [1, 2, 3]])
        assert answer.model == DEFAULT_MODEL_ID
        assert [len(v) for v in answer.vectors] == [VECTOR_SIZE, VECTOR_SIZE]
        assert answer.usage.prompt_tokens > 3 and answer.resolution is not None
        with pytest.raises(NoModelSatisfiesError):
            await compute.embed("echo-chat", inputs=["hello"])
