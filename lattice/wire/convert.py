"""Proto ⇄ domain conversion for the services. The only place that knows both."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from google.protobuf import duration_pb2, json_format, timestamp_pb2

from lattice.errors import InvalidArgument
from lattice.server import chat
from lattice.server.principals import Principal
from lattice.server.registry import RegisteredModel
from lattice.server.resolver import Resolution, Verdict
from lattice.v1 import chat_pb2, common_pb2, completions_pb2, resolve_pb2
from lattice.wire.names import ESCALATE_KEY, LATENCY_TIER_KEY, PRIORITY_KEY

_ROLES = {
    common_pb2.ROLE_SYSTEM: chat.Role.SYSTEM,
    common_pb2.ROLE_USER: chat.Role.USER,
    common_pb2.ROLE_ASSISTANT: chat.Role.ASSISTANT,
    common_pb2.ROLE_TOOL: chat.Role.TOOL,
}
_FINISH = {
    chat.FinishReason.STOP: common_pb2.FINISH_REASON_STOP,
    chat.FinishReason.LENGTH: common_pb2.FINISH_REASON_LENGTH,
    chat.FinishReason.TOOL_CALLS: common_pb2.FINISH_REASON_TOOL_CALLS,
    chat.FinishReason.CONTENT_FILTER: common_pb2.FINISH_REASON_CONTENT_FILTER,
}
_ROLES_TO_PROTO = {role: value for value, role in _ROLES.items()}
_FINISH_FROM_PROTO = {value: reason for reason, value in _FINISH.items()}
_VERDICTS = {
    Verdict.CHOSEN: common_pb2.CANDIDATE_VERDICT_CHOSEN,
    Verdict.OUTRANKED: common_pb2.CANDIDATE_VERDICT_OUTRANKED,
    Verdict.MISSING_CAPABILITY: common_pb2.CANDIDATE_VERDICT_MISSING_CAPABILITY,
    Verdict.CONTEXT_TOO_SMALL: common_pb2.CANDIDATE_VERDICT_CONTEXT_TOO_SMALL,
    Verdict.UNAVAILABLE: common_pb2.CANDIDATE_VERDICT_UNAVAILABLE,
    Verdict.FAILED: common_pb2.CANDIDATE_VERDICT_FAILED,
}
_CAPABILITIES = {
    "chat": resolve_pb2.CAPABILITY_CHAT,
    "vision": resolve_pb2.CAPABILITY_VISION,
    "tools": resolve_pb2.CAPABILITY_TOOLS,
    "json_mode": resolve_pb2.CAPABILITY_JSON_MODE,
    "long_context": resolve_pb2.CAPABILITY_LONG_CONTEXT,
    "logprobs": resolve_pb2.CAPABILITY_LOGPROBS,
    "embeddings": resolve_pb2.CAPABILITY_EMBEDDINGS,
    "completions": resolve_pb2.CAPABILITY_COMPLETIONS,
}
_TIERS = {
    common_pb2.LATENCY_TIER_FAST: chat.LatencyTier.FAST,
    common_pb2.LATENCY_TIER_STANDARD: chat.LatencyTier.STANDARD,
    common_pb2.LATENCY_TIER_SLOW: chat.LatencyTier.SLOW,
}
_TIER_NAMES = {tier.value: tier for tier in chat.LatencyTier}
_TIERS_TO_PROTO = {tier.value: value for value, tier in _TIERS.items()}
_TOOL_CHOICE_MODES: dict[int, Literal["none", "auto", "required"]] = {
    chat_pb2.ToolChoice.MODE_NONE: "none",
    chat_pb2.ToolChoice.MODE_AUTO: "auto",
    chat_pb2.ToolChoice.MODE_REQUIRED: "required",
}
_RESPONSE_FORMATS: dict[int, Literal["text", "json_object", "json_schema"]] = {
    chat_pb2.ResponseFormat.TYPE_TEXT: "text",
    chat_pb2.ResponseFormat.TYPE_JSON_OBJECT: "json_object",
    chat_pb2.ResponseFormat.TYPE_JSON_SCHEMA: "json_schema",
}
_TOOL_CHOICE_MODES_TO_PROTO: dict[str, chat_pb2.ToolChoice.Mode] = {
    "none": chat_pb2.ToolChoice.MODE_NONE,
    "auto": chat_pb2.ToolChoice.MODE_AUTO,
    "required": chat_pb2.ToolChoice.MODE_REQUIRED,
}
_RESPONSE_FORMATS_TO_PROTO: dict[str, chat_pb2.ResponseFormat.Type] = {
    "text": chat_pb2.ResponseFormat.TYPE_TEXT,
    "json_object": chat_pb2.ResponseFormat.TYPE_JSON_OBJECT,
    "json_schema": chat_pb2.ResponseFormat.TYPE_JSON_SCHEMA,
}


def chat_request_from_proto(
    request: chat_pb2.ChatRequest,
    metadata: Mapping[str, str] | None = None,
    *,
    caller: str = "",
    principal: Principal | None = None,
    deadline: float | None = None,
) -> chat.ChatRequest:
    """The domain request; `x-lattice-latency-tier`, `-escalate` and `-priority` metadata fill unset fields."""
    metadata = metadata or {}
    return chat.ChatRequest(
        model=request.model,
        messages=tuple(_message_from_proto(m, i) for i, m in enumerate(request.messages)),
        max_tokens=request.max_tokens if request.HasField("max_tokens") else None,
        sampling=_sampling(request),
        stop=tuple(request.stop),
        tools=tuple(
            chat.Tool(
                t.function.name,
                t.function.description,
                _struct(t.function.parameters) if t.function.HasField("parameters") else None,
                t.function.strict,
            )
            for t in request.tools
        ),
        tool_choice=_tool_choice(request),
        response_format=_response_format(request),
        user=request.user,
        **_hints(request, metadata),
        caller=caller,
        principal=principal,
        deadline=deadline,
        logprobs=request.logprobs,
        top_logprobs=request.top_logprobs,
    )


def completion_request_from_proto(
    request: completions_pb2.CompleteRequest,
    metadata: Mapping[str, str] | None = None,
    *,
    caller: str = "",
    principal: Principal | None = None,
    deadline: float | None = None,
) -> chat.ChatRequest:
    """A text completion as the domain's request: a chat with a raw `prompt` and no messages; metadata as for a chat."""
    metadata = metadata or {}
    return chat.ChatRequest(
        model=request.model,
        messages=(),
        prompt=request.prompt,
        max_tokens=request.max_tokens if request.HasField("max_tokens") else None,
        sampling=_sampling(request),
        stop=tuple(request.stop),
        user=request.user,
        **_hints(request, metadata),
        caller=caller,
        principal=principal,
        deadline=deadline,
    )


