"""The Python SDK (`clients/python/lattice_client`) against a live gateway: the personal-runtime
walkthrough in code, chats on capability expressions, structured errors, API keys and OAuth access
tokens, retries (after a QUEUE_FULL, and never once a stream has started), the sync client, and the
package installed alone. The gateway runs with tiny admission caps (one chat per personal runtime,
no queue), so a second chat on a busy runtime is refused at once; daemons run their work on the echo
provider, whose answers are known exactly."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pathlib
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from lattice_client import (
    AccessTokenExpiredError,
    ApiKey,
    ApiKeyInvalidError,
    ApiKeyMissingError,
    AuthenticationError,
    ChatMessage,
    ComputeClient,
    ImageUrl,
    InsufficientScopesError,
    LatticeError,
    MessageParam,
    ModelNotFoundError,
    NoModelSatisfiesError,
    NotFoundError,
    OAuthToken,
    PermissionDeniedError,
    PersonalRuntime,
    QueueFullError,
    ResourceExhaustedError,
    RetryPolicy,
    RuntimeNotFoundError,
    RuntimeRevokedError,
    RuntimeUnreachableError,
    SyncComputeClient,
    UnavailableError,
)
from lattice_client._errors import CODES, REASONS, make_error
from lattice_client._retry import Attempts
from lattice_client._status import decode_status_details

from lattice.errors import QueueFull
from lattice.server.services.status import to_rpc_status
from tests.gateway_process import REPO, GatewayProcess, start_gateway
from tests.personal_runtime_fixtures import (
    BOTH_SCOPES,
    Daemon,
    EchoProvider,
    access_token,
    create_key,
    gateway_env,
    oauth_env,
    wait_for,
)
from tests.vectors import cosine

INFERENCE = "lattice:compute:inference"
MANAGE = "lattice:compute:personal_runtime:manage"
# A prompt the echo provider answers one word every 0.2 s: 40 words hold a runtime's one slot for ~8 s.
SLOW_PROMPT = "slow: " + " ".join(f"word{i}" for i in range(40))
PACED_PROMPT = "slow: Stream it word by word."  # six words, 0.2 s apart
PATIENT = RetryPolicy(max_attempts=100, max_delay=30, max_elapsed=120)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("sdk-db")
    return {
        **gateway_env(directory),
        "LATTICE_RELAY_MAX_IN_FLIGHT": "1",
        "LATTICE_QUEUE_SIZE": "0",
        **oauth_env(directory),
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("sdk"), **env)
    yield process
    process.stop()


@pytest.fixture
async def compute(gateway: GatewayProcess, env: dict[str, str]) -> AsyncIterator[ComputeClient]:
    """A client of a new account's key with both scopes."""
    async with ComputeClient(target=gateway.grpc_target, credential=ApiKey(create_key(env, new_account()))) as client:
        yield client


_accounts = itertools.count()


def new_account() -> str:
    return f"acct_sdk{next(_accounts)}"


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Polls `check` until it holds; fails (never hangs) after a generous minute."""
    deadline = time.monotonic() + 60
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting, after 60 s, for {what}")
        await asyncio.sleep(0.1)


def start_daemon(
    gateway: GatewayProcess, home: pathlib.Path, lattice_id: str, token: str, echo: EchoProvider, daemons: list[Daemon]
) -> Daemon:
    """`lattice-ctl relay connect` with the token, then `lattice-ctl daemon start`, as on the user's machine."""
    daemon = Daemon(home, lattice_id)
    connect = ("relay", "connect", "--gateway", gateway.http_url, "--bootstrap-token", token)
    daemon.ctl(*connect, "--provider-url", echo.url)
    daemons.append(daemon)
    started = daemon.ctl("daemon", "start", "--max-backoff-seconds", "1", check=False)
    assert started.returncode == 0, started.stdout + started.stderr + daemon.log()
    return daemon


