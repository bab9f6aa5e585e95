"""Real processes for the personal-runtime tests: a gateway with its own database, `lattice keys`,
`lattice-ctl` pairing and daemons, the echo provider a daemon can run work on, and an OAuth issuer
whose access tokens a gateway can be set to accept."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.gateway_process import REPO, GatewayProcess, free_port, lattice_env

BIN = pathlib.Path(sys.executable).parent
BOTH_SCOPES = "lattice:compute:inference,lattice:compute:personal_runtime:manage"
WAIT_SECONDS = 60.0
ISSUER = "https://issuer.test"
AUDIENCE = "lattice"
# User-authorized mode: a signing key made here stands in for the OAuth issuer's.
SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())


def gateway_env(tmp: pathlib.Path) -> dict[str, str]:
    """A database of its own, quick heartbeats (1 s), keys re-checked on every call."""
    return {
        "LATTICE_DATABASE_URL": f"sqlite:///{tmp / 'lattice.db'}",
        "LATTICE_RELAY_HEARTBEAT_SECONDS": "1",
        "LATTICE_AUTH_CACHE_SECONDS": "0",
    }


def oauth_env(directory: pathlib.Path) -> dict[str, str]:
    """The settings for a gateway that accepts the test issuer's access tokens (its public key is
    written, as PEM, into `directory`)."""
    keys_file = directory / "issuer.pem"
    keys_file.write_bytes(SIGNING_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return {
        "LATTICE_OAUTH_ISSUER": ISSUER,
        "LATTICE_OAUTH_AUDIENCE": AUDIENCE,
        "LATTICE_OAUTH_KEYS_FILE": str(keys_file),
    }


def access_token(subject: str, scope: str, *, issuer: str = ISSUER, lifetime: float = 300.0) -> str:
    """An access token the test issuer signed (ES256) for `subject`, valid for `lifetime` seconds."""
    now = time.time()
    claims = {"iss": issuer, "aud": AUDIENCE, "sub": subject, "scope": scope, "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, SIGNING_KEY, algorithm="ES256")


def create_key(env: dict[str, str], account: str, scopes: str = BOTH_SCOPES) -> str:
    """`lattice keys create`, as the walkthrough runs it: it prints only the key."""
    done = subprocess.run(
        [BIN / "lattice", "keys", "create", "--account", account, "--scopes", scopes],
        env=lattice_env(**env),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.count("\n") == 1 and done.stdout.startswith("sk_"), done.stdout
    return done.stdout.strip()


def rest(gateway: GatewayProcess, method: str, path: str, key: str | None = None, body: Any = None) -> httpx.Response:
    headers = {"x-api-key": key} if key else {}
    return httpx.request(method, gateway.http_url + path, headers=headers, json=body, timeout=60)


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    """Polls until `condition` holds; fails (it never hangs) after a generous `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting, after {timeout:.0f} s, for {what}")
        time.sleep(0.1)


@dataclass
class Daemon:
    """One machine's `lattice-ctl` home: paired with one runtime."""

    home: pathlib.Path
    lattice_id: str

    def env(self) -> dict[str, str]:
        return lattice_env(LATTICE_CTL_HOME=str(self.home))

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BIN / "lattice-ctl", *args], env=self.env(), capture_output=True, text=True, check=check, timeout=120
        )

    def start(self, *extra: str) -> None:
        started = self.ctl("daemon", "start", "--max-backoff-seconds", "1", *extra)
        assert "daemon started" in started.stdout, started.stdout + started.stderr

    def pid(self) -> int:
        return int((self.home / "daemon.pid").read_text())

    def log(self) -> str:
        path = self.home / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.ctl("daemon", "stop", check=False)


def pair(gateway: GatewayProcess, key: str, home: pathlib.Path, name: str, *connect_args: str) -> Daemon:
    """Creates a runtime, mints a token and redeems it with `lattice-ctl relay connect`."""
    created = rest(
        gateway, "POST", "/v1/personal-runtimes", key, {"displayName": name, "executionBackend": "local-model"}
    )
    assert created.status_code == 200, created.text
    lattice_id = created.json()["runtime"]["latticeId"]
    minted = rest(gateway, "POST", f"/v1/personal-runtimes/{lattice_id}/bootstrap-tokens", key, {"ttlSeconds": 600})
    assert minted.status_code == 200, minted.text
    daemon = Daemon(home, lattice_id)
    connected = daemon.ctl(
        "relay",
        "connect",
        "--gateway",
        gateway.http_url,
        "--bootstrap-token",
        minted.json()["bootstrapToken"],
        *connect_args,
    )
    assert lattice_id in connected.stdout
    return daemon


@contextmanager
def stopping_daemons() -> Iterator[list[Daemon]]:
    """A list for the daemons started inside the block; each is stopped whatever happens."""
    started: list[Daemon] = []
    try:
        yield started
    finally:
        for daemon in started:
            daemon.stop()


def runtime_status(gateway: GatewayProcess, key: str, lattice_id: str) -> str:
    return str(rest(gateway, "GET", f"/v1/personal-runtimes/{lattice_id}", key).json()["runtime"]["status"])


@dataclass
class EchoProvider:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=10).json()
        return result

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def start_echo_provider() -> EchoProvider:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.echo_upstream", str(port)], cwd=REPO, env={**os.environ})
    provider = EchoProvider(process, port)

    def up() -> bool:
        try:
            return httpx.get(provider.url + "/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, "the echo provider to listen")
    return provider


def echo_daemon(
    gateway: GatewayProcess, key: str, echo: EchoProvider, home: pathlib.Path, daemons: list[Daemon], name: str
) -> Daemon:
    """A runtime `name` of the key's account, paired in `home` with the echo server as its provider,
    and its daemon started (and added to `daemons`, for whoever stops them)."""
    daemon = pair(gateway, key, home, name, "--provider-url", echo.url)
    daemons.append(daemon)
    daemon.start()
    return daemon


def echo_runtime(
    gateway: GatewayProcess,
    env: dict[str, str],
    echo: EchoProvider,
    home: pathlib.Path,
    daemons: list[Daemon],
    account: str,
    *,
    name: str | None = None,
) -> tuple[str, Daemon]:
    """A key of a new account, and a running daemon paired with one of its runtimes (named `name`, or
    after the account), whose provider is the echo server."""
    key = create_key(env, account)
    return key, echo_daemon(gateway, key, echo, home, daemons, account if name is None else name)