def _sampling(request: chat_pb2.ChatRequest | completions_pb2.CompleteRequest) -> chat.Sampling:
    return chat.Sampling(
        temperature=request.temperature if request.HasField("temperature") else 1.0,
        top_p=request.top_p if request.HasField("top_p") else 1.0,
        seed=request.seed if request.HasField("seed") else None,
    )


def _hints(
    request: chat_pb2.ChatRequest | completions_pb2.CompleteRequest, metadata: Mapping[str, str]
) -> dict[str, Any]:
    """The latency tier, escalation and priority: the request's fields, else the `x-lattice-*` metadata."""
    return {
        "latency_tier": _TIERS.get(request.latency_tier) or _tier_from_metadata(metadata),
        "allow_escalation": request.allow_escalation or metadata.get(ESCALATE_KEY, "").lower() == "allow",
        "priority": request.priority or priority_from_metadata(metadata),
    }


def priority_from_metadata(metadata: Mapping[str, str]) -> int:
    value = metadata.get(PRIORITY_KEY, "").strip()
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"{PRIORITY_KEY} must be an integer, got {value!r}", field=PRIORITY_KEY) from None


def text_metadata(pairs: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str]:
    """Invocation metadata as a dict of its text entries (binary `-bin` entries are skipped)."""
    return {key: value for key, value in pairs or () if isinstance(value, str)}


def _struct(value: Any) -> dict[str, Any]:
    return dict(_integral(json_format.MessageToDict(value)))