async def paired_runtime(
    compute: ComputeClient, gateway: GatewayProcess, home: pathlib.Path, echo: EchoProvider, daemons: list[Daemon]
) -> PersonalRuntime:
    """A runtime made, paired and started with the SDK and `lattice-ctl`, running work on the echo provider."""
    runtime = await compute.personal_runtimes.create("test machine")
    token = await compute.personal_runtimes.create_bootstrap_token(runtime)
    start_daemon(gateway, home, runtime.lattice_id, token.token, echo, daemons)

    async def reachable() -> bool:
        return (await compute.personal_runtimes.get(runtime)).reachable

    await eventually(reachable, "the runtime to be reachable")
    return runtime


@pytest.mark.slow
async def test_the_walkthrough_in_code(
    compute: ComputeClient,
    gateway: GatewayProcess,
    echo: EchoProvider,
    tmp_path: pathlib.Path,
    daemons: list[Daemon],
) -> None:
    runtime = await compute.personal_runtimes.create("Mac Studio in the office", execution_backend="local-model")
    assert runtime.lattice_id.startswith("lat_") and runtime.account_id.startswith("acct_sdk")
    assert (runtime.display_name, runtime.execution_backend, runtime.status) == (
        "Mac Studio in the office",
        "local-model",
        "unpaired",
    )
    assert runtime.model == f"lattice:personal:{runtime.lattice_id}"
    assert await compute.list_reachable_personal_runtimes() == []

    token = await compute.personal_runtimes.create_bootstrap_token(runtime, ttl_seconds=600)
    assert token.token.startswith("plrt_v1_") and token.lattice_id == runtime.lattice_id
    assert token.expires_at is not None and token.expires_at.tzinfo is not None
    assert token.token not in repr(token)  # a secret: a repr (in a log line, a traceback) never shows it
    assert token.command.startswith("lattice-ctl relay connect")

    daemon = start_daemon(gateway, tmp_path / "ctl", runtime.lattice_id, token.token, echo, daemons)

    async def one_reachable() -> bool:
        return len(await compute.list_reachable_personal_runtimes()) == 1

    await eventually(one_reachable, "the paired runtime to be listed as reachable")
    [reachable] = await compute.list_reachable_personal_runtimes()
    assert (reachable.lattice_id, reachable.status) == (runtime.lattice_id, "reachable")

    completion = await compute.chat_complete_for_personal_runtime(
        reachable, messages=[{"role": "user", "content": "Summarize this document."}]
    )
    assert completion.choices[0].message.content == "Summarize this document."  # the echo provider's answer
    assert completion.choices[0].message.role == "assistant" and completion.choices[0].finish_reason == "stop"
    assert completion.model == runtime.model and completion.text == "Summarize this document."
    assert completion.usage.completion_tokens > 0
    assert completion.resolution is not None and completion.resolution.backend == "relay"

    chunks = [
        chunk
        async for chunk in compute.chat_stream_for_personal_runtime(
            runtime, messages=[{"role": "user", "content": PACED_PROMPT}]
        )
    ]
    assert "".join(c.content for c in chunks) == PACED_PROMPT
    # Streamed as the provider sent it, not in one piece. The provider paces its words 0.2 s apart:
    # words written at once may arrive as one delta, since the gateway joins what one read hands over.
    assert len([c for c in chunks if c.content]) > 1
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is not None
    assert [c for c in chunks if c.finish_reason] == [chunks[-1]]

    revoked = await compute.personal_runtimes.revoke(runtime)
    assert revoked.status == "revoked" and (await compute.personal_runtimes.get(runtime)).status == "revoked"
    assert [r.lattice_id for r in await compute.personal_runtimes.list()] == [runtime.lattice_id]
    assert await compute.list_reachable_personal_runtimes() == []
    wait_for(lambda: daemon.ctl("daemon", "status", check=False).returncode == 1, "the refused daemon to exit")
    with pytest.raises(RuntimeRevokedError) as refused:
        await compute.chat_complete_for_personal_runtime(runtime, messages=[{"role": "user", "content": "hi"}])
    assert (refused.value.reason, refused.value.code) == ("RUNTIME_REVOKED", "PERMISSION_DENIED")
    assert isinstance(refused.value, PermissionDeniedError) and not refused.value.retryable
    with pytest.raises(RuntimeRevokedError):
        await compute.personal_runtimes.create_bootstrap_token(runtime)


