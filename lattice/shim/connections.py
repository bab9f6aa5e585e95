"""The REST port's defences against connection exhaustion: a header-read timeout, a cap on open
connections, and the process's file limit raised to what the system allows.

An attacker who opens thousands of connections and never finishes their headers would otherwise
hold a file descriptor each until the process runs out (uvicorn has no header timeout), and then
nothing, the gRPC port included, can accept a connection. Here:

- a connection has `header_timeout` seconds from its first byte (or from connecting) to finish a
  request's headers, else it is closed;
- at most `max_connections` are open; a new one past the cap closes the oldest connection that is
  not inside a request (still sending headers, or idle between requests) to make room, so fresh
  clients, who send their headers at once, are served while the attacker's sockets are shed. Only
  when every connection is mid-request is the new one closed instead;
- the cap is kept well under the file limit (`connection_cap`), leaving room for the gRPC server,
  the store and the models.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

FILE_LIMIT_TARGET = 65536
"""The soft RLIMIT_NOFILE `raise_file_limit` asks for (or the hard limit, when lower)."""


def raise_file_limit(target: int = FILE_LIMIT_TARGET) -> int:
    """Raises the soft limit on open files towards `target` (never past the hard limit, never down);
    returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as error:  # pragma: no cover - a sandbox may forbid it
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, wanted, error)
    return soft if soft != resource.RLIM_INFINITY else target


def connection_cap(configured: int, file_limit: int) -> int:
    """`configured`, or less so that a quarter of the file limit (at least 256) stays free for
    everything that is not a REST connection."""
    return max(1, min(configured, file_limit - max(256, file_limit // 4)))


def guarded_protocol(*, header_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with the header timeout and the connection cap (module docstring);
    pass it as `uvicorn.Config(http=...)`."""
    # Connections not inside a request, oldest first (dicts keep insertion order): the ones to shed.
    idle: dict[GuardedProtocol, None] = {}

    class GuardedProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                oldest = next(iter(idle), None)
                if oldest is None:
                    _shed("every connection is inside a request: refused a new one")
                    transport.close()
                    return
                _shed("closed the oldest idle or half-open connection for a new one")
                oldest._close()
            idle[self] = None
            self._expect_headers()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            idle[self] = None
            self._expect_headers()

        def on_headers_complete(self) -> None:
            self._headers_read()
            idle.pop(self, None)
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                idle[self] = None  # waiting for its next request: uvicorn's keep-alive timeout applies

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_read()
            idle.pop(self, None)
            super().connection_lost(exc)

        def _expect_headers(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _headers_read(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            _shed(f"closed a connection that sent no complete headers within {header_timeout:g} s")
            self._close()

        def _close(self) -> None:
            self._headers_read()
            idle.pop(self, None)
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedProtocol


def _shed(what: str, **_: Any) -> None:
    # Identical lines: the log's repeat limiter folds them into one line per interval with a count.
    log.warning("REST connection guard: %s", what)