def _integral(value: Any) -> Any:
    """A Struct keeps every number as a double: a schema's `"maxLength": 40` arrives as 40.0, which
    llama.cpp's schema compiler refuses and strict validators may too. Whole numbers are ints again."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _tool_choice(request: chat_pb2.ChatRequest) -> chat.ToolChoice | None:
    kind = request.tool_choice.WhichOneof("choice")
    if kind == "function_name":
        return chat.ToolChoice(function_name=request.tool_choice.function_name)
    if kind == "mode" and request.tool_choice.mode in _TOOL_CHOICE_MODES:
        return chat.ToolChoice(mode=_TOOL_CHOICE_MODES[request.tool_choice.mode])
    return None


def _response_format(request: chat_pb2.ChatRequest) -> chat.ResponseFormat | None:
    kind = _RESPONSE_FORMATS.get(request.response_format.type)
    if kind is None:
        return None
    schema = request.response_format.json_schema
    return chat.ResponseFormat(kind, _struct(schema) if request.response_format.HasField("json_schema") else None)


def _tier_from_metadata(metadata: Mapping[str, str]) -> chat.LatencyTier | None:
    value = metadata.get(LATENCY_TIER_KEY)
    if value is None:
        return None
    tier = _TIER_NAMES.get(value.strip().lower())
    if tier is None:
        raise InvalidArgument(
            f"{LATENCY_TIER_KEY} must be one of {', '.join(_TIER_NAMES)}, got {value!r}", field=LATENCY_TIER_KEY
        )
    return tier


def _message_from_proto(message: common_pb2.Message, index: int) -> chat.Message:
    role = _ROLES.get(message.role)
    if role is None:
        raise InvalidArgument(
            f"messages[{index}].role must be one of system, user, assistant, tool",
            field=f"messages[{index}].role",
        )
    parts: list[chat.ContentPart] = []
    for j, part in enumerate(message.content):
        kind = part.WhichOneof("part")
        if kind == "text":
            parts.append(chat.TextPart(part.text))
        elif kind == "image_url":
            parts.append(chat.ImagePart(part.image_url.url, part.image_url.detail))
        else:
            raise InvalidArgument("a content part needs text or image_url", field=f"messages[{index}].content[{j}]")
    return chat.Message(
        role=role,
        content=tuple(parts),
        name=message.name,
        tool_calls=tuple(chat.ToolCall(c.id, c.function.name, c.function.arguments) for c in message.tool_calls),
        tool_call_id=message.tool_call_id,
    )


def resolution_to_proto(resolution: Resolution) -> common_pb2.Resolution:
    return common_pb2.Resolution(
        expression=resolution.expression,
        model=resolution.model,
        backend=resolution.backend,
        candidates=[
            common_pb2.Candidate(model=c.model, verdict=_VERDICTS[c.verdict], detail=c.detail)
            for c in resolution.candidates
        ],
        escalated=resolution.escalated,
    )


def usage_to_proto(usage: chat.Usage) -> common_pb2.Usage:
    return common_pb2.Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def finish_reason_to_proto(reason: chat.FinishReason) -> common_pb2.FinishReason:
    return _FINISH[reason]


def finish_reason_from_proto(reason: common_pb2.FinishReason) -> chat.FinishReason:
    return _FINISH_FROM_PROTO.get(reason, chat.FinishReason.STOP)


def chat_request_to_proto(request: chat.ChatRequest) -> chat_pb2.ChatRequest:
    """The inverse of `chat_request_from_proto`, for a request the gateway passes on whole (the relay):
    what the model needs, not the gateway's own hints (tier, priority, caller)."""
    message = chat_pb2.ChatRequest(
        model=request.model,
        messages=[_message_to_proto(m) for m in request.messages],
        stop=list(request.stop),
        user=request.user,
    )
    if request.max_tokens is not None:
        message.max_tokens = request.max_tokens
    message.temperature = request.sampling.temperature
    message.top_p = request.sampling.top_p
    if request.sampling.seed is not None:
        message.seed = request.sampling.seed
    message.logprobs, message.top_logprobs = request.logprobs, request.top_logprobs
    for tool in request.tools:
        function = message.tools.add().function
        function.name, function.description, function.strict = tool.name, tool.description, tool.strict
        if tool.parameters is not None:
            json_format.ParseDict(tool.parameters, function.parameters)
    if request.tool_choice is not None:
        if request.tool_choice.function_name:
            message.tool_choice.function_name = request.tool_choice.function_name
        elif request.tool_choice.mode is not None:
            message.tool_choice.mode = _TOOL_CHOICE_MODES_TO_PROTO[request.tool_choice.mode]
    if request.response_format is not None:
        message.response_format.type = _RESPONSE_FORMATS_TO_PROTO[request.response_format.type]
        if request.response_format.json_schema is not None:
            json_format.ParseDict(request.response_format.json_schema, message.response_format.json_schema)
    return message


