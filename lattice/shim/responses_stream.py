"""A StreamChat call's messages as the Responses API's typed stream events, in OpenAI's order.

`response.created` and `response.in_progress` open the stream; each output item is announced
(`response.output_item.added`), filled (a message's `content_part.added` and `output_text.delta`s, a
function call's `function_call_arguments.delta`s) and closed (`output_text.done`, `content_part.done`,
or `function_call_arguments.done`; then `output_item.done`) before the next one opens; the last
event is `response.completed` (or `response.incomplete`) carrying the whole response. A failure after
the start is an `error` event, then `response.failed`. Every event has its `sequence_number`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lattice.shim import convert, errors
from lattice.shim.fast_json import compact
from lattice.shim.responses_convert import (
    function_call_item,
    item_id,
    message_item,
    output_text,
    response_id,
    response_json,
    status_of,
)
from lattice.shim.responses_protocol import ResponsesRequest
from lattice.v1 import chat_pb2

Event = dict[str, Any]

# HTTP status of a failure → the code `response.failed` may carry (the SDK knows only OpenAI's few).
_FAILED_CODES = {400: "invalid_prompt", 429: "rate_limit_exceeded"}


@dataclass
class _Item:
    """One output item being streamed: a message (its text so far) or a function call (its arguments)."""

    id: str
    index: int
    call_id: str = ""
    name: str = ""
    text: str = ""
    logprobs: list[chat_pb2.TokenLogprob] = field(default_factory=list)
    open: bool = True

    @property
    def is_call(self) -> bool:
        return bool(self.call_id)

    def json(self, status: str) -> dict[str, Any]:
        if self.is_call:
            return function_call_item(self.id, self.call_id, self.name, self.text, status)
        return message_item(self.id, [output_text(self.text, self.logprobs)], status)


class ResponseEvents:
    """The events of one streamed response, made as the chat's stream messages arrive."""

    def __init__(self, body: ResponsesRequest, first: chat_pb2.StreamChatResponse) -> None:
        self._body = body
        self._id = response_id(first.id)
        self._model = first.model
        self._created_at = first.create_time.seconds
        self._sequence = 0
        self._items: list[_Item] = []
        self._calls: dict[int, _Item] = {}  # by the chat's tool-call index
        self.finished = False

    def start(self) -> list[Event]:
        return [
            self._event("response.created", response=self._response("in_progress")),
            self._event("response.in_progress", response=self._response("in_progress")),
        ]

    def delta(self, delta: chat_pb2.ChatDelta) -> list[Event]:
        events: list[Event] = []
        if delta.content:
            message = self._open_message(events)
            message.text += delta.content
            message.logprobs += delta.logprobs
            found = convert.logprobs_to_json(delta.logprobs)
            events.append(
                self._event(
                    "response.output_text.delta",
                    **self._at(message),
                    content_index=0,
                    delta=delta.content,
                    logprobs=found["content"] if found else [],
                )
            )
        for fragment in delta.tool_calls:
            call = self._calls.get(fragment.index)
            if call is None:
                call = self._open_call(fragment, events)
            call.name = call.name or fragment.function_name
            call.text += fragment.function_arguments
            # A fragment of a call already closed (an upstream interleaving parallel calls) is kept for the
            # final response, but sends no delta after its `done`.
            if fragment.function_arguments and call.open:
                delta_event = "response.function_call_arguments.delta"
                events.append(self._event(delta_event, **self._at(call), delta=fragment.function_arguments))
        return events

    def done(self, done: chat_pb2.ChatDone) -> list[Event]:
        status, incomplete = status_of(done.finish_reason)
        self.finished = True
        events: list[Event] = []
        if not self._items:  # an empty answer is still one (empty) message, as the unary answer has
            self._open_message(events)
        item_status = "incomplete" if status == "incomplete" else "completed"
        for item in self._items:
            events += self._close(item, item_status)
        output = [item.json("completed" if item.is_call else item_status) for item in self._items]
        response = self._response(status, output=output, usage=done.usage, incomplete_details=incomplete)
        return [*events, self._event(f"response.{status}", response=response)]

    def failed(self, error: errors.HttpError) -> list[Event]:
        """An `error` event and `response.failed`, for a call that failed after the stream began."""
        detail = error.body["error"]
        code = _FAILED_CODES.get(error.status, "server_error")
        output = [item.json("incomplete") for item in self._items]
        response = self._response("failed", output=output, error={"code": code, "message": detail["message"]})
        return [
            self._event("error", code=detail["code"], message=detail["message"], param=detail["param"]),
            self._event("response.failed", response=response),
        ]

    def _open_message(self, events: list[Event]) -> _Item:
        last = self._items[-1] if self._items else None
        if last is not None and not last.is_call and last.open:
            return last
        message = self._add(_Item(item_id("msg"), len(self._items)), events)
        part = output_text("")
        events.append(self._event("response.content_part.added", **self._at(message), content_index=0, part=part))
        return message

    def _open_call(self, fragment: chat_pb2.ToolCallDelta, events: list[Event]) -> _Item:
        call_id = fragment.id or item_id("call")
        call = _Item(item_id("fc"), len(self._items), call_id=call_id, name=fragment.function_name)
        self._calls[fragment.index] = call
        return self._add(call, events)

    def _add(self, item: _Item, events: list[Event]) -> _Item:
        for earlier in self._items:  # one item at a time, as OpenAI streams them
            events += self._close(earlier, "completed")
        self._items.append(item)
        events.append(self._event("response.output_item.added", output_index=item.index, item=item.json("in_progress")))
        return item

    def _close(self, item: _Item, status: str) -> list[Event]:
        if not item.open:
            return []
        item.open = False
        at = self._at(item)
        events: list[Event] = []
        if item.is_call:
            name, arguments = item.name, item.text
            events.append(self._event("response.function_call_arguments.done", **at, name=name, arguments=arguments))
        else:
            part = output_text(item.text, item.logprobs)
            text, logprobs = item.text, part["logprobs"]
            events.append(self._event("response.output_text.done", **at, content_index=0, text=text, logprobs=logprobs))
            events.append(self._event("response.content_part.done", **at, content_index=0, part=part))
        # Sequence numbers follow creation: the item's own `done` comes last.
        events.append(self._event("response.output_item.done", output_index=item.index, item=item.json(status)))
        return events

    def _at(self, item: _Item) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.index}

    def _event(self, type_: str, **fields: Any) -> Event:
        event = {"type": type_, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _response(self, status: str, **fields: Any) -> dict[str, Any]:
        return response_json(
            self._body, id_=self._id, model=self._model, created_at=self._created_at, status=status, **fields
        )


def sse(event: Event) -> str:
    """One event as OpenAI sends it: named after its type, its JSON as data."""
    return f"event: {event['type']}\ndata: {compact(event)}\n\n"
