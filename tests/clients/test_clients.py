"""Each generated client's example, run as a user runs it, against a live gateway: it must print
the model's real answer. A missing toolchain fails the test (`make clients-setup` installs them)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.envoy_process import EnvoyProcess
from tests.gateway_process import REPO, GatewayProcess, lattice_env

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"
QUESTION = "What is the capital of France? Answer in one word."
TYPESCRIPT = REPO / "clients" / "typescript"
GO_RUN = REPO / "clients" / "go" / "run.sh"


def run(command: list[str], *, cwd: str | None = None) -> str:
    """Runs an example to the end and returns what it printed; its failure fails the test."""
    done = subprocess.run(command, cwd=cwd, env=lattice_env(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} is not installed: run `make clients-setup` (scripts/install-client-toolchains.sh)")
    return found


@pytest.fixture(scope="session")
def typescript_build() -> None:
    """Compiles the TypeScript examples (tsc --strict) once."""
    tsc = TYPESCRIPT / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.fail("clients/typescript/node_modules is missing: run `make clients-setup`")
    require("node")
    run([str(tsc), "-p", "."], cwd=str(TYPESCRIPT))


@pytest.fixture(scope="session")
def go_example() -> str:
    """Builds the Go example once; returns the binary."""
    require("go")
    run(["bash", str(GO_RUN), "build"])
    return str(REPO / "build" / "go" / "lattice-example")


@pytest.mark.parametrize("through", ["gateway", "envoy"])
def test_python_betterproto_example(gateway: GatewayProcess, request: pytest.FixtureRequest, through: str) -> None:
    # grpclib over HTTP/2, straight to the gateway and through Envoy's gRPC passthrough.
    target = gateway.grpc_target if through == "gateway" else request.getfixturevalue("envoy").grpc_target
    output = run([sys.executable, str(REPO / "clients" / "python" / "example.py"), "--target", target, QUESTION])
    assert f"resolved '' to {MODEL} (backend llamacpp)" in output
    assert "Paris" in output
    assert f"[{MODEL}, STOP," in output


def test_typescript_example_over_grpc(typescript_build: None, gateway: GatewayProcess) -> None:
    output = run(["node", "dist/grpc.js", "--address", gateway.grpc_target, QUESTION], cwd=str(TYPESCRIPT))
    assert f"models: {MODEL}" in output
    assert "Paris" in output
    assert f"[{MODEL}, STOP," in output


def test_typescript_example_over_grpc_web_through_envoy(typescript_build: None, envoy: EnvoyProcess) -> None:
    output = run(["node", "dist/grpc-web.js", "--address", envoy.url, QUESTION], cwd=str(TYPESCRIPT))
    assert f"models: {MODEL}" in output
    assert "Paris" in output
    assert f"[{MODEL}, STOP," in output


def test_go_example(go_example: str, gateway: GatewayProcess) -> None:
    output = run([go_example, "-target", gateway.grpc_target, QUESTION])
    assert f'resolved "" to {MODEL} (backend llamacpp)' in output
    assert "Paris" in output
    assert f"[{MODEL}, FINISH_REASON_STOP," in output