def _message_to_proto(message: chat.Message) -> common_pb2.Message:
    proto = common_pb2.Message(role=_ROLES_TO_PROTO[message.role], name=message.name, tool_call_id=message.tool_call_id)
    for part in message.content:
        if isinstance(part, chat.TextPart):
            proto.content.add(text=part.text)
        else:
            proto.content.add().image_url.CopyFrom(common_pb2.ImageUrl(url=part.url, detail=part.detail))
    for call in message.tool_calls:
        added = proto.tool_calls.add(id=call.id, type="function")
        added.function.name, added.function.arguments = call.name, call.arguments
    return proto


def model_to_proto(model: RegisteredModel, *, default_max_tokens: int) -> resolve_pb2.Model:
    """`default_max_tokens`: what an answer of this model runs to without `max_tokens` (Gateway.generation_cap)."""
    profile = model.profile
    return resolve_pb2.Model(
        name=f"models/{profile.id}",
        id=profile.id,
        aliases=profile.aliases,
        backend=profile.backend,
        context_window=profile.context_window,
        capabilities=[_CAPABILITIES[c] for c in profile.capabilities],
        roles=profile.roles,
        owned_by=profile.owned_by,
        latency_tier=_TIERS_TO_PROTO[profile.latency_tier],
        cost_per_million_tokens=profile.cost_per_million_tokens,
        available=model.available,
        default_max_tokens=default_max_tokens,
    )


def tool_calls_to_proto(calls: tuple[chat.ToolCall, ...]) -> list[common_pb2.ToolCall]:
    return [
        common_pb2.ToolCall(
            id=c.id, type="function", function=common_pb2.FunctionCall(name=c.name, arguments=c.arguments)
        )
        for c in calls
    ]


def tool_call_deltas_to_proto(deltas: tuple[chat.ToolCallDelta, ...]) -> list[chat_pb2.ToolCallDelta]:
    return [
        chat_pb2.ToolCallDelta(
            index=d.index,
            id=d.id,
            type="function" if d.id else "",
            function_name=d.name,
            function_arguments=d.arguments,
        )
        for d in deltas
    ]


def logprobs_to_proto(logprobs: tuple[chat.TokenLogprob, ...]) -> list[chat_pb2.TokenLogprob]:
    return [
        chat_pb2.TokenLogprob(
            token=t.token,
            logprob=t.logprob,
            bytes=t.bytes,
            top_logprobs=[chat_pb2.TopLogprob(token=o.token, logprob=o.logprob, bytes=o.bytes) for o in t.top],
        )
        for t in logprobs
    ]


def delta_to_proto(delta: chat.Delta, role: common_pb2.Role = common_pb2.ROLE_UNSPECIFIED) -> chat_pb2.ChatDelta:
    return chat_pb2.ChatDelta(
        role=role,
        content=delta.text,
        tool_calls=tool_call_deltas_to_proto(delta.tool_calls),
        logprobs=logprobs_to_proto(delta.logprobs),
    )


def delta_from_proto(delta: chat_pb2.ChatDelta) -> chat.Delta:
    return chat.Delta(
        text=delta.content,
        tool_calls=tuple(
            chat.ToolCallDelta(d.index, id=d.id, name=d.function_name, arguments=d.function_arguments)
            for d in delta.tool_calls
        ),
        logprobs=tuple(
            chat.TokenLogprob(
                t.token,
                t.logprob,
                t.bytes,
                tuple(chat.TopLogprob(o.token, o.logprob, o.bytes) for o in t.top_logprobs),
            )
            for t in delta.logprobs
        ),
    )


def queue_status_to_proto(queued: chat.Queued) -> chat_pb2.QueueStatus:
    wait = duration_pb2.Duration()
    wait.FromNanoseconds(int(queued.estimated_wait_seconds * 1e9))
    return chat_pb2.QueueStatus(model=queued.model, position=queued.position, estimated_wait=wait)


def timestamp(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def moment(stamp: timestamp_pb2.Timestamp) -> dt.datetime:
    """A timestamp as an aware UTC datetime."""
    return stamp.ToDatetime(dt.UTC)
