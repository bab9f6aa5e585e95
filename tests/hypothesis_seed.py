"""Every randomized test is reproducible: one hypothesis seed per run, printed in the header and on
each failing test; under CI=true it is fixed (and hypothesis' example database is off), so two CI runs
draw the same examples. Rerun a run's draws with `pytest --hypothesis-seed=N` (or `HYPOTHESIS_SEED=N`).

This covers the property tests (tests/api/test_properties.py) and the schemathesis fuzzing
(tests/shim/test_openapi.py), which draws its cases through hypothesis too."""

from __future__ import annotations

import os
import random
from collections.abc import Generator

import pluggy
import pytest
from hypothesis import core, settings

CI_SEED = 17
"""The seed of every CI run (any fixed number would do)."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    given = config.getoption("hypothesis_seed", default=None) or os.environ.get("HYPOTHESIS_SEED")
    seed = int(given) if given else CI_SEED if in_ci() else random.randrange(2**32)
    core.global_force_seed = seed  # type: ignore[assignment]  # what --hypothesis-seed sets
    config.stash[SEED] = seed
    if in_ci():
        settings.register_profile("lattice-ci", database=None, print_blob=True)
        settings.load_profile("lattice-ci")


SEED = pytest.StashKey[int]()


def _rerun(config: pytest.Config) -> str:
    seed = config.stash[SEED]
    return f"hypothesis seed {seed}{' (fixed: CI=true)' if in_ci() else ''}; rerun with --hypothesis-seed={seed}"


def pytest_report_header(config: pytest.Config) -> str:
    return _rerun(config)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
        report.sections.append(("hypothesis seed", _rerun(item.config)))
