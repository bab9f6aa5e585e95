"""OpenAI's Responses API request (`POST /v1/responses`), as validated pydantic models.

Strict as chat completions are (lattice.shim.protocol): JSON types are never coerced, unknown fields
are ignored, and pydantic's complaints become OpenAI's 400s (lattice.shim.validation). What Lattice
cannot do is refused by name rather than ignored: built-in tools (`web_search`, `file_search`, …),
`previous_response_id` and stored items (`item_reference`: the gateway keeps no responses),
`reasoning` effort, `truncation: "auto"`. `ResponsesRequest.refusal` says those that pydantic cannot.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, WithJsonSchema, field_validator

from lattice.shim.protocol import Int32


class _Lenient(BaseModel):
    # As the chat request's models: fields we do not read are accepted and ignored; JSON is not coerced.
    model_config = ConfigDict(extra="ignore", strict=True)


class InputText(_Lenient):
    type: Literal["input_text"]
    text: str


class OutputText(_Lenient):
    """An assistant's earlier text, sent back as history (its `annotations` are not read)."""

    type: Literal["output_text"]
    text: str


class RefusalPart(_Lenient):
    type: Literal["refusal"]
    refusal: str


class InputImage(_Lenient):
    type: Literal["input_image"]
    image_url: str = Field(description="A URL or a `data:` URL; uploaded files (`file_id`) are not supported.")
    detail: Literal["low", "high", "auto"] = "auto"


ContentPart = Annotated[InputText | OutputText | RefusalPart | InputImage, Field(discriminator="type")]
ToolOutputPart = Annotated[InputText | InputImage, Field(discriminator="type")]


class MessageItem(_Lenient):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[ContentPart]


class FunctionCallItem(_Lenient):
    """A call the model made earlier, sent back as history."""

    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str


class FunctionCallOutputItem(_Lenient):
    """The caller's result of a function call."""

    type: Literal["function_call_output"]
    call_id: str
    output: str | list[ToolOutputPart]


ITEM_TYPES = ("message", "function_call", "function_call_output")

# The OpenAPI document of a union member that exists only to be refused with a clear message: it matches
# nothing, so the document's `oneOf` holds exactly the shapes the route serves.
_REFUSED = WithJsonSchema({"not": {}})


class UnsupportedItem(_Lenient):
    """Any other item type: refused, naming the types Lattice reads (a stateless gateway has no stored
    items to reference, and runs no built-in tools whose calls could come back)."""

    type: Literal["message", "function_call", "function_call_output"]


def _item_kind(item: Any) -> str:
    # A message may leave out its `type` (OpenAI's "easy input message").
    kind = item.get("type", "message") if isinstance(item, dict) else getattr(item, "type", None)
    return kind if kind in ITEM_TYPES else "unsupported"


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[UnsupportedItem, Tag("unsupported"), _REFUSED],
    Discriminator(_item_kind),
]


class FunctionTool(_Lenient):
    type: Literal["function"]
    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class BuiltInTool(_Lenient):
    """A tool the model provider runs (`web_search`, `file_search`, `code_interpreter`, …): refused."""

    type: str

    @field_validator("type")
    @classmethod
    def _refuse(cls, value: str) -> str:
        raise ValueError(
            f"the built-in tool '{value}' is not supported: Lattice runs no tools itself; "
            "declare a 'function' tool and run it in your code."
        )


def _tool_kind(tool: Any) -> str:
    kind = tool.get("type") if isinstance(tool, dict) else getattr(tool, "type", None)
    return "function" if kind == "function" else "built_in"


ToolSpec = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[BuiltInTool, Tag("built_in"), _REFUSED],
    Discriminator(_tool_kind),
]


class FunctionToolChoice(_Lenient):
    type: Literal["function"]
    name: str


class TextFormatPlain(_Lenient):
    type: Literal["text"]


class TextFormatJsonObject(_Lenient):
    type: Literal["json_object"]


class TextFormatJsonSchema(_Lenient):
    type: Literal["json_schema"]
    name: str
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


TextFormat = Annotated[TextFormatPlain | TextFormatJsonObject | TextFormatJsonSchema, Field(discriminator="type")]


class TextConfig(_Lenient):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(_Lenient):
    effort: str | None = None
    summary: str | None = None


MetadataKey = Annotated[str, Field(max_length=64)]
MetadataValue = Annotated[str, Field(max_length=512)]


class ResponsesRequest(_Lenient):
    model: str = ""
    input: str | list[InputItem]
    instructions: str | None = None
    tools: list[ToolSpec] = Field(default_factory=list)
    tool_choice: Literal["none", "auto", "required"] | FunctionToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: Int32 | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_logprobs: Int32 | None = None
    include: list[str] | None = None
    metadata: dict[MetadataKey, MetadataValue] | None = Field(
        default=None, max_length=16, description="Up to 16 pairs, as OpenAI allows; echoed in the answer."
    )
    store: bool | None = Field(
        default=None, description="Lattice keeps no responses: any value is served as `store: false`."
    )
    stream: bool = False
    previous_response_id: str | None = Field(default=None, description="Refused: Lattice keeps no responses.")
    reasoning: Reasoning | None = Field(default=None, description="Refused when it sets an effort or a summary.")
    truncation: Literal["disabled", "auto"] | None = None
    user: str = ""

    def refusal(self) -> tuple[str, str, str] | None:
        """(param, message, code) for an option Lattice refuses by name, as OpenAI refuses what a
        model cannot do; else None."""
        if not self.input and not self.instructions:
            message = "Invalid value for 'input': it needs at least one item (or 'instructions')."
            return "input", message, "invalid_value"
        if self.previous_response_id is not None:
            return (
                "previous_response_id",
                "'previous_response_id' is not supported: Lattice keeps no responses (every response is "
                "`store: false`); send the whole conversation in 'input' instead.",
                "unsupported_parameter",
            )
        if self.reasoning is not None and (self.reasoning.effort is not None or self.reasoning.summary is not None):
            param = "reasoning.effort" if self.reasoning.effort is not None else "reasoning.summary"
            message = f"'{param}' is not supported: Lattice's chat contract has no reasoning."
            return param, message, "unsupported_parameter"
        if self.truncation == "auto":
            return (
                "truncation",
                "'truncation: auto' is not supported: Lattice refuses a prompt longer than the context window.",
                "unsupported_value",
            )
        if self.tool_choice not in (None, "none", "auto") and not self.tools:
            # `auto` and `none` without tools mean what no tools mean; a call demanded of no tools is an error.
            message = "Invalid value for 'tool_choice': a required or named call needs 'tools'."
            return "tool_choice", message, "invalid_value"
        return None

    @property
    def wants_logprobs(self) -> bool:
        return "message.output_text.logprobs" in (self.include or ())
