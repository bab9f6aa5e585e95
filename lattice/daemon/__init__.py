"""The personal-runtime daemon (`lattice-daemon`) and its control command (`lattice-ctl`).

The daemon dials the gateway's relay (one outbound bidirectional gRPC stream, no inbound port),
runs the work that comes down it on a local backend, and streams the answers back.
"""
