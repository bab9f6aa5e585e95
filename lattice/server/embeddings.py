"""Domain objects of an embedding request, and its checks; no protobuf, no backend.

An input is text or the model's own token ids (OpenAI's `input` takes both). The vectors come back in
the inputs' order, with the tokens they cost (metered as a chat's prompt tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

from lattice.errors import InvalidArgument
from lattice.server.principals import Principal
from lattice.server.validation import check_model_expression, check_priority

EmbedInput = str | tuple[int, ...]
MAX_INPUTS = 2048
"""OpenAI's own limit on the inputs of one request."""
EMBEDDINGS = frozenset({"embeddings"})
"""The capability every model that embeds has."""


@dataclass(frozen=True)
class EmbedRequest:
    model: str
    inputs: tuple[EmbedInput, ...]
    dimensions: int | None = None
    """Shorter vectors, for upstreams that can; the llama.cpp engine refuses it."""
    user: str = ""
    priority: int = 0
    caller: str = ""
    """Who is asking, for fairness between callers (as a chat's)."""
    deadline: float | None = None
    """`time.monotonic()` after which nobody waits for the answer any more."""
    principal: Principal | None = None
    """Who asks (metered to its account), as a chat's."""

    @property
    def characters(self) -> int:
        """The text's size (a token id counts as one character): what `max_prompt_chars` bounds."""
        return sum(len(i) for i in self.inputs)


@dataclass(frozen=True)
class Embeddings:
    vectors: tuple[tuple[float, ...], ...]
    """One per input, in the request's order."""
    prompt_tokens: int


def validate_embed_request(request: EmbedRequest) -> None:
    check_model_expression(request.model)
    check_priority(request.priority)
    if not request.inputs:
        raise InvalidArgument("input must not be empty", field="input")
    if len(request.inputs) > MAX_INPUTS:
        raise InvalidArgument(
            f"input holds {len(request.inputs)} items; at most {MAX_INPUTS} are allowed", field="input"
        )
    for i, item in enumerate(request.inputs):
        if not item:
            raise InvalidArgument(f"input[{i}] is empty: an input needs text or at least one token", field="input")
        if isinstance(item, tuple) and any(token < 0 for token in item):
            raise InvalidArgument(f"input[{i}] holds a negative token id", field="input")
    if request.dimensions is not None and request.dimensions < 1:
        raise InvalidArgument(f"dimensions must be at least 1, got {request.dimensions}", field="dimensions")
