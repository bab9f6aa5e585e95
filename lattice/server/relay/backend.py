"""The backend for `lattice:personal:<latticeId>`: the chat goes down the runtime's relay stream."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator

from lattice.config import ModelProfile
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.chat import ChatRequest, Finish, GenerationEvent
from lattice.server.relay import PERSONAL_PREFIX
from lattice.server.relay.hub import RelayHub
from lattice.wire.convert import chat_request_to_proto
from lattice.wire.relay import generation_event


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
                generated = generation_event(lattice_id, event)
                if generated is not None:
                    yield generated
                if isinstance(generated, Finish):
                    return
        finally:
            await events.aclose()
