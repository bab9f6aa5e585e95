"""Anthropic's Messages API request JSON, as validated pydantic models (only what the shim reads).

Strict as the OpenAI models are (lattice.shim.protocol): JSON types are never coerced, and unknown
fields are ignored (clients send `cache_control`, `container` and others the gateway has no use for).
`max_tokens` is required, as Anthropic requires it; roles are `user` and `assistant` only (the system
prompt is the `system` field). `temperature` and `top_p` are taken although current SDKs no longer
send them: older clients do.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lattice.shim.protocol import Int32


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class TextBlock(_Strict):
    type: Literal["text"]
    text: str


class Base64Source(_Strict):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str


class UrlSource(_Strict):
    type: Literal["url"]
    url: str


class ImageBlock(_Strict):
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource, Field(discriminator="type")]


class ToolUseBlock(_Strict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


ResultPart = Annotated[TextBlock | ImageBlock, Field(discriminator="type")]


class ToolResultBlock(_Strict):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[ResultPart] = ""
    is_error: bool = False


Block = Annotated[TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock, Field(discriminator="type")]


class MessageParam(_Strict):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class ToolParam(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None


class AutoChoice(_Strict):
    type: Literal["auto"]
    disable_parallel_tool_use: bool = False


class AnyChoice(_Strict):
    type: Literal["any"]
    disable_parallel_tool_use: bool = False


class NamedChoice(_Strict):
    type: Literal["tool"]
    name: str
    disable_parallel_tool_use: bool = False


class NoneChoice(_Strict):
    type: Literal["none"]


ToolChoice = Annotated[AutoChoice | AnyChoice | NamedChoice | NoneChoice, Field(discriminator="type")]


class Metadata(_Strict):
    user_id: str | None = None


class MessagesRequest(_Strict):
    model: str = Field(description="A Lattice model expression: an id, `role:…`, a priority list, a wildcard.")
    messages: list[MessageParam]
    max_tokens: Annotated[Int32, Field(ge=1)]
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] = Field(default_factory=list)
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    metadata: Metadata | None = None
    stream: bool = False
    tools: list[ToolParam] = Field(default_factory=list)
    tool_choice: ToolChoice | None = None

    # Read only to be refused: honouring them is beyond the contract, and ignoring them would change the
    # answer silently.
    top_k: Any = None
    thinking: Any = None

    def unsupported(self) -> str | None:
        """The param of an option the gateway cannot honour (refused, never ignored); else None."""
        if self.top_k is not None:
            return "top_k"
        if isinstance(self.thinking, dict) and self.thinking.get("type") not in (None, "disabled"):
            return "thinking"
        return None

    def misplaced_tool_choice(self) -> bool:
        """A tool choice other than `none` without tools: Anthropic refuses it, and so does the shim."""
        return self.tool_choice is not None and self.tool_choice.type != "none" and not self.tools
