"""Every REST response carries the security headers, whatever answered it; CORS is off unless configured."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from lattice.shim import create_app
from lattice.shim.middleware import CONTENT_SECURITY_POLICY
from tests.gateway_process import GatewayProcess, start_gateway

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "content-security-policy": CONTENT_SECURITY_POLICY,
}
ORIGIN = "https://app.example"


def assert_secured(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], (name, response.status_code, response.request.url)
    assert response.headers["x-request-id"]


def responses_of_every_kind(base: str) -> list[httpx.Response]:
    """A JSON answer, a stream, each kind of error, the metrics, the health check and the OpenAPI document."""
    chat = f"{base}/v1/chat/completions"
    hello = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    with httpx.Client(timeout=120) as client:
        responses = [
            client.get(f"{base}/v1/models"),
            client.post(chat, json=hello),
            client.post(chat, json={**hello, "model": "no-such-model"}),
            client.post(chat, content=b"{not json", headers={"content-type": "application/json"}),
            client.post(chat, content=b"x" * (5 * 1024 * 1024)),
            client.get(f"{base}/no/such/path"),
            client.delete(f"{base}/v1/models"),
            client.get(f"{base}/healthz"),
            client.get(f"{base}/metrics"),
            client.get(f"{base}/openapi.json"),
        ]
        with client.stream("POST", chat, json={**hello, "stream": True}) as streamed:
            streamed.read()
            responses.append(streamed)
    return responses


@pytest.mark.slow
def test_every_response_carries_the_security_headers(gateway: GatewayProcess) -> None:
    responses = responses_of_every_kind(gateway.http_url)
    assert [r.status_code for r in responses] == [200, 200, 404, 400, 413, 404, 405, 200, 200, 200, 200]
    for response in responses:
        assert_secured(response)


@pytest.mark.slow
def test_cors_is_off_by_default(gateway: GatewayProcess) -> None:
    answer = httpx.get(f"{gateway.http_url}/v1/models", headers={"origin": ORIGIN})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    preflight = httpx.options(
        f"{gateway.http_url}/v1/chat/completions",
        headers={"origin": ORIGIN, "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert_secured(preflight)


@pytest.fixture(scope="module")
def cors_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("cors"), LATTICE_CORS_ORIGINS=f'["{ORIGIN}"]')
    yield process
    process.stop()


@pytest.mark.slow
def test_configured_origins_and_only_those_may_call_from_a_browser(cors_gateway: GatewayProcess) -> None:
    url = f"{cors_gateway.http_url}/v1/chat/completions"
    request_headers = "authorization, content-type, x-request-id"
    preflight = httpx.options(
        url,
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": request_headers,
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert_secured(preflight)
    answer = httpx.get(f"{cors_gateway.http_url}/v1/models", headers={"origin": ORIGIN})
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in answer.headers["access-control-expose-headers"]
    stranger = httpx.options(url, headers={"origin": "https://evil.example", "access-control-request-method": "POST"})
    assert stranger.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers
    assert (
        "access-control-allow-origin"
        not in httpx.get(f"{cors_gateway.http_url}/v1/models", headers={"origin": "https://evil.example"}).headers
    )


def test_an_unexpected_error_is_a_500_in_the_envelope_with_the_headers() -> None:
    app = create_app("127.0.0.1:1")

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/broken", headers={"x-request-id": "bug-1"})
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "internal error in the REST shim",
            "type": "server_error",
            "param": None,
            "code": "internal",
        }
    }
    assert response.headers["x-request-id"] == "bug-1"
    assert_secured(response)  # type: ignore[arg-type]  # TestClient's response is an httpx.Response


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_gets_cors_and_the_security_headers(declared: bool) -> None:
    # The limits run outside CORS since the middleware became one layer: their refusals still carry it.
    app = create_app("127.0.0.1:1", max_body_bytes=10, cors_origins=[ORIGIN])
    body = b'{"model": "' + b"x" * 100 + b'"}'
    content = body if declared else iter([body[:50], body[50:]])
    with TestClient(app) as client:
        response = client.post("/v1/chat/completions", content=content, headers={"origin": ORIGIN})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert_secured(response)  # type: ignore[arg-type]  # TestClient's response is an httpx.Response
