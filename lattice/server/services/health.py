"""grpc.health.v1.Health: grpcio's asyncio servicer, with the `List` method it leaves unimplemented
(its base answers UNIMPLEMENTED with "Unexpected NotImplementedError" and logs a traceback)."""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import health, health_pb2


class HealthServicer(health.aio.HealthServicer):
    """Check and Watch as grpcio has them; List answers every service's status at once."""

    def __init__(self) -> None:
        super().__init__()
        self._statuses: dict[str, Any] = {"": health_pb2.HealthCheckResponse.SERVING}

    async def set(self, service: str, status: Any) -> None:
        self._statuses[service] = status
        await super().set(service, status)

    async def List(self, request: Any, context: Any) -> Any:
        # The typeshed stubs predate HealthListRequest/-Response; the runtime module has them.
        response: Any = getattr(health_pb2, "HealthListResponse")  # noqa: B009
        return response(
            statuses={name: health_pb2.HealthCheckResponse(status=status) for name, status in self._statuses.items()}
        )
