"""A relayed chat's answer on the wire (lattice/wire/relay.py): what the daemon sends for each event is
read back by the gateway as the same event, and a failure as the error its reason stands for."""

from __future__ import annotations

import pytest

from lattice.errors import (
    BackendFailed,
    BackendRejected,
    BackendUnavailable,
    LatticeError,
    QueueFull,
    ResourceExhausted,
)
from lattice.server.chat import Delta, Finish, FinishReason, TokenLogprob, ToolCallDelta, Usage
from lattice.v1 import relay_pb2
from lattice.wire.relay import generation_event, work_event, work_failure

EVENTS = [
    Delta(text="hello"),
    Delta(tool_calls=(ToolCallDelta(0, id="call_1", name="get_weather", arguments='{"city"'),)),
    Delta(text="x", logprobs=(TokenLogprob("x", -0.5, b"x"),)),
    Finish(FinishReason.TOOL_CALLS, Usage(12, 7)),
    Finish(FinishReason.LENGTH, Usage(3, 16)),
    Finish(FinishReason.STOP, Usage(3, 4), stop_sequence="\n\nUser:"),
]


@pytest.mark.parametrize("event", EVENTS, ids=repr)
def test_each_event_crosses_the_relay_unchanged(event: Delta | Finish) -> None:
    message = work_event(event)
    assert message is not None
    sent = relay_pb2.WorkEvent.FromString(message.SerializeToString())
    assert generation_event("lat_x", sent) == event


def test_an_empty_delta_sends_nothing_and_text_alone_stays_readable_by_older_gateways() -> None:
    assert work_event(Delta()) is None
    assert work_event(Delta(text="hi")) == relay_pb2.WorkEvent(delta="hi")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (QueueFull("full"), ResourceExhausted),
        (BackendUnavailable("down"), BackendUnavailable),
        (LatticeError("bad", reason="CONTEXT_LENGTH_EXCEEDED"), BackendRejected),
        (RuntimeError("boom"), BackendFailed),
    ],
)
def test_a_failure_comes_back_as_the_error_of_its_reason(error: BaseException, kind: type[LatticeError]) -> None:
    with pytest.raises(kind) as raised:
        generation_event("lat_x", work_failure(error))
    expected = error.reason if isinstance(error, LatticeError) else "BACKEND_FAILED"
    assert raised.value.reason == expected and raised.value.message.startswith("personal runtime lat_x: ")


def test_a_message_without_an_event_is_skipped() -> None:
    assert generation_event("lat_x", relay_pb2.WorkEvent()) is None
