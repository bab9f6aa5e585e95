"""Every fenced shell command and Python block of the README and the Python SDK's README runs, as a
reader would paste it, against a live gateway on the default setup, and finishes within a minute.

Addresses are rewritten to the test gateway's free ports, `.venv/bin` to this interpreter's scripts
and `gateway.log` to the gateway's log. A block stays out only behind a marker that says why
(tests/docs/readme_blocks.py): blocks that start servers, and fragments of other blocks."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

from tests.conftest import API_KEY
from tests.docs.readme_blocks import PYTHON, Block, blocks
from tests.gateway_process import REPO, GatewayProcess, lattice_env

pytestmark = pytest.mark.slow

DOCUMENTS = [REPO / "README.md", REPO / "clients" / "python" / "README.md"]
BLOCK_TIMEOUT_SECONDS = 60
BIN = pathlib.Path(sys.executable).parent
RUNNABLE = [block for document in DOCUMENTS for block in blocks(document) if block.runnable]


def test_every_document_has_blocks_to_run_and_each_left_out_says_why() -> None:
    for document in DOCUMENTS:
        assert [b for b in RUNNABLE if b.path == document and b.marker != "skip"], document
    assert all(b.why for b in RUNNABLE if b.marker == "skip")


def rewrite(text: str, gateway: GatewayProcess) -> str:
    text = text.replace("http://127.0.0.1:8000", gateway.http_url).replace("127.0.0.1:50051", gateway.grpc_target)
    text = re.sub(r"(\$PWD/)?\.venv/bin", str(BIN), text)
    return text.replace("gateway.log", str(gateway.log_path))


@pytest.mark.parametrize(
    "block", [b for b in RUNNABLE if b.marker != "skip"], ids=lambda b: b.id(REPO) if isinstance(b, Block) else ""
)
def test_the_block_runs_in_seconds(block: Block, request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> None:
    keyed = block.marker == "keyed"
    gateway: GatewayProcess = request.getfixturevalue("keyed_gateway" if keyed else "gateway")
    text = rewrite(block.text, gateway)
    env = lattice_env(
        LATTICE_GRPC_PORT=str(gateway.grpc_port),
        LATTICE_HTTP_PORT=str(gateway.http_port),
        LATTICE_CTL_HOME=str(tmp_path / "ctl"),  # a daemon a block starts keeps its files here
        **({"LATTICE_API_KEY": API_KEY} if keyed else {}),
    )
    shell = ["bash", "-e", "-o", "pipefail", "-c", text]
    command = [sys.executable, "-c", text] if block.language in PYTHON else shell
    output = tmp_path / "output"
    try:
        with output.open("w") as sink:  # a file, not a pipe: a daemon the block starts may keep it open
            done = subprocess.run(
                command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, timeout=BLOCK_TIMEOUT_SECONDS
            )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.id(REPO)} ran over {BLOCK_TIMEOUT_SECONDS} s:\n{text}\n--- output:\n{output.read_text()}")
    finally:
        if (tmp_path / "ctl" / "daemon.pid").exists():
            subprocess.run([str(BIN / "lattice-ctl"), "daemon", "stop"], env=env, capture_output=True, timeout=30)
    assert done.returncode == 0, f"{block.id(REPO)} failed:\n{text}\n--- output:\n{output.read_text()}"
