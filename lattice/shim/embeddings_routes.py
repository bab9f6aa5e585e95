"""`POST /v1/embeddings` (OpenAI's Embeddings API), passed to EmbeddingService.Embed.

`input` is a string, a list of strings, a list of token ids or a list of token-id lists, as OpenAI takes
it; `encoding_format: base64` is the vectors' float32 bytes, little-endian, as OpenAI sends them (and as
the OpenAI SDK asks for by default, decoding them itself). The server keeps floats: base64 is this
API's wire encoding, not the contract's.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from pydantic import BaseModel, Field

from lattice.shim.protocol import Int32, _Lenient
from lattice.shim.routes import model_header
from lattice.shim.upstream import Upstream, call_metadata
from lattice.v1 import embeddings_pb2

router = APIRouter()

TokenId = Annotated[int, Field(ge=0, le=2**31 - 1)]


class EmbeddingRequest(_Lenient):
    model: str = Field(default="", description="A model id or expression; it needs the `embeddings` capability.")
    input: str | list[str] | list[TokenId] | list[list[TokenId]] = Field(
        description="Text, texts, token ids, or lists of token ids: one vector each."
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Int32 | None = Field(
        default=None, ge=1, description="Passed to upstreams that shorten vectors; refused by the llama.cpp engine."
    )
    user: str = ""


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="The vector, or its float32 bytes in base64.")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
    lattice: dict[str, Any] = Field(description="Lattice's extension: `resolution`, the model chosen and why.")


@router.post("/v1/embeddings", response_model=EmbeddingList)
async def create_embeddings(body: EmbeddingRequest, request: Request) -> JSONResponse:
    upstream: Upstream = request.app.state.upstream
    call = upstream.embeddings.Embed(embed_request_to_proto(body), metadata=call_metadata(request))
    response = await call
    return JSONResponse(embedding_list_to_json(response, body.encoding_format), headers=await model_header(call))


def embed_request_to_proto(body: EmbeddingRequest) -> embeddings_pb2.EmbedRequest:
    request = embeddings_pb2.EmbedRequest(model=body.model, inputs=_inputs(body.input), user=body.user)
    if body.dimensions is not None:
        request.dimensions = body.dimensions
    return request


def _inputs(value: str | list[str] | list[int] | list[list[int]]) -> list[embeddings_pb2.EmbedInput]:
    """OpenAI's four shapes of `input` as one list of inputs (a flat list of token ids is one input)."""
    one = isinstance(value, str) or (bool(value) and isinstance(value[0], int))
    items = cast("list[str | list[int]]", [value] if one else value)
    return [
        embeddings_pb2.EmbedInput(text=item)
        if isinstance(item, str)
        else embeddings_pb2.EmbedInput(tokens=embeddings_pb2.TokenIds(ids=item))
        for item in items
    ]


def embedding_list_to_json(response: embeddings_pb2.EmbedResponse, encoding_format: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": e.index, "embedding": _encoded(e.values, encoding_format)}
            for e in response.embeddings
        ],
        "model": response.model,
        "usage": {"prompt_tokens": response.usage.prompt_tokens, "total_tokens": response.usage.total_tokens},
        "lattice": {"resolution": json_format.MessageToDict(response.resolution)},
    }


def _encoded(values: Sequence[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")
    return list(values)
