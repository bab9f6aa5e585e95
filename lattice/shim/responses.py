"""The JSON the shim answers with, as pydantic models: they document it in `/openapi.json`.

The routes build these bodies as dicts from the server's protos (lattice.shim.convert);
these models only describe them, and tests/shim/test_openapi.py checks live answers
against the published document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class ModelLimits(BaseModel):
    context_window: int = Field(description="Tokens of prompt and answer together.")
    default_max_tokens: int = Field(
        description="The most tokens an answer runs to when the request sets no `max_tokens`; "
        "reaching it ends with finish reason `length`."
    )


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    lattice: ModelLimits = Field(description="Lattice's additions: the model's limits.")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class FunctionCall(BaseModel):
    name: str
    arguments: str = Field(description="JSON text, as the model wrote it.")


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    tool_calls: list[ToolCall] = Field(default_factory=list, description="Present only when the model called tools.")


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: None = None
    finish_reason: FinishReason | None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = Field(description="The model that answered (also the `x-lattice-model` header).")
    choices: list[Choice]
    usage: Usage
    lattice: dict[str, Any] = Field(
        description="Lattice's additions: `resolution`, how the model was chosen and why others were passed over."
    )


class Health(BaseModel):
    status: Literal["ok", "starting", "unavailable"]
    detail: str = Field(default="", description="Why the server cannot be reached (a gRPC status name).")


def event_schema(payloads: dict[str, Any], events: list[str] | None = None) -> dict[str, Any]:
    """One server-sent event, as OpenAPI 3.1 has a `text/event-stream` schema describe each event:
    `{"event", "data"}`, `data` being `[DONE]` or JSON text matching `payloads` (embedded as `contentSchema`)."""
    event = {"type": "string"} if events is None else {"enum": ["message", *events]}
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {**event, "description": "The event's name (`message` when the stream names none)."},
            "data": {
                "anyOf": [
                    {"const": "[DONE]", "description": "The end of the stream."},
                    {"type": "string", "contentMediaType": "application/json", "contentSchema": payloads},
                ]
            },
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
    }


_ERROR_PAYLOAD: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "description": "An error after the stream began, in the envelope of the error responses.",
}
CHAT_EVENT_SCHEMA = event_schema(
    {
        "anyOf": [
            {
                "type": "object",
                "required": ["id", "object", "created", "model", "choices"],
                "properties": {"object": {"const": "chat.completion.chunk"}, "choices": {"type": "array"}},
                "description": "A `chat.completion.chunk` (OpenAI's shape).",
            },
            _ERROR_PAYLOAD,
        ]
    }
)
"""Each event of a streamed chat completion."""

SWARM_EVENTS = ["agent.started", "agent.delta", "agent.finished", "round.started", "verdict", "result", "error"]
SWARM_EVENT_SCHEMA = event_schema({"type": "object"}, SWARM_EVENTS)
"""Each event of a streamed swarm: named after the event, its JSON (proto3 JSON of the event) as data."""

STREAM_DESCRIPTION = (
    "With `stream: true`: server-sent events. Each `data:` line holds a `chat.completion.chunk` "
    "(OpenAI's shape), the stream ends with `data: [DONE]`; an error after the first chunk arrives "
    'as one `data: {"error": {...}}` event in the envelope of the error responses.'
)
