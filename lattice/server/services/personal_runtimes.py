"""PersonalRuntimeService: records, bootstrap tokens and their redemption (thin: proto ⇄ domain)."""

from __future__ import annotations

from typing import Any

import grpc

from lattice.server.personal_runtimes import PersonalRuntimes, RuntimeView
from lattice.server.principals import Principal
from lattice.server.services.auth import current_account
from lattice.server.services.status import grpc_errors
from lattice.v1 import personal_runtime_pb2 as pb
from lattice.v1 import personal_runtime_pb2_grpc
from lattice.wire import convert

Context = grpc.aio.ServicerContext[Any, Any]


class PersonalRuntimeServicer(personal_runtime_pb2_grpc.PersonalRuntimeServiceServicer):
    def __init__(self, runtimes: PersonalRuntimes) -> None:
        self._runtimes = runtimes

    async def CreatePersonalRuntime(
        self, request: pb.CreatePersonalRuntimeRequest, context: Context
    ) -> pb.CreatePersonalRuntimeResponse:
        async with grpc_errors(context):
            view = await self._runtimes.create(_owner(), request.display_name, request.execution_backend)
            return pb.CreatePersonalRuntimeResponse(runtime=_runtime(view))
        raise AssertionError("grpc_errors aborts")

    async def ListPersonalRuntimes(
        self, request: pb.ListPersonalRuntimesRequest, context: Context
    ) -> pb.ListPersonalRuntimesResponse:
        async with grpc_errors(context):
            views, token = await self._runtimes.list(_owner(), request.page_size, request.page_token)
            return pb.ListPersonalRuntimesResponse(runtimes=[_runtime(v) for v in views], next_page_token=token)
        raise AssertionError("grpc_errors aborts")

    async def GetPersonalRuntime(
        self, request: pb.GetPersonalRuntimeRequest, context: Context
    ) -> pb.GetPersonalRuntimeResponse:
        async with grpc_errors(context):
            return pb.GetPersonalRuntimeResponse(
                runtime=_runtime(await self._runtimes.get(_owner(), request.lattice_id))
            )
        raise AssertionError("grpc_errors aborts")

    async def DeletePersonalRuntime(
        self, request: pb.DeletePersonalRuntimeRequest, context: Context
    ) -> pb.DeletePersonalRuntimeResponse:
        async with grpc_errors(context):
            view = await self._runtimes.revoke(_owner(), request.lattice_id)
            return pb.DeletePersonalRuntimeResponse(runtime=_runtime(view))
        raise AssertionError("grpc_errors aborts")

    async def CreateBootstrapToken(
        self, request: pb.CreateBootstrapTokenRequest, context: Context
    ) -> pb.CreateBootstrapTokenResponse:
        async with grpc_errors(context):
            grant = await self._runtimes.mint(_owner(), request.lattice_id, request.ttl_seconds)
            return pb.CreateBootstrapTokenResponse(
                lattice_id=grant.lattice_id,
                bootstrap_token=grant.token,
                expires_at=convert.timestamp(grant.expires_at),
                command=grant.command,
            )
        raise AssertionError("grpc_errors aborts")

    async def RedeemBootstrapToken(
        self, request: pb.RedeemBootstrapTokenRequest, context: Context
    ) -> pb.RedeemBootstrapTokenResponse:
        async with grpc_errors(context):
            pairing = await self._runtimes.redeem(request.bootstrap_token, request.public_key)
            record = pairing.redemption.record
            return pb.RedeemBootstrapTokenResponse(
                relay_endpoint=pairing.relay_endpoint,
                lattice_id=record.lattice_id,
                account_id=record.account_id,
                display_name=record.display_name,
                daemon_credential=pairing.redemption.daemon_credential,
                execution_backend=record.execution_backend,
                gateway_public_key=pairing.gateway_public_key,
                heartbeat_seconds=pairing.heartbeat_seconds,
            )
        raise AssertionError("grpc_errors aborts")


def _owner() -> Principal:
    return current_account("personal runtimes")


def _runtime(view: RuntimeView) -> pb.PersonalRuntime:
    return pb.PersonalRuntime(
        lattice_id=view.lattice_id,
        account_id=view.account_id,
        display_name=view.display_name,
        execution_backend=view.execution_backend,
        status=view.status,
        created_at=convert.timestamp(view.created_at),
        updated_at=convert.timestamp(view.updated_at),
    )
