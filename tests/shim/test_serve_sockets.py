"""The shim's listening socket: its accepted connections must get TCP_NODELAY.

asyncio sets TCP_NODELAY on an accepted connection only when the socket says it
is IPPROTO_TCP; a socket made with protocol 0 leaves Nagle's algorithm on, and
every streamed chunk after the first then waits ~40 ms for the client's ACK
(bench/README.md measured it: +45 ms per streamed request through the shim).
"""

from __future__ import annotations

import socket

from lattice.config import Settings
from lattice.serve import _bind_http
from tests.gateway_process import free_port


def test_the_shim_socket_is_tcp_so_asyncio_disables_nagle() -> None:
    sock = _bind_http(Settings(http_port=free_port()))
    try:
        assert sock.type == socket.SOCK_STREAM
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
