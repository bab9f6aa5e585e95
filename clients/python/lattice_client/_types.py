"""The SDK's records: what a call takes (messages, tools, options) and what it returns, as dataclasses."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Required, TypedDict

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "unspecified"]
LatencyTier = Literal["fast", "standard", "slow"]
ExecutionBackend = Literal["local-model", "assistant-runtime"]

PERSONAL_MODEL_PREFIX = "lattice:personal:"


@dataclass(frozen=True)
class ImageUrl:
    """An image in a message: `https://…` for proxied backends, or a `data:` URL."""

    url: str
    detail: str = ""
    """`auto`, `low` or `high`."""


@dataclass(frozen=True)
class ToolCall:
    """A function the assistant asked to call."""

    id: str
    name: str
    arguments: str
    """The arguments as JSON text, exactly as the model wrote them."""


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation. The assistant's answer is one too, so it can be sent back as is."""

    role: Role
    content: str = ""
    images: tuple[ImageUrl, ...] = ()
    """Images after the text, for vision models."""
    name: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    """For `tool` messages: the call this message answers."""


class TextPartParam(TypedDict):
    type: Literal["text"]
    text: str


class ImagePartParam(TypedDict):
    type: Literal["image_url"]
    image_url: Mapping[str, str]


class MessageParam(TypedDict, total=False):
    """A message as a dict, in OpenAI's shape: `{"role": "user", "content": "Hi!"}`."""

    role: Required[Role]
    content: str | Sequence[TextPartParam | ImagePartParam]
    name: str
    tool_call_id: str


MessageLike = ChatMessage | MessageParam


@dataclass(frozen=True)
class FunctionTool:
    """A function the model may call."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] | None = None
    """The arguments' JSON Schema."""
    strict: bool = False


class CompletionOptions(TypedDict, total=False):
    """What a text completion may add to its model and prompt (a chat takes these too); every field is
    optional."""

    max_tokens: int
    temperature: float
    """In [0, 2]; 0 is greedy."""
    top_p: float
    stop: Sequence[str]
    """Up to four strings that end the answer (not part of it)."""
    seed: int
    user: str
    latency_tier: LatencyTier
    """Prefer models of this tier; excludes none."""
    priority: int
    """In [-10, 10]: higher goes first when the model is busy."""
    allow_escalation: bool
    """Let the gateway send the request to its escalation target when nothing else can serve it."""


class ChatOptions(CompletionOptions, total=False):
    """What a chat may add to its model and messages: a text completion's options, and tools and a
    response format; every field is optional."""

    tools: Sequence[FunctionTool]
    tool_choice: str
    """`none`, `auto`, `required`, or the name of a function to call."""
    response_format: Literal["text", "json_object"] | Mapping[str, Any]
    """Or OpenAI's `json_schema` object (`name`, `schema`, `strict`)."""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True)
class Candidate:
    """One model the resolver considered, and why it was chosen or passed over."""

    model: str
    verdict: str
    """`chosen`, `outranked`, `missing_capability`, `context_too_small`, `unavailable`, `unhealthy`,
    `over_capacity` or `failed`."""
    detail: str


@dataclass(frozen=True)
class Resolution:
    """Which model answers a request, and why."""

    expression: str
    model: str
    backend: str
    """`mlx`, `openai`, `anthropic` or `relay` (a personal runtime)."""
    candidates: tuple[Candidate, ...] = ()
    escalated: bool = False


@dataclass(frozen=True)
class Embeddings:
    """The vectors of `embed`: one per input, in the order given."""

    model: str
    """The model that embedded."""
    vectors: tuple[tuple[float, ...], ...]
    usage: Usage
    """`prompt_tokens` (and `total_tokens`): the inputs' tokens."""
    resolution: Resolution | None


@dataclass(frozen=True)
class Choice:
    index: int
    message: ChatMessage
    finish_reason: FinishReason
    stop_sequence: str = ""
    """The request's stop string that ended the answer, when one did and the backend can tell."""


@dataclass(frozen=True)
class ChatCompletion:
    """A whole answer. `choices` always holds exactly one choice (OpenAI's shape)."""

    id: str
    model: str
    """The model that answered."""
    choices: tuple[Choice, ...]
    usage: Usage
    resolution: Resolution | None
    created: datetime.datetime | None

    @property
    def text(self) -> str:
        """The answer's text."""
        return self.choices[0].message.content


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of a tool call; `id` and `name` come with a call's first fragment."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True)
class ChatChunk:
    """New output of a stream. The last chunk carries `finish_reason`, `usage`, `resolution` and
    `stop_sequence`."""

    id: str
    model: str
    content: str = ""
    role: Role | None = None
    """Set on the first chunk only."""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    resolution: Resolution | None = None
    stop_sequence: str = ""
    """The request's stop string that ended the answer, when one did and the backend can tell."""


@dataclass(frozen=True)
class TextCompletion:
    """A whole text completion: the prompt's continuation, without the prompt."""

    id: str
    """`cmpl-…`"""
    model: str
    """The model that answered."""
    text: str
    finish_reason: FinishReason
    usage: Usage
    resolution: Resolution | None
    created: datetime.datetime | None


@dataclass(frozen=True)
class CompletionChunk:
    """New text of a completion stream. The last chunk carries `finish_reason`, `usage` and `resolution`
    (and no text)."""

    id: str
    model: str
    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    resolution: Resolution | None = None


@dataclass(frozen=True)
class QueueUpdate:
    """The request waits for a slot on a busy model (sent before any chunk)."""

    model: str
    position: int
    """1 is next in line."""
    estimated_wait: float
    """Seconds."""


@dataclass(frozen=True)
class Model:
    """A model the gateway can run."""

    id: str
    aliases: tuple[str, ...]
    backend: str
    context_window: int
    capabilities: tuple[str, ...]
    """`chat`, `vision`, `tools`, `json_mode`, `long_context`, `logprobs`."""
    roles: tuple[str, ...]
    owned_by: str
    latency_tier: str
    available: bool
    default_max_tokens: int
    """The most tokens an answer runs to when the call sets no `max_tokens` (it ends with `length`)."""


@dataclass(frozen=True)
class PersonalRuntime:
    """A user's own machine paired with the gateway; chats reach it as the model `runtime.model`."""

    lattice_id: str
    account_id: str
    display_name: str
    execution_backend: str
    """`local-model` or `assistant-runtime`."""
    status: str
    """`unpaired`, `reachable`, `offline` or `revoked`."""
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None

    @property
    def model(self) -> str:
        """The model expression that reaches this runtime: `lattice:personal:<lattice_id>`."""
        return PERSONAL_MODEL_PREFIX + self.lattice_id

    @property
    def reachable(self) -> bool:
        return self.status == "reachable"


@dataclass(frozen=True)
class BootstrapToken:
    """A one-time pairing token. The token (and the command, which holds it) never show in a repr."""

    lattice_id: str
    token: str = field(repr=False)
    """`plrt_v1_…`: single use; the gateway keeps only its hash."""
    expires_at: datetime.datetime | None
    command: str = field(repr=False)
    """`lattice-ctl relay connect …`, ready to run on the user's machine."""
