"""Progress of long operations: plain log lines off a terminal, a rich bar on one."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from lattice.observability import progress


def test_off_a_terminal_each_step_is_a_plain_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lattice.progress")
    with progress.steps("converting m.gguf", 2, bar=False) as step:
        step("reading")
        step("writing")
    assert [r.getMessage() for r in caplog.records][:2] == [
        "converting m.gguf: step 1/2, reading",
        "converting m.gguf: step 2/2, writing",
    ]
    assert caplog.records[2].getMessage().startswith("converting m.gguf: done in ")


def test_on_a_terminal_a_bar_fills_up(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr("rich.console.Console", lambda stderr: Console(file=screen, force_terminal=True, width=100))
    with progress.steps("converting m.gguf", 2, bar=True) as step:
        step("reading")
        step("writing")
    shown = screen.getvalue()
    assert "converting m.gguf" in shown and "2/2" in shown and "done" in shown
