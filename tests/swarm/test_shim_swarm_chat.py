"""A chat completion with a `swarm` object becomes a Vote; without `swarm.judge` the configured default
model judges (what `make serve` has), whatever the chat's `model` names."""

from __future__ import annotations

import pytest

from lattice.shim.protocol import ChatCompletionRequest
from lattice.shim.swarm_convert import vote_request_from_chat

HI = [{"role": "user", "content": "Name a colour."}]


@pytest.mark.parametrize("model", ["", "smollm2", "role:reasoner", "swarm:best-of-n"])
def test_without_a_judge_the_configured_default_judges(model: str) -> None:
    body = ChatCompletionRequest.model_validate({"model": model, "messages": HI, "swarm": {"models": ["a", "b"]}})
    assert vote_request_from_chat(body).judge == ""  # the server reads "" as the configured default


def test_a_named_judge_is_kept() -> None:
    body = ChatCompletionRequest.model_validate(
        {"model": "smollm2", "messages": HI, "swarm": {"models": ["a", "b"], "judge": "role:fast"}}
    )
    assert vote_request_from_chat(body).judge == "role:fast"
