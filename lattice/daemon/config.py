"""What `lattice-ctl relay connect` learns at pairing, kept in `relay.toml` (mode 0600: it holds the
daemon credential and private key), and where the daemon keeps its pid, state and log."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import tomllib
from dataclasses import dataclass

HOME_ENV = "LATTICE_CTL_HOME"


def ctl_home() -> pathlib.Path:
    """`LATTICE_CTL_HOME`, else `~/.config/lattice`."""
    configured = os.environ.get(HOME_ENV)
    return pathlib.Path(configured).expanduser() if configured else pathlib.Path("~/.config/lattice").expanduser()


@dataclass(frozen=True)
class DaemonConfig:
    gateway: str
    relay_endpoint: str
    lattice_id: str
    account_id: str
    display_name: str
    execution_backend: str
    daemon_credential: str
    private_key: str
    """The daemon's X25519 private key, base64."""
    gateway_public_key: str
    """Base64."""
    heartbeat_seconds: int
    provider_url: str = ""
    """A local OpenAI-compatible server (`http://127.0.0.1:11434/v1`); empty: the embedded model."""
    provider_model: str = ""
    """The model to ask the provider for; empty: the first it lists."""


class NotPaired(Exception):
    """No relay.toml yet."""


def config_path(home: pathlib.Path) -> pathlib.Path:
    return home / "relay.toml"


def save(config: DaemonConfig, home: pathlib.Path) -> pathlib.Path:
    """Writes relay.toml atomically, readable by the owner only."""
    home.mkdir(parents=True, exist_ok=True)
    path = config_path(home)
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("# Written by `lattice-ctl relay connect`. Holds a secret: keep it mode 0600.\n")
        for key, value in dataclasses.asdict(config).items():
            # A JSON string is a valid TOML basic string: the same escapes.
            out.write(f"{key} = {json.dumps(value) if isinstance(value, str) else value}\n")
    temporary.replace(path)
    return path


def load(home: pathlib.Path) -> DaemonConfig:
    path = config_path(home)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise NotPaired(
            f"{path} does not exist: pair this machine first with "
            "`lattice-ctl relay connect --gateway URL --bootstrap-token plrt_v1_…`"
        ) from None
    known = {f.name for f in dataclasses.fields(DaemonConfig)}
    return DaemonConfig(**{k: v for k, v in data.items() if k in known})
