from __future__ import annotations

import pathlib

import pytest

from lattice.config import Settings, UnsafeBindError, check_safe_to_bind, is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_public_bind_needs_a_key() -> None:
    with pytest.raises(UnsafeBindError, match="LATTICE_API_KEY"):
        check_safe_to_bind(Settings(grpc_host="0.0.0.0"))
    check_safe_to_bind(Settings(grpc_host="0.0.0.0", http_host="0.0.0.0", api_key="k"))  # type: ignore[arg-type]


def test_env_overrides_toml(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "lattice.toml"
    config.write_text(
        'grpc_port = 6000\nhttp_port = 6001\n\n[[models]]\nid = "mine"\ncontext_window = 2048\nroles = ["coder"]\n'
    )
    monkeypatch.setenv("LATTICE_CONFIG", str(config))
    monkeypatch.setenv("LATTICE_HTTP_PORT", "7001")
    settings = Settings()
    assert settings.grpc_port == 6000
    assert settings.http_port == 7001
    assert [(m.id, m.context_window, m.roles) for m in settings.models] == [("mine", 2048, ("coder",))]


def test_unknown_settings_are_refused(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "lattice.toml"
    config.write_text("grpc_prot = 1\n")
    monkeypatch.setenv("LATTICE_CONFIG", str(config))
    with pytest.raises(ValueError, match="grpc_prot"):
        Settings()