@pytest.mark.slow
async def test_any_model_expression(compute: ComputeClient) -> None:
    """The gateway's own model, reached by a capability expression: a priority list whose first
    entry matches nothing here (no model has the coder role), so the second answers."""
    resolution = await compute.resolve("role:coder,role:fast")
    assert (resolution.expression, resolution.model, resolution.backend) == (
        "role:coder,role:fast",
        "smollm2-135m-instruct",
        "llamacpp",
    )
    assert (resolution.candidates[0].model, resolution.candidates[0].verdict) == ("smollm2-135m-instruct", "chosen")
    assert "smollm2-135m-instruct" in [m.id for m in await compute.list_models()]

    question: list[MessageParam] = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    completion = await compute.chat_complete("role:fast", messages=question, max_tokens=8, temperature=0)
    assert completion.model == "smollm2-135m-instruct" and completion.text
    assert completion.resolution is not None and completion.resolution.expression == "role:fast"
    assert completion.choices[0].finish_reason in ("stop", "length") and completion.usage.completion_tokens <= 8
    streamed = compute.chat_stream("role:fast", messages=question, max_tokens=8, temperature=0)
    async with streamed:
        text = "".join([chunk.content async for chunk in streamed])
    assert text == completion.text  # greedy: the same answer, streamed

    # The assistant's message goes back into the conversation as it is.
    follow_up = [
        ChatMessage("user", "What is the capital of France? Answer in one word."),
        completion.choices[0].message,
    ]
    follow_up.append(ChatMessage("user", "And of Italy?"))
    assert (await compute.chat_complete("smollm2", messages=follow_up, max_tokens=4, temperature=0)).text


PARAPHRASES = ("The weather is lovely and sunny today.", "Today it is sunny and the weather is nice.")
UNRELATED = "The invoice must be paid within thirty days."
PROMPT = "The capital of France is"


@pytest.mark.slow
async def test_embeddings_put_paraphrases_closer_than_an_unrelated_sentence(compute: ComputeClient) -> None:
    answer = await compute.embed("smollm2", inputs=[*PARAPHRASES, UNRELATED])
    a, b, c = answer.vectors
    assert cosine(a, b) > cosine(a, c) and cosine(a, b) > cosine(b, c)
    assert answer.model == "smollm2-135m-instruct" and len({len(a), len(b), len(c)}) == 1
    assert answer.usage.prompt_tokens > 0 and answer.resolution is not None
    assert answer.resolution.expression == "smollm2"


@pytest.mark.slow
async def test_a_text_completion_whole_and_streamed(compute: ComputeClient) -> None:
    whole = await compute.complete("smollm2", prompt=PROMPT, max_tokens=8, temperature=0)
    assert whole.model == "smollm2-135m-instruct" and whole.id.startswith("cmpl-")
    assert whole.text.strip() and whole.finish_reason in ("stop", "length")
    assert 0 < whole.usage.completion_tokens <= 8
    assert whole.usage.prompt_tokens < 10  # the prompt raw: no chat template around it
    assert whole.resolution is not None and whole.resolution.model == whole.model and whole.created is not None

    async with compute.complete_stream("smollm2", prompt=PROMPT, max_tokens=8, temperature=0) as stream:
        chunks = [chunk async for chunk in stream]
    text = "".join(c.text for c in chunks)
    assert text.strip() and text == whole.text  # greedy: the same continuation, streamed
    done = chunks[-1]
    assert [c for c in chunks if c.finish_reason] == [done] and done.finish_reason == whole.finish_reason
    assert done.usage is not None and done.usage.completion_tokens == whole.usage.completion_tokens
    assert done.resolution is not None and done.resolution.model == whole.model
    assert {c.id for c in chunks} == {done.id} and done.id.startswith("cmpl-")


