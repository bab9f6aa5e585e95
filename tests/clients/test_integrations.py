"""The agent-framework examples in docs/integrations, run as a user runs them, against a live gateway:
the OpenAI Agents SDK and LangChain's ChatOpenAI pointed at the shim, each with a capability
expression (answered by the gateway's own model) and a personal runtime (a daemon whose local
provider echoes the question, so its answers are known exactly)."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.gateway_process import REPO, GatewayProcess, lattice_env, start_gateway
from tests.personal_runtime_fixtures import EchoProvider, create_key, echo_daemon, gateway_env, stopping_daemons

pytestmark = pytest.mark.slow

EXAMPLES = REPO / "docs" / "integrations"
EXPRESSION = "role:coder,role:fast"  # no model has the coder role here: the priority list falls to role:fast
QUESTION = "Name one colour of the rainbow."


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return gateway_env(tmp_path_factory.mktemp("integrations-db"))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("integrations"), **env)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def key(env: dict[str, str]) -> str:
    return create_key(env, "acct_integrations")


@pytest.fixture(scope="module")
def runtime(
    gateway: GatewayProcess, key: str, echo: EchoProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A paired personal runtime (its lat_… id) whose daemon runs work on the echo provider."""
    with stopping_daemons() as started:
        yield echo_daemon(gateway, key, echo, tmp_path_factory.mktemp("ctl"), started, "laptop").lattice_id


def run_example(script: str, gateway: GatewayProcess, key: str, lattice_id: str) -> list[str]:
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / script),
            "--base-url",
            gateway.http_url + "/v1",
            "--api-key",
            key,
            "--model",
            EXPRESSION,
            "--personal-runtime",
            lattice_id,
            "--max-tokens",
            "8",
            QUESTION,
        ],
        env=lattice_env(),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=pathlib.Path.home(),  # as from anywhere: nothing of the repository's on sys.path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def answers(lines: list[str], model: str, kind: str) -> str:
    prefix = f"{model} {kind}: "
    [line] = [line for line in lines if line.startswith(prefix)]
    return line.removeprefix(prefix)


def test_the_openai_agents_sdk(gateway: GatewayProcess, key: str, runtime: str) -> None:
    lines = run_example("openai_agents_example.py", gateway, key, runtime)
    assert answers(lines, EXPRESSION, "answered").strip()  # the gateway's own model, whatever it says
    assert answers(lines, EXPRESSION, "streamed") == answers(lines, EXPRESSION, "answered")  # greedy
    personal = f"lattice:personal:{runtime}"
    assert answers(lines, personal, "answered") == QUESTION  # the user's machine: the echo of the question
    assert answers(lines, personal, "streamed") == QUESTION


def test_langchain_chat_openai(gateway: GatewayProcess, key: str, runtime: str) -> None:
    lines = run_example("langchain_example.py", gateway, key, runtime)
    assert answers(lines, EXPRESSION, "answered").strip()
    assert answers(lines, EXPRESSION, "streamed") == answers(lines, EXPRESSION, "answered")
    assert answers(lines, EXPRESSION, "served by") == "smollm2-135m-instruct"
    personal = f"lattice:personal:{runtime}"
    assert answers(lines, personal, "answered") == QUESTION
    assert answers(lines, personal, "streamed") == QUESTION
    assert answers(lines, personal, "served by") == personal
