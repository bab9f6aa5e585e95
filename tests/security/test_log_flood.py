"""Repeated identical errors are rate-limited in the log (issue #22, item 2): one line per interval,
the next one saying how many were left out."""

from __future__ import annotations

import logging

import pytest

from lattice.observability.logs import RepeatLimiter


def accept_fails(logger: logging.Logger) -> None:
    try:
        raise OSError(24, "Too many open files")
    except OSError:
        logger.exception("socket.accept() out of system resource")


def test_a_flood_of_one_error_is_one_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    logger = logging.getLogger("test.flood")
    limiter = RepeatLimiter(interval=10, clock=lambda: now[0])
    caplog.handler.addFilter(limiter)
    try:
        with caplog.at_level(logging.INFO, logger="test.flood"):
            for _ in range(20_000):
                accept_fails(logger)
            logger.error("something else went wrong")  # a different error is not held back
            now[0] = 11.0
            accept_fails(logger)
            logger.info("info lines are never held")
            logger.info("info lines are never held")
    finally:
        caplog.handler.removeFilter(limiter)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "socket.accept() out of system resource",
        "something else went wrong",
        "socket.accept() out of system resource (and 19999 more like it in the last 10 s, not logged)",
        "info lines are never held",
        "info lines are never held",
    ]
