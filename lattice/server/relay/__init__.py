"""The gateway's side of the relay: connected daemons, work dispatched down their streams."""

PERSONAL_PREFIX = "lattice:personal:"
"""Model expressions that name a personal runtime: `lattice:personal:<latticeId>`."""
