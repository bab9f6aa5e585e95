"""The SDK's records ⇄ the generated betterproto2 messages (`lattice_betterproto.lattice.v1`)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, cast

from lattice_betterproto.google.protobuf import Struct
from lattice_betterproto.lattice import v1 as pb

from lattice_client._types import (
    Candidate,
    ChatChunk,
    ChatCompletion,
    ChatMessage,
    ChatOptions,
    Choice,
    CompletionChunk,
    CompletionOptions,
    Embeddings,
    FinishReason,
    FunctionTool,
    ImageUrl,
    MessageLike,
    Model,
    PersonalRuntime,
    QueueUpdate,
    Resolution,
    Role,
    TextCompletion,
    ToolCall,
    ToolCallDelta,
    Usage,
)

_ROLES: Mapping[str, pb.Role] = {
    "system": pb.Role.SYSTEM,
    "developer": pb.Role.SYSTEM,  # OpenAI's newer name for the system role
    "user": pb.Role.USER,
    "assistant": pb.Role.ASSISTANT,
    "tool": pb.Role.TOOL,
}
_TIERS: Mapping[str, pb.LatencyTier] = {
    "fast": pb.LatencyTier.FAST,
    "standard": pb.LatencyTier.STANDARD,
    "slow": pb.LatencyTier.SLOW,
}
_TOOL_CHOICE_MODES: Mapping[str, pb.ToolChoiceMode] = {
    "none": pb.ToolChoiceMode.NONE,
    "auto": pb.ToolChoiceMode.AUTO,
    "required": pb.ToolChoiceMode.REQUIRED,
}


def _name(value: enum.Enum) -> str:
    """`FinishReason.TOOL_CALLS` → `tool_calls`; a value this SDK does not know → `unspecified`."""
    name = value.name
    return name.lower() if name and name.isidentifier() else "unspecified"


# Requests


def message_to_proto(message: MessageLike) -> pb.Message:
    if isinstance(message, ChatMessage):
        parts = [pb.ContentPart(text=message.content)] if message.content else []
        parts += [pb.ContentPart(image_url=pb.ImageUrl(url=i.url, detail=i.detail)) for i in message.images]
        calls = [
            pb.ToolCall(id=c.id, type="function", function=pb.FunctionCall(name=c.name, arguments=c.arguments))
            for c in message.tool_calls
        ]
        return pb.Message(
            role=_role(message.role),
            content=parts,
            name=message.name,
            tool_calls=calls,
            tool_call_id=message.tool_call_id,
        )
    content = message.get("content", "")
    if isinstance(content, str):
        parts = [pb.ContentPart(text=content)] if content else []
    else:
        parts = []
        for part in content:
            if part["type"] == "text":
                parts.append(pb.ContentPart(text=part["text"]))
            else:
                image = part["image_url"]
                parts.append(pb.ContentPart(image_url=pb.ImageUrl(url=image["url"], detail=image.get("detail", ""))))
    return pb.Message(
        role=_role(message["role"]),
        content=parts,
        name=message.get("name", ""),
        tool_call_id=message.get("tool_call_id", ""),
    )


def _role(role: str) -> pb.Role:
    try:
        return _ROLES[role]
    except KeyError:
        raise ValueError(f"unknown role {role!r}: expected one of system, user, assistant, tool") from None


def _set_options(request: pb.ChatRequest | pb.CompleteRequest, options: CompletionOptions) -> None:
    """The options chats and text completions share: the two messages give them the same names."""
    request.max_tokens = options.get("max_tokens")
    request.temperature = options.get("temperature")
    request.top_p = options.get("top_p")
    request.stop = list(options.get("stop", ()))
    request.seed = options.get("seed")
    request.user = options.get("user", "")
    request.allow_escalation = options.get("allow_escalation", False)
    request.priority = options.get("priority", 0)
    if (tier := options.get("latency_tier")) is not None:
        request.latency_tier = _TIERS[tier]


def chat_request(model: str, messages: Sequence[MessageLike], options: ChatOptions) -> pb.ChatRequest:
    request = pb.ChatRequest(
        model=model,
        messages=[message_to_proto(m) for m in messages],
        tools=[_tool(t) for t in options.get("tools", ())],
    )
    _set_options(request, options)
    if (choice := options.get("tool_choice")) is not None:
        mode = _TOOL_CHOICE_MODES.get(choice)
        request.tool_choice = pb.ToolChoice(mode=mode) if mode is not None else pb.ToolChoice(function_name=choice)
    if (response_format := options.get("response_format")) is not None:
        request.response_format = _response_format(response_format)
    return request


def complete_request(model: str, prompt: str, options: CompletionOptions) -> pb.CompleteRequest:
    if not isinstance(prompt, str):
        # A list of prompts (which OpenAI's legacy API takes) would otherwise fail deep in the encoder.
        raise TypeError(f"prompt must be one text (str), not {type(prompt).__name__}: one prompt per call")
    request = pb.CompleteRequest(model=model, prompt=prompt)
    _set_options(request, options)
    return request


def _tool(tool: FunctionTool) -> pb.Tool:
    parameters = _struct(tool.parameters) if tool.parameters is not None else None
    definition = pb.FunctionDefinition(
        name=tool.name, description=tool.description, parameters=parameters, strict=tool.strict
    )
    return pb.Tool(type="function", function=definition)


def _response_format(value: str | Mapping[str, Any]) -> pb.ResponseFormat:
    if value == "text":
        return pb.ResponseFormat(type=pb.ResponseFormatType.TEXT)
    if value == "json_object":
        return pb.ResponseFormat(type=pb.ResponseFormatType.JSON_OBJECT)
    if isinstance(value, str):
        raise ValueError(f"unknown response_format {value!r}: 'text', 'json_object' or a json_schema mapping")
    return pb.ResponseFormat(type=pb.ResponseFormatType.JSON_SCHEMA, json_schema=_struct(value))


def _struct(value: Mapping[str, Any]) -> Struct:
    return Struct.from_dict(dict(value))


# Answers


def usage_from_proto(usage: pb.Usage | None) -> Usage:
    if usage is None:
        return Usage()
    return Usage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)


def resolution_from_proto(resolution: pb.Resolution | None) -> Resolution | None:
    if resolution is None:
        return None
    candidates = tuple(Candidate(c.model, _name(c.verdict), c.detail) for c in resolution.candidates)
    return Resolution(resolution.expression, resolution.model, resolution.backend, candidates, resolution.escalated)


def embed_request(
    model: str, inputs: Sequence[str | Sequence[int]], dimensions: int | None, user: str, priority: int
) -> pb.EmbedRequest:
    """Each input is a text, or token ids of the model's own vocabulary."""
    return pb.EmbedRequest(
        model=model,
        inputs=[
            pb.EmbedInput(text=item) if isinstance(item, str) else pb.EmbedInput(tokens=pb.TokenIds(ids=list(item)))
            for item in inputs
        ],
        dimensions=dimensions,
        user=user,
        priority=priority,
    )


