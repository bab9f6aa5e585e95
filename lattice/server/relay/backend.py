"""The backend for `lattice:personal:<latticeId>`: the chat goes down the runtime's relay stream."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator

from lattice.config import ModelProfile
from lattice.errors import from_reason
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.chat import ChatRequest, Delta, Finish, GenerationEvent, Usage
from lattice.server.relay import PERSONAL_PREFIX
from lattice.server.relay.hub import RelayHub
from lattice.wire.convert import chat_request_to_proto, delta_from_proto, finish_reason_from_proto


class RelayBackend(Backend):
    name = "relay"

    def __init__(self, hub: RelayHub) -> None:
        self._hub = hub

    async def stream(
        self, model: ModelProfile, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        lattice_id = model.id.removeprefix(PERSONAL_PREFIX)
        ceiling = limits.max_tokens_ceiling
        bounded = dataclasses.replace(request, max_tokens=min(request.max_tokens or ceiling, ceiling))
        events = self._hub.run(lattice_id, chat_request_to_proto(bounded))
        try:
            async for event in events:
                kind = event.WhichOneof("event")
                if kind == "delta":
                    yield Delta(text=event.delta)
                elif kind == "chat_delta":
                    yield delta_from_proto(event.chat_delta)
                elif kind == "finish":
                    usage = event.finish.usage
                    yield Finish(
                        finish_reason_from_proto(event.finish.finish_reason),
                        Usage(usage.prompt_tokens, usage.completion_tokens),
                    )
                    return
                elif kind == "failure":
                    raise from_reason(event.failure.reason, f"personal runtime {lattice_id}: {event.failure.message}")
        finally:
            await events.aclose()
