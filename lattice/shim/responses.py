"""The JSON the shim answers with, as pydantic models: they document it in `/openapi.json`.

The routes build these bodies as dicts from the server's protos (lattice.shim.convert);
these models only describe them, and tests/test_openapi.py checks live answers
against the published document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


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


STREAM_DESCRIPTION = (
    "With `stream: true`: server-sent events. Each `data:` line holds a `chat.completion.chunk` "
    "(OpenAI's shape), the stream ends with `data: [DONE]`; an error after the first chunk arrives "
    'as one `data: {"error": {...}}` event in the envelope of the error responses.'
)
