"""OpenAI's chat-completions JSON, as validated pydantic models (only what the shim reads).

Strict, as OpenAI is: JSON types are never coerced (`"stream": "true"`, `"max_tokens": "3"` and
`"n": true` are refused, not read as true, 3 and 1); an integer is still a number (`"temperature": 1`).
Unknown fields are ignored, as OpenAI clients send many the shim does not read. Whether one option
goes without another it needs (`stream_options` without streaming, `tool_choice` without `tools`) is
`ChatCompletionRequest.missing_partner`'s to say; ranges and everything that depends on the model
are the server's to judge.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from pydantic.config import JsonDict


class _Lenient(BaseModel):
    # OpenAI clients send fields we do not use (metadata, …): accept and ignore them. Strict types: JSON
    # is not coerced (a string is not a number, nor 1 a boolean), but an integer is a float.
    model_config = ConfigDict(extra="ignore", strict=True)


class ImageUrl(_Lenient):
    url: str
    detail: str = ""


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class ImagePart(_Lenient):
    type: Literal["image_url"]
    image_url: ImageUrl


class FunctionCall(_Lenient):
    name: str
    arguments: str = ""


class ToolCall(_Lenient):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str = ""


class FunctionDefinition(_Lenient):
    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None
    strict: bool = False


class Tool(_Lenient):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedToolChoice(_Lenient):
    type: Literal["function"] = "function"
    function: FunctionCall | dict[str, str]


class ResponseFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class StreamOptions(_Lenient):
    include_usage: bool = False


# The proto's integer widths: a larger number cannot be carried to the server at all (the server judges the rest).
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class SwarmOptions(_Lenient):
    """Lattice's extension: several models answer and a vote picks one (SwarmService.Vote)."""

    models: list[str] = Field(default_factory=list, description="One agent per model expression.")
    strategy: Literal["best-of-n", "first-success", "longest"] = "best-of-n"
    judge: str = Field(
        default="", description="The judge's model expression; empty means the configured default model."
    )
    criteria: str = Field(default="", description="What the judge should value, in words.")


def options_without_stream(stream: bool, stream_options: StreamOptions | None) -> tuple[str, str] | None:
    """(param, message) for `stream_options` sent without streaming, as OpenAI refuses it; else None."""
    if stream_options is not None and not stream:
        return "stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    return None


# What `missing_partner` refuses, said in the OpenAPI document (JSON Schema 2020-12, as OpenAPI 3.1).
_PARTNERS: JsonDict = {
    "dependentSchemas": {
        "stream_options": {
            "anyOf": [
                {"properties": {"stream_options": {"type": "null"}}},
                {"properties": {"stream": {"const": True}}, "required": ["stream"]},
            ]
        },
        "tool_choice": {
            "anyOf": [
                {"properties": {"tool_choice": {"type": "null"}}},
                {"properties": {"tools": {"minItems": 1}}, "required": ["tools"]},
            ]
        },
    }
}


class ChatCompletionRequest(_Lenient):
    model_config = ConfigDict(json_schema_extra=_PARTNERS)

    model: str = ""
    messages: list[ChatMessage]
    max_tokens: Int32 | None = None
    max_completion_tokens: Int32 | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: Int64 | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice per request is supported.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[Tool] = Field(default_factory=list)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    response_format: ResponseFormat | None = None
    user: str = ""
    logprobs: bool = False
    top_logprobs: Int32 | None = None
    priority: Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)] | None = Field(
        default=None, description="Lattice's extension: -10 to 10, as `x-lattice-priority` (the server checks it)."
    )
    swarm: SwarmOptions | None = None

    def missing_partner(self) -> tuple[str, str] | None:
        """(param, message) for an option sent without the one it needs, as OpenAI refuses it; else None."""
        if (refused := options_without_stream(self.stream, self.stream_options)) is not None:
            return refused
        if self.tool_choice is not None and not self.tools:
            return "tool_choice", "Invalid value for 'tool_choice': it is only allowed when 'tools' are specified."
        return None
