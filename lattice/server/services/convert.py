"""Proto ⇄ domain conversion for the services. The only place that knows both."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from lattice.config import ModelProfile
from lattice.errors import InvalidArgument
from lattice.server import chat
from lattice.server.resolver import Resolution, Verdict
from lattice.v1 import chat_pb2, common_pb2, resolve_pb2

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
_VERDICTS = {
    Verdict.CHOSEN: common_pb2.CANDIDATE_VERDICT_CHOSEN,
    Verdict.OUTRANKED: common_pb2.CANDIDATE_VERDICT_OUTRANKED,
    Verdict.MISSING_CAPABILITY: common_pb2.CANDIDATE_VERDICT_MISSING_CAPABILITY,
    Verdict.CONTEXT_TOO_SMALL: common_pb2.CANDIDATE_VERDICT_CONTEXT_TOO_SMALL,
    Verdict.UNAVAILABLE: common_pb2.CANDIDATE_VERDICT_UNAVAILABLE,
}
_CAPABILITIES = {
    "chat": resolve_pb2.CAPABILITY_CHAT,
    "vision": resolve_pb2.CAPABILITY_VISION,
    "tools": resolve_pb2.CAPABILITY_TOOLS,
    "json_mode": resolve_pb2.CAPABILITY_JSON_MODE,
    "long_context": resolve_pb2.CAPABILITY_LONG_CONTEXT,
}
_JSON_FORMATS = (chat_pb2.ResponseFormat.TYPE_JSON_OBJECT, chat_pb2.ResponseFormat.TYPE_JSON_SCHEMA)


def chat_request_from_proto(request: chat_pb2.ChatRequest) -> chat.ChatRequest:
    return chat.ChatRequest(
        model=request.model,
        messages=tuple(_message_from_proto(m, i) for i, m in enumerate(request.messages)),
        max_tokens=request.max_tokens if request.HasField("max_tokens") else None,
        sampling=chat.Sampling(
            temperature=request.temperature if request.HasField("temperature") else 1.0,
            top_p=request.top_p if request.HasField("top_p") else 1.0,
            seed=request.seed if request.HasField("seed") else None,
        ),
        stop=tuple(request.stop),
        tools=tuple(t.function.name for t in request.tools),
        wants_json=request.response_format.type in _JSON_FORMATS,
        user=request.user,
    )


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
    )


def usage_to_proto(usage: chat.Usage) -> common_pb2.Usage:
    return common_pb2.Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def finish_reason_to_proto(reason: chat.FinishReason) -> common_pb2.FinishReason:
    return _FINISH[reason]


def model_to_proto(profile: ModelProfile) -> resolve_pb2.Model:
    return resolve_pb2.Model(
        name=f"models/{profile.id}",
        id=profile.id,
        aliases=profile.aliases,
        backend=profile.backend,
        context_window=profile.context_window,
        capabilities=[_CAPABILITIES[c] for c in profile.capabilities],
        roles=profile.roles,
        owned_by=profile.owned_by,
    )


def now_timestamp() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp
