"""Envoy serving TLS (`envoy/run.py --tls-cert --tls-key`) in front of a real gateway: the Python SDK
(`tls=`), a generated gRPC client and REST over HTTPS reach the gateway through it, and a client that
does not trust the certificate, or speaks plain text, is refused at once with a clear error.

The certificate is self-signed, made for the test; the clients trust it alone."""

from __future__ import annotations

import logging
import subprocess
import sys

import grpc
import httpx
import pytest
from lattice_client import ComputeClient, UnavailableError, UntrustedCertificateError

from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2, resolve_pb2, resolve_pb2_grpc
from tests.envoy_process import EnvoyProcess
from tests.gateway_process import REPO, lattice_env
from tests.self_signed import SelfSigned

DEFAULT_MODEL = "smollm2-135m-instruct"


async def test_the_python_sdk_streams_a_chat_over_tls(tls_envoy: EnvoyProcess, certificate: SelfSigned) -> None:
    async with ComputeClient(target=tls_envoy.grpc_target, tls=certificate.client_context()) as compute:
        chunks = [
            chunk
            async for chunk in compute.chat_stream(
                messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}],
                max_tokens=8,
                temperature=0,
            )
        ]
    assert "".join(c.content for c in chunks)
    assert chunks[-1].finish_reason is not None and chunks[-1].usage is not None
    assert chunks[-1].resolution is not None and chunks[-1].resolution.model == DEFAULT_MODEL


async def test_a_generated_grpc_client_over_tls(tls_envoy: EnvoyProcess, certificate: SelfSigned) -> None:
    credentials = grpc.ssl_channel_credentials(certificate.certificate.read_bytes())
    request = chat_pb2.ChatRequest(
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="Hello")])],
        max_tokens=4,
    )
    async with grpc.aio.secure_channel(tls_envoy.grpc_target, credentials) as channel:
        messages = [m async for m in chat_pb2_grpc.ChatServiceStub(channel).StreamChat(request)]
    assert messages[-1].HasField("done") and messages[-1].done.usage.completion_tokens > 0


def test_rest_over_https(tls_envoy: EnvoyProcess, certificate: SelfSigned) -> None:
    assert tls_envoy.url.startswith("https://")
    response = httpx.get(f"{tls_envoy.url}/v1/models", verify=certificate.client_context(), timeout=30)
    assert response.status_code == 200
    assert DEFAULT_MODEL in [m["id"] for m in response.json()["models"]]


async def test_an_untrusted_certificate_is_refused_at_once_and_not_retried(
    tls_envoy: EnvoyProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lattice_client")
    # tls=True trusts the system's authorities, which did not sign the test's certificate.
    async with ComputeClient(target=tls_envoy.grpc_target, tls=True) as compute:
        with pytest.raises(UnavailableError) as refused:  # the family a caller may already catch
            await compute.list_models()
    assert isinstance(refused.value, UntrustedCertificateError)
    assert not refused.value.retryable  # retrying cannot make a certificate trusted
    assert "certificate" in refused.value.message and tls_envoy.grpc_target in refused.value.message
    assert "retrying" not in caplog.text


async def test_plain_text_to_the_tls_listener_is_refused(tls_envoy: EnvoyProcess) -> None:
    async with grpc.aio.insecure_channel(tls_envoy.grpc_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await resolve_pb2_grpc.ResolveServiceStub(channel).ListModels(resolve_pb2.ListModelsRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_without_its_key_is_refused_before_envoy_starts(certificate: SelfSigned) -> None:
    run = [sys.executable, str(REPO / "envoy" / "run.py"), "--render-only", "--tls-cert", str(certificate.certificate)]
    done = subprocess.run(run, env=lattice_env(), capture_output=True, text=True)
    assert done.returncode != 0 and "--tls-cert and --tls-key go together" in done.stderr
    missing = subprocess.run(
        [*run, "--tls-key", str(certificate.private_key.with_name("nowhere.pem"))],
        env=lattice_env(),
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0 and "no such file" in missing.stderr
