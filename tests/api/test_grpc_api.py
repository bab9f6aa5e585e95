"""The gRPC contract over a real channel: chat, streaming, resolution, listing, health, errors."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2, resolve_pb2, resolve_pb2_grpc
from tests.rpc_errors import error_info

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"


def user(text: str) -> common_pb2.Message:
    return common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text=text)])


def paris_request(**fields: object) -> chat_pb2.ChatRequest:
    return chat_pb2.ChatRequest(messages=[user("What is the capital of France? Answer in one word.")], **fields)  # type: ignore[arg-type]


async def test_health_is_serving(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "lattice.v1.ChatService", "lattice.v1.ResolveService"):
        request = health_pb2.HealthCheckRequest(service=service)
        reply = await health.Check(request)  # type: ignore[attr-defined]  # typeshed's HealthStub lists no methods
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_chat_answers_and_explains_its_choice(channel: grpc.aio.Channel) -> None:
    call = chat_pb2_grpc.ChatServiceStub(channel).Chat(paris_request(temperature=0, max_tokens=24))
    reply = await call
    assert (("x-lattice-model", MODEL)) in tuple(await call.initial_metadata())
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == MODEL
    assert reply.message.role == common_pb2.ROLE_ASSISTANT
    assert "Paris" in reply.message.content[0].text
    assert reply.finish_reason == common_pb2.FINISH_REASON_STOP
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.resolution.model == MODEL and reply.resolution.backend == "llamacpp"
    assert [c.verdict for c in reply.resolution.candidates] == [common_pb2.CANDIDATE_VERDICT_CHOSEN]


async def test_stream_ends_with_exactly_one_done(channel: grpc.aio.Channel) -> None:
    stream = chat_pb2_grpc.ChatServiceStub(channel).StreamChat(paris_request(temperature=0, max_tokens=24))
    messages = [m async for m in stream]
    kinds = [m.WhichOneof("event") for m in messages]
    assert kinds[-1] == "done" and kinds.count("done") == 1 and set(kinds[:-1]) == {"delta"}
    assert messages[0].delta.role == common_pb2.ROLE_ASSISTANT
    assert len({m.id for m in messages}) == 1
    assert "Paris" in "".join(m.delta.content for m in messages[:-1])
    done = messages[-1].done
    assert done.finish_reason == common_pb2.FINISH_REASON_STOP
    assert done.usage.completion_tokens > 0 and done.resolution.model == MODEL


async def test_max_tokens_ends_with_length(channel: grpc.aio.Channel) -> None:
    reply = await chat_pb2_grpc.ChatServiceStub(channel).Chat(paris_request(temperature=0, max_tokens=3))
    assert reply.finish_reason == common_pb2.FINISH_REASON_LENGTH
    assert reply.usage.completion_tokens == 3


async def test_same_seed_same_text(channel: grpc.aio.Channel) -> None:
    stub = chat_pb2_grpc.ChatServiceStub(channel)
    request = chat_pb2.ChatRequest(
        messages=[user("Write a short poem about the sea.")], temperature=1.0, seed=42, max_tokens=20
    )
    first, second = await stub.Chat(request), await stub.Chat(request)
    other = await stub.Chat(chat_pb2.ChatRequest(messages=request.messages, temperature=1.0, seed=43, max_tokens=20))
    assert first.message.content[0].text == second.message.content[0].text
    assert other.message.content[0].text != first.message.content[0].text


async def test_stop_string_ends_the_answer_and_is_not_emitted(channel: grpc.aio.Channel) -> None:
    stub = chat_pb2_grpc.ChatServiceStub(channel)
    free = await stub.Chat(paris_request(temperature=0, max_tokens=24))
    text = free.message.content[0].text
    assert " is " in text, text  # the stop string below must occur in the unconstrained answer
    stopped = await stub.Chat(paris_request(temperature=0, max_tokens=24, stop=[" is "]))
    assert stopped.message.content[0].text == text[: text.index(" is ")]
    assert stopped.finish_reason == common_pb2.FINISH_REASON_STOP


async def test_the_stop_string_that_ended_the_answer_is_named(channel: grpc.aio.Channel) -> None:
    stub = chat_pb2_grpc.ChatServiceStub(channel)
    natural = await stub.Chat(paris_request(temperature=0, max_tokens=24, stop=["zebra"]))
    assert (natural.finish_reason, natural.stop_sequence) == (common_pb2.FINISH_REASON_STOP, "")
    request = paris_request(temperature=0, max_tokens=24, stop=["zebra", " is "])
    whole = await stub.Chat(request)
    assert (whole.finish_reason, whole.stop_sequence) == (common_pb2.FINISH_REASON_STOP, " is ")
    text = natural.message.content[0].text
    assert whole.message.content[0].text == text[: text.index(" is ")]
    # The gateway stopped the engine itself: the prompt is still counted exactly, the answer up to the stop.
    assert whole.usage.prompt_tokens == natural.usage.prompt_tokens
    assert 0 < whole.usage.completion_tokens < natural.usage.completion_tokens
    messages = [m async for m in stub.StreamChat(request)]
    done = messages[-1].done
    assert (done.finish_reason, done.stop_sequence) == (common_pb2.FINISH_REASON_STOP, " is ")
    assert "".join(m.delta.content for m in messages[:-1]) == whole.message.content[0].text
    assert done.usage == whole.usage


async def test_list_models_pages(channel: grpc.aio.Channel) -> None:
    stub = resolve_pb2_grpc.ResolveServiceStub(channel)
    reply = await stub.ListModels(resolve_pb2.ListModelsRequest(page_size=1))
    assert [m.name for m in reply.models] == [f"models/{MODEL}"]
    assert reply.models[0].context_window == 8192
    assert resolve_pb2.CAPABILITY_CHAT in reply.models[0].capabilities
    assert reply.next_page_token == ""


async def test_resolve_explains_without_running(channel: grpc.aio.Channel) -> None:
    stub = resolve_pb2_grpc.ResolveServiceStub(channel)
    reply = await stub.Resolve(resolve_pb2.ResolveRequest(model="auto"))
    assert reply.resolution.model == MODEL
    assert reply.resolution.expression == "auto"
    assert "default" in reply.resolution.candidates[0].detail


@pytest.mark.parametrize(
    ("request_", "code", "reason"),
    [
        (chat_pb2.ChatRequest(), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        (
            chat_pb2.ChatRequest(model="no-such-model", messages=[user("hi")]),
            grpc.StatusCode.NOT_FOUND,
            "MODEL_NOT_FOUND",
        ),
        (
            chat_pb2.ChatRequest(messages=[common_pb2.Message(role=common_pb2.ROLE_UNSPECIFIED)]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        ),
        (
            chat_pb2.ChatRequest(messages=[user("hi")], temperature=3),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        ),
        (
            chat_pb2.ChatRequest(messages=[user("hi")], top_p=0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        ),
        (
            chat_pb2.ChatRequest(messages=[user("hi")], max_tokens=0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        ),
        (
            chat_pb2.ChatRequest(messages=[user("hi")], max_tokens=8000),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        ),
        (
            chat_pb2.ChatRequest(messages=[user("hello " * 9000)]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "CONTEXT_LENGTH_EXCEEDED",
        ),
        (
            chat_pb2.ChatRequest(messages=[user("hi")], model="lattice:personal:lat_123"),
            grpc.StatusCode.UNAUTHENTICATED,  # a personal runtime answers its own account only
            "API_KEY_MISSING",
        ),
        (
            chat_pb2.ChatRequest(
                messages=[
                    common_pb2.Message(
                        role=common_pb2.ROLE_USER,
                        content=[
                            common_pb2.ContentPart(image_url=common_pb2.ImageUrl(url="data:image/png;base64,AA=="))
                        ],
                    )
                ]
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "NO_MODEL_SATISFIES",
        ),
    ],
)
@pytest.mark.parametrize("method", ["Chat", "StreamChat"])
async def test_bad_requests_get_a_status_with_a_reason(
    channel: grpc.aio.Channel, request_: chat_pb2.ChatRequest, code: grpc.StatusCode, reason: str, method: str
) -> None:
    stub = chat_pb2_grpc.ChatServiceStub(channel)

    async def call() -> None:
        if method == "Chat":
            await stub.Chat(request_, timeout=60)
        else:
            _ = [m async for m in stub.StreamChat(request_, timeout=60)]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call()
    assert caught.value.code() == code, caught.value.details()
    info = error_info(caught.value)
    assert info.reason == reason and info.domain == "lattice"
    assert caught.value.details()


async def test_negative_seeds_are_seeds_too(channel: grpc.aio.Channel) -> None:
    # OpenAI accepts any integer seed; MLX takes only unsigned 64-bit ones.
    stub = chat_pb2_grpc.ChatServiceStub(channel)
    request = chat_pb2.ChatRequest(messages=[user("Name a colour.")], temperature=1.0, seed=-5, max_tokens=8)
    first, second = await stub.Chat(request), await stub.Chat(request)
    assert first.message.content[0].text == second.message.content[0].text
