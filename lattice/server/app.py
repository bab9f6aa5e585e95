"""Assembles the gRPC server: the domain from settings, servicers, health, reflection, auth."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from lattice.config import Settings
from lattice.server.auth import ApiKeyInterceptor
from lattice.server.backends.base import GenerationLimits
from lattice.server.backends.mlx.backend import MlxBackend
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.gateway import Gateway
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.resolver import Resolver
from lattice.server.services.chat import ChatServicer
from lattice.server.services.resolve import ResolveServicer
from lattice.v1 import chat_pb2, chat_pb2_grpc, resolve_pb2, resolve_pb2_grpc

SERVICE_NAMES = (
    chat_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name,
    resolve_pb2.DESCRIPTOR.services_by_name["ResolveService"].full_name,
)


def build_gateway(settings: Settings, worker: MlxWorker) -> Gateway:
    cache_dir = settings.home / "models"
    registry = ModelRegistry(
        [
            RegisteredModel(
                profile,
                MlxBackend(profile, cache_dir=cache_dir, weights=settings.mlx_weights, worker=worker),
            )
            for profile in settings.models
        ]
    )
    return Gateway(
        registry,
        Resolver(registry, settings.default_model),
        GenerationLimits(max_tokens_ceiling=settings.max_tokens_ceiling),
    )


def create_server(settings: Settings, gateway: Gateway) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Builds the server and binds it; returns it with its port (useful when `grpc_port` is 0)."""
    interceptors = [ApiKeyInterceptor(settings.api_key.get_secret_value())] if settings.api_key else []
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", settings.max_request_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    chat_pb2_grpc.add_ChatServiceServicer_to_server(ChatServicer(gateway), server)
    resolve_pb2_grpc.add_ResolveServiceServicer_to_server(ResolveServicer(gateway), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(f"{_bracketed(settings.grpc_host)}:{settings.grpc_port}")
    return server, port, health_servicer


async def set_serving(health_servicer: health.aio.HealthServicer, serving: bool) -> None:
    """Health for the whole server ("") and each service: SERVING once the models are loaded."""
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, status)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
