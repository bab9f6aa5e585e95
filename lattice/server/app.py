"""Assembles the gRPC server: the domain from settings, servicers, health, reflection, auth."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from lattice.config import LOCAL_BACKENDS, Settings, Upstream
from lattice.observability import tracing
from lattice.server.activity import Activity, FinishedRequest
from lattice.server.admission import Admission, AdmissionLimits
from lattice.server.authenticator import Authenticator
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.backends.engines import LocalModels
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.backends.upstream.openai import OpenAIUpstream
from lattice.server.gateway import Gateway
from lattice.server.limits import RequestLimits
from lattice.server.metering import UsageRecorder
from lattice.server.oauth import OAuthVerifier
from lattice.server.operations import Operations
from lattice.server.personal_runtimes import PersonalRuntimes
from lattice.server.profiles import discovered_profile
from lattice.server.prompt_budget import PromptBudget
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.relay import PERSONAL_PREFIX
from lattice.server.relay.cluster import ClusterHub
from lattice.server.relay.hub import RelayHub
from lattice.server.resolver import Resolver
from lattice.server.services.auth import AuthInterceptor
from lattice.server.services.chat import ChatServicer
from lattice.server.services.completions import CompletionServicer
from lattice.server.services.embeddings import EmbeddingServicer
from lattice.server.services.health import HealthServicer
from lattice.server.services.in_process_channel import InProcessServer
from lattice.server.services.observability import ObservabilityInterceptor
from lattice.server.services.operations import OperationsServicer
from lattice.server.services.personal_runtimes import PersonalRuntimeServicer
from lattice.server.services.relay import RelayServicer
from lattice.server.services.resolve import ResolveServicer
from lattice.server.services.swarm import SwarmServicer
from lattice.server.services.usage import UsageServicer
from lattice.server.store import Store
from lattice.server.store.accounts import ApiKeys
from lattice.server.store.runtimes import RuntimeRecords
from lattice.server.store.usage import UsageLedger
from lattice.server.swarm.gateway_agents import SwarmConfig
from lattice.v1 import (
    chat_pb2,
    chat_pb2_grpc,
    completions_pb2,
    completions_pb2_grpc,
    embeddings_pb2,
    embeddings_pb2_grpc,
    operations_pb2,
    operations_pb2_grpc,
    personal_runtime_pb2,
    personal_runtime_pb2_grpc,
    relay_pb2,
    relay_pb2_grpc,
    resolve_pb2,
    resolve_pb2_grpc,
    swarm_pb2,
    swarm_pb2_grpc,
    usage_pb2,
    usage_pb2_grpc,
)
from lattice.wire.sealing import load_or_create_key

RELAY_MIN_PING_INTERVAL_MS = 10_000

SERVICE_NAMES = (
    chat_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name,
    embeddings_pb2.DESCRIPTOR.services_by_name["EmbeddingService"].full_name,
    completions_pb2.DESCRIPTOR.services_by_name["CompletionService"].full_name,
    resolve_pb2.DESCRIPTOR.services_by_name["ResolveService"].full_name,
    swarm_pb2.DESCRIPTOR.services_by_name["SwarmService"].full_name,
    personal_runtime_pb2.DESCRIPTOR.services_by_name["PersonalRuntimeService"].full_name,
    relay_pb2.DESCRIPTOR.services_by_name["RelayService"].full_name,
    usage_pb2.DESCRIPTOR.services_by_name["UsageService"].full_name,
    operations_pb2.DESCRIPTOR.services_by_name["OperationsService"].full_name,
)


def build_personal_runtimes(settings: Settings, store: Store) -> PersonalRuntimes:
    """Runtime records and the relay hub; the addresses are filled in once the servers are bound."""
    key = load_or_create_key(settings.home / "relay.key")
    hub = (
        ClusterHub(key, settings.relay_heartbeat_seconds, settings.broker_url)
        if settings.broker_url
        else RelayHub(key, settings.relay_heartbeat_seconds)
    )
    personal = PersonalRuntimes(RuntimeRecords(store), hub, cache_seconds=settings.auth_cache_seconds)
    if isinstance(hub, ClusterHub):  # a revocation on another replica must not wait out the cache here
        hub.on_refused = personal.forget
    return personal


def build_authenticator(settings: Settings, store: Store) -> Authenticator:
    oauth = None
    if settings.oauth_issuer and settings.oauth_keys_file:
        oauth = OAuthVerifier(settings.oauth_issuer, settings.oauth_keys_file, settings.oauth_audience)
    return Authenticator(
        static_key=settings.api_key.get_secret_value() if settings.api_key else None,
        admin_account=settings.admin_account,
        keys=ApiKeys(store),
        runtimes=RuntimeRecords(store),
        oauth=oauth,
        allow_anonymous=settings.api_key is None and not settings.require_auth,
        cache_seconds=settings.auth_cache_seconds,
    )


@dataclass(frozen=True)
class Components:
    """What the server is made of, built once: each servicer is handed the part it needs."""

    gateway: Gateway
    authenticator: Authenticator
    personal: PersonalRuntimes
    usage: UsageRecorder
    activity: Activity


def build_components(settings: Settings, store: Store, worker: MlxWorker) -> Components:
    """The gateway and what stands beside it: personal runtimes and the relay, metering, the dashboard's
    activity, the authenticator; the gateway tells metering and activity about every chat that ends."""
    personal = build_personal_runtimes(settings, store)
    usage = UsageRecorder(UsageLedger(store))
    activity = Activity()
    gateway = build_gateway(settings, worker, personal, on_finished=(activity.record, usage.record))
    return Components(gateway, build_authenticator(settings, store), personal, usage, activity)


def build_gateway(
    settings: Settings,
    worker: MlxWorker,
    personal: PersonalRuntimes | None = None,
    *,
    on_finished: Sequence[Callable[[FinishedRequest], None]] = (),
) -> Gateway:
    """The registry (configured models, then each upstream's discovered ones), resolver and gateway."""
    upstreams = {u.name: u for u in settings.all_upstreams}
    registry = ModelRegistry([])
    proxies = {name: _proxy(upstream, settings, registry) for name, upstream in upstreams.items()}
    configured = []
    local = LocalModels(settings, worker)
    caps: dict[str, int] = {}
    for profile in settings.models:
        if profile.backend in LOCAL_BACKENDS:
            profile = local.profile(profile)
            backend: Backend = local.backend(profile)
            caps[profile.id] = local.concurrency(profile)
        elif profile.upstream in proxies:
            backend = proxies[profile.upstream]
        else:
            raise ValueError(f"model {profile.id!r} names upstream {profile.upstream!r}, which is not configured")
        configured.append(RegisteredModel(profile, backend))
    registry.set_configured(configured)
    resolver = Resolver(
        registry, default_model=settings.default_model, roles=settings.roles, escalation=settings.escalation
    )
    backends = [m.backend for m in configured if m.profile.backend in LOCAL_BACKENDS] + list(proxies.values())
    budget = PromptBudget(max_seconds=settings.max_stream_seconds, queue_timeout_seconds=settings.queue_timeout_seconds)
    limits = GenerationLimits(max_tokens_ceiling=settings.max_tokens_ceiling, prompt_budget=budget)
    return Gateway(
        resolver,
        limits,
        backends,
        _admission(settings, caps),
        personal,
        request_limits=request_limits(settings),
        log_prompts=settings.log_prompts,
        on_finished=on_finished,
    )


def request_limits(settings: Settings) -> RequestLimits:
    return RequestLimits(
        max_messages=settings.max_messages,
        max_prompt_chars=settings.max_prompt_chars,
        max_stream_seconds=settings.max_stream_seconds,
        rate_per_minute=settings.rate_limit_per_minute,
        burst=settings.rate_limit_burst,
        max_streams_per_caller=settings.max_streams_per_key,
    )


def _admission(settings: Settings, local_caps: dict[str, int]) -> Admission:
    """`local_caps`: the concurrency of each in-process model (its engine's batch)."""
    caps = {p.id: p.max_concurrency or settings.max_concurrent_per_model for p in settings.models} | local_caps
    limits = AdmissionLimits(
        max_concurrent_per_model=settings.max_concurrent_per_model,
        max_concurrent_total=settings.max_concurrent_total,
        queue_size=settings.queue_size,
        queue_timeout_seconds=settings.queue_timeout_seconds,
    )
    return Admission(limits, model_caps=caps, prefix_caps={PERSONAL_PREFIX: settings.relay_max_in_flight})


def _proxy(upstream: Upstream, settings: Settings, registry: ModelRegistry) -> Backend:
    """The backend for one upstream; what it discovers joins the registry with a pattern profile."""
    backend: Backend

    def on_models(ids: list[str]) -> None:
        routed = {m.profile.upstream_model or m.id for m in registry.configured if m.profile.upstream == upstream.name}
        registry.set_discovered(
            upstream.name,
            [
                RegisteredModel(
                    discovered_profile(
                        model_id,
                        backend=upstream.kind,
                        upstream=upstream.name,
                        owned_by=upstream.name,
                        patterns=settings.profile_patterns,
                    ),
                    backend,
                )
                for model_id in ids
                if model_id not in routed
            ],
        )

    if upstream.kind == "anthropic":
        from lattice.server.backends.upstream.anthropic import AnthropicUpstream  # the SDK loads only when used

        backend = AnthropicUpstream(upstream, settings.anthropic_api_key, on_models)
    else:
        backend = OpenAIUpstream(upstream, on_models)
    return backend


def create_server(
    settings: Settings,
    components: Components,
    *,
    proxy_secret: str | None = None,
    in_process: InProcessServer | None = None,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Builds the server and binds it; returns it with its port (useful when `grpc_port` is 0).
    `proxy_secret` is the embedded shim's: a call that carries it may say whose it is (`x-forwarded-for`).
    `in_process` records the servicers and interceptors too, for the embedded shim's in-process channel."""
    interceptors: list[grpc.aio.ServerInterceptor] = [
        # The RPC's trace span (when tracing is configured) around everything, continuing the caller's trace.
        *tracing.server_interceptors(),
        # First of ours, so that what the others refuse is counted and logged with its request id.
        ObservabilityInterceptor(),
        AuthInterceptor(components.authenticator),
    ]
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", settings.max_request_bytes),
            ("grpc.so_reuseport", 0),
            # Daemons keep their relay stream alive with pings (lattice/daemon/relay_client.py): allow
            # them often enough that an idle relay is never answered with GOAWAY too_many_pings.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", RELAY_MIN_PING_INTERVAL_MS),
        ],
    )
    gateway, personal = components.gateway, components.personal
    registrar = server if in_process is None else in_process.registrar(server, interceptors)
    chat_pb2_grpc.add_ChatServiceServicer_to_server(ChatServicer(gateway, proxy_secret=proxy_secret), registrar)
    embeddings_pb2_grpc.add_EmbeddingServiceServicer_to_server(
        EmbeddingServicer(gateway, proxy_secret=proxy_secret), registrar
    )
    completions_pb2_grpc.add_CompletionServiceServicer_to_server(
        CompletionServicer(gateway, proxy_secret=proxy_secret), registrar
    )
    resolve_pb2_grpc.add_ResolveServiceServicer_to_server(ResolveServicer(gateway), registrar)
    swarm_pb2_grpc.add_SwarmServiceServicer_to_server(
        SwarmServicer(gateway, SwarmConfig.from_settings(settings), proxy_secret=proxy_secret), registrar
    )
    personal_runtime_pb2_grpc.add_PersonalRuntimeServiceServicer_to_server(PersonalRuntimeServicer(personal), registrar)
    relay_pb2_grpc.add_RelayServiceServicer_to_server(RelayServicer(personal.hub, personal.records), registrar)
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageServicer(components.usage), registrar)
    operations_pb2_grpc.add_OperationsServiceServicer_to_server(
        OperationsServicer(Operations(gateway, components.activity, personal)), registrar
    )
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registrar)
    # On the server itself: reflection picks its asyncio servicer only for a grpc.aio.Server (given the
    # in-process registrar it installed the blocking one, which failed every call), and the shim never reflects.
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
