"""Names on the wire that the server and its clients (the shim, tests) must agree on."""

MODEL_METADATA_KEY = "x-lattice-model"
"""gRPC initial metadata (and the shim's HTTP header) naming the model that answers."""

STATUS_DETAILS_METADATA_KEY = "grpc-status-details-bin"
"""Trailing metadata carrying the serialized google.rpc.Status with its details."""

FORWARDED_FOR_METADATA_KEY = "x-forwarded-for"
"""The client address a proxy reports; the server trusts it only alongside the proxy secret."""

PROXY_SECRET_METADATA_KEY = "x-lattice-proxy-secret"
"""Metadata by which the gateway's own shim proves itself: a secret of the process, never configured or
logged, that lets the server trust the shim's `x-forwarded-for` (anyone else's is ignored)."""