def embeddings_from_proto(response: pb.EmbedResponse) -> Embeddings:
    return Embeddings(
        model=response.model,
        vectors=tuple(tuple(e.values) for e in response.embeddings),
        usage=usage_from_proto(response.usage),
        resolution=resolution_from_proto(response.resolution),
    )


def _finish_reason(value: pb.FinishReason) -> FinishReason:
    return cast(FinishReason, _name(value))


def _message_from_proto(message: pb.Message | None) -> ChatMessage:
    if message is None:
        return ChatMessage(role="assistant")
    role = cast(Role, _name(message.role)) if message.role else "assistant"
    text = "".join(p.text for p in message.content if p.text is not None)
    images = tuple(ImageUrl(p.image_url.url, p.image_url.detail) for p in message.content if p.image_url is not None)
    calls = tuple(
        ToolCall(c.id, c.function.name if c.function else "", c.function.arguments if c.function else "")
        for c in message.tool_calls
    )
    return ChatMessage(role=role, content=text, images=images, name=message.name, tool_calls=calls)


def completion_from_proto(response: pb.ChatResponse) -> ChatCompletion:
    message, reason = _message_from_proto(response.message), _finish_reason(response.finish_reason)
    choice = Choice(0, message, reason, response.stop_sequence)
    return ChatCompletion(
        id=response.id,
        model=response.model,
        choices=(choice,),
        usage=usage_from_proto(response.usage),
        resolution=resolution_from_proto(response.resolution),
        created=response.create_time,
    )


def text_completion_from_proto(response: pb.CompleteResponse) -> TextCompletion:
    return TextCompletion(
        id=response.id,
        model=response.model,
        text=response.text,
        finish_reason=_finish_reason(response.finish_reason),
        usage=usage_from_proto(response.usage),
        resolution=resolution_from_proto(response.resolution),
        created=response.create_time,
    )


def completion_chunk_from_proto(message: pb.StreamCompleteResponse) -> CompletionChunk | None:
    """A piece of text or the done as a chunk; None for anything else (a queue update, an unknown event)."""
    if message.text is not None:
        return CompletionChunk(message.id, message.model, message.text)
    if message.done is not None:
        done = message.done
        return CompletionChunk(
            message.id,
            message.model,
            finish_reason=_finish_reason(done.finish_reason),
            usage=usage_from_proto(done.usage),
            resolution=resolution_from_proto(done.resolution),
        )
    return None


def chunk_from_proto(message: pb.StreamChatResponse) -> ChatChunk | None:
    """A delta or the done as a chunk; None for anything else (a queue update, an unknown event)."""
    if message.delta is not None:
        delta = message.delta
        calls = tuple(ToolCallDelta(c.index, c.id, c.function_name, c.function_arguments) for c in delta.tool_calls)
        role = cast(Role, _name(delta.role)) if delta.role else None
        return ChatChunk(message.id, message.model, delta.content, role, calls)
    if message.done is not None:
        done = message.done
        return ChatChunk(
            message.id,
            message.model,
            finish_reason=_finish_reason(done.finish_reason),
            usage=usage_from_proto(done.usage),
            resolution=resolution_from_proto(done.resolution),
            stop_sequence=done.stop_sequence,
        )
    return None


def queue_update_from_proto(status: pb.QueueStatus) -> QueueUpdate:
    wait = status.estimated_wait.total_seconds() if status.estimated_wait is not None else 0.0
    return QueueUpdate(status.model, status.position, wait)


def model_from_proto(model: pb.Model) -> Model:
    return Model(
        id=model.id,
        aliases=tuple(model.aliases),
        backend=model.backend,
        context_window=model.context_window,
        capabilities=tuple(_name(c) for c in model.capabilities),
        roles=tuple(model.roles),
        owned_by=model.owned_by,
        latency_tier=_name(model.latency_tier),
        available=model.available,
        default_max_tokens=model.default_max_tokens,
    )


def runtime_from_proto(runtime: pb.PersonalRuntime | None) -> PersonalRuntime:
    if runtime is None:
        raise ValueError("the gateway's answer carries no runtime")
    return PersonalRuntime(
        lattice_id=runtime.lattice_id,
        account_id=runtime.account_id,
        display_name=runtime.display_name,
        execution_backend=runtime.execution_backend,
        status=runtime.status,
        created_at=runtime.created_at,
        updated_at=runtime.updated_at,
    )
