"""The TypeScript SDK (clients/typescript, `@lattice/compute`) against live gateways: its node:test
suite (src/test/sdk.test.ts, compiled by tsc) runs here with everything it needs started on
loopback and named in SDK_TEST_* variables. The TypeScript side pairs its own daemons with
`lattice-ctl`, as the walkthrough does; this side only stops whatever is left of them.

- a gateway with its own database and an OAuth issuer (the walkthrough, errors, the default model),
  with Envoy in front of it for grpc-web;
- a gateway whose personal runtimes run one chat at a time and queue none (QUEUE_FULL and retries);
- the echo provider the daemons run their work on;
- developer keys: both scopes, inference only, another account; an OAuth access token."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.envoy_process import EnvoyProcess, run_envoy
from tests.gateway_process import REPO, GatewayProcess, lattice_env, start_gateway
from tests.personal_runtime_fixtures import (
    BIN,
    BOTH_SCOPES,
    Daemon,
    EchoProvider,
    access_token,
    create_key,
    gateway_env,
    oauth_env,
)
from tests.self_signed import SelfSigned

pytestmark = pytest.mark.slow

TYPESCRIPT = REPO / "clients" / "typescript"
MODEL = "smollm2-135m-instruct"
ACCOUNT = "acct_sdk"
# The access token outlives the node suite (up to 600 s), not only the default 300 s.
TOKEN_LIFETIME = 3600.0


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("sdk-db")
    return {**gateway_env(directory), **oauth_env(directory)}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("sdk-gateway"), **env)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def tiny_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        **gateway_env(tmp_path_factory.mktemp("sdk-tiny-db")),
        "LATTICE_MAX_CONCURRENT_PER_MODEL": "1",
        "LATTICE_RELAY_MAX_IN_FLIGHT": "1",
        "LATTICE_QUEUE_SIZE": "0",
    }


@pytest.fixture(scope="module")
def tiny_gateway(tmp_path_factory: pytest.TempPathFactory, tiny_env: dict[str, str]) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("sdk-tiny-gateway"), **tiny_env)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def sdk_envoy(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProcess]:
    """Envoy as `make envoy` runs it, in front of this module's gateway."""
    yield from run_envoy(gateway, tmp_path_factory.mktemp("sdk-envoy"))


@pytest.fixture(scope="module")
def typescript_build() -> None:
    """Compiles the package and its tests (tsc --strict) into dist/."""
    tsc = TYPESCRIPT / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.fail("clients/typescript/node_modules is missing: run `make clients-setup`")
    if shutil.which("node") is None:
        pytest.fail("node is not installed: run `make clients-setup`")
    done = subprocess.run([str(tsc), "-p", "."], cwd=TYPESCRIPT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_typescript_sdk(
    typescript_build: None,
    gateway: GatewayProcess,
    env: dict[str, str],
    tiny_gateway: GatewayProcess,
    tiny_env: dict[str, str],
    sdk_envoy: EnvoyProcess,
    tls_envoy: EnvoyProcess,
    certificate: SelfSigned,
    echo: EchoProvider,
    tmp_path: pathlib.Path,
) -> None:
    homes = tmp_path / "ctl"
    variables = {
        "SDK_TEST_GRPC_URL": f"http://{gateway.grpc_target}",
        "SDK_TEST_REST_URL": gateway.http_url,
        "SDK_TEST_GRPC_WEB_URL": sdk_envoy.url,
        "SDK_TEST_TLS_URL": tls_envoy.url,
        "SDK_TEST_TLS_CA": str(certificate.certificate),
        "SDK_TEST_TINY_GRPC_URL": f"http://{tiny_gateway.grpc_target}",
        "SDK_TEST_TINY_REST_URL": tiny_gateway.http_url,
        "SDK_TEST_KEY": create_key(env, ACCOUNT),
        "SDK_TEST_INFERENCE_KEY": create_key(env, ACCOUNT, "lattice:compute:inference"),
        "SDK_TEST_OTHER_KEY": create_key(env, "acct_other"),
        "SDK_TEST_TINY_KEY": create_key(tiny_env, ACCOUNT),
        "SDK_TEST_ACCESS_TOKEN": access_token(ACCOUNT, BOTH_SCOPES.replace(",", " "), lifetime=TOKEN_LIFETIME),
        "SDK_TEST_PROVIDER_URL": echo.url,
        "SDK_TEST_LATTICE_CTL": str(BIN / "lattice-ctl"),
        "SDK_TEST_CTL_HOMES": str(homes),
        "SDK_TEST_MODEL": MODEL,
    }
    try:
        done = subprocess.run(
            ["node", "--test", "--test-reporter=tap", "dist/test/"],
            cwd=TYPESCRIPT,
            env={**lattice_env(), **variables},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        for home in homes.iterdir() if homes.exists() else ():
            Daemon(home, "").stop()
    report = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, report
    # Every suite ran (none skipped for want of a gateway) and every test passed.
    assert "# SKIP" not in done.stdout, report
    counts = dict(re.findall(r"^# (tests|pass|fail) (\d+)$", done.stdout, re.MULTILINE))
    assert counts["fail"] == "0" and counts["pass"] == counts["tests"] and int(counts["tests"]) >= 15, report
