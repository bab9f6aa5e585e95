"""Checks a chat request before any model sees it; each failure names the field to fix."""

from __future__ import annotations

from lattice.errors import InvalidArgument
from lattice.server.chat import ChatRequest, Role

MAX_STOP_SEQUENCES = 4
MAX_STOP_LENGTH = 256
MAX_TOP_LOGPROBS = 20
MAX_MODEL_CHARS = 256
"""The longest model expression: a priority list of a few model ids. A longer one is refused before it
can reach an error message or gRPC metadata (a 16 KB name overflowed the metadata limit)."""


def check_model_expression(expression: str) -> None:
    if len(expression) > MAX_MODEL_CHARS:
        raise InvalidArgument(
            f"model is {len(expression)} characters long; a model expression has at most {MAX_MODEL_CHARS}",
            field="model",
        )


def validate_chat_request(request: ChatRequest, *, max_tokens_ceiling: int) -> None:
    if request.prompt is not None:
        if not request.prompt:
            raise InvalidArgument("prompt must not be empty", field="prompt")
    elif not request.messages:
        raise InvalidArgument("messages must not be empty", field="messages")
    for i, message in enumerate(request.messages):
        if not message.content and not message.tool_calls:
            # Only an assistant message that calls tools may go without content (OpenAI's shape).
            raise InvalidArgument(f"messages[{i}] has no content", field=f"messages[{i}].content")
        if message.role is Role.TOOL and not message.tool_call_id:
            raise InvalidArgument("a tool message needs tool_call_id", field=f"messages[{i}].tool_call_id")
    if request.max_tokens is not None and not 1 <= request.max_tokens <= max_tokens_ceiling:
        raise InvalidArgument(
            f"max_tokens must be between 1 and {max_tokens_ceiling}, got {request.max_tokens}",
            field="max_tokens",
        )
    sampling = request.sampling
    if not 0.0 <= sampling.temperature <= 2.0:
        raise InvalidArgument(f"temperature must be between 0 and 2, got {sampling.temperature}", field="temperature")
    if not 0.0 < sampling.top_p <= 1.0:
        raise InvalidArgument(f"top_p must be in (0, 1], got {sampling.top_p}", field="top_p")
    names = [tool.name for tool in request.tools]
    for i, name in enumerate(names):
        if not name:
            raise InvalidArgument("every tool needs a function name", field=f"tools[{i}].function.name")
    if len(set(names)) != len(names):
        raise InvalidArgument("tool function names must be unique", field="tools")
    choice = request.tool_choice
    if choice is not None and choice.function_name and choice.function_name not in names:
        raise InvalidArgument(
            f"tool_choice names {choice.function_name!r}, which is not among the tools", field="tool_choice"
        )
    _validate_response_format(request)
    if not 0 <= request.top_logprobs <= MAX_TOP_LOGPROBS:
        raise InvalidArgument(
            f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {request.top_logprobs}", field="top_logprobs"
        )
    if request.top_logprobs and not request.logprobs:
        raise InvalidArgument("top_logprobs needs logprobs to be true", field="top_logprobs")
    check_priority(request.priority)
    if len(request.stop) > MAX_STOP_SEQUENCES:
        raise InvalidArgument(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed", field="stop")
    for stop in request.stop:
        if not stop or len(stop) > MAX_STOP_LENGTH:
            raise InvalidArgument(f"each stop sequence must be 1 to {MAX_STOP_LENGTH} characters", field="stop")


def _validate_response_format(request: ChatRequest) -> None:
    """A `json_schema` format needs OpenAI's object (`name`, `schema`, `strict`) with an object as its schema."""
    response_format = request.response_format
    if response_format is None or response_format.type != "json_schema":
        return
    if not response_format.json_schema:
        raise InvalidArgument(
            "response_format of type json_schema needs json_schema", field="response_format.json_schema"
        )
    schema = response_format.json_schema.get("schema", {})
    if not isinstance(schema, dict):
        raise InvalidArgument(
            f"response_format.json_schema.schema must be a JSON Schema object, got {type(schema).__name__}",
            field="response_format.json_schema.schema",
        )


def check_priority(priority: int) -> None:
    if not -10 <= priority <= 10:
        raise InvalidArgument(f"priority must be between -10 and 10, got {priority}", field="priority")
