"""Local Lattice's swarm request shapes, said in the contract's proto JSON.

Local Lattice (the earlier open-source gateway) took `POST /swarm/{fanout,vote,pipeline,debate}` with
OpenAI-style `messages`, a `models` list and strategy names such as `best-of-n`; its pipeline steps were
`{name, model, system, user}` over the request's `messages`. The swarm routes take those shapes as well
as the contract's own JSON (`agents`, `ROLE_USER` messages with content parts, `VOTE_STRATEGY_*`): each
field in Local Lattice's shape is rewritten to the contract's before the body is parsed, and anything
the contract cannot say is refused by the parse, never dropped (but for `max_parallel`, a concurrency
hint the gateway's own admission makes moot). Translation only: the server decides.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import json_format
from pydantic import TypeAdapter, ValidationError

from lattice.shim import convert, protocol, refusals, validation
from lattice.v1 import swarm_pb2

STRATEGIES = {
    "best-of-n": swarm_pb2.VoteStrategy.Name(swarm_pb2.VOTE_STRATEGY_BEST_OF_N),
    "first-success": swarm_pb2.VoteStrategy.Name(swarm_pb2.VOTE_STRATEGY_FIRST_SUCCESS),
    "longest": swarm_pb2.VoteStrategy.Name(swarm_pb2.VOTE_STRATEGY_LONGEST),
    "fanout": swarm_pb2.VoteStrategy.Name(swarm_pb2.VOTE_STRATEGY_FANOUT),
}
IGNORED = ("max_parallel",)
_OPENAI_MESSAGE = TypeAdapter(protocol.ChatMessage)
_SINGLE_BRACES = re.compile(r"(?<!\{)\{(\w+)\}(?!\})")


def to_proto_json(body: dict[str, Any], method: str) -> dict[str, Any]:
    """`body` with Local Lattice's fields rewritten to the contract's (a body in the contract's JSON is
    returned as it is). Raises refusals.InvalidRequest for a field it cannot rewrite."""
    body = {k: v for k, v in body.items() if k not in IGNORED}
    if method == "Pipeline" and "messages" in body:
        return _pipeline(body)
    if "messages" in body:
        body["messages"] = _messages(body["messages"])
    if "models" in body:
        body["agents"] = _agents(body)
    if method == "Vote" and isinstance(body.get("strategy"), str) and body["strategy"].lower() in STRATEGIES:
        body["strategy"] = STRATEGIES[body["strategy"].lower()]
    return body


def _messages(messages: Any, param: str = "messages") -> Any:
    if not isinstance(messages, list):
        return messages  # the parse refuses it, naming the field
    return [_message(m, f"{param}[{i}]") for i, m in enumerate(messages)]


def _message(message: Any, param: str) -> Any:
    """An OpenAI-style message (`"role": "user"`) as the contract's; any other is left to the parse."""
    role = message.get("role") if isinstance(message, dict) else None
    if not (isinstance(role, str) and role in convert.ROLES):
        return message
    try:
        parsed = _OPENAI_MESSAGE.validate_python(message)
    except ValidationError as error:
        refusal = validation.refusal(error.errors(), message)
        raise refusals.InvalidRequest(
            f"{param}: {refusal.message}",
            param=f"{param}.{refusal.param}" if refusal.param else param,
            code=refusal.code,
        ) from error
    return json_format.MessageToDict(convert.message_to_proto(parsed))


def _agents(body: dict[str, Any]) -> list[dict[str, Any]]:
    models = body.pop("models")
    if "agents" in body:
        raise refusals.InvalidRequest("send `models` or `agents`, not both", param="models", code="invalid_value")
    if isinstance(models, str):  # Local Lattice took a comma-separated list too
        models = [m.strip() for m in models.split(",") if m.strip()]
    if not (isinstance(models, list) and models and all(isinstance(m, str) for m in models)):
        raise refusals.InvalidRequest(
            "models must be a non-empty list of model expressions", param="models", code="invalid_type"
        )
    return [{"model": model} for model in models]


def _pipeline(body: dict[str, Any]) -> dict[str, Any]:
    """Local Lattice's pipeline: `messages` are the input (its last user message is `{{input}}`), and
    each step `{name, model, system, user}` sends `user` (or, without one, the input), single-brace
    `{previous}` and `{name}` said as the contract's `{{previous}}` and `{{name}}`."""
    if "input" in body:
        raise refusals.InvalidRequest("send `messages` or `input`, not both", param="messages", code="invalid_value")
    messages = _messages(body.pop("messages"))
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "ROLE_USER"]
    if not users:
        raise refusals.InvalidRequest("a pipeline needs a user message", param="messages", code="invalid_value")
    body["input"] = "".join(part.get("text", "") for part in users[-1].get("content", []))
    steps = body.get("steps")
    if isinstance(steps, list):
        names: list[str] = ["input", "previous"]
        body["steps"] = [_step(step, i, names) for i, step in enumerate(steps)]
    return body


def _step(step: Any, index: int, names: list[str]) -> Any:
    if not isinstance(step, dict) or "prompt" in step:
        return step  # the contract's own step (or garbage, which the parse refuses)
    step = dict(step)
    for name in ("max_tokens", "temperature", "top_p"):
        if name in step:
            raise refusals.InvalidRequest(
                f"a step's own {name} is not supported: set it on the request", param=f"steps[{index}].{name}"
            )
    name = step.get("name") or f"step_{index}"
    rewritten: dict[str, Any] = {"name": name, "prompt": _braces(step.pop("user", None) or "{{input}}", names)}
    if "model" in step:
        rewritten["model"] = step.pop("model")
    if "system" in step:
        rewritten["systemPrompt"] = _braces(step.pop("system"), names)
    step.pop("name", None)
    names.append(name if isinstance(name, str) else "")
    return rewritten | step  # anything else is the parse's to refuse


def _braces(template: Any, names: list[str]) -> Any:
    if not isinstance(template, str):
        return template
    return _SINGLE_BRACES.sub(lambda m: f"{{{{{m[1]}}}}}" if m[1] in names else m[0], template)