@pytest.mark.slow
async def test_an_unknown_model_is_model_not_found_for_embed_and_complete(compute: ComputeClient) -> None:
    async def streamed() -> None:
        async with compute.complete_stream("no-such-model", prompt=PROMPT, max_tokens=4) as stream:
            async for _ in stream:
                pass

    for call in (
        compute.embed("no-such-model", inputs=["hello"]),
        compute.complete("no-such-model", prompt=PROMPT, max_tokens=4),
        streamed(),
    ):
        with pytest.raises(ModelNotFoundError) as not_found:
            await call
        error = not_found.value
        assert (error.code, error.reason, error.metadata["model"]) == ("NOT_FOUND", "MODEL_NOT_FOUND", "no-such-model")
        assert isinstance(error, NotFoundError) and not error.retryable


@pytest.mark.slow
async def test_the_stop_string_that_ended_the_answer_is_named(compute: ComputeClient) -> None:
    question: list[MessageParam] = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    stops = ["zebra", " is "]
    completion = await compute.chat_complete("smollm2", messages=question, max_tokens=16, temperature=0, stop=stops)
    assert (completion.choices[0].finish_reason, completion.choices[0].stop_sequence) == ("stop", " is ")
    streamed = compute.chat_stream("smollm2", messages=question, max_tokens=16, temperature=0, stop=stops)
    async with streamed:
        chunks = [chunk async for chunk in streamed]
    assert "".join(c.content for c in chunks) == completion.text
    assert (chunks[-1].finish_reason, chunks[-1].stop_sequence) == ("stop", " is ")
    assert {c.stop_sequence for c in chunks[:-1]} <= {""}


@pytest.mark.slow
async def test_structured_errors(
    gateway: GatewayProcess, env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = new_account()
    owner_key, chat_only_key = create_key(env, account), create_key(env, account, INFERENCE)
    stranger_key = create_key(env, new_account(), BOTH_SCOPES)
    target = gateway.grpc_target
    hello: list[MessageParam] = [{"role": "user", "content": "hi"}]
    async with (
        ComputeClient(target=target, credential=ApiKey(owner_key)) as owner,
        ComputeClient(target=target, credential=ApiKey(chat_only_key)) as chat_only,
        ComputeClient(target=target, credential=ApiKey(stranger_key)) as stranger,
        ComputeClient(target=target) as anonymous,
    ):
        runtime = await owner.personal_runtimes.create("never paired")

        with pytest.raises(InsufficientScopesError) as denied:
            await chat_only.personal_runtimes.create("not allowed")
        assert (denied.value.code, denied.value.reason, denied.value.domain) == (
            "PERMISSION_DENIED",
            "INSUFFICIENT_SCOPES",
            "lattice",
        )
        assert denied.value.metadata["scope"] == MANAGE and MANAGE in denied.value.message
        assert isinstance(denied.value, PermissionDeniedError) and isinstance(denied.value, LatticeError)
        assert (await chat_only.personal_runtimes.get(runtime)).status == "unpaired"  # may look, not change

        for call in (
            stranger.personal_runtimes.get(runtime),
            stranger.personal_runtimes.revoke(runtime),
            stranger.chat_complete_for_personal_runtime(runtime, messages=hello),
        ):
            with pytest.raises(RuntimeNotFoundError) as hidden:
                await call
            assert hidden.value.code == "NOT_FOUND" and isinstance(hidden.value, NotFoundError)

        with pytest.raises(RuntimeUnreachableError) as unreachable:
            await owner.chat_complete_for_personal_runtime(runtime, messages=hello, retry=False)
        assert unreachable.value.code == "UNAVAILABLE" and unreachable.value.retryable
        assert isinstance(unreachable.value, UnavailableError)
        assert "retrying" not in caplog.text  # retry=False: one try
        # Retried by default, within bounds, and still unreachable: the last refusal is raised.
        quick = RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.1)
        with pytest.raises(RuntimeUnreachableError):
            await owner.chat_complete_for_personal_runtime(runtime, messages=hello, retry=quick)
        assert caplog.text.count("refused with RUNTIME_UNREACHABLE; retrying") == 2

        with pytest.raises(ModelNotFoundError) as not_found:
            await owner.chat_complete("no-such-model", messages=hello)
        assert not_found.value.reason == "MODEL_NOT_FOUND" and not not_found.value.retryable
        picture = ChatMessage("user", "What is in this picture?", images=(ImageUrl("data:image/png;base64,AAAA"),))
        with pytest.raises(NoModelSatisfiesError) as blind:
            await owner.resolve("smollm2", messages=[picture])
        assert blind.value.code == "FAILED_PRECONDITION" and "vision" in blind.value.message

        with pytest.raises(ApiKeyMissingError) as missing:
            await anonymous.personal_runtimes.list()
        assert missing.value.code == "UNAUTHENTICATED" and isinstance(missing.value, AuthenticationError)

    bogus = "sk_" + "x" * 40
    async with ComputeClient(target=target, credential=ApiKey(bogus)) as impostor:
        with pytest.raises(ApiKeyInvalidError) as invalid:
            await impostor.resolve("smollm2")
        assert bogus not in str(invalid.value) and bogus not in repr(invalid.value)
        assert bogus not in repr(impostor) and "redacted" in repr(impostor)
    assert "redacted" in repr(OAuthToken("eyJ-secret")) and "eyJ-secret" not in str(OAuthToken("eyJ-secret"))
    for key in (owner_key, chat_only_key, stranger_key, bogus):
        assert key not in caplog.text  # nothing the SDK (or grpclib, at DEBUG) logged shows a credential


