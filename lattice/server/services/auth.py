"""Authentication and scopes, checked once per gRPC call in a server interceptor.

The credential comes as `x-api-key: K` or `authorization: Bearer K`; the `Authenticator` turns it
into a `Principal`, this interceptor checks the method's scopes and hands the principal to the
servicer through a context variable. Open: health (load balancers probe a locked-down gateway)
and bootstrap-token redemption (the token is the credential). The relay takes daemon credentials
only, and nothing else takes them.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from lattice.errors import LatticeError, PermissionDenied, Unauthenticated
from lattice.server.authenticator import Authenticator
from lattice.server.credentials import api_key_from_metadata
from lattice.server.principals import INFERENCE, MANAGE_RUNTIMES, Principal
from lattice.server.services.handlers import Handler, rebuilt
from lattice.server.services.status import abort_with_error

_RUNTIMES = "/lattice.v1.PersonalRuntimeService/"
OPEN_METHODS = ("/grpc.health.v1.Health/", _RUNTIMES + "RedeemBootstrapToken")
ANY_PRINCIPAL_METHODS = ("/grpc.reflection.",)
DAEMON_METHODS = "/lattice.v1.RelayService/"
# Methods and the scopes of which the caller needs one; every other method needs inference.
SCOPES: dict[str, tuple[str, ...]] = {
    _RUNTIMES + "CreatePersonalRuntime": (MANAGE_RUNTIMES,),
    _RUNTIMES + "DeletePersonalRuntime": (MANAGE_RUNTIMES,),
    _RUNTIMES + "CreateBootstrapToken": (MANAGE_RUNTIMES,),
    # An app that only chats still needs to find the runtimes it may chat with.
    _RUNTIMES + "ListPersonalRuntimes": (MANAGE_RUNTIMES, INFERENCE),
    _RUNTIMES + "GetPersonalRuntime": (MANAGE_RUNTIMES, INFERENCE),
    # Any credential of the account may read what the account used.
    "/lattice.v1.UsageService/ListUsage": (INFERENCE, MANAGE_RUNTIMES),
    # The dashboard: the account's own requests and runtimes (every account's for the admin key).
    "/lattice.v1.OperationsService/GetDashboard": (INFERENCE, MANAGE_RUNTIMES),
}

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("lattice_principal", default=None)


def current_principal() -> Principal | None:
    """Who is making the current call (None on an open method)."""
    return _principal.get()


def current_account(what: str) -> Principal:
    """The caller, who must act for an account: an anonymous call is refused, saying `what` needs one."""
    principal = current_principal()
    if principal is None or not principal.account_id:
        raise Unauthenticated(
            f"{what} belong to an account: send an API key (x-api-key or Authorization: Bearer)",
            reason="API_KEY_MISSING",
        )
    return principal


def check_method_access(method: str, principal: Principal) -> None:
    if method.startswith(DAEMON_METHODS):
        if principal.kind != "daemon":
            raise PermissionDenied("the relay takes a personal runtime's daemon credential", reason="DAEMON_ONLY")
        return
    if principal.kind == "daemon":
        raise PermissionDenied("a daemon credential works only on the relay", reason="INSUFFICIENT_SCOPES")
    if method.startswith(ANY_PRINCIPAL_METHODS):
        return
    needed = SCOPES.get(method, (INFERENCE,))
    if not any(scope in principal.scopes for scope in needed):
        if principal.kind == "anonymous":
            raise Unauthenticated(
                f"{method.rsplit('/', 1)[-1]} needs an API key with the scope {needed[0]!r}: "
                "send x-api-key or Authorization: Bearer",
                reason="API_KEY_MISSING",
            )
        principal.require(needed[0])


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_METHODS):
            return handler
        try:
            principal = await self._authenticator.authenticate(
                api_key_from_metadata(handler_call_details.invocation_metadata or ())
            )
            check_method_access(method, principal)
        except LatticeError as error:
            return _refusing(handler, error)
        return _as(handler, principal)


def _as(handler: Handler, principal: Principal) -> Handler:
    """`handler` with `current_principal()` set to `principal` for the call's duration."""

    def wrap(behavior: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                _principal.set(principal)
                async for item in behavior(request, context):
                    yield item

            return stream

        async def call(request: Any, context: Any) -> Any:
            _principal.set(principal)
            return await behavior(request, context)

        return call

    return rebuilt(handler, lambda behavior, _streaming: wrap(behavior))


def _refusing(handler: Handler, error: LatticeError) -> Handler:
    """A handler of the same shape as `handler` that only aborts with `error`."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await abort_with_error(context, error)

    async def refuse_stream(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await abort_with_error(context, error)
        yield  # pragma: no cover - makes this an async generator, as streaming handlers are

    return rebuilt(handler, lambda _behavior, streaming: refuse_stream if streaming else refuse)
