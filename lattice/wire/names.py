"""Names on the wire that the server and its clients (the shim, the daemon, tests) must agree on: every
`x-lattice-*` header and metadata key lives here."""

MODEL_METADATA_KEY = "x-lattice-model"
"""gRPC initial metadata (and the shim's HTTP header) naming the model that answers."""

STATUS_DETAILS_METADATA_KEY = "grpc-status-details-bin"
"""Trailing metadata carrying the serialized google.rpc.Status with its details."""

FORWARDED_FOR_METADATA_KEY = "x-forwarded-for"
"""The client address a proxy reports; the server trusts it only alongside the proxy secret."""

PROXY_SECRET_METADATA_KEY = "x-lattice-proxy-secret"
"""Metadata by which the gateway's own shim proves itself: a secret of the process, never configured or
logged, that lets the server trust the shim's `x-forwarded-for` (anyone else's is ignored)."""

API_KEY_METADATA_KEY = "x-api-key"
AUTHORIZATION_METADATA_KEY = "authorization"
"""A caller's credential: an API key, or `Bearer <key, OAuth token or daemon credential>`."""

LATENCY_TIER_KEY = "x-lattice-latency-tier"
ESCALATE_KEY = "x-lattice-escalate"
PRIORITY_KEY = "x-lattice-priority"
"""A request's hints as metadata (and the shim's HTTP headers); they fill the fields a request leaves unset."""

CREDENTIAL_KEYS = (AUTHORIZATION_METADATA_KEY, API_KEY_METADATA_KEY)
HINT_KEYS = (LATENCY_TIER_KEY, ESCALATE_KEY, PRIORITY_KEY)

REQUEST_ID_KEY = "x-request-id"
"""HTTP header and gRPC metadata key: the caller's id for a request, echoed back on the answer."""
