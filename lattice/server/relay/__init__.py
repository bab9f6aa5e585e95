"""The gateway's side of the relay: connected daemons, work dispatched down their streams."""

from lattice.server.expressions import PERSONAL_RUNTIME_PREFIX as PERSONAL_PREFIX

__all__ = ["PERSONAL_PREFIX"]
