"""Generated docs stay true to the code."""

from __future__ import annotations

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_configuration_doc_matches_the_settings_object() -> None:
    fresh = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_config_docs.py")], capture_output=True, text=True, check=True
    ).stdout
    committed = (REPO / "docs" / "configuration.md").read_text()
    assert fresh == committed, "docs/configuration.md is stale: run `make docs`"
