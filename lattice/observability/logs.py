"""Structured logs: one JSON object per line off a terminal, readable lines on one, a request id in each.

Everything goes through the standard `logging` module (ours, uvicorn's, grpc's),
rendered by structlog, so a log shipper gets one format. The request id of the
call being served is bound in a context variable (`bound_request_id`) and added
to every line logged while serving it, from any module.

Prompts and completions are never logged here: only `Gateway` logs them, and
only when the operator sets `log_prompts`.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import structlog

# What we accept from a caller as its request id: short, and nothing that could forge a log line or a header.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")

LogFormat = Literal["auto", "json", "console"]


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_or_new(offered: str | None) -> str:
    """The caller's id when it is a sensible one (≤128 characters of letters, digits and `._:/+=-`), else a new one."""
    if offered is not None and _REQUEST_ID.fullmatch(offered):
        return offered
    return new_request_id()


def current_request_id() -> str | None:
    """The id bound by `bound_request_id` in this context, if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


@contextmanager
def bound_request_id(request_id: str, **context: str) -> Iterator[None]:
    """Adds `request_id` (and `context`) to every log line of this task until the block ends."""
    with structlog.contextvars.bound_contextvars(request_id=request_id, **context):
        yield


REPEAT_INTERVAL_SECONDS = 10.0


class RepeatLimiter(logging.Filter):
    """Lets one of a run of identical warnings or errors through per `interval` seconds; the next one
    let through says how many were left out. An attack that makes the same error thousands of times a
    second (`accept()`: too many open files) then costs a line per interval, not gigabytes of log.

    Identical means the same logger, level, message and exception type; info lines are never held."""

    def __init__(self, interval: float = REPEAT_INTERVAL_SECONDS, clock: Any = time.monotonic) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._seen: dict[tuple[str, int, str, str], tuple[float, int]] = {}  # key -> (window start, held back)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not isinstance(record.msg, str):
            return True
        error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.name, record.levelno, record.getMessage()[:500], error)
        now = self._clock()
        with self._lock:
            started, held = self._seen.get(key, (None, 0))
            if started is not None and now - started < self._interval:
                self._seen[key] = (started, held + 1)
                return False
            self._seen[key] = (now, 0)
            if len(self._seen) > 1000:  # forget the oldest windows: many distinct errors must not grow it
                for stale in list(self._seen)[:500]:
                    del self._seen[stale]
        if held:
            record.msg = f"{record.msg} (and {held} more like it in the last {self._interval:g} s, not logged)"
        return True


def configure_logging(level: str = "info", log_format: LogFormat = "auto") -> None:
    """Routes all logging to stderr through structlog; call once, at the start of `lattice serve`."""
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=True)
    )
    final: list[structlog.types.Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if as_json:
        # Tracebacks as one string field, so a traceback stays inside its JSON line.
        final.append(structlog.processors.format_exc_info)
    final.append(renderer)
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
