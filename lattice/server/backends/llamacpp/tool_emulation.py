"""Tool calling for models whose chat template knows no tools (SmolLM2's, for one).

llama.cpp calls tools natively only through a template that renders them. For the
others the gateway does it: the tools are described in a system message, and the
answer is constrained by a JSON schema over the tools' names and parameters
(llama.cpp turns the schema into a grammar), so `required` and a named function
always yield a well-formed call, and `auto` yields a call or `{"content": …}` text.
The history's tool calls and results are written as the same JSON and plain text,
which any template can render.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from lattice.server.chat import ChatRequest, Message, Role, Tool, ToolCall

_ANY_OBJECT: dict[str, Any] = {"type": "object"}


def template_supports_tools(chat_template: str) -> bool:
    """A template that renders tools mentions them; one that never reads `tools` cannot."""
    return "tools" in chat_template


@dataclass(frozen=True)
class ToolEmulation:
    tools: tuple[Tool, ...]
    forced: str = ""
    """The one function the answer must call; empty with `required` or `auto`."""
    required: bool = False

    @classmethod
    def for_request(cls, request: ChatRequest) -> ToolEmulation | None:
        """The emulation a request needs; None when it may not call tools now."""
        if not request.uses_tools:
            return None
        choice = request.tool_choice
        if choice is not None and choice.function_name:
            return cls(request.tools, forced=choice.function_name, required=True)
        return cls(request.tools, required=choice is not None and choice.mode == "required")

    @property
    def callable(self) -> tuple[Tool, ...]:
        return tuple(t for t in self.tools if t.name == self.forced) if self.forced else self.tools

    def schema(self) -> dict[str, Any]:
        """A call of one of the callable tools, or (with `auto`) a `{"content": …}` answer."""
        options = [_call_schema(tool) for tool in self.callable]
        if not self.required:
            options.append(
                {
                    "type": "object",
                    "properties": {"content": {"type": "string"}},
                    "required": ["content"],
                    "additionalProperties": False,
                }
            )
        return options[0] if len(options) == 1 else {"anyOf": options}

    def instructions(self) -> str:
        listed = "\n".join(
            json.dumps({"name": t.name, "description": t.description, "parameters": t.parameters or _ANY_OBJECT})
            for t in self.callable
        )
        call = 'To call a tool, answer with JSON: {"name": "<tool name>", "arguments": {<its parameters>}}.'
        if self.required:
            return f"You call tools. The tools:\n{listed}\n{call}"
        answer = 'To answer without a tool, answer with JSON: {"content": "<your answer>"}.'
        return f"You may call tools. The tools:\n{listed}\n{call}\n{answer}"

    def messages(self, history: tuple[Message, ...]) -> list[dict[str, Any]]:
        """The conversation as plain text messages, the tools' description in the (first) system message."""
        out = plain_messages(history)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{self.instructions()}"}
        else:
            out.insert(0, {"role": "system", "content": self.instructions()})
        return out

    def parse(self, answer: str) -> tuple[str, tuple[ToolCall, ...]]:
        """The constrained answer as text or as one tool call. Output cut short (`length`) that no longer
        parses is returned as text, as it came."""
        try:
            value = json.loads(answer)
        except ValueError:
            return answer, ()
        if isinstance(value, dict) and isinstance(value.get("name"), str) and "arguments" in value:
            arguments = json.dumps(value["arguments"], ensure_ascii=False)
            return "", (ToolCall(f"call_{uuid.uuid4().hex[:24]}", value["name"], arguments),)
        if isinstance(value, dict) and isinstance(value.get("content"), str):
            return value["content"], ()
        return answer, ()


def plain_messages(history: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Messages any template renders: tool calls as their JSON, tool results as user text."""
    out: list[dict[str, Any]] = []
    for message in history:
        if message.role is Role.TOOL:
            out.append({"role": "user", "content": f"Tool result ({message.tool_call_id}): {message.text}"})
        elif message.tool_calls:
            calls = [{"name": c.name, "arguments": _arguments(c.arguments)} for c in message.tool_calls]
            text = json.dumps(calls[0] if len(calls) == 1 else calls)
            out.append({"role": "assistant", "content": f"{message.text}\n{text}".strip()})
        else:
            out.append({"role": message.role.value, "content": message.text})
    return out


def _call_schema(tool: Tool) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": tool.parameters or _ANY_OBJECT},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _arguments(text: str) -> Any:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text
