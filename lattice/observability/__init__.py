"""What operators see: Prometheus metrics and structured logs, shared by the server, its domain and the shim.

Nothing here imports gRPC, so domain code records facts where they happen
(`metrics.first_token(model, seconds)`) and the gRPC- and HTTP-facing parts
(`lattice.server.services.observability`, `lattice.shim.middleware`) stay at the edges.
"""
