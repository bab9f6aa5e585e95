"""The personal-runtime REST API: the same JSON as the proto's mapping (and so as Envoy's), passed
through to PersonalRuntimeService with the caller's credentials."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from lattice.shim import proto_json
from lattice.v1 import personal_runtime_pb2 as pb

router = APIRouter(prefix="/v1", tags=["personal runtimes"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreatePersonalRuntimeBody(_Body):
    displayName: str = Field(description="What the owner calls the machine.")
    executionBackend: str = Field(description="`local-model` or `assistant-runtime`.")


class CreateBootstrapTokenBody(_Body):
    ttlSeconds: int = Field(default=0, description="60 to 3600; 0 or absent means 600.")


class RedeemBootstrapTokenBody(_Body):
    bootstrapToken: str = Field(description="`plrt_v1_…`, once.")
    publicKey: str = Field(description="The daemon's X25519 public key, base64.")


@router.post("/personal-runtimes")
async def create_personal_runtime(body: CreatePersonalRuntimeBody, request: Request) -> JSONResponse:
    message = proto_json.parse(body.model_dump(), pb.CreatePersonalRuntimeRequest())
    return await proto_json.reply(
        request, lambda up, md: up.personal_runtimes.CreatePersonalRuntime(message, metadata=md)
    )


@router.get("/personal-runtimes")
async def list_personal_runtimes(
    request: Request,
    pageSize: int = Query(default=0, ge=0, le=proto_json.INT32_MAX, description="At most 500; 0 means 50."),
    pageToken: str = "",
) -> JSONResponse:
    message = pb.ListPersonalRuntimesRequest(page_size=pageSize, page_token=pageToken)
    return await proto_json.reply(
        request, lambda up, md: up.personal_runtimes.ListPersonalRuntimes(message, metadata=md)
    )


@router.get("/personal-runtimes/{lattice_id}")
async def get_personal_runtime(lattice_id: str, request: Request) -> JSONResponse:
    message = pb.GetPersonalRuntimeRequest(lattice_id=lattice_id)
    return await proto_json.reply(request, lambda up, md: up.personal_runtimes.GetPersonalRuntime(message, metadata=md))


@router.delete("/personal-runtimes/{lattice_id}")
async def delete_personal_runtime(lattice_id: str, request: Request) -> JSONResponse:
    message = pb.DeletePersonalRuntimeRequest(lattice_id=lattice_id)
    return await proto_json.reply(
        request, lambda up, md: up.personal_runtimes.DeletePersonalRuntime(message, metadata=md)
    )


@router.post("/personal-runtimes/{lattice_id}/bootstrap-tokens")
async def create_bootstrap_token(lattice_id: str, body: CreateBootstrapTokenBody, request: Request) -> JSONResponse:
    message = proto_json.parse(body.model_dump(), pb.CreateBootstrapTokenRequest(lattice_id=lattice_id))
    return await proto_json.reply(
        request, lambda up, md: up.personal_runtimes.CreateBootstrapToken(message, metadata=md)
    )


@router.post("/personal-runtime-bootstrap-redemptions")
async def redeem_bootstrap_token(body: RedeemBootstrapTokenBody, request: Request) -> JSONResponse:
    message = proto_json.parse(body.model_dump(), pb.RedeemBootstrapTokenRequest())
    return await proto_json.reply(
        request, lambda up, md: up.personal_runtimes.RedeemBootstrapToken(message, metadata=md)
    )
