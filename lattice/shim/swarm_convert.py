"""Swarm JSON ⇄ proto for the shim: the contract's own JSON for /v1/swarm/*, and a chat completion
with a `swarm` object (or a `swarm:` model) as a Vote. Translation only: the server decides."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, timestamp_pb2
from google.protobuf.message import Message

from lattice.shim import convert, protocol
from lattice.v1 import chat_pb2, common_pb2, swarm_pb2

SWARM_MODEL_PREFIX = "swarm:"
_STRATEGIES = {
    "best-of-n": swarm_pb2.VOTE_STRATEGY_BEST_OF_N,
    "first-success": swarm_pb2.VOTE_STRATEGY_FIRST_SUCCESS,
    "longest": swarm_pb2.VOTE_STRATEGY_LONGEST,
}
# `swarm:vote` keeps the `swarm` object's strategy; the others name one.
META_MODELS = {f"{SWARM_MODEL_PREFIX}vote": None} | {f"{SWARM_MODEL_PREFIX}{name}": name for name in _STRATEGIES}


class Untranslatable(ValueError):
    """The request cannot be said in the proto; `param` names the field, for OpenAI's envelope."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def is_swarm_chat(body: protocol.ChatCompletionRequest) -> bool:
    return body.swarm is not None or body.model.startswith(SWARM_MODEL_PREFIX)


def vote_request_from_chat(body: protocol.ChatCompletionRequest) -> swarm_pb2.VoteRequest:
    """The chat as a Vote: `swarm.models` are the agents; the judge is `swarm.judge`, else the gateway's
    configured default model. Fields a vote cannot carry are refused, not dropped."""
    meta = body.model if body.model.startswith(SWARM_MODEL_PREFIX) else None
    if meta is not None and meta not in META_MODELS:
        raise Untranslatable(f"unknown swarm model {meta!r}; use one of {', '.join(META_MODELS)}", "model")
    options = body.swarm or protocol.SwarmOptions()
    if not options.models:
        raise Untranslatable("a swarm chat needs swarm.models: the model expressions that answer", "swarm.models")
    chat = convert.chat_request_to_proto(body)
    for name, unsupported in (
        ("tools", bool(chat.tools)),
        ("tool_choice", chat.HasField("tool_choice")),
        ("response_format", chat.HasField("response_format")),
        ("stop", bool(chat.stop)),
        ("top_p", chat.HasField("top_p")),
    ):
        if unsupported:
            raise Untranslatable(f"{name} is not supported in a swarm chat", name)
    strategy = (META_MODELS.get(meta) if meta else None) or options.strategy
    request = swarm_pb2.VoteRequest(
        messages=chat.messages,
        agents=[swarm_pb2.SwarmAgent(model=model) for model in options.models],
        strategy=_STRATEGIES[strategy],
        judge=options.judge,  # empty: the configured default model judges
        criteria=options.criteria,
    )
    for name in ("max_tokens", "temperature", "seed"):
        if chat.HasField(name):
            setattr(request, name, getattr(chat, name))
    return request


def winner_stream(
    result: swarm_pb2.SwarmResult, deltas: list[str], *, completion_id: str, created: int
) -> list[chat_pb2.StreamChatResponse]:
    """The winner's answer as the StreamChat messages an ordinary chat would have sent: its deltas,
    then `done` with the swarm's summed usage (so the chat path's chunk conversion applies as is)."""
    winner = _winner(result)
    stamp = timestamp_pb2.Timestamp(seconds=created)

    def message(**event: Any) -> chat_pb2.StreamChatResponse:
        return chat_pb2.StreamChatResponse(id=completion_id, model=winner.model, create_time=stamp, **event)

    first, rest = common_pb2.ROLE_ASSISTANT, common_pb2.ROLE_UNSPECIFIED
    chunks = [
        message(delta=chat_pb2.ChatDelta(role=rest if i else first, content=t)) for i, t in enumerate(deltas or [""])
    ]
    return [*chunks, message(done=chat_pb2.ChatDone(finish_reason=winner.finish_reason, usage=result.usage))]


def swarm_completion_to_json(
    result: swarm_pb2.SwarmResult, verdict: swarm_pb2.JudgeVerdict | None, *, completion_id: str, created: int
) -> dict[str, Any]:
    """An ordinary chat completion: the winner's answer and model, every agent's usage summed; the
    verdict and every answer under `lattice.swarm`."""
    winner = _winner(result)
    swarm: dict[str, Any] = {"winner": result.winner, "answers": [_json(a) for a in result.answers]}
    if verdict is not None:
        swarm["verdict"] = _json(verdict)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": winner.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "logprobs": None,
                "finish_reason": convert.FINISH_REASONS.get(winner.finish_reason),
            }
        ],
        "usage": convert.usage_to_json(result.usage),
        "lattice": {"swarm": swarm},
    }


def _winner(result: swarm_pb2.SwarmResult) -> swarm_pb2.AgentFinished:
    return next(a for a in result.answers if a.agent == result.winner)


def _json(message: Message) -> dict[str, Any]:
    return dict(json_format.MessageToDict(message))
