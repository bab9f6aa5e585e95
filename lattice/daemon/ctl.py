"""`lattice-ctl`: pair this machine with a gateway, run its daemon, and ask how it is doing.

lattice-ctl relay connect --gateway URL --bootstrap-token plrt_v1_…   # redeem, write relay.toml
lattice-ctl daemon start [--foreground]   |   daemon stop   |   daemon status
lattice-ctl ping                                                      # daemon health, relay state
"""

from __future__ import annotations

import argparse
import base64
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
from nacl.public import PrivateKey

from lattice import __version__
from lattice.daemon import config as daemon_config
from lattice.daemon import main as daemon_main
from lattice.daemon.state import log_path, read_state, running_pid

START_WAIT_SECONDS = 10.0
STOP_WAIT_SECONDS = 10.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lattice-ctl", description="Pairs and runs this machine's personal runtime.")
    parser.add_argument("--version", action="version", version=f"lattice-ctl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    relay = commands.add_parser("relay", help="pair with a gateway").add_subparsers(dest="relay_command", required=True)
    connect = relay.add_parser("connect", help="redeem a bootstrap token and write relay.toml")
    connect.add_argument("--gateway", required=True, help="the gateway's REST URL, e.g. http://127.0.0.1:8000")
    connect.add_argument("--bootstrap-token", required=True, help="plrt_v1_… from the gateway (single use)")
    connect.add_argument("--provider-url", default="", help="a local OpenAI-compatible server to run work on")
    connect.add_argument("--provider-model", default="", help="the provider's model (default: the first it lists)")
    daemon = commands.add_parser("daemon", help="run the daemon").add_subparsers(dest="daemon_command", required=True)
    start = daemon.add_parser("start", help="start the daemon in the background (or --foreground)")
    start.add_argument("--foreground", action="store_true", help="run here until interrupted")
    daemon_main.add_run_options(start)
    daemon.add_parser("stop", help="stop the background daemon")
    daemon.add_parser("status", help="is the daemon running, and its relay state")
    commands.add_parser("ping", help="the daemon's health and relay state; exit 0 only when connected")
    args = parser.parse_args(argv)

    home = daemon_config.ctl_home()
    if args.command == "relay":
        return _connect(home, args)
    if args.command == "ping":
        return _ping(home)
    if args.daemon_command == "start":
        return _start(home, args)
    if args.daemon_command == "stop":
        return _stop(home)
    return _status(home)


def _connect(home: pathlib.Path, args: argparse.Namespace) -> int:
    key = PrivateKey.generate()
    url = args.gateway.rstrip("/") + "/v1/personal-runtime-bootstrap-redemptions"
    body = {"bootstrapToken": args.bootstrap_token, "publicKey": base64.b64encode(bytes(key.public_key)).decode()}
    try:
        response = httpx.post(url, json=body, timeout=30)
    except httpx.HTTPError as error:
        return _fail(f"cannot reach the gateway at {args.gateway}: {error}")
    if response.status_code != 200:
        return _fail(f"the gateway refused the token ({response.status_code}): {_error_text(response)}")
    paired = response.json()
    config = daemon_config.DaemonConfig(
        gateway=args.gateway,
        relay_endpoint=paired["relayEndpoint"],
        lattice_id=paired["latticeId"],
        account_id=paired["accountId"],
        display_name=paired["displayName"],
        execution_backend=paired["executionBackend"],
        daemon_credential=paired["daemonCredential"],
        private_key=base64.b64encode(bytes(key)).decode(),
        gateway_public_key=paired["gatewayPublicKey"],
        heartbeat_seconds=int(paired.get("heartbeatSeconds") or 10),
        provider_url=args.provider_url,
        provider_model=args.provider_model,
    )
    path = daemon_config.save(config, home)
    print(f"paired {config.lattice_id} ({config.display_name}) of {config.account_id}; config in {path}")
    print("start it with: lattice-ctl daemon start")
    return 0


def _start(home: pathlib.Path, args: argparse.Namespace) -> int:
    run_args = []
    if args.provider_url is not None:
        run_args += ["--provider-url", args.provider_url]
    if args.provider_model is not None:
        run_args += ["--provider-model", args.provider_model]
    run_args += ["--max-backoff-seconds", str(args.max_backoff_seconds)]
    if args.foreground:
        return daemon_main.main(run_args)
    try:
        daemon_config.load(home)
    except daemon_config.NotPaired as error:
        return _fail(str(error))
    if (pid := running_pid(home)) is not None:
        return _fail(f"the daemon is already running (pid {pid})")
    log = log_path(home).open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "lattice.daemon.main", *run_args],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,  # outlives this command and its terminal
    )
    deadline = time.monotonic() + START_WAIT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        if running_pid(home) == process.pid and read_state(home).get("relay") == "connected":
            break
        time.sleep(0.1)
    if process.poll() is not None:
        return _fail(f"the daemon exited at once (code {process.returncode}); see {log_path(home)}")
    print(
        f"daemon started (pid {process.pid}); relay {read_state(home).get('relay', 'starting')}; log {log_path(home)}"
    )
    return 0


def _stop(home: pathlib.Path) -> int:
    pid = running_pid(home)
    if pid is None:
        print("the daemon is not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while time.monotonic() < deadline and running_pid(home) == pid:
        time.sleep(0.1)
    if running_pid(home) == pid:
        return _fail(f"the daemon (pid {pid}) did not stop within {STOP_WAIT_SECONDS:.0f} s")
    print(f"daemon stopped (pid {pid})")
    return 0


def _status(home: pathlib.Path) -> int:
    pid = running_pid(home)
    state = read_state(home)
    if pid is None:
        print(f"daemon not running (last relay state: {state.get('relay', 'never started')})")
        return 1
    print(f"daemon running (pid {pid}): {_describe(state)}")
    return 0


def _ping(home: pathlib.Path) -> int:
    pid = running_pid(home)
    state = read_state(home)
    if pid is None:
        return _fail("the daemon is not running: start it with `lattice-ctl daemon start`")
    connected = state.get("relay") == "connected"
    print(f"{'pong' if connected else 'daemon up, relay not connected'}: pid {pid}, {_describe(state)}")
    return 0 if connected else 1


def _describe(state: dict[str, Any]) -> str:
    parts = [
        f"relay {state.get('relay', 'unknown')} since {state.get('since', '?')}",
        f"runtime {state.get('lattice_id', '?')} via {state.get('relay_endpoint', '?')}",
        f"backend {state.get('backend', '?')}",
        f"in flight {state.get('in_flight', 0)}",
    ]
    if state.get("last_heartbeat"):
        parts.append(f"last heartbeat {state['last_heartbeat']}")
    if state.get("last_error"):
        parts.append(f"last error: {state['last_error']}")
    return "; ".join(parts)


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error.get('code')}: {error.get('message')}"
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _fail(message: str) -> int:
    print(f"lattice-ctl: {message}", file=sys.stderr)
    return 1
