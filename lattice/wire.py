"""Names on the wire that the server and its clients (the shim, tests) must agree on."""

MODEL_METADATA_KEY = "x-lattice-model"
"""gRPC initial metadata (and the shim's HTTP header) naming the model that answers."""

STATUS_DETAILS_METADATA_KEY = "grpc-status-details-bin"
"""Trailing metadata carrying the serialized google.rpc.Status with its details."""
