"""The Envoy config `make envoy` writes: Envoy itself accepts it, it transcodes every service the
proto declares, and it allows no browser origin unless told to (no gateway needed)."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

from tests.gateway_process import REPO, lattice_env

RUN = REPO / "envoy" / "run.py"


def render(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(RUN), "--render-only", *args], env=lattice_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def setting(config: str, name: str) -> object:
    """The JSON value run.py filled in after `name:` (lists and strings are rendered as JSON)."""
    match = re.search(rf"^\s*{name}: (.+)$", config, re.MULTILINE)
    assert match, f"no {name} in the config"
    return json.loads(match.group(1))


def declared_services() -> list[str]:
    services = []
    for proto in sorted((REPO / "proto").rglob("*.proto")):
        text = proto.read_text()
        package = re.search(r"^package ([\w.]+);", text, re.MULTILINE)
        assert package, proto
        services += [f"{package.group(1)}.{name}" for name in re.findall(r"^service (\w+)", text, re.MULTILINE)]
    return sorted(services)


def test_every_service_in_the_proto_is_transcoded() -> None:
    assert setting(render(), "services") == declared_services()


def test_no_browser_origin_is_allowed_by_default() -> None:
    assert setting(render(), "allow_origin_string_match") == []
    configured = render("--cors-origin", "https://app.example", "--cors-origin", "http://localhost:5173")
    assert setting(configured, "allow_origin_string_match") == [
        {"exact": "https://app.example"},
        {"exact": "http://localhost:5173"},
    ]


def test_envoy_accepts_the_config(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "envoy.yaml"
    config.write_text(render("--port", "18080", "--grpc-port", "15051", "--cors-origin", "https://app.example"))
    envoy = pathlib.Path(sys.executable).parent / "envoy"
    done = subprocess.run(
        [str(envoy), "--mode", "validate", "--config-path", str(config), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "configuration" in done.stdout and "OK" in done.stdout