@pytest.mark.slow
async def test_an_oauth_access_token_acts_for_its_subject(gateway: GatewayProcess) -> None:
    target = gateway.grpc_target
    user = new_account()
    async with ComputeClient(target=target, credential=OAuthToken(access_token(user, f"{INFERENCE} {MANAGE}"))) as app:
        created = await app.personal_runtimes.create("from an app")
        assert created.account_id == "oauth:" + user and [r.lattice_id for r in await app.personal_runtimes.list()] == [
            created.lattice_id
        ]
    async with ComputeClient(target=target, credential=OAuthToken(access_token(user, INFERENCE))) as narrow:
        with pytest.raises(InsufficientScopesError):
            await narrow.personal_runtimes.revoke(created)
    async with ComputeClient(target=target, credential=OAuthToken(access_token(user, MANAGE, lifetime=-60))) as late:
        with pytest.raises(AccessTokenExpiredError) as expired:
            await late.personal_runtimes.list()
    assert expired.value.code == "UNAUTHENTICATED" and isinstance(expired.value, AuthenticationError)


@pytest.mark.slow
async def test_no_gateway_is_unavailable_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lattice_client")
    from tests.gateway_process import free_port

    quick = RetryPolicy(max_attempts=2, initial_backoff=0.05, max_backoff=0.1)
    async with ComputeClient(target=f"127.0.0.1:{free_port()}", retry=quick) as nowhere:
        with pytest.raises(UnavailableError) as refused:
            await nowhere.resolve("smollm2")
    assert refused.value.reason == "UNAVAILABLE" and "cannot reach the gateway" in refused.value.message
    assert caplog.text.count("retrying") == 1


