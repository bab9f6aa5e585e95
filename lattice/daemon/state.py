"""The daemon's pid file and state file, which `lattice-ctl ping` and `daemon status` read."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
from typing import Any


def pid_path(home: pathlib.Path) -> pathlib.Path:
    return home / "daemon.pid"


def state_path(home: pathlib.Path) -> pathlib.Path:
    return home / "daemon.json"


def log_path(home: pathlib.Path) -> pathlib.Path:
    return home / "daemon.log"


def running_pid(home: pathlib.Path) -> int | None:
    """The daemon's pid when one is running (a stale pid file is ignored)."""
    try:
        pid = int(pid_path(home).read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    except PermissionError:
        return pid  # alive, another user's
    return pid


class StateFile:
    """The relay state, rewritten atomically on every change."""

    def __init__(self, home: pathlib.Path) -> None:
        self._path = state_path(home)
        self._state: dict[str, Any] = {"pid": os.getpid()}

    def update(self, **changes: Any) -> None:
        if "relay" in changes and changes["relay"] != self._state.get("relay"):
            changes["since"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._state.update(changes)
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._state))
        temporary.replace(self._path)


def read_state(home: pathlib.Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(state_path(home).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return state
