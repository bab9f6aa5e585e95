"""A gateway for the embeddings and text-completions compatibility suites: the default model on llama.cpp,
and the echo provider (tests/echo_upstream.py) as an OpenAI-compatible upstream, so the proxied path
runs too. Its models:

- `smollm2-135m-instruct` (alias `smollm2`): the default model, in process; embeds and completes.
- `echo-1`: the echo upstream's model: chat and text completions, no embeddings.
- `echo-embed`: `echo-1` configured with the `embeddings` capability only.
- `echo-chat`: `echo-1` configured with `chat` only: a chat-only model for refusals.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from contextlib import contextmanager

from lattice.config import DEFAULT_MODEL_ID
from tests.gateway_process import GatewayProcess, start_gateway
from tests.personal_runtime_fixtures import start_echo_provider

ECHO_MODELS = [
    {"id": DEFAULT_MODEL_ID, "aliases": ["smollm2"]},
    {"id": "echo-1", "backend": "openai", "upstream": "echo", "capabilities": ["chat", "completions"]},
    {
        "id": "echo-embed",
        "backend": "openai",
        "upstream": "echo",
        "upstream_model": "echo-1",
        "capabilities": ["embeddings"],
    },
    {"id": "echo-chat", "backend": "openai", "upstream": "echo", "upstream_model": "echo-1", "capabilities": ["chat"]},
]


@contextmanager
def text_api_gateway(log_dir: pathlib.Path, **env: str) -> Iterator[GatewayProcess]:
    echo = start_echo_provider()
    try:
        upstreams = json.dumps([{"name": "echo", "base_url": echo.url}])
        gateway = start_gateway(log_dir, LATTICE_UPSTREAMS=upstreams, LATTICE_MODELS=json.dumps(ECHO_MODELS), **env)
        try:
            yield gateway
        finally:
            gateway.stop()
    finally:
        echo.stop()