@pytest.mark.slow
async def test_a_queue_full_refusal_is_retried_after_the_gateways_delay(
    compute: ComputeClient,
    gateway: GatewayProcess,
    echo: EchoProvider,
    tmp_path: pathlib.Path,
    daemons: list[Daemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="lattice_client")
    runtime = await paired_runtime(compute, gateway, tmp_path / "ctl", echo, daemons)
    busy = compute.chat_stream_for_personal_runtime(runtime, messages=[{"role": "user", "content": SLOW_PROMPT}])
    async with busy:
        assert (await anext(busy)).content == "slow:"  # the runtime's one slot is taken

        # Without retries the refusal comes straight back, with the gateway's delay.
        with pytest.raises(QueueFullError) as full:
            await compute.chat_complete_for_personal_runtime(
                runtime, messages=[{"role": "user", "content": "me too"}], retry=False
            )
        assert (full.value.code, full.value.reason) == ("RESOURCE_EXHAUSTED", "QUEUE_FULL")
        assert isinstance(full.value, ResourceExhaustedError) and full.value.retryable
        assert full.value.retry_delay is not None and full.value.retry_delay > 0
        assert full.value.metadata["model"] == runtime.model

        # With them, the SDK waits as told and tries again until the slot is free: a whole answer
        # and a stream (refused before its first chunk) alike.
        async def drain() -> str:
            return "".join([chunk.content async for chunk in busy])

        async def streamed() -> str:
            stream = compute.chat_stream_for_personal_runtime(
                runtime, messages=[{"role": "user", "content": "me three"}], retry=PATIENT
            )
            return "".join([chunk.content async for chunk in stream])

        rest, patient, patient_stream = await asyncio.gather(
            drain(),
            compute.chat_complete_for_personal_runtime(
                runtime, messages=[{"role": "user", "content": "me too"}], retry=PATIENT
            ),
            streamed(),
        )
    assert "slow:" + rest == SLOW_PROMPT
    assert (patient.text, patient_stream) == ("me too", "me three")
    assert "Chat refused with QUEUE_FULL; retrying" in caplog.text
    assert "StreamChat refused with QUEUE_FULL; retrying" in caplog.text


@pytest.mark.slow
async def test_nothing_is_retried_once_a_stream_has_started(
    compute: ComputeClient,
    gateway: GatewayProcess,
    echo: EchoProvider,
    tmp_path: pathlib.Path,
    daemons: list[Daemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="lattice_client")
    runtime = await paired_runtime(compute, gateway, tmp_path / "ctl", echo, daemons)
    started = echo.stats()["started"]
    received: list[str] = []
    stream = compute.chat_stream_for_personal_runtime(
        runtime, messages=[{"role": "user", "content": SLOW_PROMPT}], retry=PATIENT
    )

    async def read_all() -> None:
        async with stream:
            async for chunk in stream:
                received.append(chunk.content)
                if len(received) == 2:
                    os.kill(daemons[0].pid(), signal.SIGKILL)  # the user's machine goes away mid-answer

    with pytest.raises(RuntimeUnreachableError) as dropped:
        await read_all()
    assert dropped.value.retryable  # UNAVAILABLE: it would have been retried before the first chunk
    assert received[:2] == ["slow:", " word0"] and SLOW_PROMPT.startswith("".join(received))
    assert "retrying" not in caplog.text
    assert echo.stats()["started"] == started + 1  # the provider was asked once


@pytest.mark.slow
def test_the_sync_client(
    gateway: GatewayProcess, env: dict[str, str], echo: EchoProvider, tmp_path: pathlib.Path, daemons: list[Daemon]
) -> None:
    with SyncComputeClient(target=gateway.grpc_target, credential=ApiKey(create_key(env, new_account()))) as compute:
        runtime = compute.personal_runtimes.create("sync machine")
        token = compute.personal_runtimes.create_bootstrap_token(runtime)
        start_daemon(gateway, tmp_path / "ctl", runtime.lattice_id, token.token, echo, daemons)
        wait_for(lambda: compute.personal_runtimes.get(runtime).reachable, "the runtime to be reachable")
        [reachable] = compute.list_reachable_personal_runtimes()
        hello: list[MessageParam] = [{"role": "user", "content": "hello from sync code"}]
        assert compute.chat_complete_for_personal_runtime(reachable, messages=hello).text == "hello from sync code"
        chunks = list(compute.chat_stream_for_personal_runtime(reachable, messages=hello))
        assert "".join(c.content for c in chunks) == "hello from sync code" and chunks[-1].finish_reason == "stop"
        with pytest.raises(ModelNotFoundError):
            compute.chat_complete("no-such-model", messages=hello)

        # Leaving a stream early ends the call, down to the provider on the user's machine.
        abandoned = echo.stats()["abandoned"]
        stream = compute.chat_stream(runtime.model, messages=[{"role": "user", "content": SLOW_PROMPT}])
        assert next(stream).content == "slow:"
        stream.close()
        wait_for(lambda: echo.stats()["abandoned"] > abandoned, "the provider's stream to be abandoned")
        assert compute.personal_runtimes.revoke(runtime).status == "revoked"


@pytest.mark.slow
def test_the_sync_client_completes_and_embeds(gateway: GatewayProcess, env: dict[str, str]) -> None:
    with SyncComputeClient(target=gateway.grpc_target, credential=ApiKey(create_key(env, new_account()))) as compute:
        whole = compute.complete("smollm2", prompt=PROMPT, max_tokens=4, temperature=0)
        chunks = list(compute.complete_stream("smollm2", prompt=PROMPT, max_tokens=4, temperature=0))
        assert "".join(c.text for c in chunks) == whole.text and chunks[-1].finish_reason == whole.finish_reason
        text, tokens = compute.embed("smollm2", inputs=["hello", [1, 2, 3]]).vectors  # a text, and token ids
        assert len(text) == len(tokens) > 0
        with pytest.raises(ModelNotFoundError):
            compute.complete("no-such-model", prompt=PROMPT)


@pytest.mark.slow
def test_the_sdk_installs_and_runs_alone(gateway: GatewayProcess, env: dict[str, str], tmp_path: pathlib.Path) -> None:
    """`pip install clients/python` into an empty venv: the SDK and the generated client with only
    their own dependencies (no grpcio, no protobuf, no gateway), and a call to the gateway."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", str(REPO / "clients" / "python")],
        check=True,
        capture_output=True,
        timeout=600,
    )
    installed = subprocess.run([python, "-m", "pip", "list"], check=True, capture_output=True, text=True).stdout
    for absent in ("grpcio", "protobuf", "lattice-gateway"):
        assert absent not in installed.split(), installed
    script = textwrap.dedent(
        """
        import asyncio, sys
        from lattice_client import ApiKey, ComputeClient, InsufficientScopesError

        async def main() -> None:
            async with ComputeClient(target=sys.argv[1], credential=ApiKey(sys.argv[2])) as compute:
                print((await compute.resolve("role:fast")).model)
                try:
                    await compute.personal_runtimes.create("no")
                except InsufficientScopesError as error:
                    print(error.reason, error.metadata["scope"])

        asyncio.run(main())
        """
    )
    key = create_key(env, new_account(), INFERENCE)
    ran = subprocess.run(
        [python, "-c", script, gateway.grpc_target, key], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["smollm2-135m-instruct", f"INSUFFICIENT_SCOPES {MANAGE}"]


# Without a gateway: the details decoder against the gateway's own encoder, the error classes
# against the reasons the gateway documents and raises, the retry policy's arithmetic.


async def test_a_prompt_that_is_not_one_text_is_refused_before_any_call() -> None:
    async with ComputeClient(target="127.0.0.1:9") as compute:  # nothing listens: no call is made
        with pytest.raises(TypeError, match="prompt must be one text"):
            await compute.complete(prompt=["one", "two"])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="prompt must be one text"):
            compute.complete_stream(prompt=None)  # type: ignore[arg-type]


def test_the_status_details_read_as_the_gateway_writes_them() -> None:
    refusal = QueueFull("the queue is full", retry_after_seconds=1.25, metadata={"model": "smollm2"})
    details = decode_status_details(to_rpc_status(refusal).SerializeToString())
    assert (details.reason, details.domain, details.metadata, details.retry_delay) == (
        "QUEUE_FULL",
        "lattice",
        {"model": "smollm2"},
        1.25,
    )
    error = make_error("RESOURCE_EXHAUSTED", "the queue is full", reason=details.reason, retry_delay=1.25)
    assert isinstance(error, QueueFullError) and error.retryable and str(error) == "QUEUE_FULL: the queue is full"
    copy = pickle.loads(pickle.dumps(error))  # as a task queue would carry it to another process
    assert (type(copy), copy.reason, copy.code, copy.retry_delay) == (QueueFullError, "QUEUE_FULL", error.code, 1.25)


def test_every_reason_the_gateway_sends_has_its_class() -> None:
    documented = set()
    errors_table = (REPO / "README.md").read_text().split("### Errors", 1)[1].split("\n### ", 1)[0]
    for row in errors_table.splitlines():
        cells = [cell.strip() for cell in row.split("|")]
        if len(cells) > 3 and cells[1].startswith("`") and cells[2] != "—":  # "—": the shim's own, not gRPC
            documented |= set(re.findall(r"`([A-Z_]+)`", cells[1]))
    raised = set(re.findall(r'(?:default_)?reason\s*=\s*"([A-Z_]+)"', _server_source()))
    # Reasons only a daemon, the CLI or a swarm's agent events ever see, never an app's call.
    internal = {"DAEMON_ONLY", "DAEMON_CREDENTIAL_INVALID", "RUNTIME_NOT_PAIRED", "RELAY_SEAL_INVALID"}
    internal |= {"API_KEY_NOT_FOUND", "AGENT_TIMEOUT", "SWARM_CANCELLED"}
    assert {"QUEUE_FULL", "RUNTIME_UNREACHABLE", "INSUFFICIENT_SCOPES"} <= documented
    missing = {r for r in (documented | raised) - internal if r not in REASONS and r not in CODES}
    assert not missing, f"reasons without an error class in lattice_client: {sorted(missing)}"


def _server_source() -> str:
    return "\n".join(p.read_text() for p in (REPO / "lattice").rglob("*.py") if "v1" not in p.parts)


def test_an_unknown_reason_falls_back_to_its_codes_class() -> None:
    error = make_error("UNAVAILABLE", "new", reason="SOMETHING_NEW", retry_delay=2.0)
    assert type(error) is UnavailableError and error.reason == "SOMETHING_NEW" and error.retryable
    assert type(make_error("ABORTED", "odd")) is LatticeError
    # A RESOURCE_EXHAUSTED without a reason is the transport's (a message too large), not worth retrying.
    assert not make_error("RESOURCE_EXHAUSTED", "message larger than max").retryable


def test_the_retry_policy_honours_the_gateways_delay_within_bounds() -> None:
    refusal = make_error("RESOURCE_EXHAUSTED", "busy", reason="QUEUE_FULL", retry_delay=2.0)
    attempts = Attempts(RetryPolicy(max_attempts=2), "Chat", deadline=None)
    delay = attempts.delay_before_retry(refusal)
    assert delay is not None and 2.0 <= delay <= 2.2
    assert attempts.delay_before_retry(refusal) is None  # two tries in all
    assert Attempts(RetryPolicy(max_delay=1.0), "Chat", None).delay_before_retry(refusal) is None
    assert Attempts(RetryPolicy(), "Chat", deadline=time.monotonic() + 1).delay_before_retry(refusal) is None
    assert Attempts(RetryPolicy(), "Chat", None).delay_before_retry(make_error("NOT_FOUND", "x")) is None
    unreachable = make_error("UNAVAILABLE", "down", reason="RUNTIME_UNREACHABLE")
    backoff = Attempts(RetryPolicy(initial_backoff=0.5), "Chat", None).delay_before_retry(unreachable)
    assert backoff is not None and 0.25 <= backoff <= 0.5
