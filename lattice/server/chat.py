"""Domain objects of a chat: what a request asks for and what a backend yields.

Plain frozen dataclasses, independent of protobuf and of any backend.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

from lattice.server.principals import Principal


class Role(enum.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class FinishReason(enum.Enum):
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"


CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    url: str
    detail: str = ""


ContentPart = TextPart | ImagePart


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Message:
    role: Role
    content: tuple[ContentPart, ...] = ()
    name: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""

    @property
    def text(self) -> str:
        """The text parts joined; images are not text."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def has_image(self) -> bool:
        return any(isinstance(p, ImagePart) for p in self.content)


@dataclass(frozen=True)
class Sampling:
    """How to pick tokens. `temperature == 0` is greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class Tool:
    """A function the model may call; `parameters` is its JSON Schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None
    strict: bool = False


@dataclass(frozen=True)
class ToolChoice:
    """`mode` as OpenAI's strings, or a forced `function_name`."""

    mode: Literal["none", "auto", "required"] | None = None
    function_name: str = ""


@dataclass(frozen=True)
class ResponseFormat:
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class LatencyTier(enum.Enum):
    FAST = "fast"
    STANDARD = "standard"
    SLOW = "slow"


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    max_tokens: int | None = None
    sampling: Sampling = field(default_factory=Sampling)
    stop: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    user: str = ""
    latency_tier: LatencyTier | None = None
    """Prefer models of this tier; a preference, never a hard constraint."""
    allow_escalation: bool = False
    priority: int = 0
    """In [-10, 10]; higher is admitted first when a model's queue is not empty."""
    caller: str = ""
    """Who is asking (a hash of the API key, or the peer address), for fairness between callers."""
    principal: Principal | None = None
    """The authenticated account and credential behind the request, resolved once as it arrives: personal
    runtimes answer only their owner, and metering charges it. None: an in-process caller (a test)."""
    deadline: float | None = None
    """`time.monotonic()` after which nobody waits for the answer any more."""
    logprobs: bool = False
    """Return each generated token's log probability."""
    top_logprobs: int = 0
    """With `logprobs`: also the this many most likely tokens at each step (0 to 20)."""
    prompt: str | None = None
    """A text completion (CompletionService): this text goes to the model raw, with no chat template, and
    `messages` is empty. Only models with the `completions` capability serve it."""

    @property
    def has_image(self) -> bool:
        return any(m.has_image for m in self.messages)

    @property
    def uses_tools(self) -> bool:
        """Tools the model may call now. Tool *history* alone, or `tool_choice: none`, needs no tool-capable model."""
        return bool(self.tools) and not (self.tool_choice is not None and self.tool_choice.mode == "none")

    @property
    def wants_json(self) -> bool:
        return self.response_format is not None and self.response_format.type != "text"

    @property
    def estimated_prompt_tokens(self) -> int:
        """The conversation's size before any tokenizer has seen it: a deliberately generous
        ~4 characters per token (English averages about that), so that only a prompt that clearly
        cannot fit is excluded; backends that tokenize check exactly."""
        return self.prompt_characters // CHARS_PER_TOKEN

    @property
    def prompt_characters(self) -> int:
        """The characters of the prompt: the messages' text and tool-call arguments, or the raw prompt."""
        raw = len(self.prompt or "")
        return raw + sum(len(m.text) + sum(len(c.arguments) for c in m.tool_calls) for m in self.messages)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of a tool call, as OpenAI streams them: id and name on the first fragment."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True)
class TopLogprob:
    token: str
    logprob: float
    bytes: bytes = b""


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token's log probability, and the most likely alternatives when asked for."""

    token: str
    logprob: float
    bytes: bytes = b""
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True)
class Delta:
    """New output since the previous delta."""

    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Finish:
    """The end of generation: always the last item a backend yields."""

    reason: FinishReason
    usage: Usage
    stop_sequence: str = ""
    """The request's stop string that ended the answer (`reason` is then STOP); empty for a natural end,
    and when the backend cannot tell which stop fired."""


GenerationEvent = Delta | Finish


@dataclass(frozen=True)
class Queued:
    """The request waits for a slot on a busy model: what its caller is told while it waits."""

    model: str
    position: int
    estimated_wait_seconds: float


def merged(deltas: list[Delta]) -> list[Delta]:
    """Deltas that arrived together, as few as say the same: each run of text-only ones joined into one.

    Every message costs the gateway and its caller the same whatever it carries, so text that is already
    here goes out at once as one message; nothing ever waits to be merged. Tool-call deltas stay as they are.
    """
    if len(deltas) < 2:
        return deltas
    out: list[Delta] = []
    for delta in deltas:
        if out and not delta.tool_calls and not out[-1].tool_calls:
            out[-1] = Delta(out[-1].text + delta.text, logprobs=out[-1].logprobs + delta.logprobs)
        else:
            out.append(delta)
    return out
