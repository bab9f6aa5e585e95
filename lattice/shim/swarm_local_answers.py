"""A swarm's collected events as Local Lattice answered on its paths (`/swarm/*`, not streamed), so that
its users' code reads them unchanged: a fanout is `{"object": "swarm.fanout", "responses": [...]}`; a
vote, pipeline or debate is a `chat.completion` whose `model` is `swarm/…` and whose `swarm` object
holds the candidates, the pipeline's history or the debate's transcript.

Each candidate is `{"model", "ok", "error", "text", "response"}` (`response` a chat completion of its
own); Local Lattice's `latency_ms` is not given, the events carrying no timings. Translation only.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from google.protobuf.message import Message

from lattice.shim import convert, swarm_shapes
from lattice.v1 import common_pb2, swarm_pb2

CONCLUDING_AGENTS = ("judge", "synthesis")
_STRATEGY_NAMES = {getattr(swarm_pb2, proto_name): name for name, proto_name in swarm_shapes.STRATEGIES.items()} | {
    swarm_pb2.VOTE_STRATEGY_UNSPECIFIED: "best-of-n"
}


def answer(request: Message, events: list[Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and headers Local Lattice answered `request` with, from the swarm's events."""
    result = next(e.result for e in events if e.WhichOneof("event") == "result")
    verdict = next((e.verdict for e in events if e.WhichOneof("event") == "verdict"), None)
    created = int(time.time())
    if isinstance(request, swarm_pb2.FanoutRequest):
        body = {
            "id": f"swarm_{uuid.uuid4().hex}",
            "object": "swarm.fanout",
            "created": created,
            "responses": [_candidate(a, created) for a in result.answers],
        }
        return body, {"x-swarm-models": ",".join(a.model for a in result.answers)}
    winner = next((a for a in result.answers if a.agent == result.winner), None)
    if isinstance(request, swarm_pb2.VoteRequest):
        strategy = _STRATEGY_NAMES.get(request.strategy, "best-of-n")
        swarm: dict[str, Any] = {
            "strategy": strategy,
            "winner": winner.model if winner else None,
            "rationale": _rationale(verdict),
            "candidates": [_candidate(a, created) for a in result.answers],
        }
        model = f"swarm/{winner.model}" if winner else f"swarm/{strategy}"
        headers = {"x-swarm-strategy": strategy, "x-swarm-winner": winner.model if winner else ""}
    elif isinstance(request, swarm_pb2.PipelineRequest):
        history = [{"name": a.agent, "model": a.model, "text": a.text} for a in result.answers]
        swarm = {"strategy": "pipeline", "history": history}
        model = f"swarm/pipeline/{history[-1]['model'] if history else ''}"
        headers = {"x-swarm-strategy": "pipeline", "x-swarm-steps": ",".join(h["name"] for h in history)}
    else:
        finished = [e.agent_finished for e in events if e.WhichOneof("event") == "agent_finished"]
        judge = next((a.model for a in finished if a.agent in CONCLUDING_AGENTS), "")
        swarm = {
            "strategy": "debate",
            "rounds": max((a.round for a in finished), default=0),
            "judge": judge,
            "rationale": _rationale(verdict),
            "transcript": [
                {"round": a.round, "model": a.model, "text": a.text}
                for a in finished
                if a.agent not in CONCLUDING_AGENTS
            ],
        }
        model = f"swarm/debate/{judge}"
        headers = {"x-swarm-strategy": "debate", "x-swarm-rounds": str(swarm["rounds"])}
    finish = winner.finish_reason if winner else common_pb2.FINISH_REASON_STOP
    return _completion(model, result.text, finish, result.usage, created) | {"swarm": swarm}, headers


def _candidate(answer: swarm_pb2.AgentFinished, created: int) -> dict[str, Any]:
    failed = answer.HasField("error")
    return {
        "model": answer.model,
        "ok": not failed,
        "error": answer.error.message if failed else None,
        "text": answer.text,
        "response": None
        if failed
        else _completion(answer.model, answer.text, answer.finish_reason, answer.usage, created),
    }


def _completion(
    model: str, text: str, finish: common_pb2.FinishReason, usage: common_pb2.Usage, created: int
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl_{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": convert.FINISH_REASONS.get(finish),
            }
        ],
        "usage": convert.usage_to_json(usage),
    }


def _rationale(verdict: swarm_pb2.JudgeVerdict | None) -> str:
    if verdict is None:
        return ""
    reason = verdict.reasoning or verdict.fallback_reason
    method = swarm_pb2.VerdictMethod.Name(verdict.method).removeprefix("VERDICT_METHOD_").lower().replace("_", "-")
    return f"{method}: {reason}" if reason else method
