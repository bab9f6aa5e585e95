"""The `lattice` command as a user runs it."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from lattice import __version__
from lattice.blas import blas_library
from tests.conftest import API_KEY
from tests.gateway_process import GatewayProcess, lattice_env


def lattice(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lattice", *args], env=lattice_env(**env), capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    done = lattice("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"lattice {__version__}"


@pytest.mark.slow
def test_models_lists_the_running_gateways_models(gateway: GatewayProcess) -> None:
    done = lattice("models", LATTICE_GRPC_PORT=str(gateway.grpc_port))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("smollm2-135m-instruct\tllamacpp\tcontext=8192")
    assert "\tstate=resident\trunning=0/8\tqueued=0" in done.stdout  # the pinned default model, idle


@pytest.mark.slow
@pytest.mark.parametrize("command", [("models",), ("resolve", "smollm2")])
def test_gateway_commands_take_the_key_from_the_flag_or_the_environment(
    keyed_gateway: GatewayProcess, command: tuple[str, ...]
) -> None:
    port = str(keyed_gateway.grpc_port)
    refused = lattice(*command, LATTICE_GRPC_PORT=port)
    assert refused.returncode == 1
    assert "UNAUTHENTICATED" in refused.stderr
    flagged = lattice(*command, "--api-key", API_KEY, LATTICE_GRPC_PORT=port)
    assert flagged.returncode == 0, flagged.stderr
    assert "smollm2-135m-instruct" in flagged.stdout
    from_env = lattice(*command, LATTICE_GRPC_PORT=port, LATTICE_API_KEY=API_KEY)
    assert from_env.returncode == 0, from_env.stderr


@pytest.mark.parametrize("command", ["models", "resolve"])
def test_gateway_commands_say_how_to_give_a_key(command: str) -> None:
    done = lattice(command, "--help")
    assert done.returncode == 0
    assert "--api-key" in done.stdout
    assert "$LATTICE_API_KEY" in done.stdout


def test_models_without_a_gateway_says_so() -> None:
    from tests.gateway_process import free_port

    done = lattice("models", LATTICE_GRPC_PORT=str(free_port()))
    assert done.returncode == 1
    assert "UNAVAILABLE" in done.stderr


def test_invalid_configuration_is_reported_not_raised() -> None:
    done = lattice("models", LATTICE_GRPC_PORT="not-a-port")
    assert done.returncode == 2
    assert "grpc_port" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("variable", ["LATTICE_GRPC_PORT", "LATTICE_HTTP_PORT"])
def test_a_taken_port_is_a_clear_error(variable: str) -> None:
    from tests.gateway_process import free_port

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = {"LATTICE_GRPC_PORT": str(free_port()), "LATTICE_HTTP_PORT": str(free_port())}
        ports[variable] = str(taken.getsockname()[1])
        done = lattice("serve", **ports)
    assert done.returncode == 2, done.stderr
    assert f"cannot listen for {'gRPC' if 'GRPC' in variable else 'REST'}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_resolve_explains_a_choice(gateway: GatewayProcess) -> None:
    done = lattice("resolve", "gpt-17,role:fast", LATTICE_GRPC_PORT=str(gateway.grpc_port))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "smollm2-135m-instruct\tllamacpp"
    assert lines[1] == "  smollm2-135m-instruct\tchosen\tmatches 'role:fast'"


@pytest.mark.slow
def test_resolve_reports_a_refusal_on_one_line(gateway: GatewayProcess) -> None:
    done = lattice("resolve", "role:poet", LATTICE_GRPC_PORT=str(gateway.grpc_port))
    assert done.returncode == 1
    assert "NOT_FOUND" in done.stderr
    assert "role:poet" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_bundled_blas_is_kept_when_asked() -> None:
    assert blas_library("bundled") is None


@pytest.mark.slow
def test_the_gateway_runs_mlx_on_the_system_openblas(gateway: GatewayProcess) -> None:
    # CI installs it (make system-packages); the reference BLAS of the mlx wheel is ~10x slower at prompts.
    assert "MLX uses libopenblas" in gateway.log()
