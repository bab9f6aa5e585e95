"""The gRPC server (`services/`) and the domain it serves (no gRPC imports outside `services/` and `app`)."""
