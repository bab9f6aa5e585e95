"""A relayed chat's answer on the wire: the daemon turns each generation event into one `WorkEvent`,
the gateway turns each `WorkEvent` back into one generation event. The request goes down as the chat's
own proto (`convert.chat_request_to_proto`, read by `convert.chat_request_from_proto`): one conversion
each way on each side, and both sides share this module instead of each knowing the other's tables."""

from __future__ import annotations

from lattice.errors import BackendFailed, LatticeError, from_reason
from lattice.server.chat import Delta, Finish, GenerationEvent, Usage
from lattice.v1 import relay_pb2
from lattice.wire.convert import (
    delta_from_proto,
    delta_to_proto,
    finish_reason_from_proto,
    finish_reason_to_proto,
    usage_to_proto,
)


def work_event(event: GenerationEvent) -> relay_pb2.WorkEvent | None:
    """The daemon's message for one event; None for an empty delta (nothing to send)."""
    if isinstance(event, Delta):
        if event.tool_calls or event.logprobs:  # more than text: the whole delta
            return relay_pb2.WorkEvent(chat_delta=delta_to_proto(event))
        if event.text:  # text alone, as gateways that predate `chat_delta` read it
            return relay_pb2.WorkEvent(delta=event.text)
        return None
    finish = relay_pb2.WorkFinish(
        finish_reason=finish_reason_to_proto(event.reason),
        usage=usage_to_proto(event.usage),
        stop_sequence=event.stop_sequence,
    )
    return relay_pb2.WorkEvent(finish=finish)


def work_failure(error: BaseException) -> relay_pb2.WorkEvent:
    """The daemon's answer when the work failed: a Lattice error's reason, anything else BACKEND_FAILED."""
    if isinstance(error, LatticeError):
        return relay_pb2.WorkEvent(failure=relay_pb2.WorkFailure(reason=error.reason, message=error.message))
    return relay_pb2.WorkEvent(failure=relay_pb2.WorkFailure(reason=BackendFailed.default_reason, message=str(error)))


def generation_event(lattice_id: str, event: relay_pb2.WorkEvent) -> GenerationEvent | None:
    """The gateway's event for one of the daemon's messages; a failure is raised as the error its reason
    stands for (`errors.from_reason`). None for a message with no event (from a newer daemon)."""
    kind = event.WhichOneof("event")
    if kind == "delta":
        return Delta(text=event.delta)
    if kind == "chat_delta":
        return delta_from_proto(event.chat_delta)
    if kind == "finish":
        usage = event.finish.usage
        return Finish(
            finish_reason_from_proto(event.finish.finish_reason),
            Usage(usage.prompt_tokens, usage.completion_tokens),
            event.finish.stop_sequence,  # empty from a daemon that predates it: no stop string is named
        )
    if kind == "failure":
        raise from_reason(event.failure.reason, f"personal runtime {lattice_id}: {event.failure.message}")
    return None
